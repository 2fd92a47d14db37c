/*
 * backend_darwin.c: the macOS backend, on Apple's Network framework
 * (nw_connection_t with a multipath service). The framework resolves host
 * names itself and is client-only.
 *
 * Every connection has its own serial dispatch queue. The framework runs the
 * connection's handlers and completions on that queue, and the backend runs
 * its own work for the connection there too (sends, the close, restarts of
 * reading). The events of a connection are therefore emitted from one queue,
 * in the order they happened. The JavaScript thread only copies write
 * buffers and hands work to the queue.
 *
 * The main constraint is lifetime, because the glue may free a connection as
 * soon as it has seen CLOSE. CLOSE therefore waits for two things. One is the
 * cancelled state, which the framework reports after every send and receive
 * completion. The other is the close block on the queue, which runs after
 * every block the backend queued for the connection. Nothing touches the
 * connection after that emit.
 *
 * This is plain C built with -fblocks, not Objective-C, so nw_*, sec_* and
 * dispatch objects are retained and released by hand, and blocks do not
 * retain the objects they capture.
 *
 * The deployment target is macOS 10.15 (binding.gyp), and every framework
 * call here is available from 10.15 on (the API_AVAILABLE annotations of
 * connection.h, connection_report.h, tls_options.h, SecProtocolOptions.h and
 * SecProtocolMetadata.h), so none needs a runtime availability check. The
 * SSLProtocol calls that tls_protocol_version_t replaced are deprecated
 * since 10.15 and are not used.
 */
#include "backend.h"

#include <Network/Network.h>
#include <arpa/inet.h>
#include <dispatch/dispatch.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Maximum bytes of one receive, and so of one DATA event. */
#define RECEIVE_MAX (64 * 1024)

/* TLS version numbers on the wire (RFC 8446, 4.2.1), which are the values
 * of tls_protocol_version_t (SecProtocolTypes.h). The enumerators of TLS 1.0
 * and 1.1 are deprecated, so numbers stand for them. */
#define WIRE_TLS_1_0 0x0301
#define WIRE_TLS_1_3 0x0304

/*
 * Darwin errno numbers, from the SDK's sys/errno.h, with the host constant
 * for the same error. The framework reports POSIX errors in Darwin
 * numbering. Mapping by number keeps the result right when this file is
 * built on a system whose constants differ, such as against an emulation of
 * the framework on Linux.
 */
#define DARWIN_ERRNO_TABLE(X)                                                  \
  X(1, EPERM)                                                                  \
  X(2, ENOENT)                                                                 \
  X(4, EINTR)                                                                  \
  X(5, EIO)                                                                    \
  X(9, EBADF)                                                                  \
  X(12, ENOMEM)                                                                \
  X(13, EACCES)                                                                \
  X(16, EBUSY)                                                                 \
  X(22, EINVAL)                                                                \
  X(23, ENFILE)                                                                \
  X(24, EMFILE)                                                                \
  X(32, EPIPE)                                                                 \
  X(35, EAGAIN)                                                                \
  X(36, EINPROGRESS)                                                           \
  X(37, EALREADY)                                                              \
  X(38, ENOTSOCK)                                                              \
  X(39, EDESTADDRREQ)                                                          \
  X(40, EMSGSIZE)                                                              \
  X(41, EPROTOTYPE)                                                            \
  X(42, ENOPROTOOPT)                                                           \
  X(43, EPROTONOSUPPORT)                                                       \
  X(44, ESOCKTNOSUPPORT)                                                       \
  X(45, ENOTSUP)                                                               \
  X(46, EPFNOSUPPORT)                                                          \
  X(47, EAFNOSUPPORT)                                                          \
  X(48, EADDRINUSE)                                                            \
  X(49, EADDRNOTAVAIL)                                                         \
  X(50, ENETDOWN)                                                              \
  X(51, ENETUNREACH)                                                           \
  X(52, ENETRESET)                                                             \
  X(53, ECONNABORTED)                                                          \
  X(54, ECONNRESET)                                                            \
  X(55, ENOBUFS)                                                               \
  X(56, EISCONN)                                                               \
  X(57, ENOTCONN)                                                              \
  X(58, ESHUTDOWN)                                                             \
  X(60, ETIMEDOUT)                                                             \
  X(61, ECONNREFUSED)                                                          \
  X(64, EHOSTDOWN)                                                             \
  X(65, EHOSTUNREACH)                                                          \
  X(78, ENOSYS)                                                                \
  X(84, EOVERFLOW)                                                             \
  X(89, ECANCELED)                                                             \
  X(94, EBADMSG)                                                               \
  X(96, ENODATA)                                                               \
  X(100, EPROTO)                                                               \
  X(101, ETIME)                                                                \
  X(102, EOPNOTSUPP)

/* On Darwin the host constants are the Darwin numbers, so a typo in the
 * table fails the build there. */
