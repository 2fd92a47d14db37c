/*
 * connection.c: the emulated nw_connection over real sockets: MPTCP
 * (IPPROTO_MPTCP) when a multipath service is set, plain TCP otherwise, with
 * TLS from tls.c on top when the parameters have it. One I/O thread runs
 * every connection with epoll; handlers and completions run on each
 * connection's dispatch queue.
 *
 * Constraint: the order of callbacks. Every state change and completion is
 * decided and posted to the connection's serial queue while the
 * connection's lock is held, so the queue runs them in the order they were
 * decided: completions exactly once, the pending ones before a failed or
 * cancelled state, and cancelled last.
 *
 * The I/O thread owns the sockets. It connects, runs the TLS handshake, and
 * reads only while a receive is pending, so the peer's window closes when
 * the caller stops receiving. It writes sends in order, and while the
 * connection is in the waiting state it retries a refused or unreachable
 * connect with a back-off. The ready state follows the TLS handshake, as in
 * the framework.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <Block.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/* Back-off of connect retries in the waiting state: the first delay, doubled
 * after each failed retry up to the maximum. */
#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 2000

/* Darwin errno numbers used directly. */
#define DARWIN_EPIPE 32
#define DARWIN_EAFNOSUPPORT 47
#define DARWIN_ECANCELED 89

/* Bytes a failed socket may still hand over to the buffer. */
#define DRAIN_MAX (16 * 1024 * 1024)

#define SEND_IOV_MAX 64
#define EPOLL_BATCH 64

typedef enum phase {
  PHASE_IDLE,      /* created, not started */
  PHASE_PREPARING, /* resolving and connecting */
  PHASE_WAITING,   /* an attempt failed; the next one is at retry_at */
  PHASE_READY,
  PHASE_FAILED,
  PHASE_CANCELLED /* the cancelled state is posted: nothing follows */
} phase_t;

typedef struct receive_request {
  uint32_t minimum;
  uint32_t maximum;
  nw_connection_receive_completion_t completion;
  struct receive_request *next;
} receive_request_t;

typedef struct send_request {
  dispatch_data_t content; /* NULL when the send only completes a context */
  size_t written;
  bool is_final;
  bool is_complete;
  nw_connection_send_completion_t completion;
  struct send_request *next;
} send_request_t;

struct nw_connection {
  emu_object_t base;
  pthread_mutex_t lock;

  /* Fixed at creation. */
  nw_endpoint_t endpoint;
  emu_settings_t settings;
  nw_content_context_t receive_context;

  /* Guarded by lock. */
  dispatch_queue_t queue;
  nw_connection_state_changed_handler_t state_handler;
  nw_connection_path_event_handler_t path_handler;
  nw_connection_boolean_event_handler_t viability_handler;
  nw_connection_boolean_event_handler_t better_path_handler;
  phase_t phase;
  bool started;
  bool cancel_requested;
  bool force_cancel;

  /* Connect attempts. remote is the address of the current or last
   * attempt; local is set once connected. */
  bool attempts_begun;
  bool attempted; /* an address of the family allowed was tried */
  struct sockaddr_storage addresses[EMU_MAX_ADDRESSES];
  size_t address_count;
  size_t next_address;
  int attempt_error; /* Darwin errno of the last failed attempt */
  int fd;
  int protocol;
  bool connecting;
  /* Events the I/O thread polls the socket for, whether the socket is in
   * the poll set, and whether a hang-up without error took it out. */
  uint32_t interest;
  bool watched;
  bool hung_up;
  nw_endpoint_t local;
  nw_endpoint_t remote;
  uint64_t retry_at;
  unsigned retry_delay;

  /* TLS: the session from the connect on, whether its handshake runs, the
   * events (EPOLLIN, EPOLLOUT) its last blocked call waits for, and the
   * handshake's result once done. */
  emu_tls_t *tls;
  bool handshaking;
  uint32_t tls_wants;
  bool tls_done;
  emu_tls_result_t tls_result;

  /* Statistics for data transfer reports: at the ready state, and when the
   * socket of a ready connection closed (final). */
  bool was_ready;
  bool stats_final;
  emu_stats_t ready_stats;
  emu_stats_t final_stats;
  uint64_t application_sent;
  uint64_t application_received;

  /* Transfer. failure is the Darwin errno that failed the connection. */
  receive_request_t *receives;
  receive_request_t **receives_tail;
  send_request_t *sends;
  send_request_t **sends_tail;
  unsigned char *buffer;
  size_t buffered;
  size_t capacity;
  bool read_eof;
  bool write_closed;
  int failure;
  nw_error_domain_t failure_domain;

  /* Guarded by io.lock. */
  bool registered;
  bool dirty;
  uint64_t timer_at;
  struct nw_connection *io_prev;
  struct nw_connection *io_next;
  struct nw_connection *dirty_next;

  /* Used only on the I/O thread. */
  uint32_t io_events;
  struct nw_connection *batch_next;
};

static void dispose_connection(void *object);

const emu_class_t emu_class_connection = {"nw_connection", EMU_FAMILY_NW,
                                          dispose_connection};

static struct {
  pthread_once_t once;
  pthread_mutex_t lock;
  int epoll_fd;
  int wake_fd;
  nw_connection_t all;
  nw_connection_t dirty;
} io = {.once = PTHREAD_ONCE_INIT,
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .epoll_fd = -1,
        .wake_fd = -1};

