/*
 * selftest.c: self-tests of the Network framework emulation, one per rule
 * that it must keep, run against the emulated C interface directly. Each
 * test starts its own loopback servers and ends with no live object.
 *
 * Usage: selftest NAME runs one test, selftest all runs every test, and
 * selftest list prints the names. The exit status is 0 when the tests
 * passed; a failed check prints "FAIL file:line: ..." and exits with 1.
 */
#define _GNU_SOURCE
#include <Block.h>
#include <Network/Network.h>
#include <arpa/inet.h>
#include <dispatch/dispatch.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nw_emulation.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/* Darwin errno numbers (macOS sys/errno.h) that the emulation reports. */
#define DARWIN_ECONNRESET 54
#define DARWIN_ECONNREFUSED 61
#define DARWIN_EAFNOSUPPORT 47
#define DARWIN_ECANCELED 89

/* Upper bound of every wait for a callback or a socket. */
#define WAIT_MS 5000

/* Time given to callbacks that must not come, and to the kernel to deliver
 * loopback data and FIN or RST before a receive is issued. */
#define SETTLE_MS 200

static const char *program_path;

static void fail_check(const char *file, int line, const char *condition,
                       const char *format, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

static void fail_check(const char *file, int line, const char *condition,
                       const char *format, ...) {
  va_list args;

  fprintf(stderr, "FAIL %s:%d: %s: ", file, line, condition);
  va_start(args, format);
  vfprintf(stderr, format, args);
  va_end(args);
  fputc('\n', stderr);
  /* The failure is reported; objects it left alive are no news. */
  setenv(NW_EMULATION_LEAK_CHECK_ENV, "off", 1);
  exit(1);
}

#define CHECK(condition, ...)                                                  \
  do {                                                                         \
    if (!(condition))                                                          \
      fail_check(__FILE__, __LINE__, #condition, __VA_ARGS__);                 \
  } while (0)

static void sleep_ms(unsigned ms) {
  struct timespec delay = {ms / 1000, (long)(ms % 1000) * 1000000L};

  nanosleep(&delay, NULL);
}

/* Loopback servers */

static socklen_t address_length(const struct sockaddr_storage *address) {
  return address->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                        : sizeof(struct sockaddr_in);
}

static uint16_t port_of(const struct sockaddr_storage *address) {
  if (address->ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)address)->sin6_port);
  return ntohs(((const struct sockaddr_in *)address)->sin_port);
}

/* Binds a socket of protocol to the loopback address of family on a free
 * port, and listens unless listening is false. */
static int bind_loopback(int family, int protocol, bool listening,
                         uint16_t *port) {
  struct sockaddr_storage address;
  socklen_t len = sizeof(address);
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, protocol);

  CHECK(fd >= 0, "socket: %s", strerror(errno));
  memset(&address, 0, sizeof(address));
  address.ss_family = (sa_family_t)family;
  if (family == AF_INET6)
    ((struct sockaddr_in6 *)&address)->sin6_addr = in6addr_loopback;
  else
    ((struct sockaddr_in *)&address)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(fd, (struct sockaddr *)&address, address_length(&address)) == 0,
        "bind: %s", strerror(errno));
  CHECK(!listening || listen(fd, 16) == 0, "listen: %s", strerror(errno));
  CHECK(getsockname(fd, (struct sockaddr *)&address, &len) == 0,
        "getsockname: %s", strerror(errno));
  *port = port_of(&address);
  return fd;
}

static int listen_loopback(int family, uint16_t *port) {
  return bind_loopback(family, IPPROTO_MPTCP, true, port);
}

static int accept_within(int listener) {
  struct pollfd poller = {.fd = listener, .events = POLLIN};
  int fd;

  CHECK(poll(&poller, 1, WAIT_MS) == 1, "no connection within %d ms", WAIT_MS);
  fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
  CHECK(fd >= 0, "accept: %s", strerror(errno));
  return fd;
}

/* Reads exactly len bytes from a peer socket, or fails the test. */
static void read_exact(int fd, void *buffer, size_t len) {
  size_t done = 0;

  while (done < len) {
    struct pollfd poller = {.fd = fd, .events = POLLIN};
    ssize_t n;

    CHECK(poll(&poller, 1, WAIT_MS) == 1, "no data within %d ms", WAIT_MS);
    n = read(fd, (char *)buffer + done, len - done);
    CHECK(n > 0, "read returned %zd: %s", n, n < 0 ? strerror(errno) : "EOF");
    done += (size_t)n;
  }
}

/* Returns what the next read of a peer socket returns: bytes, 0 for the end
 * of the stream, or -errno. */
static ssize_t read_result(int fd) {
  struct pollfd poller = {.fd = fd, .events = POLLIN};
  char byte;
  ssize_t n;

  CHECK(poll(&poller, 1, WAIT_MS) == 1, "socket not readable within %d ms",
        WAIT_MS);
  n = read(fd, &byte, 1);
  return n < 0 ? -errno : n;
}

static void write_all(int fd, const void *buffer, size_t len) {
  CHECK(write(fd, buffer, len) == (ssize_t)len, "write: %s", strerror(errno));
}

static void reset_socket(int fd) {
  struct linger linger = {.l_onoff = 1, .l_linger = 0};

  setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
  close(fd);
}

/* Callback log: every handler and completion of a test appends one entry
 * from the queue it runs on, so the log order is the run order. */

typedef enum entry_kind { ENTRY_STATE, ENTRY_RECEIVE, ENTRY_SEND } entry_kind_t;

typedef struct entry {
  entry_kind_t kind;
  int id; /* the state, or the request's id */
  bool on_queue;
  int domain;
  int code;
  bool has_content;
  size_t size;
  char bytes[64];
  bool is_complete;
  bool has_context;
  bool is_final;
} entry_t;

#define LOG_CAPACITY 512

typedef struct callback_log {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  dispatch_queue_t queue;
  entry_t entries[LOG_CAPACITY];
  int count;
} callback_log_t;

static void log_init(callback_log_t *log) {
  memset(log, 0, sizeof(*log));
  pthread_mutex_init(&log->lock, NULL);
  pthread_cond_init(&log->changed, NULL);
  log->queue = dispatch_queue_create("selftest", DISPATCH_QUEUE_SERIAL);
}

static void log_add(callback_log_t *log, entry_t *entry) {
  entry->on_queue = nw_emulation_current_queue() == log->queue;
  pthread_mutex_lock(&log->lock);
  CHECK(log->count < LOG_CAPACITY, "callback log full");
  log->entries[log->count++] = *entry;
  pthread_cond_broadcast(&log->changed);
  pthread_mutex_unlock(&log->lock);
}

static void set_error(entry_t *entry, nw_error_t error) {
  if (error == NULL)
    return;
  entry->domain = nw_error_get_error_domain(error);
  entry->code = nw_error_get_error_code(error);
}

/* Waits until done returns true, with the log locked, and returns true, or
 * returns false after WAIT_MS. */
static bool log_wait(callback_log_t *log, bool (^done)(void)) {
  struct timespec deadline;
  bool result;

  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += WAIT_MS / 1000;
  pthread_mutex_lock(&log->lock);
  while (!(result = done())) {
    if (pthread_cond_timedwait(&log->changed, &log->lock, &deadline) != 0) {
      result = done();
      break;
    }
  }
  pthread_mutex_unlock(&log->lock);
  return result;
}

