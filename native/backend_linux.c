/*
 * backend_linux.c: the Linux backend, on the kernel's MPTCP sockets
 * (IPPROTO_MPTCP, kernel 5.6 and later).
 *
 * One I/O thread per backend (one per Node environment) owns an epoll set
 * with every connection of that environment. The thread connects, reads,
 * flushes queued writes, closes, and emits every event. The JavaScript
 * thread only writes directly when nothing is queued, which saves a thread
 * hop on the common path, and changes the epoll interest of a connection.
 *
 * Locks: backend->lock guards the command list and the list of live
 * connections; conn->lock guards a connection's descriptor, state and write
 * queue. Neither is held while emitting.
 */
#define _GNU_SOURCE
#include "backend.h"
#include "paths_linux.h"
#include "socket_linux.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Reads at most this many bytes at once, and at most READS_PER_WAKEUP times
 * per readiness event, so one busy connection cannot starve the others. */
#define READ_SIZE (64 * 1024)
#define READS_PER_WAKEUP 4
#define MAX_EVENTS 64

/* While data flows, the subflows are compared at most this often, and a
 * change is reported as a PATH event. */
#define PATH_CHECK_INTERVAL_MS 100

enum conn_state { STATE_NEW, STATE_CONNECTING, STATE_OPEN, STATE_CLOSED };

enum command { COMMAND_START = 1, COMMAND_CLOSE = 2 };

typedef struct write_req {
  struct write_req *next;
  void *req;
  size_t count;  /* buffers in bufs */
  size_t index;  /* first buffer not fully sent */
  size_t offset; /* bytes of bufs[index] already sent */
  mp_buf_t bufs[];
} write_req_t;

struct mp_backend {
  int epoll_fd;
  int wake_fd;
  pthread_t thread;
  pthread_mutex_t lock;
  mp_conn_t *commands; /* connections with pending commands */
  mp_conn_t *live;     /* connections that have not emitted CLOSE */
  int stopping;
};

struct mp_conn {
  mp_backend_t *backend;
  mp_emit_cb emit;
  void *ctx;
  pthread_mutex_t lock;

  int fd;
  enum conn_state state;
  atomic_int reading;
  int eof;
  int read_failed;
  int write_failed;
  int registered;
  uint32_t interest;

  /* Connect attempts. */
  struct sockaddr_storage *addresses;
  size_t address_count;
  size_t next_address;
  mp_service_t service;
  struct sockaddr_storage local;
  int has_local;
  int local_address_given; /* 0 when only a local port was given */
  uint16_t local_port;
  int no_delay;
  int keep_alive;
  unsigned keep_alive_delay;

  int mptcp;
  int fallback;
  uint64_t path_signature;
  uint64_t path_checked_ms;

  write_req_t *write_head;
  write_req_t *write_tail;
  void *shutdown_req;
  int shutdown_pending;

  /* Commands for the I/O thread, guarded by backend->lock. */
  unsigned commands;
  /* Result of the first connect attempt, which mp_conn_open makes when it
   * did not stay under way: 0 connected, or a negative errno of the call
   * named by start_syscall. The I/O thread reports it. */
  int start_result;
  const char *start_syscall;
  int close_posted;
  int reset;
  mp_conn_t *next_command;
  mp_conn_t *prev_live;
  mp_conn_t *next_live;
};

static void emit_simple(mp_conn_t *conn, mp_event_type_t type) {
  mp_event_t event;

  memset(&event, 0, sizeof(event));
  event.type = type;
  conn->emit(conn->ctx, &event);
}

static void emit_error(mp_conn_t *conn, mp_event_type_t type, int code,
                       const char *syscall, const struct sockaddr *address,
                       void *req) {
  mp_event_t event;

  memset(&event, 0, sizeof(event));
  event.type = type;
  event.req = req;
  event.error.code = code;
  event.error.syscall = syscall;
  if (address != NULL) {
    size_t len = address->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                : sizeof(struct sockaddr_in);
    memcpy(&event.error.address, address, len);
    event.error.has_address = 1;
  }
  conn->emit(conn->ctx, &event);
}