#ifdef __APPLE__
#define CHECK_DARWIN_ERRNO(number, name)                                       \
  _Static_assert((number) == (name), #name " is not " #number " on Darwin");
DARWIN_ERRNO_TABLE(CHECK_DARWIN_ERRNO)
#undef CHECK_DARWIN_ERRNO
#endif

typedef struct darwin_errno {
  int number;
  int host_code;
} darwin_errno_t;

#define DARWIN_ERRNO_ENTRY(number, name) {(number), (name)},
static const darwin_errno_t darwin_errnos[] = {
    DARWIN_ERRNO_TABLE(DARWIN_ERRNO_ENTRY)};
#undef DARWIN_ERRNO_ENTRY

struct mp_backend {
  pthread_mutex_t lock;
  /* Signalled when a connection has finished emitting CLOSE. */
  pthread_cond_t close_emitted;
  /* Connections that have not started to emit CLOSE. */
  mp_conn_t *live;
  /* Connections inside their CLOSE emit. */
  unsigned closing;
};

struct mp_conn {
  mp_backend_t *backend;
  mp_emit_cb emit;
  void *ctx;
  int wait_for_connectivity;

  /* TLS settings, copied from the connect options. The TLS configure block
   * reads them, so they live as long as the connection. */
  int tls;
  char *tls_server_name; /* NULL: no server name */
  char **tls_alpn;
  size_t tls_alpn_count;
  int tls_min_version;

  /* Released when the framework reports the cancelled state. */
  nw_connection_t connection;
  /* Released just before CLOSE is emitted. */
  dispatch_queue_t queue;

  /* Guards info, and orders the blocks that mp_conn_read_start queues
   * before the one that mp_conn_close queues. */
  pthread_mutex_t lock;
  mp_info_t info;

  atomic_int reading;
  /* Set on the JavaScript thread, under lock, by mp_conn_close. */
  atomic_int close_requested;

  /* Used only on the connection's queue. */
  int connected;
  int cancel_requested;
  int cancelled;
  int close_ran;
  int closed;
  int error_emitted;
  int receive_pending;
  int read_done; /* set after EOF or a read error: no receive follows */
  unsigned sends_pending;

  /* Per-path statistics, used only on the queue. report is the data
   * transfer report that runs since the last collection, or since the ready
   * state. Its collection adds its values to paths and the totals. */
  nw_data_transfer_report_t report;
  unsigned collects_pending;
  mp_path_t *paths;
  size_t path_count;
  uint64_t bytes_sent;
  uint64_t bytes_received;

  /* Guarded by backend->lock. */
  mp_conn_t *prev_live;
  mp_conn_t *next_live;
};

static void finish_if_done(mp_conn_t *conn);

static int map_darwin_errno(int number) {
  size_t i;

  for (i = 0; i < sizeof(darwin_errnos) / sizeof(darwin_errnos[0]); i++) {
    if (darwin_errnos[i].number == number)
      return -darwin_errnos[i].host_code;
  }
  return -EIO;
}

/* Maps a DNSServiceErrorType (dns_sd.h) to the getaddrinfo code that Node
 * reports for the same kind of failure. */
static int map_dns_error(int code) {
  switch (code) {
  case kDNSServiceErr_NoSuchName:
  case kDNSServiceErr_NoSuchRecord:
    return MP_EAI_NONAME;
  case kDNSServiceErr_Timeout:
  case kDNSServiceErr_NoRouter:
  case kDNSServiceErr_ServiceNotRunning:
  case kDNSServiceErr_Transient:
  case kDNSServiceErr_DefunctConnection:
    return MP_EAI_AGAIN;
  default:
    return MP_EAI_FAIL;
  }
}

/* Fills *out from a framework error. A NULL error becomes fallback_code with
 * MP_DOMAIN_NONE, because the framework reported no code. */
static void map_nw_error(nw_error_t error, int fallback_code,
                         const char *syscall, mp_error_t *out) {
  memset(out, 0, sizeof(*out));
  out->syscall = syscall;
  if (error == NULL) {
    out->code = fallback_code;
    return;
  }

  out->raw = nw_error_get_error_code(error);
  switch (nw_error_get_error_domain(error)) {
  case nw_error_domain_posix:
    out->domain = MP_DOMAIN_POSIX;
    out->code = map_darwin_errno(out->raw);
    break;
  case nw_error_domain_dns:
    out->domain = MP_DOMAIN_DNS;
    out->code = map_dns_error(out->raw);
    out->syscall = "getaddrinfo";
    break;
  case nw_error_domain_tls:
    /* The code is an OSStatus (Security/SecBase.h). TLS codes have no
     * errno of their own, so all of them map to EPROTO here; lib/tls.ts
     * gives them Node's TLS codes from raw. */
    out->domain = MP_DOMAIN_TLS;
    out->code = -EPROTO;
    break;
  default:
    out->domain = MP_DOMAIN_NONE;
    out->code = -EIO;
    break;
  }
}

/* Copies the sockaddr of an address endpoint into *out. Returns 0 for other
 * endpoint types, such as a host name that is not resolved yet. */
static int copy_endpoint_address(nw_endpoint_t endpoint,
                                 struct sockaddr_storage *out) {
  const struct sockaddr *address;
  size_t len;

  if (nw_endpoint_get_type(endpoint) != nw_endpoint_type_address)
    return 0;
  address = nw_endpoint_get_address(endpoint);
  if (address == NULL)
    return 0;

  /* The length comes from the family, not from sa_len, which only BSD
   * systems have. */
  if (address->sa_family == AF_INET)
    len = sizeof(struct sockaddr_in);
  else if (address->sa_family == AF_INET6)
    len = sizeof(struct sockaddr_in6);
  else
    return 0;
  memset(out, 0, sizeof(*out));
  memcpy(out, address, len);
  return 1;
}

/* Copies the remote address that a connect attempt used, if the framework
 * has one: the address of the current path, or the endpoint itself when the
 * caller gave an address literal. */
static int copy_remote_address(mp_conn_t *conn, struct sockaddr_storage *out) {
  nw_endpoint_t endpoint;
  nw_path_t path;
  int found = 0;

  if (conn->connection == NULL)
    return 0;

  path = nw_connection_copy_current_path(conn->connection);
  if (path != NULL) {
    endpoint = nw_path_copy_effective_remote_endpoint(path);
    if (endpoint != NULL) {
      found = copy_endpoint_address(endpoint, out);
      nw_release(endpoint);
    }
    nw_release(path);
  }
  if (found)
    return 1;

  endpoint = nw_connection_copy_endpoint(conn->connection);
  if (endpoint != NULL) {
    found = copy_endpoint_address(endpoint, out);
    nw_release(endpoint);
  }
  return found;
}

/* Stores the local and remote addresses of path in the info snapshot.
 * Returns 1 when one of them changed. An address that the path lacks keeps
 * its last known value. */
static int update_addresses(mp_conn_t *conn, nw_path_t path) {
  struct sockaddr_storage local;
  struct sockaddr_storage remote;
  nw_endpoint_t endpoint;
  int has_local = 0;
  int has_remote = 0;
  int changed = 0;

  memset(&local, 0, sizeof(local));
  memset(&remote, 0, sizeof(remote));
  endpoint = nw_path_copy_effective_local_endpoint(path);
  if (endpoint != NULL) {
    has_local = copy_endpoint_address(endpoint, &local);
    nw_release(endpoint);
  }
  endpoint = nw_path_copy_effective_remote_endpoint(path);
  if (endpoint != NULL) {
    has_remote = copy_endpoint_address(endpoint, &remote);
    nw_release(endpoint);
  }

  pthread_mutex_lock(&conn->lock);
  if (has_local && (!conn->info.has_local ||
                    memcmp(&local, &conn->info.local, sizeof(local)) != 0)) {
    conn->info.local = local;
    conn->info.has_local = 1;
    changed = 1;
  }
  if (has_remote &&
      (!conn->info.has_remote ||
       memcmp(&remote, &conn->info.remote, sizeof(remote)) != 0)) {
    conn->info.remote = remote;
    conn->info.has_remote = 1;
    changed = 1;
  }
  pthread_mutex_unlock(&conn->lock);
  return changed;
}

static void emit_simple(mp_conn_t *conn, mp_event_type_t type) {
  mp_event_t event;

  memset(&event, 0, sizeof(event));
  event.type = type;
  conn->emit(conn->ctx, &event);
}

/* Emits the WRITE or SHUTDOWN event of one send. */
static void emit_send_result(mp_conn_t *conn, mp_event_type_t type,
                             const char *syscall, void *req, nw_error_t error) {
  mp_event_t event;

  memset(&event, 0, sizeof(event));
  event.type = type;
  event.req = req;
  event.error.syscall = syscall;
  if (error != NULL) {
    map_nw_error(error, -EIO, syscall, &event.error);

    /* backend.h promises ECANCELED for writes that a close cuts short,
     * whatever code the framework gives. The raw code is kept. */
    if (conn->close_ran)
      event.error.code = -ECANCELED;
  }
  conn->emit(conn->ctx, &event);
}

/* Emits ERROR, at most once per connection: a later failure, such as the
 * failed state that follows a read error, adds nothing the caller can use. */
static void report_error(mp_conn_t *conn, nw_error_t error, int fallback_code,
                         const char *syscall) {
  mp_event_t event;

  if (conn->error_emitted)
    return;
  conn->error_emitted = 1;

  memset(&event, 0, sizeof(event));
  event.type = MP_EVENT_ERROR;
  map_nw_error(error, fallback_code, syscall, &event.error);
  if (!conn->connected)
    event.error.has_address = copy_remote_address(conn, &event.error.address);
  conn->emit(conn->ctx, &event);
}

/* Returns 1 once the caller asked to close or the backend cancelled after a
 * reported failure. From then on the caller wants only the completions of
 * its sends and CLOSE. */
static int is_closing(mp_conn_t *conn) {
  return conn->cancel_requested || atomic_load(&conn->close_requested);
}

/* Names the call that Node would report for a failure of the connection in
 * its current phase. DNS errors override it with "getaddrinfo". */
static const char *failure_syscall(mp_conn_t *conn) {
  return conn->connected ? "read" : "connect";
}

/* Asks the framework to cancel. The cancelled state follows once every
 * outstanding send and receive has completed with an error (connection.h). */
static void cancel_connection(mp_conn_t *conn, int reset) {
  if (conn->cancel_requested)
    return;
  conn->cancel_requested = 1;

  if (reset)
    nw_connection_force_cancel(conn->connection);
  else
    nw_connection_cancel(conn->connection);
}

/* Copies content into one malloc'd buffer and emits it as DATA, which passes
 * the buffer to the receiver. Returns 0, or -ENOMEM. */
static int emit_data(mp_conn_t *conn, dispatch_data_t content) {
  size_t size = dispatch_data_get_size(content);
  mp_event_t event;
  char *buffer;

  if (size == 0)
    return 0;
  buffer = malloc(size);
  if (buffer == NULL)
    return -ENOMEM;

  dispatch_data_apply(content, ^bool(dispatch_data_t region, size_t offset,
                                     const void *bytes, size_t length) {
    (void)region;
    memcpy(buffer + offset, bytes, length);
    return true;
  });

  memset(&event, 0, sizeof(event));
  event.type = MP_EVENT_DATA;
  event.data = buffer;
  event.len = size;
  conn->emit(conn->ctx, &event);
  return 0;
}

static void handle_receive(mp_conn_t *conn, dispatch_data_t content,
                           nw_content_context_t context, bool is_complete,
                           nw_error_t error);

/* Issues the next receive unless one is outstanding or reading is off. While
 * no receive is outstanding the receive window fills and the peer stops
 * sending (connection.h), which is how reading off applies backpressure. */
static void start_receive(mp_conn_t *conn) {
  if (!atomic_load(&conn->reading) || !conn->connected || conn->read_done ||
      conn->cancel_requested || conn->receive_pending)
    return;

  conn->receive_pending = 1;
  nw_connection_receive(conn->connection, 1, RECEIVE_MAX,
                        ^(dispatch_data_t content, nw_content_context_t context,
                          bool is_complete, nw_error_t error) {
                          handle_receive(conn, content, context, is_complete,
                                         error);
                        });
}

static void handle_receive(mp_conn_t *conn, dispatch_data_t content,
                           nw_content_context_t context, bool is_complete,
                           nw_error_t error) {
  conn->receive_pending = 0;

  /* After a close request or a reported failure, receives emit nothing: the
   * caller has no use for more data, and an error then comes from the
   * cancellation or repeats the failure already reported. */
  if (is_closing(conn)) {
    finish_if_done(conn);
    return;
  }

  /* Content can come together with an error or with the end of the stream
   * (connection.h), so it is emitted first. */
  if (content != NULL && emit_data(conn, content) != 0) {
    conn->read_done = 1;
    report_error(conn, NULL, -ENOMEM, "read");
  } else if (error != NULL) {
    conn->read_done = 1;
    report_error(conn, error, -EIO, "read");
  } else if (is_complete && (context == NULL || content == NULL ||
                             nw_content_context_get_is_final(context))) {
    /* A complete final context is the peer's FIN (connection.h). */
    conn->read_done = 1;
    emit_simple(conn, MP_EVENT_EOF);
  }

  /* start_receive checks the reading flag, which the emit callback may have
   * cleared with mp_conn_read_stop. */
  start_receive(conn);
  finish_if_done(conn);
}

/* Formats a negotiated TLS version as Node's TLSSocket.getProtocol() names
 * it ("TLSv1.3"). */
static void format_tls_version(tls_protocol_version_t version, char *out,
                               size_t size) {
  unsigned wire = (unsigned)version;

  if (wire == WIRE_TLS_1_0)
    snprintf(out, size, "TLSv1");
  else if (wire > WIRE_TLS_1_0 && wire <= WIRE_TLS_1_3)
    snprintf(out, size, "TLSv1.%u", wire - WIRE_TLS_1_0);
  else
    snprintf(out, size, "unknown");
}

/* Stores the negotiated TLS version and ALPN protocol in the info snapshot.
 * The framework has the TLS metadata once the connection is ready
 * (nw_connection_copy_protocol_metadata in connection.h). */
static void read_tls_result(mp_conn_t *conn) {
  nw_protocol_definition_t definition = nw_protocol_copy_tls_definition();
  nw_protocol_metadata_t metadata;
  sec_protocol_metadata_t tls;
  const char *alpn;
  char version[sizeof(conn->info.tls_protocol)];

  metadata = nw_connection_copy_protocol_metadata(conn->connection, definition);
  nw_release(definition);
  if (metadata == NULL)
    return;
  tls = nw_tls_copy_sec_protocol_metadata(metadata);
  nw_release(metadata);
  if (tls == NULL)
    return;

  format_tls_version(
      sec_protocol_metadata_get_negotiated_tls_protocol_version(tls), version,
      sizeof(version));
  /* The string lives as long as the metadata (SecProtocolMetadata.h). */
  alpn = sec_protocol_metadata_get_negotiated_protocol(tls);
  pthread_mutex_lock(&conn->lock);
  snprintf(conn->info.tls_protocol, sizeof(conn->info.tls_protocol), "%s",
           version);
  snprintf(conn->info.tls_alpn, sizeof(conn->info.tls_alpn), "%s",
           alpn != NULL ? alpn : "");
  pthread_mutex_unlock(&conn->lock);
  sec_release(tls);
}

static void handle_ready(mp_conn_t *conn) {
  nw_path_t path = nw_connection_copy_current_path(conn->connection);
  int changed = 0;

  if (path != NULL) {
    changed = update_addresses(conn, path);
    nw_release(path);
  }

  if (!conn->connected) {
    conn->connected = 1;
    if (conn->tls)
      read_tls_result(conn);
    emit_simple(conn, MP_EVENT_CONNECT);
  } else if (changed) {
    /* Ready again after waiting, possibly on other addresses. */
    emit_simple(conn, MP_EVENT_PATH);
  }
  start_receive(conn);
}

/* In the waiting state the framework retries by itself when the network
 * changes (connection.h). A Node caller expects a connect to fail fast, so
 * waiting is an error unless the caller asked to wait. */
static void handle_waiting(mp_conn_t *conn, nw_error_t error) {
  mp_event_t event;

  /* A TLS failure, such as a certificate that is not trusted, does not heal
   * when the network changes, so it fails the connect even for a caller
   * who waits for connectivity. */
  if (!conn->wait_for_connectivity ||
      (error != NULL &&
       nw_error_get_error_domain(error) == nw_error_domain_tls)) {
    report_error(conn, error, -ENETUNREACH, failure_syscall(conn));
    cancel_connection(conn, 0);
    return;
  }

  memset(&event, 0, sizeof(event));
  event.type = MP_EVENT_WAITING;
  map_nw_error(error, -ENETUNREACH, failure_syscall(conn), &event.error);
  conn->emit(conn->ctx, &event);
}

/* The cancelled state is the last callback of the connection, after every
 * send and receive completion (connection.h), so the framework object can
 * go now. CLOSE may still wait for mp_conn_close. */
static void handle_cancelled(mp_conn_t *conn) {
  conn->cancelled = 1;
  nw_release(conn->connection);
  conn->connection = NULL;
  if (conn->report != NULL)
    nw_release(conn->report);
  conn->report = NULL;
  finish_if_done(conn);
}

static void handle_state(mp_conn_t *conn, nw_connection_state_t state,
                         nw_error_t error) {
  /* After a close request or a reported failure only the cancelled state
   * matters: the caller is ending the connection or already has its ERROR. */
  if (is_closing(conn) && state != nw_connection_state_cancelled)
    return;

  switch (state) {
  case nw_connection_state_waiting:
    handle_waiting(conn, error);
    break;
  case nw_connection_state_ready:
    handle_ready(conn);
    break;
  case nw_connection_state_failed:
    /* TODO: data that arrived before a reset is lost here when no receive
     * is outstanding (paused reader). Whether a receive after the failed
     * state still returns it is not documented, and only a Mac can tell. */
    report_error(conn, error, -EIO, failure_syscall(conn));
    cancel_connection(conn, 0);
    break;
  case nw_connection_state_cancelled:
    handle_cancelled(conn);
    break;
  default:
    /* Preparing needs nothing, and invalid is never delivered
     * (connection.h). */
    break;
  }
}

/* Emits PATH when the addresses of an established connection change, for
 * example after a handover to another interface. */
static void handle_path_change(mp_conn_t *conn, nw_path_t path) {
  if (!conn->connected || is_closing(conn))
    return;
  if (update_addresses(conn, path))
    emit_simple(conn, MP_EVENT_PATH);
}

/* Emits VIABILITY or BETTER_PATH with the handler's value in len. Like the
 * other handlers, these run on the queue, and only an established
 * connection that is not closing reports them. NOTE: the Linux emulation
 * never calls these handlers, so only a Mac runs this code. */
static void handle_boolean_event(mp_conn_t *conn, mp_event_type_t type,
                                 bool value) {
  mp_event_t event;

  if (!conn->connected || is_closing(conn))
    return;
  memset(&event, 0, sizeof(event));
  event.type = type;
  event.len = value ? 1 : 0;
  conn->emit(conn->ctx, &event);
}

/* Sends content, or the end of the stream when content is NULL, and emits
 * the completion as an event of the given type. Runs on the queue. */
static void send_on_queue(mp_conn_t *conn, dispatch_data_t content,
                          mp_event_type_t type, const char *syscall,
                          void *req) {
  nw_content_context_t context;

  /* After the cancel a send could only fail, and the framework object may
   * already be released, so the backend reports the failure itself. */
  if (conn->cancel_requested) {
    mp_event_t event;

    memset(&event, 0, sizeof(event));
    event.type = type;
    event.req = req;
    event.error.code = -ECANCELED;
    event.error.syscall = syscall;
    conn->emit(conn->ctx, &event);
    return;
  }

  /* The final message context with is_complete closes the sending side, a
   * TCP FIN (connection.h). */
  context = content != NULL ? NW_CONNECTION_DEFAULT_MESSAGE_CONTEXT
                            : NW_CONNECTION_FINAL_MESSAGE_CONTEXT;
  conn->sends_pending++;
  nw_connection_send(conn->connection, content, context, true,
                     ^(nw_error_t error) {
                       conn->sends_pending--;
                       emit_send_result(conn, type, syscall, req, error);
                       finish_if_done(conn);
                     });
}

static void close_on_queue(mp_conn_t *conn, int reset) {
  conn->close_ran = 1;
  cancel_connection(conn, reset);
  finish_if_done(conn);
}

/* Emits CLOSE once the framework is done with the connection (cancelled),
 * mp_conn_close has run on the queue, and no send, receive or report
 * collection is outstanding. The glue may free conn as soon as the emit starts,
 * so only locals are used from there on. */
static void finish_if_done(mp_conn_t *conn) {
  mp_backend_t *backend = conn->backend;
  mp_emit_cb emit = conn->emit;
  void *ctx = conn->ctx;
  mp_event_t event;

  if (conn->closed || !conn->cancelled || !conn->close_ran ||
      conn->sends_pending > 0 || conn->receive_pending ||
      conn->collects_pending > 0)
    return;
  conn->closed = 1;

  /* The block that runs now holds its own reference to the queue
   * (dispatch/queue.h), so the backend's reference can go. */
  dispatch_release(conn->queue);
  conn->queue = NULL;

  pthread_mutex_lock(&backend->lock);
  if (conn->prev_live != NULL)
    conn->prev_live->next_live = conn->next_live;
  else
    backend->live = conn->next_live;
  if (conn->next_live != NULL)
    conn->next_live->prev_live = conn->prev_live;
  backend->closing++;
  pthread_mutex_unlock(&backend->lock);

  memset(&event, 0, sizeof(event));
  event.type = MP_EVENT_CLOSE;
  emit(ctx, &event);

  pthread_mutex_lock(&backend->lock);
  backend->closing--;
  pthread_cond_broadcast(&backend->close_emitted);
  pthread_mutex_unlock(&backend->lock);
}

static int map_service(mp_service_t service, nw_multipath_service_t *out) {
  switch (service) {
  case MP_SERVICE_DISABLED:
    *out = nw_multipath_service_disabled;
    return 0;
  case MP_SERVICE_HANDOVER:
    *out = nw_multipath_service_handover;
    return 0;
  case MP_SERVICE_INTERACTIVE:
    *out = nw_multipath_service_interactive;
    return 0;
  case MP_SERVICE_AGGREGATE:
    *out = nw_multipath_service_aggregate;
    return 0;
  }
  return -EINVAL;
}

static void set_ip_version(nw_parameters_t parameters, int family) {
  nw_protocol_stack_t stack;
  nw_protocol_options_t ip;

  stack = nw_parameters_copy_default_protocol_stack(parameters);
  ip = nw_protocol_stack_copy_internet_protocol(stack);
  if (ip != NULL) {
    nw_ip_options_set_version(ip,
                              family == 6 ? nw_ip_version_6 : nw_ip_version_4);
    nw_release(ip);
  }
  nw_release(stack);
}

/* Returns 1 when host is an IPv4 or IPv6 address literal. A name never
 * contains ':', so any host with one is taken as IPv6, zone index included. */
static int is_address_literal(const char *host) {
  struct in_addr parsed;

  return strchr(host, ':') != NULL || inet_pton(AF_INET, host, &parsed) == 1;
}

/* Returns the any-address to bind when the caller gave a local port but no
 * local address. */
static const char *unspecified_address(const mp_connect_options_t *options) {
  /* An address literal fixes the family, whatever the value of
   * options->family, because the family option does not apply to literals. */
  if (is_address_literal(options->host))
    return strchr(options->host, ':') != NULL ? "::" : "0.0.0.0";
  if (options->family == 6)
    return "::";

  /* NOTE: with family 0 and a host name, the IPv4 any-address is bound,
   * which may keep the framework from trying the name's IPv6 addresses. */
  return "0.0.0.0";
}

static int set_local_endpoint(nw_parameters_t parameters,
                              const mp_connect_options_t *options) {
  const char *address = options->local_address;
  unsigned char parsed[sizeof(struct in6_addr)];
  nw_endpoint_t endpoint;
  char port[8];

  /* Like Node, the local address must be an IP address literal. */
  if (address == NULL)
    address = unspecified_address(options);
  else if (inet_pton(AF_INET, address, parsed) != 1 &&
           inet_pton(AF_INET6, address, parsed) != 1)
    return -EINVAL;

  snprintf(port, sizeof(port), "%u", (unsigned)options->local_port);
  endpoint = nw_endpoint_create_host(address, port);
  if (endpoint == NULL)
    return -EINVAL;
  nw_parameters_set_local_endpoint(parameters, endpoint);
  nw_release(endpoint);
  return 0;
}

/* Applies the connection's TLS settings to the framework's TLS options. The
 * framework's default TLS configuration checks the server's certificate
 * against the system's trust store and the server name. */
static void configure_tls(mp_conn_t *conn, nw_protocol_options_t options) {
  sec_protocol_options_t tls = nw_tls_copy_sec_protocol_options(options);
  size_t i;

  if (conn->tls_server_name != NULL)
    sec_protocol_options_set_tls_server_name(tls, conn->tls_server_name);
  for (i = 0; i < conn->tls_alpn_count; i++)
    sec_protocol_options_add_tls_application_protocol(tls, conn->tls_alpn[i]);
  if (conn->tls_min_version == 12)
    sec_protocol_options_set_min_tls_protocol_version(
        tls, tls_protocol_version_TLSv12);
  else if (conn->tls_min_version == 13)
    sec_protocol_options_set_min_tls_protocol_version(
        tls, tls_protocol_version_TLSv13);
  sec_release(tls);
}

/* Creates the parameters of a TCP connection, with TLS when conn->tls, and
 * the caller's options. The framework fixes TCP options when the connection
 * starts, so they are set here, in the TCP configure block. */
static int create_parameters(mp_conn_t *conn,
                             const mp_connect_options_t *options,
                             nw_parameters_t *out) {
  /* connection.h does not say when the configure blocks run, so the TLS
   * block reads settings that conn keeps until it is freed. */
  nw_parameters_configure_protocol_block_t tls_block =
      conn->tls ? ^(nw_protocol_options_t tls_options) {
        configure_tls(conn, tls_options);
      }
                : NW_PARAMETERS_DISABLE_PROTOCOL;
  bool no_delay = options->no_delay != 0;
  bool keep_alive = options->keep_alive != 0;
  uint32_t keep_alive_idle = options->keep_alive_delay;
  nw_multipath_service_t service;
  nw_parameters_t parameters;
  int r;

  r = map_service(options->service, &service);
  if (r != 0)
    return r;
  if (options->family != 0 && options->family != 4 && options->family != 6)
    return -EINVAL;

  parameters =
      nw_parameters_create_secure_tcp(tls_block, ^(nw_protocol_options_t tcp) {
        nw_tcp_options_set_no_delay(tcp, no_delay);
        if (keep_alive) {
          nw_tcp_options_set_enable_keepalive(tcp, true);
          if (keep_alive_idle > 0)
            nw_tcp_options_set_keepalive_idle_time(tcp, keep_alive_idle);
        }
      });
  if (parameters == NULL)
    return -ENOMEM;

  nw_parameters_set_multipath_service(parameters, service);
  /* As in Node's net, the family only filters name resolution: an address
   * literal of the other family is still connected to, not refused. */
  if (options->family != 0 && !is_address_literal(options->host))
    set_ip_version(parameters, options->family);
  if (options->local_address != NULL || options->local_port != 0) {
    r = set_local_endpoint(parameters, options);
    if (r != 0) {
      nw_release(parameters);
      return r;
    }
  }

  *out = parameters;
  return 0;
}

static nw_connection_t create_connection(mp_conn_t *conn,
                                         const mp_connect_options_t *options,
                                         int *error) {
  nw_parameters_t parameters;
  nw_connection_t connection;
  nw_endpoint_t endpoint;
  char port[8];

  *error = create_parameters(conn, options, &parameters);
  if (*error != 0)
    return NULL;

  snprintf(port, sizeof(port), "%u", (unsigned)options->port);
  endpoint = nw_endpoint_create_host(options->host, port);
  if (endpoint == NULL) {
    nw_release(parameters);
    *error = -EINVAL;
    return NULL;
  }

  connection = nw_connection_create(endpoint, parameters);
  nw_release(endpoint);
  nw_release(parameters);
  if (connection == NULL)
    *error = -EINVAL;
  return connection;
}

const char *mp_backend_name(void) {
  return "darwin";
}

int mp_backend_resolves_names(void) {
  return 1;
}

int mp_backend_create(mp_backend_t **out) {
  mp_backend_t *backend = calloc(1, sizeof(*backend));

  if (backend == NULL)
    return -ENOMEM;
  if (pthread_mutex_init(&backend->lock, NULL) != 0) {
    free(backend);
    return -ENOMEM;
  }
  if (pthread_cond_init(&backend->close_emitted, NULL) != 0) {
    pthread_mutex_destroy(&backend->lock);
    free(backend);
    return -ENOMEM;
  }
  *out = backend;
  return 0;
}

/* The wait cannot deadlock as long as the emit callback does not wait for
 * the JavaScript thread: CLOSE is emitted on the connections' own queues,
 * never on the thread that waits here. */
void mp_backend_destroy(mp_backend_t *backend) {
  mp_conn_t *conn;

  /* The close is graceful, as when the kernel closes the sockets of an
   * exiting process: the peer reads the end of the stream, not a reset. The
   * Linux backend closes the same way. */
  pthread_mutex_lock(&backend->lock);
  for (conn = backend->live; conn != NULL; conn = conn->next_live)
    mp_conn_close(conn, 0);
  while (backend->live != NULL || backend->closing > 0)
    pthread_cond_wait(&backend->close_emitted, &backend->lock);
  pthread_mutex_unlock(&backend->lock);

  pthread_cond_destroy(&backend->close_emitted);
  pthread_mutex_destroy(&backend->lock);
  free(backend);
}

/* Frees what conn owns besides the framework objects. */
static void free_conn(mp_conn_t *conn) {
  size_t i;

  free(conn->tls_server_name);
  for (i = 0; i < conn->tls_alpn_count; i++)
    free(conn->tls_alpn[i]);
  free(conn->tls_alpn);
  free(conn->paths);
  pthread_mutex_destroy(&conn->lock);
  free(conn);
}

/* Copies the TLS options into conn. The server name defaults to the host
 * when it is a name; an address literal gets none, as SNI carries no
 * addresses (RFC 6066, 3). */
static int copy_tls_options(mp_conn_t *conn,
                            const mp_connect_options_t *options) {
  const char *server_name = options->tls_server_name;
  size_t i;

  if (options->tls_min_version != 0 && options->tls_min_version != 12 &&
      options->tls_min_version != 13)
    return -EINVAL;
  conn->tls = 1;
  conn->tls_min_version = options->tls_min_version;
  if (server_name == NULL && !is_address_literal(options->host))
    server_name = options->host;
  if (server_name != NULL) {
    conn->tls_server_name = strdup(server_name);
    if (conn->tls_server_name == NULL)
      return -ENOMEM;
  }
  if (options->tls_alpn_count == 0)
    return 0;

  conn->tls_alpn = calloc(options->tls_alpn_count, sizeof(char *));
  if (conn->tls_alpn == NULL)
    return -ENOMEM;
  for (i = 0; i < options->tls_alpn_count; i++) {
    size_t length = strlen(options->tls_alpn[i]);

    /* An ALPN protocol name has 1 to 255 bytes (RFC 7301, 3.1). */
    if (length == 0 || length > 255)
      return -EINVAL;
    conn->tls_alpn[i] = strdup(options->tls_alpn[i]);
    if (conn->tls_alpn[i] == NULL)
      return -ENOMEM;
    conn->tls_alpn_count = i + 1;
  }
  return 0;
}

/* Registers the handlers of the connection's events. The framework runs
 * them on the connection's queue (connection.h). */
static void set_handlers(mp_conn_t *conn) {
  nw_connection_t connection = conn->connection;

  nw_connection_set_state_changed_handler(
      connection, ^(nw_connection_state_t state, nw_error_t error) {
        handle_state(conn, state, error);
      });
  nw_connection_set_path_changed_handler(connection, ^(nw_path_t path) {
    handle_path_change(conn, path);
  });
  nw_connection_set_viability_changed_handler(connection, ^(bool value) {
    handle_boolean_event(conn, MP_EVENT_VIABILITY, value);
  });
  nw_connection_set_better_path_available_handler(connection, ^(bool value) {
    handle_boolean_event(conn, MP_EVENT_BETTER_PATH, value);
  });
}

int mp_conn_open(mp_backend_t *backend, const mp_connect_options_t *options,
                 mp_emit_cb emit, void *ctx, mp_conn_t **out) {
  nw_connection_t connection;
  mp_conn_t *conn;
  int r;

  if (options->host == NULL || options->host[0] == '\0')
    return -EINVAL;
  conn = calloc(1, sizeof(*conn));
  if (conn == NULL)
    return -ENOMEM;
  if (pthread_mutex_init(&conn->lock, NULL) != 0) {
    free(conn);
    return -ENOMEM;
  }
  if (options->tls) {
    r = copy_tls_options(conn, options);
    if (r != 0) {
      free_conn(conn);
      return r;
    }
  }

  connection = create_connection(conn, options, &r);
  if (connection == NULL) {
    free_conn(conn);
    return r;
  }
  conn->queue =
      dispatch_queue_create("nw-mptcp.connection", DISPATCH_QUEUE_SERIAL);
  if (conn->queue == NULL) {
    nw_release(connection);
    free_conn(conn);
    return -ENOMEM;
  }

  conn->backend = backend;
  conn->emit = emit;
  conn->ctx = ctx;
  conn->wait_for_connectivity = options->wait_for_connectivity != 0;
  conn->connection = connection;
  /* The framework has no flag that reports whether MPTCP was negotiated;
   * a data transfer report with more than one path proves it
   * (merge_report). */
  conn->info.mptcp = -1;
  conn->info.fallback = 0;
  atomic_init(&conn->reading, 0);
  atomic_init(&conn->close_requested, 0);
  /* A report created before the start measures from the ready state on
   * (connection_report.h), so the first collection covers the whole
   * connection. NULL when the framework cannot create one. */
  conn->report = nw_connection_create_new_data_transfer_report(connection);

  pthread_mutex_lock(&backend->lock);
  conn->next_live = backend->live;
  if (backend->live != NULL)
    backend->live->prev_live = conn;
  backend->live = conn;
  pthread_mutex_unlock(&backend->lock);

  nw_connection_set_queue(connection, conn->queue);
  set_handlers(conn);
  *out = conn;
  nw_connection_start(connection);
  return 0;
}

/* The lock orders this block before the one mp_conn_close queues, so no
 * block of the connection runs after CLOSE. When reading was already on, a
 * receive is outstanding or the next completion issues one. */
void mp_conn_read_start(mp_conn_t *conn) {
  pthread_mutex_lock(&conn->lock);
  if (!atomic_load(&conn->close_requested) &&
      !atomic_exchange(&conn->reading, 1)) {
    dispatch_async(conn->queue, ^{
      start_receive(conn);
    });
  }
  pthread_mutex_unlock(&conn->lock);
}

/* Takes effect at once: the receive completion checks the flag after the
 * emit callback returns and then issues no further receive. */
void mp_conn_read_stop(mp_conn_t *conn) {
  atomic_store(&conn->reading, 0);
}

/* Copies the buffers, whose total length is not 0, into one dispatch data
 * object, or returns NULL when memory runs out. The pieces are gathered into
 * one block first: joining them one by one with dispatch_data_create_concat
 * would copy the data so far at every step, which costs time and memory
 * quadratic in the count. */
static dispatch_data_t copy_buffers(const mp_buf_t *bufs, size_t count) {
  dispatch_data_t data;
  size_t total = 0;
  size_t offset = 0;
  char *block;
  size_t i;

  for (i = 0; i < count; i++)
    total += bufs[i].len;
  if (count == 1)
    return dispatch_data_create(bufs[0].base, total, NULL,
                                DISPATCH_DATA_DESTRUCTOR_DEFAULT);
  block = malloc(total);
  if (block == NULL)
    return NULL;
  for (i = 0; i < count; i++) {
    /* An empty TypedArray may have a NULL base. */
    if (bufs[i].len == 0)
      continue;
    memcpy(block + offset, bufs[i].base, bufs[i].len);
    offset += bufs[i].len;
  }
  /* DISPATCH_DATA_DESTRUCTOR_DEFAULT copies the block (dispatch/data.h). */
  data = dispatch_data_create(block, total, NULL,
                              DISPATCH_DATA_DESTRUCTOR_DEFAULT);
  free(block);
  return data;
}

/* Sends are queued on the connection's queue, not called here, so that a
 * send never meets a connection that the queue has cancelled and released.
 * mp_conn_write and mp_conn_close both run on the JavaScript thread, so
 * every write is queued before the close. */
int mp_conn_write(mp_conn_t *conn, const mp_buf_t *bufs, size_t count,
                  void *req) {
  dispatch_data_t data;
  size_t total = 0;
  size_t i;

  if (atomic_load(&conn->close_requested))
    return -EPIPE;
  for (i = 0; i < count; i++)
    total += bufs[i].len;
  if (total == 0)
    return MP_DONE;

  /* DISPATCH_DATA_DESTRUCTOR_DEFAULT copies the bytes (dispatch/data.h). */
  data = copy_buffers(bufs, count);
  if (data == NULL)
    return -ENOMEM;

  dispatch_async(conn->queue, ^{
    send_on_queue(conn, data, MP_EVENT_WRITE, "write", req);
    dispatch_release(data);
  });
  return 0;
}

int mp_conn_shutdown(mp_conn_t *conn, void *req) {
  if (atomic_load(&conn->close_requested))
    return -EPIPE;

  dispatch_async(conn->queue, ^{
    send_on_queue(conn, NULL, MP_EVENT_SHUTDOWN, "shutdown", req);
  });
  return 0;
}

/* Data handed to nw_connection_send before a graceful cancel may be dropped
 * (connection.h), so callers should close only after their writes have
 * completed. */
void mp_conn_close(mp_conn_t *conn, int reset) {
  pthread_mutex_lock(&conn->lock);
  if (atomic_load(&conn->close_requested)) {
    pthread_mutex_unlock(&conn->lock);
    return;
  }
  atomic_store(&conn->close_requested, 1);
  atomic_store(&conn->reading, 0);
  dispatch_async(conn->queue, ^{
    close_on_queue(conn, reset);
  });
  pthread_mutex_unlock(&conn->lock);
}

void mp_conn_free(mp_conn_t *conn) {
  free_conn(conn);
}

int mp_conn_get_info(mp_conn_t *conn, mp_info_t *info, int with_addresses) {
  /* The snapshot costs nothing, so the addresses always come along. */
  (void)with_addresses;
  pthread_mutex_lock(&conn->lock);
  *info = conn->info;
  pthread_mutex_unlock(&conn->lock);
  return 0;
}

/* The framework fixes TCP options before the connection starts
 * (tcp_options.h has no setter for a running connection). */
int mp_conn_set_no_delay(mp_conn_t *conn, int enable) {
  (void)conn;
  (void)enable;
  return -ENOTSUP;
}

int mp_conn_set_keep_alive(mp_conn_t *conn, int enable, unsigned delay) {
  (void)conn;
  (void)enable;
  (void)delay;
  return -ENOTSUP;
}

/* Finds the path of the accumulated list that has interface_name and is not
 * taken yet in this merge, or adds one. Returns its index, or -1 when
 * memory runs out. */
static long find_or_add_path(mp_conn_t *conn, const char *interface_name,
                             const unsigned char *taken) {
  mp_path_t *grown;
  size_t i;

  for (i = 0; i < conn->path_count; i++) {
    if (!taken[i] && strcmp(conn->paths[i].interface_name, interface_name) == 0)
      return (long)i;
  }
  grown = realloc(conn->paths, (conn->path_count + 1) * sizeof(mp_path_t));
  if (grown == NULL)
    return -1;
  conn->paths = grown;
  memset(&conn->paths[conn->path_count], 0, sizeof(mp_path_t));
  conn->paths[conn->path_count].id = (uint32_t)conn->path_count;
  conn->paths[conn->path_count].backup = -1;
  snprintf(conn->paths[conn->path_count].interface_name,
           sizeof(conn->paths[conn->path_count].interface_name), "%s",
           interface_name);
  return (long)conn->path_count++;
}

/* Adds a collected report to the connection's totals. A report covers only
 * its own span and numbers its paths on its own, so paths are matched to
 * the accumulated ones by interface name, in order.
 *
 * The report has no addresses. The path at index 0, the one the framework
 * uses for single-path values (connection_report.h), gets those of the
 * connection's current path; the others have none. */
static void merge_report(mp_conn_t *conn, nw_data_transfer_report_t report) {
  uint32_t count = nw_data_transfer_report_get_path_count(report);
  unsigned char *taken;
  uint32_t index;
  size_t i;

  conn->bytes_sent += nw_data_transfer_report_get_sent_application_byte_count(
      report, NW_ALL_PATHS);
  conn->bytes_received +=
      nw_data_transfer_report_get_received_application_byte_count(report,
                                                                  NW_ALL_PATHS);

  taken = calloc(conn->path_count + count + 1, 1);
  if (taken == NULL)
    return;
  for (index = 0; index < count; index++) {
    nw_interface_t interface =
        nw_data_transfer_report_copy_path_interface(report, index);
    const char *name =
        interface != NULL ? nw_interface_get_name(interface) : "";
    long found = find_or_add_path(conn, name != NULL ? name : "", taken);
    uint64_t rtt_ms;
    mp_path_t *path;

    if (interface != NULL)
      nw_release(interface);
    if (found < 0)
      break;
    taken[found] = 1;
    path = &conn->paths[found];
    path->bytes_sent +=
        nw_data_transfer_report_get_sent_transport_byte_count(report, index);
    path->bytes_received +=
        nw_data_transfer_report_get_received_transport_byte_count(report,
                                                                  index);
    rtt_ms = nw_data_transfer_report_get_transport_smoothed_rtt_milliseconds(
        report, index);
    if (rtt_ms > 0)
      path->rtt_us =
          rtt_ms >= UINT32_MAX / 1000 ? UINT32_MAX : (uint32_t)(rtt_ms * 1000);
    if (index == 0) {
      for (i = 0; i < conn->path_count; i++)
        conn->paths[i].has_local = conn->paths[i].has_remote = 0;
      pthread_mutex_lock(&conn->lock);
      path->local = conn->info.local;
      path->has_local = conn->info.has_local;
      path->remote = conn->info.remote;
      path->has_remote = conn->info.has_remote;
      pthread_mutex_unlock(&conn->lock);
    }
  }
  free(taken);

  /* Only MPTCP gives a connection more than one path, so the report proves
   * MPTCP, which no framework flag reports. */
  if (conn->path_count > 1) {
    pthread_mutex_lock(&conn->lock);
    conn->info.mptcp = 1;
    pthread_mutex_unlock(&conn->lock);
  }
}

/* Emits PATHS with a copy of the accumulated statistics. When memory runs
 * out nothing is emitted, and the request stays pending until CLOSE. */
static void emit_paths(mp_conn_t *conn) {
  mp_path_report_t *report;
  mp_event_t event;

  report = malloc(sizeof(*report) + conn->path_count * sizeof(mp_path_t));
  if (report == NULL)
    return;
  report->bytes_sent = conn->bytes_sent;
  report->bytes_received = conn->bytes_received;
  report->count = conn->path_count;
  if (conn->path_count > 0)
    memcpy(report->paths, conn->paths, conn->path_count * sizeof(mp_path_t));

  memset(&event, 0, sizeof(event));
  event.type = MP_EVENT_PATHS;
  event.data = report;
  conn->emit(conn->ctx, &event);
}

/* Collects the running report and starts the next one, which is created
 * first so that no byte falls between the two spans. NOTE: bytes that
 * move between the two calls may be counted in both reports. */
static void collect_paths(mp_conn_t *conn) {
  nw_data_transfer_report_t collected = conn->report;

  /* A closing connection emits no PATHS: CLOSE follows, and the glue
   * rejects the request then. */
  if (is_closing(conn) || conn->connection == NULL)
    return;
  if (collected == NULL) {
    emit_paths(conn);
    return;
  }

  conn->report =
      nw_connection_create_new_data_transfer_report(conn->connection);
  conn->collects_pending++;
  nw_data_transfer_report_collect(collected, conn->queue,
                                  ^(nw_data_transfer_report_t report) {
                                    merge_report(conn, report);
                                    nw_release(collected);
                                    conn->collects_pending--;
                                    emit_paths(conn);
                                    finish_if_done(conn);
                                  });
}

/* The statistics come from data transfer reports (connection_report.h),
 * which the framework collects asynchronously: PATHS follows. The lock
 * orders the block before the one that mp_conn_close queues. */
int mp_conn_get_paths(mp_conn_t *conn, mp_path_report_t **report) {
  *report = NULL;
  pthread_mutex_lock(&conn->lock);
  if (atomic_load(&conn->close_requested)) {
    pthread_mutex_unlock(&conn->lock);
    return -EBADF;
  }
  dispatch_async(conn->queue, ^{
    collect_paths(conn);
  });
  pthread_mutex_unlock(&conn->lock);
  return 0;
}
