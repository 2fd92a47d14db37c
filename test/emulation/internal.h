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
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

typedef enum emu_family {
  EMU_FAMILY_NW = 1,
  EMU_FAMILY_DISPATCH = 2
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

/* Connection settings, copied from the parameters at nw_connection_create.
 * local_endpoint is retained. */
typedef struct emu_settings {
  nw_multipath_service_t service;
  nw_ip_version_t ip_version;
  bool no_delay;
  bool keepalive;
  uint32_t keepalive_idle;
  nw_endpoint_t local_endpoint;
} emu_settings_t;

void emu_parameters_copy_settings(nw_parameters_t parameters,
                                  emu_settings_t *out);

/* Maximum addresses one name resolves to. */
#define EMU_MAX_ADDRESSES 8

/* Resolves endpoint to socket addresses of ip_version without any network
 * traffic: IP literals, and names from /etc/hosts ("localhost" also when
 * the file lacks it). Returns 0, or a DNSServiceErrorType for a name that
 * is not found. */
int emu_endpoint_resolve(nw_endpoint_t endpoint, nw_ip_version_t ip_version,
                         struct sockaddr_storage *out, size_t max,
                         size_t *count);

#endif /* NW_EMULATION_INTERNAL_H */