static void wake(mp_backend_t *backend) {
  uint64_t one = 1;
  ssize_t r;

  do
    r = write(backend->wake_fd, &one, sizeof(one));
  while (r < 0 && errno == EINTR);
}

/* Adds a command for the I/O thread. Called with backend->lock held. */
static void queue_command(mp_conn_t *conn, enum command command) {
  mp_backend_t *backend = conn->backend;

  if (conn->commands == 0) {
    conn->next_command = backend->commands;
    backend->commands = conn;
  }
  conn->commands |= command;
}

/* Brings the epoll registration of conn in line with what it waits for.
 * Called with conn->lock held. */
static void update_interest(mp_conn_t *conn) {
  uint32_t want = 0;
  struct epoll_event event;

  if (conn->fd < 0)
    return;
  if (conn->state == STATE_CONNECTING) {
    want = EPOLLOUT;
  } else if (conn->state == STATE_OPEN) {
    if (atomic_load(&conn->reading) && !conn->eof && !conn->read_failed)
      want |= EPOLLIN;
    if (conn->write_head != NULL && !conn->write_failed)
      want |= EPOLLOUT;
  }
  if (conn->registered && want == conn->interest)
    return;

  /* An empty interest set still reports EPOLLERR and EPOLLHUP, which would
   * wake the thread in a loop, so a connection that waits for nothing
   * leaves the set. */
  memset(&event, 0, sizeof(event));
  event.events = want;
  event.data.ptr = conn;
  if (want == 0) {
    if (conn->registered)
      epoll_ctl(conn->backend->epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
    conn->registered = 0;
  } else if (conn->registered) {
    epoll_ctl(conn->backend->epoll_fd, EPOLL_CTL_MOD, conn->fd, &event);
  } else {
    epoll_ctl(conn->backend->epoll_fd, EPOLL_CTL_ADD, conn->fd, &event);
    conn->registered = 1;
  }
  conn->interest = want;
}

static int apply_no_delay(int fd, int enable) {
  int value = enable != 0;

  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, sizeof(value)) != 0)
    return -errno;
  return 0;
}

static int apply_keep_alive(int fd, int enable, unsigned delay) {
  int value = enable != 0;
  int idle = (int)delay;

  if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &value, sizeof(value)) != 0)
    return -errno;
  if (!enable || delay == 0)
    return 0;
  /* Some kernels reject TCP-level keep-alive timers on MPTCP sockets;
   * keep-alive itself stays on with the system's timers then. */
  if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) != 0)
    return -errno;
  return 0;
}

static socklen_t address_length(const struct sockaddr_storage *address) {
  return address->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                        : sizeof(struct sockaddr_in);
}

/* Binds fd to the caller's local address, or to the local port alone on
 * the any-address of the destination's family. A local address of the
 * other family fails with EINVAL, as bind() does for net.Socket. */
static int bind_local(mp_conn_t *conn, int fd,
                      const struct sockaddr_storage *destination) {
  struct sockaddr_storage any;

  if (conn->local_address_given) {
    if (conn->local.ss_family != destination->ss_family) {
      errno = EINVAL;
      return -1;
    }
    return bind(fd, (struct sockaddr *)&conn->local,
                address_length(&conn->local));
  }
  memset(&any, 0, sizeof(any));
  any.ss_family = destination->ss_family;
  if (any.ss_family == AF_INET6)
    ((struct sockaddr_in6 *)&any)->sin6_port = htons(conn->local_port);
  else
    ((struct sockaddr_in *)&any)->sin_port = htons(conn->local_port);
  return bind(fd, (struct sockaddr *)&any, address_length(&any));
}

/* Starts a non-blocking connect to the next address. Returns 1 when a
 * connect is under way, 0 when it completed at once, or a negative error
 * when no address is left; *syscall names the call that failed last. */