static int log_count(callback_log_t *log, entry_kind_t kind, int id) {
  int count = 0;
  int i;

  for (i = 0; i < log->count; i++) {
    if (log->entries[i].kind == kind && log->entries[i].id == id)
      count++;
  }
  return count;
}

/* Returns the index of the first entry of kind and id, or -1. */
static int log_find(callback_log_t *log, entry_kind_t kind, int id) {
  int i;

  for (i = 0; i < log->count; i++) {
    if (log->entries[i].kind == kind && log->entries[i].id == id)
      return i;
  }
  return -1;
}

static bool wait_for(callback_log_t *log, entry_kind_t kind, int id,
                     int count) {
  return log_wait(log, ^bool {
    return log_count(log, kind, id) >= count;
  });
}

static const entry_t *entry_of(callback_log_t *log, entry_kind_t kind, int id) {
  int index;

  pthread_mutex_lock(&log->lock);
  index = log_find(log, kind, id);
  pthread_mutex_unlock(&log->lock);
  CHECK(index >= 0, "no entry of kind %d and id %d", (int)kind, id);
  return &log->entries[index];
}

/* Connections */

typedef void (^configure_block_t)(nw_parameters_t parameters);

static nw_connection_t open_connection(callback_log_t *log, const char *host,
                                       uint16_t port,
                                       nw_multipath_service_t service,
                                       configure_block_t configure) {
  nw_parameters_t parameters;
  nw_endpoint_t endpoint;
  nw_connection_t connection;
  char port_text[8];

  parameters = nw_parameters_create_secure_tcp(
      NW_PARAMETERS_DISABLE_PROTOCOL, NW_PARAMETERS_DEFAULT_CONFIGURATION);
  CHECK(parameters != NULL, "nw_parameters_create_secure_tcp failed");
  nw_parameters_set_multipath_service(parameters, service);
  if (configure != NULL)
    configure(parameters);
  snprintf(port_text, sizeof(port_text), "%u", (unsigned)port);
  endpoint = nw_endpoint_create_host(host, port_text);
  CHECK(endpoint != NULL, "nw_endpoint_create_host(%s) failed", host);
  connection = nw_connection_create(endpoint, parameters);
  nw_release(endpoint);
  nw_release(parameters);
  CHECK(connection != NULL, "nw_connection_create failed");

  nw_connection_set_queue(connection, log->queue);
  nw_connection_set_state_changed_handler(
      connection, ^(nw_connection_state_t state, nw_error_t error) {
        entry_t entry = {.kind = ENTRY_STATE, .id = (int)state};

        set_error(&entry, error);
        log_add(log, &entry);
      });
  nw_connection_start(connection);
  return connection;
}

static void receive(callback_log_t *log, nw_connection_t connection, int id,
                    uint32_t minimum, uint32_t maximum) {
  nw_connection_receive(
      connection, minimum, maximum,
      ^(dispatch_data_t content, nw_content_context_t context, bool is_complete,
        nw_error_t error) {
        entry_t entry = {.kind = ENTRY_RECEIVE, .id = id};

        set_error(&entry, error);
        entry.is_complete = is_complete;
        if (context != NULL) {
          entry.has_context = true;
          entry.is_final = nw_content_context_get_is_final(context);
        }
        if (content != NULL) {
          entry_t *target = &entry;

          entry.has_content = true;
          entry.size = dispatch_data_get_size(content);
          /* The first bytes are kept, enough for the checks. */
          dispatch_data_apply(content, ^bool(dispatch_data_t region,
                                             size_t offset, const void *bytes,
                                             size_t size) {
            size_t room;

            (void)region;
            if (offset >= sizeof(target->bytes) - 1)
              return false;
            room = sizeof(target->bytes) - 1 - offset;
            memcpy(target->bytes + offset, bytes, size < room ? size : room);
            return true;
          });
        }
        log_add(log, &entry);
      });
}

static void send_bytes(callback_log_t *log, nw_connection_t connection, int id,
                       const void *bytes, size_t len,
                       nw_content_context_t context, bool is_complete) {
  dispatch_data_t content = NULL;

  if (bytes != NULL)
    content = dispatch_data_create(bytes, len, NULL,
                                   DISPATCH_DATA_DESTRUCTOR_DEFAULT);
  nw_connection_send(connection, content, context, is_complete,
                     ^(nw_error_t error) {
                       entry_t entry = {.kind = ENTRY_SEND, .id = id};

                       set_error(&entry, error);
                       log_add(log, &entry);
                     });
  if (content != NULL)
    dispatch_release(content);
}

static void expect_state(callback_log_t *log, nw_connection_state_t state) {
  CHECK(wait_for(log, ENTRY_STATE, (int)state, 1),
        "state %d not reached within %d ms", (int)state, WAIT_MS);
}

/* Cancels connection, waits for the cancelled state, checks that it is the
 * last callback, and releases everything. */
static void close_connection(callback_log_t *log, nw_connection_t connection,
                             bool force) {
  int count;

  if (force)
    nw_connection_force_cancel(connection);
  else
    nw_connection_cancel(connection);
  expect_state(log, nw_connection_state_cancelled);
  nw_release(connection);
  sleep_ms(SETTLE_MS);

  pthread_mutex_lock(&log->lock);
  count = log->count;
  pthread_mutex_unlock(&log->lock);
  CHECK(log->entries[count - 1].kind == ENTRY_STATE,
        "a callback of kind %d ran after the cancelled state",
        (int)log->entries[count - 1].kind);
  CHECK(log->entries[count - 1].id == nw_connection_state_cancelled,
        "state %d came after the cancelled state", log->entries[count - 1].id);
}

static void log_destroy(callback_log_t *log) {
  dispatch_release(log->queue);
  pthread_mutex_destroy(&log->lock);
  pthread_cond_destroy(&log->changed);
}

static void check_all_on_queue(callback_log_t *log) {
  int i;

  for (i = 0; i < log->count; i++)
    CHECK(log->entries[i].on_queue, "callback %d (kind %d) ran off the queue",
          i, (int)log->entries[i].kind);
}

/* Every test ends here: nothing may be left running or alive. */
static void expect_no_live_objects(void) {
  CHECK(nw_emulation_wait_idle(WAIT_MS) == 0,
        "emulation still busy after %d ms", WAIT_MS);
  if (nw_emulation_live_objects() != 0) {
    nw_emulation_print_live_objects(stderr);
    CHECK(false, "%zu objects alive", nw_emulation_live_objects());
  }
}

/* Tests */

/* Each receive and send completion runs exactly once, on the connection's
 * queue, including those that a cancel cuts short. */