static uint64_t now_ms(void) {
  struct timespec now;

  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* Posting to the queue. Every post_* runs with conn->lock held. */

static void check_queue(nw_connection_t conn, const char *what) {
  if (conn->queue == NULL)
    emu_fatal("%s of an nw_connection without a queue: call "
              "nw_connection_set_queue first",
              what);
}

/* Posts a state change. The queued block keeps the handler and the
 * connection alive until it has run. */
static void post_state(nw_connection_t conn, nw_connection_state_t state,
                       nw_error_t error) {
  nw_connection_state_changed_handler_t handler = conn->state_handler;

  if (handler == NULL) {
    if (error != NULL)
      nw_release(error);
    return;
  }
  check_queue(conn, "a state change");
  nw_retain(conn);
  /* Copying this block copies the handler block it captures. */
  dispatch_async(conn->queue, ^{
    handler(state, error);
    if (error != NULL)
      nw_release(error);
    nw_release(conn);
  });
}

/* Posts one receive completion and frees the request. content and error
 * pass to the queued block. */
static void post_receive(nw_connection_t conn, receive_request_t *request,
                         dispatch_data_t content, bool is_complete,
                         nw_error_t error) {
  nw_connection_receive_completion_t completion = request->completion;
  nw_content_context_t context = NULL;

  check_queue(conn, "a receive completion");
  if (content != NULL || is_complete)
    context = nw_retain(conn->receive_context);
  nw_retain(conn);
  dispatch_async(conn->queue, ^{
    completion(content, context, is_complete, error);
    if (content != NULL)
      dispatch_release(content);
    if (context != NULL)
      nw_release(context);
    if (error != NULL)
      nw_release(error);
    nw_release(conn);
  });
  Block_release(request->completion);
  free(request);
}

/* Posts one send completion and frees the request. error passes to the
 * queued block. */
static void post_send(nw_connection_t conn, send_request_t *request,
                      nw_error_t error) {
  nw_connection_send_completion_t completion = request->completion;

  check_queue(conn, "a send completion");
  nw_retain(conn);
  dispatch_async(conn->queue, ^{
    completion(error);
    if (error != NULL)
      nw_release(error);
    nw_release(conn);
  });
  if (request->content != NULL)
    dispatch_release(request->content);
  Block_release(request->completion);
  free(request);
}

static nw_error_t posix_error(int darwin_code) {
  return emu_error_create(nw_error_domain_posix, darwin_code);
}

/* Records what failed the connection; the first failure is kept. */
static void set_failure(nw_connection_t conn, nw_error_domain_t domain,
                        int code) {
  if (conn->failure != 0)
    return;
  conn->failure = code;
  conn->failure_domain = domain;
}

static nw_error_t failure_error(nw_connection_t conn) {
  return emu_error_create(conn->failure_domain, conn->failure);
}

static receive_request_t *pop_receive(nw_connection_t conn) {
  receive_request_t *request = conn->receives;

  conn->receives = request->next;
  if (conn->receives == NULL)
    conn->receives_tail = &conn->receives;
  return request;
}

static send_request_t *pop_send(nw_connection_t conn) {
  send_request_t *request = conn->sends;

  conn->sends = request->next;
  if (conn->sends == NULL)
    conn->sends_tail = &conn->sends;
  return request;
}

/* I/O thread registry */

static void *run_io(void *argument);

static void start_io(void) {
  struct epoll_event event;
  pthread_attr_t attr;
  pthread_t thread;

  io.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  io.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (io.epoll_fd < 0 || io.wake_fd < 0)
    emu_fatal("cannot create the I/O thread's epoll or eventfd: %s",
              strerror(errno));
  memset(&event, 0, sizeof(event));
  event.events = EPOLLIN;
  event.data.ptr = NULL;
  if (epoll_ctl(io.epoll_fd, EPOLL_CTL_ADD, io.wake_fd, &event) != 0)
    emu_fatal("cannot watch the I/O thread's eventfd: %s", strerror(errno));

  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&thread, &attr, run_io, NULL) != 0)
    emu_fatal("cannot start the I/O thread");
  pthread_attr_destroy(&attr);
}

static void wake_io(void) {
  uint64_t one = 1;
  ssize_t written;

  do {
    written = write(io.wake_fd, &one, sizeof(one));
  } while (written < 0 && errno == EINTR);
}

/* Queues conn for processing on the I/O thread. Needs io.lock. */
static void mark_dirty_locked(nw_connection_t conn) {
  if (!conn->dirty) {
    conn->dirty = true;
    conn->dirty_next = io.dirty;
    io.dirty = conn;
  }
}

/* Queues a started connection for processing. Runs with conn->lock held;
 * after the cancelled state it does nothing, because the I/O thread has
 * dropped or is dropping the connection. */
static void mark_dirty(nw_connection_t conn) {
  if (!conn->started || conn->phase == PHASE_CANCELLED)
    return;
  pthread_mutex_lock(&io.lock);
  mark_dirty_locked(conn);
  pthread_mutex_unlock(&io.lock);
  wake_io();
}

static void set_timer(nw_connection_t conn, uint64_t at) {
  pthread_mutex_lock(&io.lock);
  conn->timer_at = at;
  pthread_mutex_unlock(&io.lock);
  wake_io();
}

/* Adds a started connection to the I/O thread, which holds a reference
 * until the cancelled state is posted. Runs with conn->lock held. */
static void register_connection(nw_connection_t conn) {
  pthread_once(&io.once, start_io);
  nw_retain(conn);
  emu_busy_begin();
  pthread_mutex_lock(&io.lock);
  conn->registered = true;
  conn->io_next = io.all;
  if (io.all != NULL)
    io.all->io_prev = conn;
  io.all = conn;
  mark_dirty_locked(conn);
  pthread_mutex_unlock(&io.lock);
  wake_io();
}

static void unregister_connection(nw_connection_t conn) {
  nw_connection_t *link;

  pthread_mutex_lock(&io.lock);
  if (conn->io_prev != NULL)
    conn->io_prev->io_next = conn->io_next;
  else
    io.all = conn->io_next;
  if (conn->io_next != NULL)
    conn->io_next->io_prev = conn->io_prev;
  conn->registered = false;
  if (conn->dirty) {
    for (link = &io.dirty; *link != NULL; link = &(*link)->dirty_next) {
      if (*link == conn) {
        *link = conn->dirty_next;
        break;
      }
    }
    conn->dirty = false;
  }
  pthread_mutex_unlock(&io.lock);
  emu_busy_end();
  nw_release(conn);
}

/* Sockets */

/* Keeps the statistics of a ready connection's socket before it closes, so
 * that reports collected later end where the connection ended. */
static void keep_final_stats(nw_connection_t conn) {
  if (!conn->was_ready || conn->stats_final || conn->fd < 0)
    return;
  emu_socket_stats(conn->fd, &conn->final_stats);
  conn->final_stats.application_sent = conn->application_sent;
  conn->final_stats.application_received = conn->application_received;
  conn->stats_final = true;
}

