/*
 * backend.h: the contract between the addon glue (addon.cc) and the one
 * platform backend that binding.gyp compiles in (backend_darwin.c on macOS,
 * backend_linux.c on Linux).
 *
 * Threading: every mp_* function is called on the JavaScript thread of one
 * Node environment, except mp_conn_read_start and mp_conn_read_stop, which
 * may also be called from inside the emit callback. The backend calls the
 * emit callback from its own threads (a dispatch queue or an I/O thread),
 * never from inside an mp_* call, and never while it holds a lock that
 * mp_conn_read_start or mp_conn_read_stop takes.
 *
 * Errors are negative numbers: a negative errno in the numbering of the
 * machine the addon runs on, or one of the MP_EAI_* codes below for name
 * resolution. Backends translate whatever their platform reports into these.
 */
#ifndef NW_MPTCP_BACKEND_H
#define NW_MPTCP_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Name resolution failures. The values are libuv's UV_EAI_* codes, so the
 * JavaScript side names them with util.getSystemErrorName. */
#define MP_EAI_AGAIN (-3001)
#define MP_EAI_FAIL (-3004)
#define MP_EAI_NONAME (-3008)

typedef struct mp_backend mp_backend_t;
typedef struct mp_conn mp_conn_t;

typedef enum mp_service {
  MP_SERVICE_DISABLED = 0,
  MP_SERVICE_HANDOVER = 1,
  MP_SERVICE_INTERACTIVE = 2,
  MP_SERVICE_AGGREGATE = 3
} mp_service_t;

/* The Network framework's error domain of an error. Backends without one
 * (Linux) leave it MP_DOMAIN_NONE. */
typedef enum mp_domain {
  MP_DOMAIN_NONE = 0,
  MP_DOMAIN_POSIX = 1,
  MP_DOMAIN_DNS = 2,
  MP_DOMAIN_TLS = 3
} mp_domain_t;

typedef struct mp_error {
  int code;            /* negative errno or MP_EAI_*; 0 for no error */
  const char *syscall; /* static string: "connect", "read", "write", ... */
  mp_domain_t domain;  /* the platform's error domain */
  int raw;             /* the platform's own code in that domain */
  /* The address the failed operation used, when there is one. */
  struct sockaddr_storage address;
  int has_address;
} mp_error_t;

typedef enum mp_event_type {
  /* The connection is established; mp_conn_get_info has the addresses. */
  MP_EVENT_CONNECT = 1,
  /* Received bytes in data/len. The receiver owns data and frees it with
   * free(). Emitted only while reading is on. */
  MP_EVENT_DATA = 2,
  /* The peer finished sending. No DATA follows. */
  MP_EVENT_EOF = 3,
  /* A write that mp_conn_write queued has completed: error.code is 0 when
   * the stack took every byte. req is the caller's pointer. */
  MP_EVENT_WRITE = 4,
  /* A queued mp_conn_shutdown has completed; error.code as for WRITE. */
  MP_EVENT_SHUTDOWN = 5,
  /* The connection failed: connect, read or an asynchronous error. The
   * caller is expected to close it. */
  MP_EVENT_ERROR = 6,
  /* macOS: no usable network yet, and the caller asked to wait; error says
   * why. The connection goes on trying. */
  MP_EVENT_WAITING = 7,
  /* The set of paths or their addresses changed. */
  MP_EVENT_PATH = 8,
  /* Last event of a connection, after mp_conn_close: every queued write has
   * had its WRITE event and the backend uses no resource of it any more. */
  MP_EVENT_CLOSE = 9,
  /* The per-path statistics that mp_conn_get_paths promised: data is an
   * mp_path_report_t that the receiver frees with free(). */
  MP_EVENT_PATHS = 10,
  /* macOS: the current path became usable (len 1) or unusable (len 0). */
  MP_EVENT_VIABILITY = 11,
  /* macOS: a better path is available (len 1) or no longer (len 0). */
  MP_EVENT_BETTER_PATH = 12
} mp_event_type_t;

typedef struct mp_event {
  mp_event_type_t type;
  mp_error_t error;
  void *data;
  size_t len;
  void *req;
} mp_event_t;

/* Receives every event of one connection, on a backend thread, in order. The
 * event and its error live only for the call; data passes to the receiver. */
typedef void (*mp_emit_cb)(void *ctx, mp_event_t *event);

typedef struct mp_connect_options {
  /* Host name or address literal. Used by backends that resolve names
   * themselves (see mp_backend_resolves_names). */
  const char *host;
  /* Addresses to try in order, each with its port set. Used by backends
   * that do not resolve names. */
  const struct sockaddr_storage *addresses;
  size_t address_count;
  uint16_t port;
  mp_service_t service;
  int family; /* 0 for any, 4 or 6 */
  /* Local address to bind, or NULL; local port, or 0. */
  const char *local_address;
  uint16_t local_port;
  int no_delay;
  int keep_alive;
  unsigned keep_alive_delay; /* seconds before the first probe */
  /* macOS: stay in the waiting state instead of failing the connect. */
  int wait_for_connectivity;
  /* TLS run by the platform (the Network framework): 0 for none. Backends
   * without it fail mp_conn_open with -ENOTSUP when it is set. */
  int tls;
  /* Server name for SNI and the certificate check; NULL for the host. */
  const char *tls_server_name;
  /* ALPN protocols to offer, in order of preference. */
  const char *const *tls_alpn;
  size_t tls_alpn_count;
  /* Minimum TLS version: 0 for the platform's default, 12 for TLS 1.2,
   * 13 for TLS 1.3. */
  int tls_min_version;
} mp_connect_options_t;