static void test_completions_once_on_queue(void) {
  enum { SENDS = 20, SEND_SIZE = 1024, RECEIVES = 20, LATE_RECEIVES = 5 };
  static char payload[SENDS * SEND_SIZE];
  callback_log_t log;
  nw_connection_t connection;
  uint16_t port;
  int listener = listen_loopback(AF_INET, &port);
  int peer;
  int i;

  log_init(&log);
  for (i = 0; i < (int)sizeof(payload); i++)
    payload[i] = (char)('a' + i % 26);
  connection = open_connection(&log, "127.0.0.1", port,
                               nw_multipath_service_handover, NULL);
  peer = accept_within(listener);
  expect_state(&log, nw_connection_state_ready);

  for (i = 0; i < SENDS; i++)
    send_bytes(&log, connection, i, payload + i * SEND_SIZE, SEND_SIZE,
               NW_CONNECTION_DEFAULT_MESSAGE_CONTEXT, true);
  for (i = 0; i < RECEIVES; i++)
    receive(&log, connection, 100 + i, 1, 512);

  /* The peer echoes everything, so the receives have data to complete. */
  {
    static char echo[sizeof(payload)];

    read_exact(peer, echo, sizeof(echo));
    CHECK(memcmp(echo, payload, sizeof(echo)) == 0, "bytes sent out of order");
    write_all(peer, echo, sizeof(echo));
  }
  for (i = 0; i < SENDS; i++)
    CHECK(wait_for(&log, ENTRY_SEND, i, 1), "send %d did not complete", i);
  for (i = 0; i < RECEIVES; i++)
    CHECK(wait_for(&log, ENTRY_RECEIVE, 100 + i, 1),
          "receive %d did not complete", i);

  for (i = 0; i < LATE_RECEIVES; i++)
    receive(&log, connection, 200 + i, 1, 1024 * 1024);
  close_connection(&log, connection, false);

  for (i = 0; i < SENDS; i++)
    CHECK(log_count(&log, ENTRY_SEND, i) == 1, "send %d completed %d times", i,
          log_count(&log, ENTRY_SEND, i));
  for (i = 0; i < RECEIVES; i++)
    CHECK(log_count(&log, ENTRY_RECEIVE, 100 + i) == 1,
          "receive %d completed %d times", i,
          log_count(&log, ENTRY_RECEIVE, 100 + i));
  for (i = 0; i < LATE_RECEIVES; i++)
    CHECK(log_count(&log, ENTRY_RECEIVE, 200 + i) == 1,
          "late receive %d completed %d times", i,
          log_count(&log, ENTRY_RECEIVE, 200 + i));
  check_all_on_queue(&log);

  close(peer);
  close(listener);
  log_destroy(&log);
  expect_no_live_objects();
}

/* Data followed by FIN arrives in one completion with is_complete and the
 * final context; data followed by RST arrives with the error. */