static void close_socket(nw_connection_t conn, bool reset) {
  if (conn->fd < 0)
    return;
  keep_final_stats(conn);
  if (conn->tls != NULL) {
    emu_failure_t ignored;

    /* A graceful close of a working session sends close_notify first,
     * without waiting for the socket to take it. */
    if (!reset && !conn->handshaking && conn->failure == 0)
      emu_tls_close_write(conn->tls, &ignored);
    emu_tls_free(conn->tls);
    conn->tls = NULL;
  }
  conn->handshaking = false;
  conn->tls_wants = 0;
  if (conn->watched)
    epoll_ctl(io.epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
  conn->watched = false;
  conn->interest = 0;
  conn->hung_up = false;
  if (reset) {
    struct linger linger = {.l_onoff = 1, .l_linger = 0};

    setsockopt(conn->fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
  }
  close(conn->fd);
  conn->fd = -1;
  conn->connecting = false;
}

static void set_endpoint(nw_endpoint_t *slot, const struct sockaddr *address) {
  if (*slot != NULL)
    nw_release(*slot);
  *slot = address != NULL ? emu_endpoint_create_address(address) : NULL;
}

/* Opens a non-blocking stream socket, MPTCP unless the multipath service is
 * disabled. A kernel without MPTCP gets plain TCP, as the framework falls
 * back to TCP too. Returns the descriptor or -errno. */
static int open_socket(nw_connection_t conn, int family) {
  int type = SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
  int fd = -1;

  conn->protocol = IPPROTO_TCP;
  if (conn->settings.service != nw_multipath_service_disabled) {
    fd = socket(family, type, IPPROTO_MPTCP);
    if (fd >= 0)
      conn->protocol = IPPROTO_MPTCP;
    else if (errno != EPROTONOSUPPORT && errno != ENOPROTOOPT &&
             errno != EINVAL)
      return -errno;
  }
  if (fd < 0)
    fd = socket(family, type, IPPROTO_TCP);
  return fd >= 0 ? fd : -errno;
}

/* Applies the TCP options. Errors are ignored, as options the kernel does
 * not support on a socket do not fail a connection. */
static void apply_tcp_options(nw_connection_t conn, int fd) {
  int one = 1;
  int idle = (int)conn->settings.keepalive_idle;

  if (conn->settings.no_delay)
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (conn->settings.keepalive) {
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    if (idle > 0)
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  }
}

/* Result of one connect attempt. */
typedef enum attempt_result {
  ATTEMPT_CONNECTED,
  ATTEMPT_IN_PROGRESS,
  ATTEMPT_RETRYABLE, /* conn->attempt_error is the reason */
  ATTEMPT_FATAL      /* conn->attempt_error is the reason */
} attempt_result_t;

static attempt_result_t start_attempt(nw_connection_t conn,
                                      const struct sockaddr_storage *address) {
  const struct sockaddr *target = (const struct sockaddr *)address;
  nw_endpoint_t local = conn->settings.local_endpoint;
  int fd;

  set_endpoint(&conn->remote, target);
  set_endpoint(&conn->local, NULL);
  fd = open_socket(conn, address->ss_family);
  if (fd < 0) {
    conn->attempt_error = emu_darwin_errno(-fd);
    return ATTEMPT_FATAL;
  }
  apply_tcp_options(conn, fd);

  if (local != NULL) {
    const struct sockaddr *bound = nw_endpoint_get_address(local);

    if (bound != NULL && bind(fd, bound, emu_sockaddr_length(bound)) != 0) {
      conn->attempt_error = emu_darwin_errno(errno);
      close(fd);
      return ATTEMPT_FATAL;
    }
  }

  conn->fd = fd;
  if (connect(fd, target, emu_sockaddr_length(target)) == 0)
    return ATTEMPT_CONNECTED;
  if (errno == EINPROGRESS) {
    conn->connecting = true;
    return ATTEMPT_IN_PROGRESS;
  }
  conn->attempt_error = emu_darwin_errno(errno);
  close_socket(conn, false);
  return ATTEMPT_RETRYABLE;
}

/* Sets the events that the I/O thread polls the socket for, from what the
 * connection waits for. Polling is level-triggered, so no event is lost
 * between two polls. A ready socket with nothing to wait for stays polled
 * with no events, so that an error such as a reset fails the connection at
 * once. After a hang-up without error the socket leaves the poll set until
 * it waits for something again, because poll reports a hang-up every time. */
static void update_interest(nw_connection_t conn) {
  struct epoll_event event;
  uint32_t wanted = 0;
  int operation;

  if (conn->fd < 0)
    return;
  if (conn->connecting)
    wanted |= EPOLLOUT;
  if (conn->handshaking)
    wanted |= conn->tls_wants;
  if (conn->phase == PHASE_READY) {
    if (conn->receives != NULL && !conn->read_eof)
      wanted |= EPOLLIN;
    if (conn->sends != NULL)
      wanted |= EPOLLOUT;
    if (conn->receives != NULL || conn->sends != NULL)
      wanted |= conn->tls_wants;
  }
  if (wanted == 0 && (conn->hung_up || conn->phase != PHASE_READY)) {
    if (conn->watched)
      epoll_ctl(io.epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
    conn->watched = false;
    conn->interest = 0;
    return;
  }
  if (conn->watched && wanted == conn->interest)
    return;

  operation = conn->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  memset(&event, 0, sizeof(event));
  event.events = wanted;
  event.data.ptr = conn;
  if (epoll_ctl(io.epoll_fd, operation, conn->fd, &event) != 0)
    emu_fatal("cannot poll a socket: %s", strerror(errno));
  conn->watched = true;
  conn->interest = wanted;
}

/* State changes */

static void do_sends(nw_connection_t conn);
static void do_receives(nw_connection_t conn);
static void fill_buffer(nw_connection_t conn, size_t maximum);

static void enter_ready(nw_connection_t conn) {
  struct sockaddr_storage address;
  socklen_t len = sizeof(address);

  conn->connecting = false;
  if (getsockname(conn->fd, (struct sockaddr *)&address, &len) == 0)
    set_endpoint(&conn->local, (struct sockaddr *)&address);
  len = sizeof(address);
  if (getpeername(conn->fd, (struct sockaddr *)&address, &len) == 0)
    set_endpoint(&conn->remote, (struct sockaddr *)&address);
  conn->retry_delay = RETRY_FIRST_MS;
  conn->was_ready = true;
  emu_socket_stats(conn->fd, &conn->ready_stats);
  conn->ready_stats.application_sent = 0;
  conn->ready_stats.application_received = 0;
  conn->phase = PHASE_READY;
  post_state(conn, nw_connection_state_ready, NULL);
}

/* Enters the waiting state with error and schedules the next attempt. */
static void enter_waiting(nw_connection_t conn, nw_error_t error) {
  close_socket(conn, false);
  conn->phase = PHASE_WAITING;
  post_state(conn, nw_connection_state_waiting, error);
  conn->retry_at = now_ms() + conn->retry_delay;
  set_timer(conn, conn->retry_at);
  conn->retry_delay *= 2;
  if (conn->retry_delay > RETRY_MAX_MS)
    conn->retry_delay = RETRY_MAX_MS;
}

/* Moves the bytes that the socket still contains into the buffer before a
 * failed socket is closed, so that data the peer sent before a reset reaches
 * the next receives, as it would from the framework's own buffers. */
static void drain_socket(nw_connection_t conn) {
  while (conn->fd >= 0 && !conn->read_eof && conn->buffered < DRAIN_MAX) {
    size_t before = conn->buffered;

    fill_buffer(conn, conn->buffered + 65536);
    if (conn->buffered == before)
      break;
  }
}

/* Fails the connection for good: pending receives get the buffered data and
 * the error, pending sends the error, and then the failed state follows.
 * The bytes of a TLS session are not drained, because OpenSSL allows no
 * call after a fatal error. */
static void enter_failed(nw_connection_t conn, nw_error_domain_t domain,
                         int code) {
  set_failure(conn, domain, code);
  if (conn->tls == NULL)
    drain_socket(conn);
  close_socket(conn, false);
  conn->phase = PHASE_FAILED;
  do_receives(conn);
  do_sends(conn);
  post_state(conn, nw_connection_state_failed, failure_error(conn));
}

/* Runs the next step of the TLS handshake. */
static void advance_handshake(nw_connection_t conn) {
  emu_failure_t failure;

  switch (emu_tls_handshake(conn->tls, &failure)) {
  case EMU_IO_DONE:
    conn->handshaking = false;
    conn->tls_wants = 0;
    emu_tls_get_result(conn->tls, &conn->tls_result);
    conn->tls_done = true;
    enter_ready(conn);
    break;
  case EMU_IO_WANT_READ:
    conn->tls_wants = EPOLLIN;
    break;
  case EMU_IO_WANT_WRITE:
    conn->tls_wants = EPOLLOUT;
    break;
  case EMU_IO_EOF:
  case EMU_IO_FAILED:
    /* NOTE: a failed handshake fails the connection; whether the framework
     * reports failed or waiting for it is not documented. */
    enter_failed(conn, failure.domain, failure.code);
    break;
  }
}

/* The socket is connected: the connection is ready, or starts TLS. */
static void enter_connected(nw_connection_t conn) {
  emu_failure_t failure;

  conn->connecting = false;
  if (!conn->settings.tls) {
    enter_ready(conn);
    return;
  }
  conn->tls =
      emu_tls_create(&conn->settings.tls_settings, conn->endpoint,
                     nw_endpoint_get_address(conn->remote), conn->fd, &failure);
  if (conn->tls == NULL) {
    enter_failed(conn, failure.domain, failure.code);
    return;
  }
  conn->handshaking = true;
  advance_handshake(conn);
}

/* Posts ECANCELED to every pending request and then the cancelled state,
 * the connection's last callback. */
static void finish_cancel(nw_connection_t conn) {
  close_socket(conn, conn->force_cancel);
  while (conn->receives != NULL)
    post_receive(conn, pop_receive(conn), NULL, false,
                 posix_error(DARWIN_ECANCELED));
  while (conn->sends != NULL)
    post_send(conn, pop_send(conn), posix_error(DARWIN_ECANCELED));

  conn->phase = PHASE_CANCELLED;
  post_state(conn, nw_connection_state_cancelled, NULL);

  /* The posted block holds its own reference to the state handler. */
  if (conn->state_handler != NULL)
    Block_release(conn->state_handler);
  conn->state_handler = NULL;
  if (conn->path_handler != NULL)
    Block_release(conn->path_handler);
  conn->path_handler = NULL;
  if (conn->viability_handler != NULL)
    Block_release(conn->viability_handler);
  conn->viability_handler = NULL;
  if (conn->better_path_handler != NULL)
    Block_release(conn->better_path_handler);
  conn->better_path_handler = NULL;
}

/* Connecting */

/* Tries the remaining addresses until one connects or is in progress. */
static void try_addresses(nw_connection_t conn) {
  while (conn->next_address < conn->address_count) {
    const struct sockaddr_storage *address =
        &conn->addresses[conn->next_address++];
    nw_endpoint_t local = conn->settings.local_endpoint;
    const struct sockaddr *bound =
        local != NULL ? nw_endpoint_get_address(local) : NULL;

    /* A bound local address fixes the family. */
    if (bound != NULL && bound->sa_family != address->ss_family)
      continue;
    conn->attempted = true;
    switch (start_attempt(conn, address)) {
    case ATTEMPT_CONNECTED:
      enter_connected(conn);
      return;
    case ATTEMPT_IN_PROGRESS:
      return;
    case ATTEMPT_FATAL:
      enter_failed(conn, nw_error_domain_posix, conn->attempt_error);
      return;
    case ATTEMPT_RETRYABLE:
      break;
    }
  }

  /* NOTE: failing when no address has an allowed family is a guess at what
   * the framework does; retrying could not help. */
  if (!conn->attempted)
    enter_failed(conn, nw_error_domain_posix, DARWIN_EAFNOSUPPORT);
  else
    enter_waiting(conn, posix_error(conn->attempt_error));
}

/* Resolves the endpoint and starts the first attempt. */
static void begin_attempts(nw_connection_t conn) {
  int dns_error;

  conn->attempts_begun = true;
  conn->next_address = 0;
  conn->attempted = false;
  dns_error = emu_endpoint_resolve(conn->endpoint, conn->settings.ip_version,
                                   conn->addresses, EMU_MAX_ADDRESSES,
                                   &conn->address_count);
  if (dns_error != 0) {
    enter_waiting(conn, emu_error_create(nw_error_domain_dns, dns_error));
    return;
  }
  try_addresses(conn);
}

static void advance_connect(nw_connection_t conn, uint32_t events) {
  int error = 0;
  socklen_t len = sizeof(error);

  if (!conn->attempts_begun) {
    begin_attempts(conn);
    return;
  }
  if (!conn->connecting || !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
    return;

  if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0)
    error = errno;
  if (error == 0) {
    struct sockaddr_storage peer;

    /* Writable without an error but not connected yet: keep waiting. */
    len = sizeof(peer);
    if (getpeername(conn->fd, (struct sockaddr *)&peer, &len) != 0)
      return;
    enter_connected(conn);
    return;
  }
  conn->attempt_error = emu_darwin_errno(error);
  close_socket(conn, false);
  try_addresses(conn);
}

/* Transfer */

/* Notes what a blocked TLS call waits for, or the failure or the end of the
 * stream it reported. Returns true when the call made progress. */
static bool handle_tls_result(nw_connection_t conn, emu_io_t result,
                              const emu_failure_t *failure) {
  switch (result) {
  case EMU_IO_DONE:
    return true;
  case EMU_IO_WANT_READ:
    conn->tls_wants |= EPOLLIN;
    return false;
  case EMU_IO_WANT_WRITE:
    conn->tls_wants |= EPOLLOUT;
    return false;
  case EMU_IO_EOF:
    conn->read_eof = conn->failure == 0;
    return false;
  case EMU_IO_FAILED:
    set_failure(conn, failure->domain, failure->code);
    return false;
  }
  return false;
}

/* fill_buffer for a TLS session: the same rules, on decrypted bytes. */
static void fill_buffer_tls(nw_connection_t conn, size_t maximum) {
  emu_failure_t failure;
  size_t n;

  while (conn->buffered < maximum) {
    emu_io_t result = emu_tls_read(conn->tls, conn->buffer + conn->buffered,
                                   maximum - conn->buffered, &n, &failure);

    if (!handle_tls_result(conn, result, &failure))
      return;
    conn->buffered += n;
  }
  handle_tls_result(conn, emu_tls_peek(conn->tls, &failure), &failure);
  /* A byte waiting is no reason to poll: the next receive reads it. */
  conn->tls_wants &= ~(uint32_t)EPOLLIN;
}

/* Reads until the buffer contains maximum bytes, the socket has no more, or
 * the stream ended or failed. With a full buffer it peeks for the end of
 * the stream, so that data followed by a FIN completes in one receive. */
static void fill_buffer(nw_connection_t conn, size_t maximum) {
  ssize_t n;
  char peek;

  if (conn->capacity < maximum) {
    unsigned char *grown = realloc(conn->buffer, maximum);

    if (grown == NULL)
      emu_fatal("out of memory for a receive buffer of %zu bytes", maximum);
    conn->buffer = grown;
    conn->capacity = maximum;
  }

  if (conn->tls != NULL) {
    fill_buffer_tls(conn, maximum);
    return;
  }

  while (conn->buffered < maximum) {
    n = recv(conn->fd, conn->buffer + conn->buffered, maximum - conn->buffered,
             0);
    if (n > 0) {
      conn->buffered += (size_t)n;
    } else if (n == 0) {
      /* A socket that failed with a reset reads as ended once its error
       * was fetched; that is no end of stream. */
      conn->read_eof = conn->failure == 0;
      return;
    } else if (errno != EINTR) {
      if (errno != EAGAIN)
        set_failure(conn, nw_error_domain_posix, emu_darwin_errno(errno));
      return;
    }
  }

  n = recv(conn->fd, &peek, 1, MSG_PEEK);
  if (n == 0 && conn->failure == 0)
    conn->read_eof = true;
}

/* Completes the pending receives that the buffered data, the end of the
 * stream or the failure can satisfy, reading more while the connection is
 * ready. */
static void do_receives(nw_connection_t conn) {
  while (conn->receives != NULL) {
    receive_request_t *request = conn->receives;
    size_t needed = request->minimum > 0 ? request->minimum : 1;
    dispatch_data_t content = NULL;
    nw_error_t error = NULL;
    size_t taken;
    bool at_end;

    if (conn->phase == PHASE_READY && !conn->read_eof && conn->failure == 0)
      fill_buffer(conn, request->maximum);
    if (conn->buffered < needed && !conn->read_eof && conn->failure == 0)
      return;

    taken =
        conn->buffered < request->maximum ? conn->buffered : request->maximum;
    if (taken > 0) {
      content = dispatch_data_create(conn->buffer, taken, NULL,
                                     DISPATCH_DATA_DESTRUCTOR_DEFAULT);
      memmove(conn->buffer, conn->buffer + taken, conn->buffered - taken);
      conn->buffered -= taken;
    }
    conn->application_received += taken;
    at_end = conn->buffered == 0;
    if (at_end && conn->failure != 0)
      error = failure_error(conn);
    post_receive(conn, pop_receive(conn), content, at_end && conn->read_eof,
                 error);
  }
}

/* Writes the pending sends in order and completes each once the socket has
 * taken all of it. A final, complete send shuts down the sending side. */
static void do_sends(nw_connection_t conn) {
  while (conn->sends != NULL) {
    send_request_t *request = conn->sends;
    size_t size =
        request->content != NULL ? dispatch_data_get_size(request->content) : 0;

    if (conn->failure != 0) {
      post_send(conn, pop_send(conn), failure_error(conn));
      continue;
    }
    if (conn->phase != PHASE_READY)
      return;

    if (request->written < size) {
      struct iovec iov[SEND_IOV_MAX];
      struct msghdr message;
      ssize_t n;

      if (conn->write_closed) {
        post_send(conn, pop_send(conn), posix_error(DARWIN_EPIPE));
        continue;
      }
      if (conn->tls != NULL) {
        emu_failure_t failure;
        size_t written;

        /* OpenSSL writes one buffer per call; partial writes are on. */
        emu_data_iovecs(request->content, request->written, iov, 1);
        if (!handle_tls_result(conn,
                               emu_tls_write(conn->tls, iov[0].iov_base,
                                             iov[0].iov_len, &written,
                                             &failure),
                               &failure)) {
          if (conn->failure != 0)
            continue;
          return;
        }
        request->written += written;
        continue;
      }
      memset(&message, 0, sizeof(message));
      message.msg_iov = iov;
      message.msg_iovlen = (size_t)emu_data_iovecs(
          request->content, request->written, iov, SEND_IOV_MAX);
      n = sendmsg(conn->fd, &message, MSG_NOSIGNAL);
      if (n >= 0) {
        request->written += (size_t)n;
      } else if (errno == EAGAIN) {
        return;
      } else if (errno != EINTR) {
        set_failure(conn, nw_error_domain_posix, emu_darwin_errno(errno));
      }
      continue;
    }

    if (request->is_final && request->is_complete && !conn->write_closed) {
      /* TLS ends its sending side with close_notify before the FIN. */
      if (conn->tls != NULL) {
        emu_failure_t failure;

        if (!handle_tls_result(conn, emu_tls_close_write(conn->tls, &failure),
                               &failure)) {
          if (conn->failure != 0)
            continue;
          return;
        }
      }
      conn->write_closed = true;
      if (shutdown(conn->fd, SHUT_WR) != 0) {
        post_send(conn, pop_send(conn), posix_error(emu_darwin_errno(errno)));
        continue;
      }
    }
    conn->application_sent += size;
    post_send(conn, pop_send(conn), NULL);
  }
}

/* Runs the connection's pending work. Runs on the I/O thread with
 * conn->lock held. */
static void process_events(nw_connection_t conn, uint32_t events) {
  if (conn->phase == PHASE_CANCELLED)
    return;
  if (conn->cancel_requested) {
    finish_cancel(conn);
    return;
  }

  switch (conn->phase) {
  case PHASE_IDLE:
  case PHASE_CANCELLED:
    break;
  case PHASE_PREPARING:
    if (conn->handshaking)
      advance_handshake(conn);
    else
      advance_connect(conn, events);
    break;
  case PHASE_WAITING:
    /* The poll timeout has millisecond granularity, so the timer may fire
     * a little early; then it is armed again. */
    if (now_ms() < conn->retry_at) {
      set_timer(conn, conn->retry_at);
      break;
    }
    conn->phase = PHASE_PREPARING;
    conn->attempts_begun = false;
    post_state(conn, nw_connection_state_preparing, NULL);
    begin_attempts(conn);
    break;
  case PHASE_READY:
    if (events & (EPOLLERR | EPOLLHUP)) {
      int error = 0;
      socklen_t len = sizeof(error);

      if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 &&
          error != 0)
        set_failure(conn, nw_error_domain_posix, emu_darwin_errno(error));
      else if (events & EPOLLHUP)
        conn->hung_up = true;
    }
    conn->tls_wants = 0;
    do_sends(conn);
    do_receives(conn);
    if (conn->failure != 0)
      enter_failed(conn, conn->failure_domain, conn->failure);
    break;
  case PHASE_FAILED:
    do_receives(conn);
    do_sends(conn);
    break;
  }
}

static void process(nw_connection_t conn, uint32_t events) {
  process_events(conn, events);
  update_interest(conn);
}

/* Returns the poll timeout until the earliest retry timer, or -1. */
static int next_timeout(void) {
  uint64_t now = now_ms();
  uint64_t earliest = 0;
  nw_connection_t conn;

  pthread_mutex_lock(&io.lock);
  for (conn = io.all; conn != NULL; conn = conn->io_next) {
    if (conn->timer_at != 0 && (earliest == 0 || conn->timer_at < earliest))
      earliest = conn->timer_at;
  }
  pthread_mutex_unlock(&io.lock);
  if (earliest == 0)
    return -1;
  return earliest <= now ? 0 : (int)(earliest - now);
}

static void *run_io(void *argument) {
  struct epoll_event events[EPOLL_BATCH];

  (void)argument;
  for (;;) {
    nw_connection_t conn;
    nw_connection_t batch;
    uint64_t now;
    int count;
    int i;

    count = epoll_wait(io.epoll_fd, events, EPOLL_BATCH, next_timeout());
    if (count < 0 && errno != EINTR)
      emu_fatal("epoll_wait failed: %s", strerror(errno));

    now = now_ms();
    pthread_mutex_lock(&io.lock);
    for (i = 0; i < count; i++) {
      conn = events[i].data.ptr;
      if (conn == NULL) {
        uint64_t value;

        while (read(io.wake_fd, &value, sizeof(value)) > 0)
          continue;
      } else {
        conn->io_events |= events[i].events;
        mark_dirty_locked(conn);
      }
    }
    for (conn = io.all; conn != NULL; conn = conn->io_next) {
      if (conn->timer_at != 0 && conn->timer_at <= now) {
        conn->timer_at = 0;
        mark_dirty_locked(conn);
      }
    }
    /* The batch has its own links: once a connection is no longer dirty,
     * other threads may mark it again and relink dirty_next. */
    batch = io.dirty;
    io.dirty = NULL;
    for (conn = batch; conn != NULL; conn = conn->dirty_next) {
      conn->batch_next = conn->dirty_next;
      conn->dirty = false;
    }
    pthread_mutex_unlock(&io.lock);

    /* Every connection in batch is registered, so the I/O thread's
     * reference keeps it alive until unregister_connection. */
    while (batch != NULL) {
      uint32_t ready_events;
      bool finished;

      conn = batch;
      batch = conn->batch_next;
      ready_events = conn->io_events;
      conn->io_events = 0;

      pthread_mutex_lock(&conn->lock);
      process(conn, ready_events);
      finished = conn->phase == PHASE_CANCELLED;
      pthread_mutex_unlock(&conn->lock);
      if (finished)
        unregister_connection(conn);
    }
  }
  return NULL;
}

/* Public interface */

nw_connection_t nw_connection_create(nw_endpoint_t endpoint,
                                     nw_parameters_t parameters) {
  nw_connection_t conn;

  emu_object_check(endpoint, &emu_class_endpoint, "nw_connection_create");
  emu_object_check(parameters, &emu_class_parameters, "nw_connection_create");

  conn = emu_object_create(&emu_class_connection, sizeof(*conn));
  pthread_mutex_init(&conn->lock, NULL);
  conn->endpoint = nw_retain(endpoint);
  emu_parameters_copy_settings(parameters, &conn->settings);
  conn->receive_context = emu_content_context_create(true);
  conn->phase = PHASE_IDLE;
  conn->failure_domain = nw_error_domain_posix;
  conn->fd = -1;
  conn->retry_delay = RETRY_FIRST_MS;
  conn->receives_tail = &conn->receives;
  conn->sends_tail = &conn->sends;
  return conn;
}

/* Runs once nothing refers to the connection: after the cancelled state, or
 * for a connection that was never started. */
static void dispose_connection(void *object) {
  nw_connection_t conn = object;

  close_socket(conn, false);
  while (conn->receives != NULL) {
    receive_request_t *request = pop_receive(conn);

    Block_release(request->completion);
    free(request);
  }
  while (conn->sends != NULL) {
    send_request_t *request = pop_send(conn);

    if (request->content != NULL)
      dispatch_release(request->content);
    Block_release(request->completion);
    free(request);
  }
  if (conn->state_handler != NULL)
    Block_release(conn->state_handler);
  if (conn->path_handler != NULL)
    Block_release(conn->path_handler);
  if (conn->viability_handler != NULL)
    Block_release(conn->viability_handler);
  if (conn->better_path_handler != NULL)
    Block_release(conn->better_path_handler);
  if (conn->queue != NULL)
    dispatch_release(conn->queue);
  if (conn->local != NULL)
    nw_release(conn->local);
  if (conn->remote != NULL)
    nw_release(conn->remote);
  emu_settings_dispose(&conn->settings);
  nw_release(conn->receive_context);
  nw_release(conn->endpoint);
  free(conn->buffer);
  pthread_mutex_destroy(&conn->lock);
}

nw_endpoint_t nw_connection_copy_endpoint(nw_connection_t conn) {
  emu_object_check(conn, &emu_class_connection, "nw_connection_copy_endpoint");
  return nw_retain(conn->endpoint);
}

void nw_connection_set_queue(nw_connection_t conn, dispatch_queue_t queue) {
  emu_object_check(conn, &emu_class_connection, "nw_connection_set_queue");
  emu_object_check(queue, &emu_class_queue, "nw_connection_set_queue");
  pthread_mutex_lock(&conn->lock);
  if (conn->started)
    emu_fatal("nw_connection_set_queue after nw_connection_start");
  dispatch_retain(queue);
  if (conn->queue != NULL)
    dispatch_release(conn->queue);
  conn->queue = queue;
  pthread_mutex_unlock(&conn->lock);
}

void nw_connection_set_state_changed_handler(
    nw_connection_t conn, nw_connection_state_changed_handler_t handler) {
  emu_object_check(conn, &emu_class_connection,
                   "nw_connection_set_state_changed_handler");
  pthread_mutex_lock(&conn->lock);
  if (conn->state_handler != NULL)
    Block_release(conn->state_handler);
  conn->state_handler = handler != NULL ? Block_copy(handler) : NULL;
  pthread_mutex_unlock(&conn->lock);
}

/* NOTE: the handler is stored but never called, because emulated paths do
 * not change while a connection lives. */
void nw_connection_set_path_changed_handler(
    nw_connection_t conn, nw_connection_path_event_handler_t handler) {
  emu_object_check(conn, &emu_class_connection,
                   "nw_connection_set_path_changed_handler");
  pthread_mutex_lock(&conn->lock);
  if (conn->path_handler != NULL)
    Block_release(conn->path_handler);
  conn->path_handler = handler != NULL ? Block_copy(handler) : NULL;
  pthread_mutex_unlock(&conn->lock);
}

/* Stores handler in *slot, releasing the one it replaces. */
static void
store_boolean_handler(nw_connection_t conn,
                      nw_connection_boolean_event_handler_t *slot,
                      nw_connection_boolean_event_handler_t handler) {
  pthread_mutex_lock(&conn->lock);
  if (*slot != NULL)
    Block_release(*slot);
  *slot = handler != NULL ? Block_copy(handler) : NULL;
  pthread_mutex_unlock(&conn->lock);
}

/* NOTE: stored but never called: emulated paths stay usable and no better
 * path appears while a connection lives. */
void nw_connection_set_viability_changed_handler(
    nw_connection_t conn, nw_connection_boolean_event_handler_t handler) {
  emu_object_check(conn, &emu_class_connection,
                   "nw_connection_set_viability_changed_handler");
  store_boolean_handler(conn, &conn->viability_handler, handler);
}

void nw_connection_set_better_path_available_handler(
    nw_connection_t conn, nw_connection_boolean_event_handler_t handler) {
  emu_object_check(conn, &emu_class_connection,
                   "nw_connection_set_better_path_available_handler");
  store_boolean_handler(conn, &conn->better_path_handler, handler);
}

void nw_connection_start(nw_connection_t conn) {
  emu_object_check(conn, &emu_class_connection, "nw_connection_start");
  pthread_mutex_lock(&conn->lock);
  if (conn->started || conn->cancel_requested) {
    pthread_mutex_unlock(&conn->lock);
    return;
  }
  check_queue(conn, "nw_connection_start");
  conn->started = true;
  conn->phase = PHASE_PREPARING;
  post_state(conn, nw_connection_state_preparing, NULL);
  register_connection(conn);
  pthread_mutex_unlock(&conn->lock);
}

static void cancel(nw_connection_t conn, bool force, const char *function) {
  emu_object_check(conn, &emu_class_connection, function);
  pthread_mutex_lock(&conn->lock);
  if (conn->phase == PHASE_CANCELLED) {
    pthread_mutex_unlock(&conn->lock);
    return;
  }
  /* A force cancel may follow a graceful one that has not finished. */
  if (force)
    conn->force_cancel = true;
  conn->cancel_requested = true;
  if (conn->started) {
    mark_dirty(conn);
  } else if (conn->queue != NULL) {
    finish_cancel(conn);
  } else {
    conn->phase = PHASE_CANCELLED;
  }
  pthread_mutex_unlock(&conn->lock);
}

void nw_connection_cancel(nw_connection_t conn) {
  cancel(conn, false, "nw_connection_cancel");
}

void nw_connection_force_cancel(nw_connection_t conn) {
  cancel(conn, true, "nw_connection_force_cancel");
}

nw_path_t nw_connection_copy_current_path(nw_connection_t conn) {
  nw_path_t path = NULL;

  emu_object_check(conn, &emu_class_connection,
                   "nw_connection_copy_current_path");
  pthread_mutex_lock(&conn->lock);
  if (conn->started && !conn->cancel_requested)
    path = emu_path_create(conn->local, conn->remote);
  pthread_mutex_unlock(&conn->lock);
  return path;
}

nw_protocol_metadata_t
nw_connection_copy_protocol_metadata(nw_connection_t conn,
                                     nw_protocol_definition_t definition) {
  nw_protocol_metadata_t metadata = NULL;

  emu_object_check(conn, &emu_class_connection,
                   "nw_connection_copy_protocol_metadata");
  emu_object_check(definition, &emu_class_protocol_definition,
                   "nw_connection_copy_protocol_metadata");
  pthread_mutex_lock(&conn->lock);
  if (conn->tls_done && !conn->cancel_requested &&
      conn->phase != PHASE_CANCELLED)
    metadata = emu_tls_metadata_create(&conn->tls_result);
  pthread_mutex_unlock(&conn->lock);
  return metadata;
}

bool emu_connection_stats(nw_connection_t conn, emu_stats_t *out) {
  bool ready;

  pthread_mutex_lock(&conn->lock);
  ready = conn->was_ready;
  if (conn->stats_final) {
    *out = conn->final_stats;
  } else if (ready && conn->fd >= 0) {
    emu_socket_stats(conn->fd, out);
    out->application_sent = conn->application_sent;
    out->application_received = conn->application_received;
  } else {
    ready = false;
  }
  pthread_mutex_unlock(&conn->lock);
  return ready;
}

bool emu_connection_ready_stats(nw_connection_t conn, emu_stats_t *out) {
  bool ready;

  pthread_mutex_lock(&conn->lock);
  ready = conn->was_ready;
  if (ready)
    *out = conn->ready_stats;
  pthread_mutex_unlock(&conn->lock);
  return ready;
}

/* A request made after the cancelled state still completes exactly once,
 * with ECANCELED, but necessarily after that state. The real framework
 * behaves the same, so a client that relies on cancelled coming last must
 * not do this; the warning points at the call. */
static void warn_after_cancelled(const char *function) {
  fprintf(stderr,
          "nw-emulation: %s after the cancelled state: its completion runs "
          "after the connection's last state\n",
          function);
}

void nw_connection_receive(nw_connection_t conn,
                           uint32_t minimum_incomplete_length,
                           uint32_t maximum_length,
                           nw_connection_receive_completion_t completion) {
  receive_request_t *request;

  emu_object_check(conn, &emu_class_connection, "nw_connection_receive");
  if (completion == NULL)
    emu_fatal("nw_connection_receive without a completion");
  if (maximum_length == 0)
    emu_fatal("nw_connection_receive with a maximum length of 0");
  request = calloc(1, sizeof(*request));
  if (request == NULL)
    emu_fatal("out of memory in nw_connection_receive");
  request->minimum = minimum_incomplete_length < maximum_length
                         ? minimum_incomplete_length
                         : maximum_length;
  request->maximum = maximum_length;
  request->completion = Block_copy(completion);

  pthread_mutex_lock(&conn->lock);
  if (conn->phase == PHASE_CANCELLED) {
    warn_after_cancelled("nw_connection_receive");
    post_receive(conn, request, NULL, false, posix_error(DARWIN_ECANCELED));
  } else {
    *conn->receives_tail = request;
    conn->receives_tail = &request->next;
    mark_dirty(conn);
  }
  pthread_mutex_unlock(&conn->lock);
}

void nw_connection_send(nw_connection_t conn, dispatch_data_t content,
                        nw_content_context_t context, bool is_complete,
                        nw_connection_send_completion_t completion) {
  send_request_t *request;

  emu_object_check(conn, &emu_class_connection, "nw_connection_send");
  if (completion == NULL)
    emu_fatal("nw_connection_send without a completion");
  request = calloc(1, sizeof(*request));
  if (request == NULL)
    emu_fatal("out of memory in nw_connection_send");
  if (content != NULL) {
    emu_object_check(content, &emu_class_data, "nw_connection_send");
    dispatch_retain(content);
  }
  request->content = content;
  request->is_final = nw_content_context_get_is_final(context);
  request->is_complete = is_complete;
  request->completion = Block_copy(completion);

  pthread_mutex_lock(&conn->lock);
  if (conn->phase == PHASE_CANCELLED) {
    warn_after_cancelled("nw_connection_send");
    post_send(conn, request, posix_error(DARWIN_ECANCELED));
  } else {
    *conn->sends_tail = request;
    conn->sends_tail = &request->next;
    mark_dirty(conn);
  }
  pthread_mutex_unlock(&conn->lock);
}

int nw_emulation_connection_socket(nw_connection_t conn) {
  int fd;

  emu_object_check(conn, &emu_class_connection,
                   "nw_emulation_connection_socket");
  pthread_mutex_lock(&conn->lock);
  fd = conn->fd;
  pthread_mutex_unlock(&conn->lock);
  return fd;
}