typedef struct mp_info {
  struct sockaddr_storage local;
  struct sockaddr_storage remote;
  int has_local;
  int has_remote;
  /* 1 when MPTCP is in use, 0 when it is not, -1 when the platform cannot
   * tell. */
  int mptcp;
  /* 1 when the kernel refused an MPTCP socket and plain TCP was used. */
  int fallback;
  /* Platform TLS only: the negotiated protocol version ("TLSv1.3") and ALPN
   * protocol, empty when there is none. */
  char tls_protocol[16];
  char tls_alpn[64];
} mp_info_t;

/* Statistics of one path: a subflow on Linux, a path of the data transfer
 * report on macOS. */
typedef struct mp_path {
  uint32_t id; /* subflow id (Linux) or index of the path (macOS) */
  struct sockaddr_storage local;
  struct sockaddr_storage remote;
  int has_local;
  int has_remote;
  char interface_name[32]; /* empty when unknown */
  uint64_t bytes_sent; /* bytes sent on the path, retransmissions included */
  uint64_t bytes_received;
  uint32_t rtt_us; /* smoothed round-trip time in microseconds; 0 unknown */
  int backup;      /* 1 backup path, 0 regular, -1 unknown */
} mp_path_t;

typedef struct mp_path_report {
  /* Connection totals at the MPTCP level (data bytes, without
   * retransmissions); 0 when the platform has none. */
  uint64_t bytes_sent;
  uint64_t bytes_received;
  size_t count;
  mp_path_t paths[];
} mp_path_report_t;

/* One I/O buffer of a write. */
typedef struct mp_buf {
  const void *base;
  size_t len;
} mp_buf_t;

/* Return value of mp_conn_write and mp_conn_shutdown when the operation
 * completed at once and no event will follow. */
#define MP_DONE 1

/* Returns the backend's name: "linux" or "darwin". */
const char *mp_backend_name(void);

/* Returns 1 when mp_conn_open resolves host names itself, 0 when the caller
 * must resolve them and pass addresses. */
int mp_backend_resolves_names(void);

/* Creates the backend state of one Node environment. */
int mp_backend_create(mp_backend_t **out);

/* Closes every open connection gracefully, as mp_conn_close(conn, 0) does,
 * waits until each has emitted its CLOSE, and frees the backend. No emit
 * callback runs after it returns. Connections are still to be freed with
 * mp_conn_free. */
void mp_backend_destroy(mp_backend_t *backend);

/* Starts a connection. On success *out is set before the first event, and
 * the first event is CONNECT, ERROR, WAITING or, after an early
 * mp_conn_close, CLOSE. Reading starts off. The caller writes and shuts down
 * only after CONNECT, and calls mp_conn_close after ERROR: CLOSE is emitted
 * only after mp_conn_close. On failure nothing is allocated. */
int mp_conn_open(mp_backend_t *backend, const mp_connect_options_t *options,
                 mp_emit_cb emit, void *ctx, mp_conn_t **out);

/* Turns reading on or off. While reading is off the backend reads nothing
 * more from the network, so the peer's sending window closes. DATA that was
 * read before the call may still be emitted. */
void mp_conn_read_start(mp_conn_t *conn);
void mp_conn_read_stop(mp_conn_t *conn);

/* Sends the bytes of count buffers, in order. Returns MP_DONE when the stack
 * took every byte at once; 0 when a WRITE event with req will follow, and
 * the buffers must stay valid until then; a negative error otherwise. */
int mp_conn_write(mp_conn_t *conn, const mp_buf_t *bufs, size_t count,
                  void *req);

/* Half-closes: sends end of stream after every queued write. Returns MP_DONE,
 * 0 when a SHUTDOWN event with req will follow, or a negative error. */
int mp_conn_shutdown(mp_conn_t *conn, void *req);

/* Closes the connection; reset sends RST instead of a graceful end. Queued
 * writes complete with -ECANCELED, then CLOSE is emitted. Later calls do
 * nothing. */
void mp_conn_close(mp_conn_t *conn, int reset);

/* Frees the connection after its CLOSE event was handled. */
void mp_conn_free(mp_conn_t *conn);

/* Fills *info with the MPTCP and TLS state and, when with_addresses is
 * set, the current addresses, which may cost system calls. */
int mp_conn_get_info(mp_conn_t *conn, mp_info_t *info, int with_addresses);

/* Collects per-path statistics. Returns MP_DONE with *report set (the
 * caller frees it with free()), 0 when an MP_EVENT_PATHS event with the
 * report follows, or a negative error. */
int mp_conn_get_paths(mp_conn_t *conn, mp_path_report_t **report);

/* Socket options. Both return 0 or a negative error, and may do nothing on a
 * platform that fixes them before the connection starts. */
int mp_conn_set_no_delay(mp_conn_t *conn, int enable);
int mp_conn_set_keep_alive(mp_conn_t *conn, int enable, unsigned delay);

/* Server side, where the platform has one: socket_linux.c on Linux, and
 * server_none.c, which returns -ENOTSUP, elsewhere. Creates a listening MPTCP
 * socket on address (NULL for any) and port, falling back to TCP when the
 * kernel refuses MPTCP, and returns its descriptor or a negative error. */
int mp_listen(const char *address, uint16_t port, int family, int backlog,
              int ipv6_only, int *fallback);

/* Returns 1 when the connected socket fd uses MPTCP, 0 when it does not, or
 * a negative error. */
int mp_fd_is_mptcp(int fd);

#ifdef __cplusplus
}
#endif

#endif /* NW_MPTCP_BACKEND_H */