static void test_content_with_end_or_error(void) {
  nw_multipath_service_t services[] = {nw_multipath_service_disabled,
                                       nw_multipath_service_handover};
  size_t s;

  for (s = 0; s < sizeof(services) / sizeof(services[0]); s++) {
    callback_log_t log;
    nw_connection_t connection;
    const entry_t *entry;
    uint16_t port;
    int listener = listen_loopback(AF_INET, &port);
    int peer;

    /* Data, then FIN. */
    log_init(&log);
    connection = open_connection(&log, "127.0.0.1", port, services[s], NULL);
    peer = accept_within(listener);
    expect_state(&log, nw_connection_state_ready);
    write_all(peer, "hello", 5);
    CHECK(shutdown(peer, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
    sleep_ms(SETTLE_MS);
    receive(&log, connection, 1, 1, 65536);
    CHECK(wait_for(&log, ENTRY_RECEIVE, 1, 1), "receive did not complete");
    entry = entry_of(&log, ENTRY_RECEIVE, 1);
    CHECK(entry->has_content,
          "service %d: content of %zu bytes instead of \"hello\"",
          (int)services[s], entry->size);
    CHECK(entry->size == 5,
          "service %d: content of %zu bytes instead of \"hello\"",
          (int)services[s], entry->size);
    CHECK(memcmp(entry->bytes, "hello", 5) == 0,
          "service %d: content of %zu bytes instead of \"hello\"",
          (int)services[s], entry->size);
    CHECK(entry->is_complete, "service %d: data and FIN came apart",
          (int)services[s]);
    CHECK(entry->has_context,
          "service %d: the end of stream has no final context",
          (int)services[s]);
    CHECK(entry->is_final, "service %d: the end of stream has no final context",
          (int)services[s]);
    CHECK(entry->domain == 0, "service %d: unexpected error %d/%d",
          (int)services[s], entry->domain, entry->code);
    close_connection(&log, connection, false);
    close(peer);
    log_destroy(&log);

    /* Data, then RST. */
    log_init(&log);
    connection = open_connection(&log, "127.0.0.1", port, services[s], NULL);
    peer = accept_within(listener);
    expect_state(&log, nw_connection_state_ready);
    write_all(peer, "hello", 5);
    reset_socket(peer);
    sleep_ms(SETTLE_MS);
    receive(&log, connection, 1, 1, 65536);
    CHECK(wait_for(&log, ENTRY_RECEIVE, 1, 1), "receive did not complete");
    entry = entry_of(&log, ENTRY_RECEIVE, 1);
    CHECK(entry->has_content,
          "service %d: content of %zu bytes instead of \"hello\"",
          (int)services[s], entry->size);
    CHECK(entry->size == 5,
          "service %d: content of %zu bytes instead of \"hello\"",
          (int)services[s], entry->size);
    CHECK(memcmp(entry->bytes, "hello", 5) == 0,
          "service %d: content of %zu bytes instead of \"hello\"",
          (int)services[s], entry->size);
    CHECK(entry->domain == nw_error_domain_posix,
          "service %d: error %d/%d instead of posix ECONNRESET (54)",
          (int)services[s], entry->domain, entry->code);
    CHECK(entry->code == DARWIN_ECONNRESET,
          "service %d: error %d/%d instead of posix ECONNRESET (54)",
          (int)services[s], entry->domain, entry->code);
    CHECK(!entry->is_complete, "service %d: a reset is no end of stream",
          (int)services[s]);
    expect_state(&log, nw_connection_state_failed);
    close_connection(&log, connection, false);
    check_all_on_queue(&log);
    log_destroy(&log);
    close(listener);
  }
  expect_no_live_objects();
}

/* The end of the stream is is_complete with a final context and no
 * content, after the data that came before it. */
static void test_end_of_stream_final_context(void) {
  callback_log_t log;
  nw_connection_t connection;
  const entry_t *entry;
  uint16_t port;
  int listener = listen_loopback(AF_INET, &port);
  int peer;

  CHECK(nw_content_context_get_is_final(NW_CONNECTION_FINAL_MESSAGE_CONTEXT),
        "the final message context is not final");
  CHECK(!nw_content_context_get_is_final(NW_CONNECTION_DEFAULT_MESSAGE_CONTEXT),
        "the default message context is final");

  log_init(&log);
  connection = open_connection(&log, "127.0.0.1", port,
                               nw_multipath_service_handover, NULL);
  peer = accept_within(listener);
  expect_state(&log, nw_connection_state_ready);

  write_all(peer, "abc", 3);
  receive(&log, connection, 1, 1, 65536);
  CHECK(wait_for(&log, ENTRY_RECEIVE, 1, 1), "receive did not complete");
  entry = entry_of(&log, ENTRY_RECEIVE, 1);
  CHECK(entry->size == 3, "first receive: %zu bytes, complete %d, error %d",
        entry->size, entry->is_complete, entry->code);
  CHECK(!entry->is_complete, "first receive: %zu bytes, complete %d, error %d",
        entry->size, entry->is_complete, entry->code);
  CHECK(entry->domain == 0, "first receive: %zu bytes, complete %d, error %d",
        entry->size, entry->is_complete, entry->code);

  CHECK(shutdown(peer, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
  receive(&log, connection, 2, 1, 65536);
  CHECK(wait_for(&log, ENTRY_RECEIVE, 2, 1), "receive did not complete");
  entry = entry_of(&log, ENTRY_RECEIVE, 2);
  CHECK(!entry->has_content, "content at the end of the stream");
  CHECK(entry->is_complete, "the end of the stream is not complete");
  CHECK(entry->has_context, "the end of the stream has no final context");
  CHECK(entry->is_final, "the end of the stream has no final context");
  CHECK(entry->domain == 0, "error %d/%d at the end of the stream",
        entry->domain, entry->code);

  close_connection(&log, connection, false);
  check_all_on_queue(&log);
  close(peer);
  close(listener);
  log_destroy(&log);
  expect_no_live_objects();
}

/* A send of no data with the final context and is_complete half-closes:
 * the peer reads the end of the stream and can still send. */
static void test_final_send_half_closes(void) {
  callback_log_t log;
  nw_connection_t connection;
  const entry_t *entry;
  uint16_t port;
  int listener = listen_loopback(AF_INET, &port);
  char buffer[4];
  int peer;

  log_init(&log);
  connection = open_connection(&log, "127.0.0.1", port,
                               nw_multipath_service_handover, NULL);
  peer = accept_within(listener);
  expect_state(&log, nw_connection_state_ready);

  send_bytes(&log, connection, 1, "ping", 4,
             NW_CONNECTION_DEFAULT_MESSAGE_CONTEXT, true);
  send_bytes(&log, connection, 2, NULL, 0, NW_CONNECTION_FINAL_MESSAGE_CONTEXT,
             true);
  CHECK(wait_for(&log, ENTRY_SEND, 2, 1), "the final send did not complete");
  CHECK(entry_of(&log, ENTRY_SEND, 1)->domain == 0, "the data send failed");
  CHECK(entry_of(&log, ENTRY_SEND, 2)->domain == 0, "the final send failed");

  read_exact(peer, buffer, 4);
  CHECK(memcmp(buffer, "ping", 4) == 0, "peer read other bytes");
  CHECK(read_result(peer) == 0, "peer did not read the end of the stream");

  write_all(peer, "pong", 4);
  receive(&log, connection, 3, 4, 4);
  CHECK(wait_for(&log, ENTRY_RECEIVE, 3, 1), "receive did not complete");
  entry = entry_of(&log, ENTRY_RECEIVE, 3);
  CHECK(entry->size == 4, "the half-closed connection received %zu bytes",
        entry->size);
  CHECK(memcmp(entry->bytes, "pong", 4) == 0,
        "the half-closed connection received %zu bytes", entry->size);

  close_connection(&log, connection, false);
  check_all_on_queue(&log);
  close(peer);
  close(listener);
  log_destroy(&log);
  expect_no_live_objects();
}

/* Cancel fails every outstanding send and receive with ECANCELED before the
 * cancelled state, which comes last. A graceful cancel sends FIN, a force
 * cancel RST. */
static void test_cancel_fails_outstanding(void) {
  enum { BIG = 64 * 1024 * 1024 };
  nw_multipath_service_t services[] = {nw_multipath_service_disabled,
                                       nw_multipath_service_handover};
  char *big = calloc(1, BIG);
  size_t s;

  CHECK(big != NULL, "out of memory");
  for (s = 0; s < sizeof(services) / sizeof(services[0]); s++) {
    callback_log_t log;
    nw_connection_t connection;
    uint16_t port;
    int listener = listen_loopback(AF_INET, &port);
    int cancelled;
    int peer;

    /* The peer neither sends nor reads: the receive waits, and the send of
     * 64 MiB cannot fit in the socket buffers. */
    log_init(&log);
    connection = open_connection(&log, "127.0.0.1", port, services[s], NULL);
    peer = accept_within(listener);
    expect_state(&log, nw_connection_state_ready);
    receive(&log, connection, 1, 1, 65536);
    send_bytes(&log, connection, 2, big, BIG,
               NW_CONNECTION_DEFAULT_MESSAGE_CONTEXT, true);
    sleep_ms(SETTLE_MS);
    CHECK(log_count(&log, ENTRY_RECEIVE, 1) == 0, "the receive completed");
    CHECK(log_count(&log, ENTRY_SEND, 2) == 0, "the 64 MiB send completed");

    close_connection(&log, connection, false);
    cancelled = log_find(&log, ENTRY_STATE, nw_connection_state_cancelled);
    CHECK(log_count(&log, ENTRY_RECEIVE, 1) == 1, "receive completed %d times",
          log_count(&log, ENTRY_RECEIVE, 1));
    CHECK(log_count(&log, ENTRY_SEND, 2) == 1, "send completed %d times",
          log_count(&log, ENTRY_SEND, 2));
    CHECK(log_find(&log, ENTRY_RECEIVE, 1) < cancelled,
          "the receive completed after the cancelled state");
    CHECK(log_find(&log, ENTRY_SEND, 2) < cancelled,
          "the send completed after the cancelled state");
    CHECK(entry_of(&log, ENTRY_RECEIVE, 1)->domain == nw_error_domain_posix,
          "receive error %d instead of posix ECANCELED (89)",
          entry_of(&log, ENTRY_RECEIVE, 1)->code);
    CHECK(entry_of(&log, ENTRY_RECEIVE, 1)->code == DARWIN_ECANCELED,
          "receive error %d instead of posix ECANCELED (89)",
          entry_of(&log, ENTRY_RECEIVE, 1)->code);
    CHECK(entry_of(&log, ENTRY_SEND, 2)->domain == nw_error_domain_posix,
          "send error %d instead of posix ECANCELED (89)",
          entry_of(&log, ENTRY_SEND, 2)->code);
    CHECK(entry_of(&log, ENTRY_SEND, 2)->code == DARWIN_ECANCELED,
          "send error %d instead of posix ECANCELED (89)",
          entry_of(&log, ENTRY_SEND, 2)->code);
    check_all_on_queue(&log);
    close(peer);
    log_destroy(&log);

    /* A graceful cancel ends the stream; the peer reads EOF. */
    log_init(&log);
    connection = open_connection(&log, "127.0.0.1", port, services[s], NULL);
    peer = accept_within(listener);
    expect_state(&log, nw_connection_state_ready);
    close_connection(&log, connection, false);
    CHECK(read_result(peer) == 0, "service %d: no FIN after a graceful cancel",
          (int)services[s]);
    close(peer);
    log_destroy(&log);

    /* A force cancel resets; the peer reads ECONNRESET. */
    log_init(&log);
    connection = open_connection(&log, "127.0.0.1", port, services[s], NULL);
    peer = accept_within(listener);
    expect_state(&log, nw_connection_state_ready);
    close_connection(&log, connection, true);
    CHECK(read_result(peer) == -ECONNRESET,
          "service %d: no RST after a force cancel", (int)services[s]);
    close(peer);
    log_destroy(&log);
    close(listener);
  }
  free(big);
  expect_no_live_objects();
}

/* A refused connect enters the waiting state with ECONNREFUSED in Darwin
 * numbering, retries until the port listens, and stops when cancelled. */
static void test_refused_waits_and_retries(void) {
  callback_log_t log;
  nw_connection_t connection;
  const entry_t *entry;
  uint16_t port;
  int closed_port = bind_loopback(AF_INET, IPPROTO_TCP, false, &port);
  int peer;
  int i;

  /* The port is bound but not listening, so connects are refused. */
  log_init(&log);
  connection = open_connection(&log, "127.0.0.1", port,
                               nw_multipath_service_handover, NULL);
  CHECK(wait_for(&log, ENTRY_STATE, nw_connection_state_waiting, 3),
        "fewer than 3 waiting states within %d ms", WAIT_MS);
  CHECK(log_count(&log, ENTRY_STATE, nw_connection_state_failed) == 0,
        "a refused connect failed instead of waiting");
  CHECK(log_count(&log, ENTRY_STATE, nw_connection_state_ready) == 0,
        "ready without a listener");
  entry = entry_of(&log, ENTRY_STATE, nw_connection_state_waiting);
  CHECK(entry->domain == nw_error_domain_posix,
        "waiting with %d/%d instead of posix ECONNREFUSED (61)", entry->domain,
        entry->code);
  CHECK(entry->code == DARWIN_ECONNREFUSED,
        "waiting with %d/%d instead of posix ECONNREFUSED (61)", entry->domain,
        entry->code);

  /* Preparing comes first and before every retry. */
  CHECK(log.entries[0].kind == ENTRY_STATE, "the first state is not preparing");
  CHECK(log.entries[0].id == nw_connection_state_preparing,
        "the first state is not preparing");
  for (i = 1; i < log.count; i++) {
    if (log.entries[i].id == nw_connection_state_waiting)
      CHECK(log.entries[i - 1].id == nw_connection_state_preparing,
            "waiting without preparing before it");
  }

  CHECK(listen(closed_port, 4) == 0, "listen: %s", strerror(errno));
  expect_state(&log, nw_connection_state_ready);
  peer = accept_within(closed_port);
  close_connection(&log, connection, false);
  close(peer);
  log_destroy(&log);

  /* Cancelled while waiting: cancelled comes and nothing else. */
  close(closed_port);
  closed_port = bind_loopback(AF_INET, IPPROTO_TCP, false, &port);
  log_init(&log);
  connection = open_connection(&log, "127.0.0.1", port,
                               nw_multipath_service_handover, NULL);
  expect_state(&log, nw_connection_state_waiting);
  receive(&log, connection, 1, 1, 100);
  close_connection(&log, connection, false);
  CHECK(log_count(&log, ENTRY_STATE, nw_connection_state_ready) == 0,
        "ready after a cancel while waiting");
  CHECK(entry_of(&log, ENTRY_RECEIVE, 1)->code == DARWIN_ECANCELED,
        "the receive queued while waiting did not fail with ECANCELED");
  check_all_on_queue(&log);
  log_destroy(&log);
  close(closed_port);
  expect_no_live_objects();
}

/* Runs this program as "selftest --child NAME" with the given leak check
 * setting (NULL leaves it unset). Returns the wait status; stderr goes to
 * output. */
static int run_child(const char *name, const char *leak_check, char *output,
                     size_t size) {
  int pipe_fds[2];
  size_t used = 0;
  ssize_t n;
  pid_t pid;
  int status;

  CHECK(pipe(pipe_fds) == 0, "pipe: %s", strerror(errno));
  pid = fork();
  CHECK(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    dup2(pipe_fds[1], STDERR_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    if (leak_check != NULL)
      setenv(NW_EMULATION_LEAK_CHECK_ENV, leak_check, 1);
    else
      unsetenv(NW_EMULATION_LEAK_CHECK_ENV);
    execl(program_path, program_path, "--child", name, (char *)NULL);
    _exit(127);
  }
  close(pipe_fds[1]);
  while (used + 1 < size &&
         (n = read(pipe_fds[0], output + used, size - 1 - used)) > 0)
    used += (size_t)n;
  output[used] = '\0';
  close(pipe_fds[0]);
  CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
  return status;
}

/* Children of the refcount test: each misuses the interface once. */
static int run_child_case(const char *name) {
  if (strcmp(name, "over-release") == 0) {
    nw_endpoint_t endpoint = nw_endpoint_create_host("127.0.0.1", "1");

    nw_release(endpoint);
    nw_release(endpoint);
    return 0;
  }
  if (strcmp(name, "over-release-queue") == 0) {
    dispatch_queue_t queue = dispatch_queue_create("child", NULL);

    dispatch_release(queue);
    nw_emulation_wait_idle(WAIT_MS);
    dispatch_release(queue);
    return 0;
  }
  if (strcmp(name, "wrong-family") == 0) {
    dispatch_queue_t queue = dispatch_queue_create("child", NULL);

    nw_release(queue);
    return 0;
  }
  if (strcmp(name, "leak") == 0) {
    nw_parameters_t parameters = nw_parameters_create_secure_tcp(
        NW_PARAMETERS_DISABLE_PROTOCOL, NW_PARAMETERS_DEFAULT_CONFIGURATION);

    (void)parameters;
    return 0;
  }
  fprintf(stderr, "unknown child case %s\n", name);
  return 2;
}

/* Counts retain and release from several threads at once. */
static void *hammer_retains(void *argument) {
  nw_endpoint_t endpoint = argument;
  int i;

  for (i = 0; i < 100000; i++) {
    nw_retain(endpoint);
    nw_release(endpoint);
  }
  return NULL;
}

/* Over-release aborts naming the type, a leak fails the exit status, the
 * opt-out works, and counting is thread-safe. */
static void test_refcount_and_leak_check(void) {
  enum { THREADS = 8 };
  char output[4096];
  pthread_t threads[THREADS];
  nw_endpoint_t endpoint;
  int status;
  int i;

  status = run_child("over-release", NULL, output, sizeof(output));
  CHECK(WIFSIGNALED(status), "an over-release did not abort (status %d)",
        status);
  CHECK(WTERMSIG(status) == SIGABRT,
        "an over-release did not abort (status %d)", status);
  CHECK(strstr(output, "over-release") != NULL,
        "the abort message does not name the type: %s", output);
  CHECK(strstr(output, "nw_endpoint") != NULL,
        "the abort message does not name the type: %s", output);

  status = run_child("over-release-queue", NULL, output, sizeof(output));
  CHECK(WIFSIGNALED(status), "a queue over-release did not abort (status %d)",
        status);
  CHECK(WTERMSIG(status) == SIGABRT,
        "a queue over-release did not abort (status %d)", status);
  CHECK(strstr(output, "dispatch_queue") != NULL,
        "the abort message does not name the type: %s", output);

  status = run_child("wrong-family", NULL, output, sizeof(output));
  CHECK(WIFSIGNALED(status), "nw_release on a queue did not abort (status %d)",
        status);
  CHECK(WTERMSIG(status) == SIGABRT,
        "nw_release on a queue did not abort (status %d)", status);
  CHECK(strstr(output, "dispatch_release") != NULL,
        "the abort message does not name dispatch_release: %s", output);

  status = run_child("leak", NULL, output, sizeof(output));
  CHECK(WIFEXITED(status), "a leak did not fail the exit status (status %d)",
        status);
  CHECK(WEXITSTATUS(status) == NW_EMULATION_LEAK_EXIT_CODE,
        "a leak did not fail the exit status (status %d)", status);
  CHECK(strstr(output, "nw_parameters: 1 alive") != NULL,
        "the leak report does not name the type: %s", output);

  status = run_child("leak", "off", output, sizeof(output));
  CHECK(WIFEXITED(status), "%s=off did not skip the leak check (status %d)",
        NW_EMULATION_LEAK_CHECK_ENV, status);
  CHECK(WEXITSTATUS(status) == 0,
        "%s=off did not skip the leak check (status %d)",
        NW_EMULATION_LEAK_CHECK_ENV, status);

  endpoint = nw_endpoint_create_host("127.0.0.1", "1");
  for (i = 0; i < THREADS; i++)
    CHECK(pthread_create(&threads[i], NULL, hammer_retains, endpoint) == 0,
          "pthread_create failed");
  for (i = 0; i < THREADS; i++)
    pthread_join(threads[i], NULL);
  CHECK(nw_emulation_live_objects() == 1, "%zu objects alive, expected 1",
        nw_emulation_live_objects());
  nw_release(endpoint);
  expect_no_live_objects();
}

/* States come in order, and the path and endpoints carry the real socket
 * addresses, for IPv4 and IPv6. */
static void test_states_and_paths(void) {
  const char *hosts[] = {"127.0.0.1", "::1"};
  int families[] = {AF_INET, AF_INET6};
  size_t h;

  for (h = 0; h < 2; h++) {
    struct sockaddr_storage peer_local;
    struct sockaddr_storage peer_remote;
    socklen_t len;
    callback_log_t log;
    nw_connection_t connection;
    nw_endpoint_t endpoint;
    nw_path_t path;
    const struct sockaddr *address;
    uint16_t port;
    int listener = listen_loopback(families[h], &port);
    int peer;

    log_init(&log);
    connection = open_connection(&log, hosts[h], port,
                                 nw_multipath_service_handover, NULL);
    peer = accept_within(listener);
    expect_state(&log, nw_connection_state_ready);

    CHECK(log.count == 2, "%s: states other than preparing, ready", hosts[h]);
    CHECK(log.entries[0].id == nw_connection_state_preparing,
          "%s: states other than preparing, ready", hosts[h]);
    CHECK(log.entries[1].id == nw_connection_state_ready,
          "%s: states other than preparing, ready", hosts[h]);

    endpoint = nw_connection_copy_endpoint(connection);
    CHECK(nw_endpoint_get_type(endpoint) == nw_endpoint_type_address,
          "%s: a literal is not an address endpoint", hosts[h]);
    address = nw_endpoint_get_address(endpoint);
    CHECK(address != NULL, "%s: wrong endpoint address", hosts[h]);
    CHECK(address->sa_family == families[h], "%s: wrong endpoint address",
          hosts[h]);
    CHECK(port_of((const struct sockaddr_storage *)address) == port,
          "%s: wrong endpoint port", hosts[h]);
    nw_release(endpoint);

    len = sizeof(peer_local);
    getsockname(peer, (struct sockaddr *)&peer_local, &len);
    len = sizeof(peer_remote);
    getpeername(peer, (struct sockaddr *)&peer_remote, &len);

    path = nw_connection_copy_current_path(connection);
    CHECK(path != NULL, "%s: no current path while ready", hosts[h]);
    endpoint = nw_path_copy_effective_local_endpoint(path);
    CHECK(endpoint != NULL, "%s: the path has no local endpoint", hosts[h]);
    address = nw_endpoint_get_address(endpoint);
    CHECK(memcmp(address, &peer_remote, address_length(&peer_remote)) == 0,
          "%s: the local endpoint is not the peer's remote address", hosts[h]);
    nw_release(endpoint);
    endpoint = nw_path_copy_effective_remote_endpoint(path);
    CHECK(endpoint != NULL, "%s: the path has no remote endpoint", hosts[h]);
    address = nw_endpoint_get_address(endpoint);
    CHECK(memcmp(address, &peer_local, address_length(&peer_local)) == 0,
          "%s: the remote endpoint is not the peer's local address", hosts[h]);
    nw_release(endpoint);
    nw_release(path);

    nw_connection_cancel(connection);
    CHECK(nw_connection_copy_current_path(connection) == NULL,
          "%s: a path after the cancel", hosts[h]);
    nw_retain(connection);
    close_connection(&log, connection, false);
    CHECK(log.count == 3, "%s: %d callbacks instead of 3", hosts[h], log.count);
    nw_release(connection);
    close(peer);
    close(listener);
    log_destroy(&log);
  }

  {
    nw_endpoint_t host = nw_endpoint_create_host("example.invalid", "80");

    CHECK(nw_endpoint_get_type(host) == nw_endpoint_type_host,
          "a name is not a host endpoint");
    CHECK(nw_endpoint_get_address(host) == NULL,
          "a host endpoint has an address");
    nw_release(host);
    CHECK(nw_endpoint_create_host("127.0.0.1", "http") == NULL,
          "a service name was accepted as a port");
  }
  expect_no_live_objects();
}

static int socket_option(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof(value);

  CHECK(getsockopt(fd, level, name, &value, &len) == 0, "getsockopt: %s",
        strerror(errno));
  return value;
}

/* The parameters reach the socket: multipath service (MPTCP or TCP), TCP
 * options, the local endpoint and the IP version. */
static void test_parameters(void) {
  callback_log_t log;
  nw_connection_t connection;
  struct sockaddr_storage peer_address;
  socklen_t len = sizeof(peer_address);
  uint16_t port;
  uint16_t local_port;
  int listener = listen_loopback(AF_INET, &port);
  int peer;
  int fd;

  /* Multipath service: MPTCP on both ends, or TCP. */
  log_init(&log);
  connection = open_connection(
      &log, "127.0.0.1", port, nw_multipath_service_aggregate,
      ^(nw_parameters_t parameters) {
        nw_protocol_stack_t stack =
            nw_parameters_copy_default_protocol_stack(parameters);
        nw_protocol_options_t ip =
            nw_protocol_stack_copy_internet_protocol(stack);

        CHECK(ip != NULL, "the default stack has no IP options");
        nw_ip_options_set_version(ip, nw_ip_version_4);
        nw_release(ip);
        nw_release(stack);
      });
  peer = accept_within(listener);
  expect_state(&log, nw_connection_state_ready);
  fd = nw_emulation_connection_socket(connection);
  CHECK(socket_option(fd, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_MPTCP,
        "a multipath connection does not use MPTCP");
  CHECK(socket_option(peer, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_MPTCP,
        "the peer of a multipath connection does not use MPTCP");
  close_connection(&log, connection, false);
  close(peer);
  log_destroy(&log);

  /* Disabled service with a local endpoint. */
  close(bind_loopback(AF_INET, IPPROTO_TCP, false, &local_port));
  log_init(&log);
  connection = open_connection(
      &log, "127.0.0.1", port, nw_multipath_service_disabled,
      ^(nw_parameters_t parameters) {
        char text[8];
        nw_endpoint_t local;

        snprintf(text, sizeof(text), "%u", (unsigned)local_port);
        local = nw_endpoint_create_host("127.0.0.1", text);
        nw_parameters_set_local_endpoint(parameters, local);
        nw_release(local);
      });
  peer = accept_within(listener);
  expect_state(&log, nw_connection_state_ready);
  CHECK(socket_option(peer, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP,
        "a connection with multipath disabled uses MPTCP");
  getpeername(peer, (struct sockaddr *)&peer_address, &len);
  CHECK(port_of(&peer_address) == local_port,
        "the local endpoint's port %u was not bound (got %u)",
        (unsigned)local_port, (unsigned)port_of(&peer_address));
  close_connection(&log, connection, false);
  close(peer);
  log_destroy(&log);

  /* TCP options set in the configure block, on an MPTCP socket. */
  {
    nw_parameters_t parameters = nw_parameters_create_secure_tcp(
        NW_PARAMETERS_DISABLE_PROTOCOL, ^(nw_protocol_options_t tcp) {
          nw_tcp_options_set_no_delay(tcp, true);
          nw_tcp_options_set_enable_keepalive(tcp, true);
          nw_tcp_options_set_keepalive_idle_time(tcp, 42);
        });
    callback_log_t *log_pointer = &log;
    nw_endpoint_t endpoint;
    char text[8];

    nw_parameters_set_multipath_service(parameters,
                                        nw_multipath_service_handover);
    snprintf(text, sizeof(text), "%u", (unsigned)port);
    endpoint = nw_endpoint_create_host("127.0.0.1", text);
    log_init(&log);
    connection = nw_connection_create(endpoint, parameters);
    nw_release(endpoint);
    nw_release(parameters);
    nw_connection_set_queue(connection, log.queue);
    nw_connection_set_state_changed_handler(
        connection, ^(nw_connection_state_t state, nw_error_t error) {
          entry_t entry = {.kind = ENTRY_STATE, .id = (int)state};

          set_error(&entry, error);
          log_add(log_pointer, &entry);
        });
    nw_connection_start(connection);
    peer = accept_within(listener);
    expect_state(&log, nw_connection_state_ready);
    fd = nw_emulation_connection_socket(connection);
    CHECK(socket_option(fd, IPPROTO_TCP, TCP_NODELAY) == 1,
          "no delay was not set");
    CHECK(socket_option(fd, SOL_SOCKET, SO_KEEPALIVE) == 1,
          "keep-alive was not set");
    CHECK(socket_option(fd, IPPROTO_TCP, TCP_KEEPIDLE) == 42,
          "the keep-alive idle time was not set");
    close_connection(&log, connection, false);
    close(peer);
    log_destroy(&log);
  }

  /* IP version 4 rules out an IPv6 endpoint. */
  log_init(&log);
  connection = open_connection(
      &log, "::1", port, nw_multipath_service_handover,
      ^(nw_parameters_t parameters) {
        nw_protocol_stack_t stack =
            nw_parameters_copy_default_protocol_stack(parameters);
        nw_protocol_options_t ip =
            nw_protocol_stack_copy_internet_protocol(stack);

        nw_ip_options_set_version(ip, nw_ip_version_4);
        nw_release(ip);
        nw_release(stack);
      });
  expect_state(&log, nw_connection_state_failed);
  CHECK(entry_of(&log, ENTRY_STATE, nw_connection_state_failed)->code ==
            DARWIN_EAFNOSUPPORT,
        "IPv4 only to ::1 failed with %d instead of EAFNOSUPPORT (47)",
        entry_of(&log, ENTRY_STATE, nw_connection_state_failed)->code);
  close_connection(&log, connection, false);
  log_destroy(&log);

  close(listener);
  expect_no_live_objects();
}

/* Receives honour the minimum and maximum lengths. */
static void test_receive_minimum_maximum(void) {
  callback_log_t log;
  nw_connection_t connection;
  uint16_t port;
  int listener = listen_loopback(AF_INET, &port);
  int peer;

  log_init(&log);
  connection = open_connection(&log, "127.0.0.1", port,
                               nw_multipath_service_handover, NULL);
  peer = accept_within(listener);
  expect_state(&log, nw_connection_state_ready);

  /* 10 bytes are fewer than the minimum of 20: no completion yet. */
  write_all(peer, "0123456789", 10);
  receive(&log, connection, 1, 20, 100);
  sleep_ms(SETTLE_MS);
  CHECK(log_count(&log, ENTRY_RECEIVE, 1) == 0,
        "a receive completed below its minimum");

  /* 25 bytes reach the minimum: all of them come, up to the maximum. */
  write_all(peer, "abcdefghijklmno", 15);
  CHECK(wait_for(&log, ENTRY_RECEIVE, 1, 1), "receive did not complete");
  CHECK(entry_of(&log, ENTRY_RECEIVE, 1)->size == 25,
        "%zu bytes instead of the 25 available",
        entry_of(&log, ENTRY_RECEIVE, 1)->size);

  /* The maximum caps what one receive takes; the rest waits. */
  write_all(peer, "ABCDEFGHIJ", 10);
  sleep_ms(SETTLE_MS);
  receive(&log, connection, 2, 1, 4);
  receive(&log, connection, 3, 1, 100);
  CHECK(wait_for(&log, ENTRY_RECEIVE, 3, 1), "receive did not complete");
  CHECK(entry_of(&log, ENTRY_RECEIVE, 2)->size == 4,
        "the first receive took %zu bytes instead of 4",
        entry_of(&log, ENTRY_RECEIVE, 2)->size);
  CHECK(memcmp(entry_of(&log, ENTRY_RECEIVE, 2)->bytes, "ABCD", 4) == 0,
        "the first receive took %zu bytes instead of 4",
        entry_of(&log, ENTRY_RECEIVE, 2)->size);
  CHECK(entry_of(&log, ENTRY_RECEIVE, 3)->size == 6,
        "the second receive took %zu bytes instead of 6",
        entry_of(&log, ENTRY_RECEIVE, 3)->size);
  CHECK(memcmp(entry_of(&log, ENTRY_RECEIVE, 3)->bytes, "EFGHIJ", 6) == 0,
        "the second receive took %zu bytes instead of 6",
        entry_of(&log, ENTRY_RECEIVE, 3)->size);

  close_connection(&log, connection, false);
  close(peer);
  close(listener);
  log_destroy(&log);
  expect_no_live_objects();
}

/* Names resolve from /etc/hosts only; an unknown name waits with a DNS
 * error and no query is sent. */
static void test_dns_names(void) {
  callback_log_t log;
  nw_connection_t connection;
  const entry_t *entry;
  uint16_t port;
  int listener = listen_loopback(AF_INET, &port);
  int peer;

  log_init(&log);
  connection = open_connection(&log, "no-such-host.invalid", port,
                               nw_multipath_service_handover, NULL);
  expect_state(&log, nw_connection_state_waiting);
  entry = entry_of(&log, ENTRY_STATE, nw_connection_state_waiting);
  CHECK(entry->domain == nw_error_domain_dns,
        "unknown name: %d/%d instead of dns NoSuchRecord (-65554)",
        entry->domain, entry->code);
  CHECK(entry->code == kDNSServiceErr_NoSuchRecord,
        "unknown name: %d/%d instead of dns NoSuchRecord (-65554)",
        entry->domain, entry->code);
  close_connection(&log, connection, false);
  log_destroy(&log);

  /* Listeners on both loopback addresses and one port, so localhost
   * connects whichever family the hosts file gives it. */
  {
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6,
                              .sin6_port = htons(port),
                              .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    struct pollfd pollers[2] = {{.fd = listener, .events = POLLIN},
                                {.fd = -1, .events = POLLIN}};
    int v6_listener = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (v6_listener >= 0 &&
        bind(v6_listener, (struct sockaddr *)&v6, sizeof(v6)) == 0 &&
        listen(v6_listener, 4) == 0)
      pollers[1].fd = v6_listener;

    log_init(&log);
    connection = open_connection(&log, "localhost", port,
                                 nw_multipath_service_handover, NULL);
    CHECK(poll(pollers, 2, WAIT_MS) >= 1, "no connection from localhost");
    peer = accept4(pollers[0].revents ? listener : v6_listener, NULL, NULL,
                   SOCK_CLOEXEC);
    CHECK(peer >= 0, "accept: %s", strerror(errno));
    expect_state(&log, nw_connection_state_ready);
    close_connection(&log, connection, false);
    close(peer);
    log_destroy(&log);
    if (v6_listener >= 0)
      close(v6_listener);
  }
  close(listener);
  expect_no_live_objects();
}

static void *submit_blocks(void *argument) {
  dispatch_queue_t queue = ((void **)argument)[0];
  int *order = ((void **)argument)[1];
  atomic_int *running = ((void **)argument)[2];
  atomic_int *overlaps = ((void **)argument)[3];
  int *count = ((void **)argument)[4];
  int base = (int)(intptr_t)((void **)argument)[5];
  int i;

  for (i = 0; i < 1000; i++) {
    int value = base + i;

    dispatch_async(queue, ^{
      if (atomic_fetch_add(running, 1) != 0)
        atomic_fetch_add(overlaps, 1);
      order[(*count)++] = value;
      atomic_fetch_sub(running, 1);
    });
  }
  return NULL;
}

/* Serial queues run one block at a time in submission order; data objects
 * copy, concatenate and apply as documented. */
static void test_dispatch(void) {
  enum { SUBMITTERS = 4 };
  static int order[SUBMITTERS * 1000];
  dispatch_queue_t queue = dispatch_queue_create("order", NULL);
  atomic_int running = 0;
  atomic_int overlaps = 0;
  int count = 0;
  pthread_t threads[SUBMITTERS];
  void *arguments[SUBMITTERS][6];
  int last[SUBMITTERS];
  int i;

  for (i = 0; i < SUBMITTERS; i++) {
    arguments[i][0] = queue;
    arguments[i][1] = order;
    arguments[i][2] = &running;
    arguments[i][3] = &overlaps;
    arguments[i][4] = &count;
    arguments[i][5] = (void *)(intptr_t)(i * 100000);
    pthread_create(&threads[i], NULL, submit_blocks, arguments[i]);
  }
  for (i = 0; i < SUBMITTERS; i++)
    pthread_join(threads[i], NULL);
  CHECK(nw_emulation_wait_idle(WAIT_MS) == 0, "the queue did not drain");
  CHECK(count == SUBMITTERS * 1000, "%d blocks ran instead of %d", count,
        SUBMITTERS * 1000);
  CHECK(atomic_load(&overlaps) == 0, "blocks of a serial queue overlapped");
  for (i = 0; i < SUBMITTERS; i++)
    last[i] = -1;
  for (i = 0; i < count; i++) {
    int submitter = order[i] / 100000;

    CHECK(order[i] % 100000 > last[submitter],
          "blocks of one submitter ran out of order");
    last[submitter] = order[i] % 100000;
  }

  /* A block may release the last outside reference to its own queue. */
  {
    __block bool ran_after = false;

    dispatch_async(queue, ^{
      dispatch_release(queue);
      ran_after = true;
    });
    CHECK(nw_emulation_wait_idle(WAIT_MS) == 0, "the queue did not drain");
    CHECK(ran_after, "the releasing block did not finish");
  }

  {
    char source[] = "first";
    dispatch_data_t first =
        dispatch_data_create(source, 5, NULL, DISPATCH_DATA_DESTRUCTOR_DEFAULT);
    dispatch_data_t second = dispatch_data_create(
        "second", 6, NULL, DISPATCH_DATA_DESTRUCTOR_DEFAULT);
    dispatch_data_t both;
    char joined_bytes[16] = {0};
    size_t offset_values[4];
    char *joined = joined_bytes;
    size_t *offsets = offset_values;
    __block int regions = 0;
    bool completed;

    source[0] = 'X';
    both = dispatch_data_create_concat(first, second);
    dispatch_release(first);
    dispatch_release(second);
    CHECK(dispatch_data_get_size(both) == 11, "concat size %zu instead of 11",
          dispatch_data_get_size(both));
    completed =
        dispatch_data_apply(both, ^bool(dispatch_data_t region, size_t offset,
                                        const void *bytes, size_t size) {
          CHECK(dispatch_data_get_size(region) == size,
                "a region's size differs from its object's");
          offsets[regions++] = offset;
          memcpy(joined + offset, bytes, size);
          return true;
        });
    CHECK(completed, "apply did not complete");
    CHECK(regions == 2, "regions or offsets wrong");
    CHECK(offsets[0] == 0, "regions or offsets wrong");
    CHECK(offsets[1] == 5, "regions or offsets wrong");
    CHECK(strcmp(joined, "firstsecond") == 0,
          "data did not copy its buffer: %s", joined);
    regions = 0;
    completed =
        dispatch_data_apply(both, ^bool(dispatch_data_t region, size_t offset,
                                        const void *bytes, size_t size) {
          (void)region;
          (void)offset;
          (void)bytes;
          (void)size;
          regions++;
          return false;
        });
    CHECK(!completed, "apply did not stop when asked");
    CHECK(regions == 1, "apply did not stop when asked");
    dispatch_release(both);
  }
  expect_no_live_objects();
}

typedef struct selftest {
  const char *name;
  void (*run)(void);
} selftest_t;

static const selftest_t tests[] = {
    {"completions-once-on-queue", test_completions_once_on_queue},
    {"content-with-end-or-error", test_content_with_end_or_error},
    {"end-of-stream-final-context", test_end_of_stream_final_context},
    {"final-send-half-closes", test_final_send_half_closes},
    {"cancel-fails-outstanding", test_cancel_fails_outstanding},
    {"refused-waits-and-retries", test_refused_waits_and_retries},
    {"refcount-and-leak-check", test_refcount_and_leak_check},
    {"states-and-paths", test_states_and_paths},
    {"parameters", test_parameters},
    {"receive-minimum-maximum", test_receive_minimum_maximum},
    {"dns-names", test_dns_names},
    {"dispatch", test_dispatch},
};

int main(int argc, char **argv) {
  size_t count = sizeof(tests) / sizeof(tests[0]);
  size_t i;

  program_path = argv[0];
  signal(SIGPIPE, SIG_IGN);
  if (argc == 3 && strcmp(argv[1], "--child") == 0)
    return run_child_case(argv[2]);
  if (argc != 2) {
    fprintf(stderr, "usage: %s NAME | all | list\n", argv[0]);
    return 2;
  }
  if (strcmp(argv[1], "list") == 0) {
    for (i = 0; i < count; i++)
      printf("%s\n", tests[i].name);
    return 0;
  }
  for (i = 0; i < count; i++) {
    if (strcmp(argv[1], "all") == 0 || strcmp(argv[1], tests[i].name) == 0) {
      tests[i].run();
      printf("ok %s\n", tests[i].name);
      fflush(stdout);
      if (strcmp(argv[1], "all") != 0)
        return 0;
    }
  }
  if (strcmp(argv[1], "all") == 0)
    return 0;
  fprintf(stderr, "unknown test %s; selftest list prints the names\n", argv[1]);
  return 2;
}