static int connect_next(mp_conn_t *conn, const char **syscall) {
  int last = -ECONNREFUSED;

  while (conn->next_address < conn->address_count) {
    struct sockaddr_storage *address = &conn->addresses[conn->next_address];
    int fallback;
    int fd;

    conn->next_address++;
    fd = mp__open_stream_socket(address->ss_family, conn->service, &fallback);
    if (fd < 0) {
      last = fd;
      *syscall = "socket";
      continue;
    }
    if (conn->no_delay)
      apply_no_delay(fd, 1);
    if (conn->keep_alive)
      apply_keep_alive(fd, 1, conn->keep_alive_delay);
    if (conn->has_local && bind_local(conn, fd, address) != 0) {
      last = -errno;
      *syscall = "bind";
      close(fd);
      continue;
    }

    pthread_mutex_lock(&conn->lock);
    conn->fd = fd;
    conn->fallback = fallback;
    pthread_mutex_unlock(&conn->lock);
    if (connect(fd, (struct sockaddr *)address, address_length(address)) == 0)
      return 0;
    if (errno == EINPROGRESS)
      return 1;

    last = -errno;
    *syscall = "connect";
    pthread_mutex_lock(&conn->lock);
    conn->fd = -1;
    pthread_mutex_unlock(&conn->lock);
    close(fd);
  }
  return last;
}

