/*
 * internal.h: what the source files of the Network framework emulation
 * share: the counted object header, the object types, and helpers that
 * cross file boundaries. Not part of the emulated interface.
 *
 * Constraint: every nw_* and dispatch object starts with emu_object_t, so
 * that retain, release and the leak check work on any of them.
 */
#ifndef NW_EMULATION_INTERNAL_H
#define NW_EMULATION_INTERNAL_H

#include "nw_emulation.h"

#include <Network/Network.h>
#include <dispatch/dispatch.h>
#include <net/if.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

typedef enum emu_family {
  EMU_FAMILY_NW = 1,
  EMU_FAMILY_DISPATCH = 2,
  EMU_FAMILY_SEC = 3
} emu_family_t;

/* One object type: its name in messages, its family (which release
 * function owns it) and the function that frees what it holds. */
typedef struct emu_class {
  const char *name;
  emu_family_t family;
  void (*dispose)(void *object);
} emu_class_t;

#define EMU_MAGIC_LIVE 0x6e77656du /* "nwem" */
#define EMU_MAGIC_DEAD 0x64656164u /* "dead" */

typedef struct emu_object {
  uint32_t magic;
  bool immortal;
  const emu_class_t *cls;
  atomic_long refs;
  /* Registry of live objects, guarded by the registry lock in object.c. */
  struct emu_object *prev;
  struct emu_object *next;
} emu_object_t;

/* Header of a constant object that retain and release leave alone. */
#define EMU_IMMORTAL_HEADER(class_)                                            \
  { .magic = EMU_MAGIC_LIVE, .immortal = true, .cls = &(class_), .refs = 1 }