static uint64_t now_ms(void) {
  struct timespec now;

  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* Emits PATH when the subflows changed since the last check. Runs on the
 * I/O thread, after reads and writes, so only while data flows. */
static void check_paths(mp_conn_t *conn) {
  uint64_t now;
  uint64_t signature;

  if (conn->mptcp != 1 || conn->fd < 0)
    return;
  now = now_ms();
  if (now - conn->path_checked_ms < PATH_CHECK_INTERVAL_MS)
    return;
  conn->path_checked_ms = now;
  signature = mp__path_signature(conn->fd);

  /* A connection can still fall back to TCP after it was established, for
   * example when a middlebox strips MPTCP options; it then has no subflows
   * to list. */
  if (signature == 0 && mp_fd_is_mptcp(conn->fd) == 0) {
    pthread_mutex_lock(&conn->lock);
    conn->mptcp = 0;
    pthread_mutex_unlock(&conn->lock);
    emit_simple(conn, MP_EVENT_PATH);
    return;
  }
  if (signature == conn->path_signature)
    return;
  conn->path_signature = signature;
  emit_simple(conn, MP_EVENT_PATH);
}

/* The address an error of the last connect attempt names: the local one
 * for a failed bind, as net reports it, else the destination. */
static const struct sockaddr *failed_address(mp_conn_t *conn,
                                             const char *syscall) {
  if (strcmp(syscall, "bind") == 0)
    return conn->local_address_given ? (struct sockaddr *)&conn->local : NULL;
  if (conn->next_address == 0)
    return NULL;
  return (struct sockaddr *)&conn->addresses[conn->next_address - 1];
}

static void mark_open(mp_conn_t *conn) {
  int mptcp = mp_fd_is_mptcp(conn->fd);

  pthread_mutex_lock(&conn->lock);
  conn->state = STATE_OPEN;
  conn->mptcp = mptcp < 0 ? -1 : mptcp;
  if (mptcp == 1) {
    conn->path_signature = mp__path_signature(conn->fd);
    conn->path_checked_ms = now_ms();
  }
  update_interest(conn);
  pthread_mutex_unlock(&conn->lock);
  emit_simple(conn, MP_EVENT_CONNECT);
}

/* Runs connect attempts until one is under way, one succeeds, or none is
 * left; in the last case emits ERROR with the last attempt's address. */
static void advance_connect(mp_conn_t *conn) {
  const char *syscall = "connect";
  int r = connect_next(conn, &syscall);

  if (r == 1) {
    pthread_mutex_lock(&conn->lock);
    conn->state = STATE_CONNECTING;
    update_interest(conn);
    pthread_mutex_unlock(&conn->lock);
    return;
  }
  if (r == 0) {
    mark_open(conn);
    return;
  }

  emit_error(conn, MP_EVENT_ERROR, r, syscall, failed_address(conn, syscall),
             NULL);
}

/* Reports the first connect attempt, which mp_conn_open made. */
static void report_start(mp_conn_t *conn) {
  if (conn->start_result == 0) {
    mark_open(conn);
    return;
  }
  emit_error(conn, MP_EVENT_ERROR, conn->start_result, conn->start_syscall,
             failed_address(conn, conn->start_syscall), NULL);
}

static void finish_connect(mp_conn_t *conn) {
  int error = 0;
  socklen_t len = sizeof(error);
  struct sockaddr *address;

  if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0)
    error = errno;
  if (error == 0) {
    mark_open(conn);
    return;
  }

  pthread_mutex_lock(&conn->lock);
  if (conn->registered)
    epoll_ctl(conn->backend->epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
  conn->registered = 0;
  close(conn->fd);
  conn->fd = -1;
  pthread_mutex_unlock(&conn->lock);

  if (conn->next_address < conn->address_count) {
    advance_connect(conn);
    return;
  }
  address = (struct sockaddr *)&conn->addresses[conn->next_address - 1];
  emit_error(conn, MP_EVENT_ERROR, -error, "connect", address, NULL);
}

static void handle_readable(mp_conn_t *conn) {
  int i;

  for (i = 0; i < READS_PER_WAKEUP; i++) {
    mp_event_t event;
    char *data;
    ssize_t n;

    if (!atomic_load(&conn->reading) || conn->eof || conn->read_failed)
      return;
    data = malloc(READ_SIZE);
    if (data == NULL)
      return;
    do
      n = recv(conn->fd, data, READ_SIZE, 0);
    while (n < 0 && errno == EINTR);

    if (n > 0) {
      /* Small reads keep only what they need: the buffer goes to
       * JavaScript as is. */
      if (n < READ_SIZE / 2) {
        char *smaller = realloc(data, (size_t)n);
        if (smaller != NULL)
          data = smaller;
      }
      memset(&event, 0, sizeof(event));
      event.type = MP_EVENT_DATA;
      event.data = data;
      event.len = (size_t)n;
      conn->emit(conn->ctx, &event);
      if (n < READ_SIZE)
        return;
      continue;
    }

    free(data);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    pthread_mutex_lock(&conn->lock);
    if (n == 0)
      conn->eof = 1;
    else
      conn->read_failed = 1;
    update_interest(conn);
    pthread_mutex_unlock(&conn->lock);
    if (n == 0)
      emit_simple(conn, MP_EVENT_EOF);
    else
      emit_error(conn, MP_EVENT_ERROR, -errno, "read", NULL, NULL);
    return;
  }
}

/* Sends as much of the write queue as the socket takes. Called with
 * conn->lock held; returns the requests that completed, in order, and
 * leaves a failed request at the head of the queue with *error set. */
static write_req_t *flush_writes(mp_conn_t *conn, int *error) {
  write_req_t *done = NULL;
  write_req_t **done_tail = &done;

  *error = 0;
  while (conn->write_head != NULL) {
    struct iovec iov[64];
    struct msghdr msg;
    size_t iov_count = 0;
    write_req_t *w;
    ssize_t n;

    for (w = conn->write_head; w != NULL && iov_count < 64; w = w->next) {
      size_t i;
      for (i = w->index; i < w->count && iov_count < 64; i++) {
        size_t skip = i == w->index ? w->offset : 0;
        /* An empty TypedArray may have a NULL base, and adding even 0 to a
         * null pointer is undefined behaviour. The loop below still counts
         * the empty buffer as sent. */
        if (w->bufs[i].len == skip)
          continue;
        iov[iov_count].iov_base = (char *)w->bufs[i].base + skip;
        iov[iov_count].iov_len = w->bufs[i].len - skip;
        iov_count++;
      }
    }
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = iov;
    msg.msg_iovlen = iov_count;
    do
      n = sendmsg(conn->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        *error = -errno;
      break;
    }

    while (conn->write_head != NULL) {
      w = conn->write_head;
      while (w->index < w->count) {
        size_t left = w->bufs[w->index].len - w->offset;
        if ((size_t)n < left) {
          w->offset += (size_t)n;
          n = 0;
          break;
        }
        n -= (ssize_t)left;
        w->index++;
        w->offset = 0;
      }
      if (w->index < w->count)
        break;
      conn->write_head = w->next;
      if (conn->write_head == NULL)
        conn->write_tail = NULL;
      w->next = NULL;
      *done_tail = w;
      done_tail = &w->next;
    }
    if (conn->write_head != NULL)
      break;
  }
  return done;
}

static void emit_writes(mp_conn_t *conn, write_req_t *done) {
  while (done != NULL) {
    write_req_t *next = done->next;
    emit_error(conn, MP_EVENT_WRITE, 0, "write", NULL, done->req);
    free(done);
    done = next;
  }
}

static void handle_writable(mp_conn_t *conn) {
  write_req_t *done;
  write_req_t *failed = NULL;
  int error;
  int shutdown_done = 0;
  int shutdown_error = 0;
  void *shutdown_req = NULL;

  pthread_mutex_lock(&conn->lock);
  if (conn->state != STATE_OPEN || conn->write_failed) {
    pthread_mutex_unlock(&conn->lock);
    return;
  }
  done = flush_writes(conn, &error);
  if (error != 0) {
    failed = conn->write_head;
    conn->write_head = failed->next;
    if (conn->write_head == NULL)
      conn->write_tail = NULL;
    conn->write_failed = 1;
  } else if (conn->write_head == NULL && conn->shutdown_pending) {
    conn->shutdown_pending = 0;
    shutdown_done = 1;
    shutdown_req = conn->shutdown_req;
    if (shutdown(conn->fd, SHUT_WR) != 0)
      shutdown_error = -errno;
  }
  update_interest(conn);
  pthread_mutex_unlock(&conn->lock);

  emit_writes(conn, done);
  if (failed != NULL) {
    emit_error(conn, MP_EVENT_WRITE, error, "write", NULL, failed->req);
    free(failed);
  }
  if (shutdown_done)
    emit_error(conn, MP_EVENT_SHUTDOWN, shutdown_error, "shutdown", NULL,
               shutdown_req);
}

static void handle_io(mp_conn_t *conn, uint32_t events) {
  if (conn->state == STATE_CONNECTING) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
      finish_connect(conn);
    return;
  }
  if (conn->state != STATE_OPEN)
    return;
  if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
    handle_writable(conn);
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
    handle_readable(conn);
  check_paths(conn);
}