/* Prints "nw-emulation: <message>" on stderr and aborts. */
void emu_fatal(const char *format, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

/* Allocates a zeroed object of size bytes with one reference. Aborts when
 * memory runs out: the emulation is for tests. */
void *emu_object_create(const emu_class_t *cls, size_t size);
void emu_object_retain(void *object, emu_family_t family, const char *function);
void emu_object_release(void *object, emu_family_t family,
                        const char *function);

/* Aborts unless object is a live object of class cls. function names the
 * caller in the message. */
void emu_object_check(const void *object, const emu_class_t *cls,
                      const char *function);

/* Count work that keeps the emulation busy: queued or running blocks and
 * started connections that the I/O thread still owns. */
void emu_busy_begin(void);
void emu_busy_end(void);

extern const emu_class_t emu_class_queue;
extern const emu_class_t emu_class_data;
extern const emu_class_t emu_class_connection;
extern const emu_class_t emu_class_endpoint;
extern const emu_class_t emu_class_parameters;
extern const emu_class_t emu_class_protocol_stack;
extern const emu_class_t emu_class_protocol_options;
extern const emu_class_t emu_class_path;
extern const emu_class_t emu_class_error;
extern const emu_class_t emu_class_content_context;
extern const emu_class_t emu_class_protocol_definition;
extern const emu_class_t emu_class_protocol_metadata;
extern const emu_class_t emu_class_interface;
extern const emu_class_t emu_class_data_transfer_report;
extern const emu_class_t emu_class_sec_protocol_options;
extern const emu_class_t emu_class_sec_protocol_metadata;

/* dispatch.c */

/* Fills up to max iovecs with the bytes of data from offset on. Returns the
 * number filled. */
int emu_data_iovecs(dispatch_data_t data, size_t offset, struct iovec *iov,
                    int max);

/* objects.c */

/* Returns the Darwin errno number for a Linux errno value. */
int emu_darwin_errno(int linux_errno);

nw_error_t emu_error_create(nw_error_domain_t domain, int code);
nw_content_context_t emu_content_context_create(bool is_final);
nw_endpoint_t emu_endpoint_create_address(const struct sockaddr *address);
nw_path_t emu_path_create(nw_endpoint_t local, nw_endpoint_t remote);
socklen_t emu_sockaddr_length(const struct sockaddr *address);

/* Longest ALPN list in wire format (RFC 7301, 3.1: a 2-byte length). */
#define EMU_ALPN_MAX 65535

/* TLS settings of a connection, copied from its TLS options. */
typedef struct emu_tls_settings {
  /* SNI and the name the certificate is checked against. NULL: the
   * endpoint's host name, or the address of an address endpoint. */
  char *server_name;
  /* ALPN protocols in wire format: each one length-prefixed. */
  unsigned char *alpn;
  size_t alpn_length;
  /* Minimum version (tls_protocol_version_t); 0 for the default. */
  uint16_t min_version;
} emu_tls_settings_t;

/* What a TLS handshake negotiated. */
typedef struct emu_tls_result {
  uint16_t version;
  char alpn[256]; /* empty when none */
} emu_tls_result_t;

/* Connection settings, copied from the parameters at nw_connection_create.
 * local_endpoint is retained; emu_settings_dispose frees what they hold. */
typedef struct emu_settings {
  nw_multipath_service_t service;
  nw_ip_version_t ip_version;
  bool no_delay;
  bool keepalive;
  uint32_t keepalive_idle;
  nw_endpoint_t local_endpoint;
  bool tls;
  emu_tls_settings_t tls_settings;
} emu_settings_t;

void emu_parameters_copy_settings(nw_parameters_t parameters,
                                  emu_settings_t *out);
void emu_settings_dispose(emu_settings_t *settings);

/* Returns the host name of a host endpoint, or NULL. */
const char *emu_endpoint_hostname(nw_endpoint_t endpoint);

nw_protocol_metadata_t emu_tls_metadata_create(const emu_tls_result_t *result);
nw_interface_t emu_interface_create(const char *name);

/* Maximum addresses one name resolves to. */
#define EMU_MAX_ADDRESSES 8

/* Resolves endpoint to socket addresses of ip_version without any network
 * traffic: IP literals, and names from /etc/hosts ("localhost" also when
 * the file lacks it). Returns 0, or a DNSServiceErrorType for a name that
 * is not found. */
int emu_endpoint_resolve(nw_endpoint_t endpoint, nw_ip_version_t ip_version,
                         struct sockaddr_storage *out, size_t max,
                         size_t *count);

/* tls.c: a TLS client session over a connected socket, with OpenSSL. */

typedef struct emu_tls emu_tls_t;

/* Result of one TLS operation. On EMU_IO_FAILED the failure is in *domain
 * and *code, in the framework's numbering: a Darwin errno in
 * nw_error_domain_posix or an OSStatus in nw_error_domain_tls. */
typedef enum emu_io {
  EMU_IO_DONE,
  EMU_IO_WANT_READ,
  EMU_IO_WANT_WRITE,
  EMU_IO_EOF,
  EMU_IO_FAILED
} emu_io_t;

typedef struct emu_failure {
  nw_error_domain_t domain;
  int code;
} emu_failure_t;

/* Starts a client session on fd for endpoint, which is connected to remote.
 * Returns NULL with *failure set when OpenSSL cannot set it up. */
emu_tls_t *emu_tls_create(const emu_tls_settings_t *settings,
                          nw_endpoint_t endpoint, const struct sockaddr *remote,
                          int fd, emu_failure_t *failure);
emu_io_t emu_tls_handshake(emu_tls_t *tls, emu_failure_t *failure);
emu_io_t emu_tls_read(emu_tls_t *tls, void *buffer, size_t size, size_t *read,
                      emu_failure_t *failure);
/* Returns EMU_IO_DONE when a byte is ready, EMU_IO_EOF at the end of the
 * stream, or what a read would. Consumes nothing. */
emu_io_t emu_tls_peek(emu_tls_t *tls, emu_failure_t *failure);
emu_io_t emu_tls_write(emu_tls_t *tls, const void *buffer, size_t size,
                       size_t *written, emu_failure_t *failure);
/* Sends close_notify. */
emu_io_t emu_tls_close_write(emu_tls_t *tls, emu_failure_t *failure);
void emu_tls_get_result(emu_tls_t *tls, emu_tls_result_t *out);
void emu_tls_free(emu_tls_t *tls);

/* report.c: statistics of the paths of a socket. */

/* Maximum paths in a statistics snapshot; the kernel allows 8 subflows. */
#define EMU_MAX_PATHS 16

typedef struct emu_path_stats {
  struct sockaddr_storage local;
  struct sockaddr_storage remote;
  char interface_name[IF_NAMESIZE];
  uint64_t bytes_sent; /* retransmissions included */
  uint64_t bytes_received;
  uint32_t rtt_us;
} emu_path_stats_t;

typedef struct emu_stats {
  size_t count;
  emu_path_stats_t paths[EMU_MAX_PATHS];
  /* Bytes that sends and receives of the connection carried. */
  uint64_t application_sent;
  uint64_t application_received;
} emu_stats_t;

/* Reads the paths of a connected socket: each MPTCP subflow, or the one
 * path of a TCP socket. Application counts are left alone. */
void emu_socket_stats(int fd, emu_stats_t *out);

/* connection.c: the statistics that a data transfer report needs. */

/* Sets *out to the connection's statistics now, or when it stopped being
 * ready. Returns false when it has not been ready. */
bool emu_connection_stats(nw_connection_t connection, emu_stats_t *out);
/* Sets *out to the statistics when the connection became ready. Returns
 * false when it has not been ready. */
bool emu_connection_ready_stats(nw_connection_t connection, emu_stats_t *out);

#endif /* NW_EMULATION_INTERNAL_H */