/* Closes the descriptor, cancels what is queued and emits CLOSE. After the
 * emit, another thread may free conn, so nothing touches it afterwards. */
static void do_close(mp_conn_t *conn, int reset) {
  mp_backend_t *backend = conn->backend;
  write_req_t *pending;
  void *shutdown_req = NULL;
  int shutdown_pending;

  pthread_mutex_lock(&conn->lock);
  if (conn->fd >= 0) {
    if (conn->registered)
      epoll_ctl(backend->epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
    conn->registered = 0;
    if (reset) {
      struct linger linger = {1, 0};
      setsockopt(conn->fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
    }
    close(conn->fd);
    conn->fd = -1;
  }
  conn->state = STATE_CLOSED;
  pending = conn->write_head;
  conn->write_head = conn->write_tail = NULL;
  shutdown_pending = conn->shutdown_pending;
  shutdown_req = conn->shutdown_req;
  conn->shutdown_pending = 0;
  pthread_mutex_unlock(&conn->lock);

  while (pending != NULL) {
    write_req_t *next = pending->next;
    emit_error(conn, MP_EVENT_WRITE, -ECANCELED, "write", NULL, pending->req);
    free(pending);
    pending = next;
  }
  if (shutdown_pending)
    emit_error(conn, MP_EVENT_SHUTDOWN, -ECANCELED, "shutdown", NULL,
               shutdown_req);

  pthread_mutex_lock(&backend->lock);
  if (conn->prev_live != NULL)
    conn->prev_live->next_live = conn->next_live;
  else
    backend->live = conn->next_live;
  if (conn->next_live != NULL)
    conn->next_live->prev_live = conn->prev_live;
  pthread_mutex_unlock(&backend->lock);

  emit_simple(conn, MP_EVENT_CLOSE);
}

static void run_commands(mp_backend_t *backend) {
  mp_conn_t *conn;

  pthread_mutex_lock(&backend->lock);
  conn = backend->commands;
  backend->commands = NULL;
  pthread_mutex_unlock(&backend->lock);

  while (conn != NULL) {
    mp_conn_t *next;
    unsigned commands;
    int reset;

    pthread_mutex_lock(&backend->lock);
    next = conn->next_command;
    commands = conn->commands;
    reset = conn->reset;
    conn->commands = 0;
    conn->next_command = NULL;
    pthread_mutex_unlock(&backend->lock);

    /* A close posted together with the start reports nothing of the
     * connect: the caller gave up already. */
    if (commands & COMMAND_CLOSE)
      do_close(conn, reset);
    else if (commands & COMMAND_START)
      report_start(conn);
    conn = next;
  }
}

static void *io_thread(void *arg) {
  mp_backend_t *backend = arg;
  struct epoll_event events[MAX_EVENTS];

  for (;;) {
    int n;
    int i;
    int done;

    n = epoll_wait(backend->epoll_fd, events, MAX_EVENTS, -1);
    if (n < 0 && errno != EINTR)
      break;
    for (i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) {
        /* One read resets the eventfd counter, however many wakes it
         * counted. */
        uint64_t count;
        ssize_t ignored = read(backend->wake_fd, &count, sizeof(count));
        (void)ignored;
        continue;
      }
      handle_io(events[i].data.ptr, events[i].events);
    }

    /* Commands run after the batch: a close inside the batch would leave
     * later entries pointing at a connection that may be freed. */
    run_commands(backend);

    pthread_mutex_lock(&backend->lock);
    done =
        backend->stopping && backend->live == NULL && backend->commands == NULL;
    pthread_mutex_unlock(&backend->lock);
    if (done)
      break;
  }
  return NULL;
}

const char *mp_backend_name(void) {
  return "linux";
}

int mp_backend_resolves_names(void) {
  return 0;
}

int mp_backend_create(mp_backend_t **out) {
  mp_backend_t *backend = calloc(1, sizeof(*backend));
  struct epoll_event event;
  sigset_t all;
  sigset_t saved;
  int r;

  if (backend == NULL)
    return -ENOMEM;
  pthread_mutex_init(&backend->lock, NULL);
  backend->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  backend->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (backend->epoll_fd < 0 || backend->wake_fd < 0) {
    r = -errno;
    goto fail;
  }
  memset(&event, 0, sizeof(event));
  event.events = EPOLLIN;
  event.data.ptr = NULL;
  if (epoll_ctl(backend->epoll_fd, EPOLL_CTL_ADD, backend->wake_fd, &event)) {
    r = -errno;
    goto fail;
  }

  /* Signals belong to Node's main thread, so the I/O thread blocks all. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  r = -pthread_create(&backend->thread, NULL, io_thread, backend);
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
  if (r != 0)
    goto fail;
  pthread_setname_np(backend->thread, "nw-mptcp-io");
  *out = backend;
  return 0;

fail:
  if (backend->epoll_fd >= 0)
    close(backend->epoll_fd);
  if (backend->wake_fd >= 0)
    close(backend->wake_fd);
  pthread_mutex_destroy(&backend->lock);
  free(backend);
  return r;
}

void mp_backend_destroy(mp_backend_t *backend) {
  mp_conn_t *conn;

  pthread_mutex_lock(&backend->lock);
  backend->stopping = 1;
  for (conn = backend->live; conn != NULL; conn = conn->next_live) {
    if (conn->close_posted)
      continue;
    conn->close_posted = 1;
    conn->reset = 0;
    queue_command(conn, COMMAND_CLOSE);
  }
  pthread_mutex_unlock(&backend->lock);
  wake(backend);

  pthread_join(backend->thread, NULL);
  close(backend->epoll_fd);
  close(backend->wake_fd);
  pthread_mutex_destroy(&backend->lock);
  free(backend);
}

static int parse_local(const mp_connect_options_t *options,
                       struct sockaddr_storage *out) {
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  int family =
      options->address_count > 0 ? options->addresses[0].ss_family : AF_INET;

  memset(out, 0, sizeof(*out));
  if (options->local_address == NULL) {
    out->ss_family = (sa_family_t)family;
  } else if (inet_pton(AF_INET, options->local_address, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
  } else if (inet_pton(AF_INET6, options->local_address, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
  } else {
    return -EINVAL;
  }
  if (out->ss_family == AF_INET6)
    v6->sin6_port = htons(options->local_port);
  else
    v4->sin_port = htons(options->local_port);
  return 0;
}

int mp_conn_open(mp_backend_t *backend, const mp_connect_options_t *options,
                 mp_emit_cb emit, void *ctx, mp_conn_t **out) {
  mp_conn_t *conn;
  size_t size;
  int r;

  if (options->address_count == 0)
    return -EINVAL;
  /* TLS runs in JavaScript on Linux; the kernel has no TLS of its own here
   * (kTLS needs a handshake done elsewhere). */
  if (options->tls)
    return -ENOTSUP;
  conn = calloc(1, sizeof(*conn));
  if (conn == NULL)
    return -ENOMEM;
  size = options->address_count * sizeof(*conn->addresses);
  conn->addresses = malloc(size);
  if (conn->addresses == NULL) {
    free(conn);
    return -ENOMEM;
  }
  memcpy(conn->addresses, options->addresses, size);
  conn->address_count = options->address_count;
  if (options->local_address != NULL || options->local_port != 0) {
    if (parse_local(options, &conn->local) != 0) {
      free(conn->addresses);
      free(conn);
      return -EINVAL;
    }
    conn->has_local = 1;
    conn->local_address_given = options->local_address != NULL;
    conn->local_port = options->local_port;
  }

  conn->backend = backend;
  conn->emit = emit;
  conn->ctx = ctx;
  conn->fd = -1;
  conn->state = STATE_NEW;
  conn->mptcp = -1;
  conn->service = options->service;
  conn->no_delay = options->no_delay;
  conn->keep_alive = options->keep_alive;
  conn->keep_alive_delay = options->keep_alive_delay;
  atomic_init(&conn->reading, 0);
  pthread_mutex_init(&conn->lock, NULL);

  pthread_mutex_lock(&backend->lock);
  conn->next_live = backend->live;
  if (backend->live != NULL)
    backend->live->prev_live = conn;
  backend->live = conn;
  *out = conn;
  pthread_mutex_unlock(&backend->lock);

  /* The first attempt starts on the caller's thread, which saves the I/O
   * thread a wake-up per connection. An attempt under way stays with epoll;
   * a result goes to the I/O thread, because only that thread emits. */
  conn->start_syscall = "connect";
  r = connect_next(conn, &conn->start_syscall);
  if (r == 1) {
    pthread_mutex_lock(&conn->lock);
    conn->state = STATE_CONNECTING;
    update_interest(conn);
    pthread_mutex_unlock(&conn->lock);
    return 0;
  }
  conn->start_result = r;
  pthread_mutex_lock(&backend->lock);
  queue_command(conn, COMMAND_START);
  pthread_mutex_unlock(&backend->lock);
  wake(backend);
  return 0;
}

void mp_conn_read_start(mp_conn_t *conn) {
  pthread_mutex_lock(&conn->lock);
  atomic_store(&conn->reading, 1);
  update_interest(conn);
  pthread_mutex_unlock(&conn->lock);
}

void mp_conn_read_stop(mp_conn_t *conn) {
  pthread_mutex_lock(&conn->lock);
  atomic_store(&conn->reading, 0);
  update_interest(conn);
  pthread_mutex_unlock(&conn->lock);
}

int mp_conn_write(mp_conn_t *conn, const mp_buf_t *bufs, size_t count,
                  void *req) {
  write_req_t *w;
  int r = 0;

  pthread_mutex_lock(&conn->lock);
  if (conn->state != STATE_OPEN || conn->fd < 0 || conn->write_failed) {
    pthread_mutex_unlock(&conn->lock);
    return conn->write_failed ? -EPIPE : -ENOTCONN;
  }

  w = malloc(sizeof(*w) + count * sizeof(mp_buf_t));
  if (w == NULL) {
    pthread_mutex_unlock(&conn->lock);
    return -ENOMEM;
  }
  w->next = NULL;
  w->req = req;
  w->count = count;
  w->index = 0;
  w->offset = 0;
  memcpy(w->bufs, bufs, count * sizeof(mp_buf_t));

  if (conn->write_head == NULL) {
    write_req_t *done;

    conn->write_head = conn->write_tail = w;
    done = flush_writes(conn, &r);
    if (done != NULL || r != 0) {
      /* Completed or failed at once: no event follows. */
      if (r != 0) {
        conn->write_head = conn->write_tail = NULL;
        conn->write_failed = 1;
      }
      update_interest(conn);
      pthread_mutex_unlock(&conn->lock);
      free(w);
      return r != 0 ? r : MP_DONE;
    }
  } else {
    conn->write_tail->next = w;
    conn->write_tail = w;
  }
  update_interest(conn);
  pthread_mutex_unlock(&conn->lock);
  return 0;
}

int mp_conn_shutdown(mp_conn_t *conn, void *req) {
  int r = MP_DONE;

  pthread_mutex_lock(&conn->lock);
  if (conn->state != STATE_OPEN || conn->fd < 0) {
    r = -ENOTCONN;
  } else if (conn->write_head != NULL) {
    conn->shutdown_pending = 1;
    conn->shutdown_req = req;
    r = 0;
  } else if (shutdown(conn->fd, SHUT_WR) != 0) {
    r = -errno;
  }
  pthread_mutex_unlock(&conn->lock);
  return r;
}

void mp_conn_close(mp_conn_t *conn, int reset) {
  mp_backend_t *backend = conn->backend;

  pthread_mutex_lock(&backend->lock);
  if (conn->close_posted) {
    pthread_mutex_unlock(&backend->lock);
    return;
  }
  conn->close_posted = 1;
  conn->reset = reset != 0;
  queue_command(conn, COMMAND_CLOSE);
  pthread_mutex_unlock(&backend->lock);

  /* Reading stops now, so no DATA follows a close. */
  atomic_store(&conn->reading, 0);
  wake(backend);
}

void mp_conn_free(mp_conn_t *conn) {
  pthread_mutex_destroy(&conn->lock);
  free(conn->addresses);
  free(conn);
}

int mp_conn_get_info(mp_conn_t *conn, mp_info_t *info, int with_addresses) {
  socklen_t len;

  memset(info, 0, sizeof(*info));
  pthread_mutex_lock(&conn->lock);
  info->mptcp = conn->mptcp;
  info->fallback = conn->fallback;
  if (with_addresses && conn->fd >= 0 && conn->state == STATE_OPEN) {
    len = sizeof(info->local);
    info->has_local =
        getsockname(conn->fd, (struct sockaddr *)&info->local, &len) == 0;
    len = sizeof(info->remote);
    info->has_remote =
        getpeername(conn->fd, (struct sockaddr *)&info->remote, &len) == 0;
  }
  pthread_mutex_unlock(&conn->lock);
  return 0;
}

int mp_conn_get_paths(mp_conn_t *conn, mp_path_report_t **report) {
  int r = -ENOTCONN;

  *report = NULL;
  pthread_mutex_lock(&conn->lock);
  if (conn->fd >= 0 && conn->state == STATE_OPEN)
    r = mp__collect_paths(conn->fd, report);
  pthread_mutex_unlock(&conn->lock);
  return r == 0 ? MP_DONE : r;
}

int mp_conn_set_no_delay(mp_conn_t *conn, int enable) {
  int r = -ENOTCONN;

  pthread_mutex_lock(&conn->lock);
  conn->no_delay = enable;
  if (conn->fd >= 0)
    r = apply_no_delay(conn->fd, enable);
  pthread_mutex_unlock(&conn->lock);
  return r;
}

int mp_conn_set_keep_alive(mp_conn_t *conn, int enable, unsigned delay) {
  int r = -ENOTCONN;

  pthread_mutex_lock(&conn->lock);
  conn->keep_alive = enable;
  conn->keep_alive_delay = delay;
  if (conn->fd >= 0)
    r = apply_keep_alive(conn->fd, enable, delay);
  pthread_mutex_unlock(&conn->lock);
  return r;
}
