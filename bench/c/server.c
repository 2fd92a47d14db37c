/*
 * server.c: the peer of every benchmark client. One thread, epoll,
 * non-blocking sockets. It listens on 127.0.0.1 twice, with MPTCP on one
 * port and plain TCP on another, so that every contender talks to the same
 * code and only the transport differs. protocol.h describes the workloads.
 *
 * It prints {"mptcpPort":N,"tcpPort":M} on one line, then serves until its
 * standard input reaches end of file (the parent exited) or SIGTERM.
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define IO_SIZE (1024 * 1024)
#define ECHO_SIZE (64 * 1024)
/* Reads or sends per readiness event, so that one bulk transfer cannot
 * starve the other connections. */
#define IO_PER_EVENT 16

enum conn_state { READ_HEADER, UPLOAD, DOWNLOAD, ECHO, DONE };

typedef struct conn {
  int fd;
  enum conn_state state;
  unsigned char header[DOWNLOAD_HEADER_LEN];
  size_t header_len;
  uint64_t remaining;
  size_t send_size;
  uint32_t interest;
  char *echo;
  size_t echo_len;
  size_t echo_sent;
} conn_t;

static int epoll_fd;
static char io_buffer[IO_SIZE];
/* Marks the two listening sockets and standard input in epoll events. */
static int mptcp_tag, tcp_tag, stdin_tag;

static void die(const char *operation) {
  perror(operation);
  exit(1);
}

static uint64_t read_u64le(const unsigned char *p) {
  uint64_t value = 0;
  int i;

  for (i = 7; i >= 0; i--)
    value = (value << 8) | p[i];
  return value;
}

static uint32_t read_u32le(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static int open_listener(int protocol, void *tag) {
  struct sockaddr_in address;
  socklen_t len = sizeof(address);
  struct epoll_event event;
  int enable = 1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, protocol);

  if (fd < 0)
    die(protocol == IPPROTO_MPTCP ? "socket(IPPROTO_MPTCP)" : "socket");
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &enable, sizeof(enable));
  memset(&address, 0, sizeof(address));
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&address, sizeof(address)) != 0)
    die("bind");
  if (listen(fd, 4096) != 0)
    die("listen");
  if (getsockname(fd, (struct sockaddr *)&address, &len) != 0)
    die("getsockname");
  memset(&event, 0, sizeof(event));
  event.events = EPOLLIN;
  event.data.ptr = tag;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0)
    die("epoll_ctl");
  return fd;
}

static void set_interest(conn_t *c, uint32_t want) {
  struct epoll_event event;

  if (c->interest == want)
    return;
  memset(&event, 0, sizeof(event));
  event.events = want;
  event.data.ptr = c;
  epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &event);
  c->interest = want;
}

static void close_conn(conn_t *c) {
  close(c->fd);
  free(c->echo);
  free(c);
}

static void accept_all(int listener) {
  for (;;) {
    struct epoll_event event;
    int enable = 1;
    conn_t *c;
    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK);

    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        perror("accept4");
      return;
    }
    /* Echo replies must not wait for Nagle's algorithm. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &enable, sizeof(enable));
    c = calloc(1, sizeof(*c));
    if (c == NULL)
      die("calloc");
    c->fd = fd;
    c->state = READ_HEADER;
    c->interest = EPOLLIN;
    memset(&event, 0, sizeof(event));
    event.events = EPOLLIN;
    event.data.ptr = c;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0)
      die("epoll_ctl");
  }
}

/* Returns 0 to keep the connection, -1 to close it. */
static int send_download(conn_t *c) {
  int i;

  for (i = 0; i < IO_PER_EVENT && c->remaining > 0; i++) {
    size_t size = c->remaining < c->send_size ? c->remaining : c->send_size;
    ssize_t n = send(c->fd, io_buffer, size, MSG_NOSIGNAL);
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    c->remaining -= (uint64_t)n;
  }
  if (c->remaining == 0) {
    shutdown(c->fd, SHUT_WR);
    c->state = DONE;
    set_interest(c, EPOLLIN);
  }
  return 0;
}

/* Sends pending echo bytes. The connection reads again only once they are
 * all out. */
static int flush_echo(conn_t *c) {
  while (c->echo_sent < c->echo_len) {
    ssize_t n = send(c->fd, c->echo + c->echo_sent, c->echo_len - c->echo_sent,
                     MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        set_interest(c, EPOLLOUT);
        return 0;
      }
      return -1;
    }
    c->echo_sent += (size_t)n;
  }
  c->echo_len = c->echo_sent = 0;
  set_interest(c, EPOLLIN);
  return 0;
}

/* Consumes header bytes. Returns 1 when the header is complete, 0 when more
 * are needed, and -1 on a protocol error. */
static int parse_header(conn_t *c, const unsigned char *data, size_t len,
                        size_t *used) {
  size_t need;

  *used = 0;
  if (c->header_len == 0 && len > 0) {
    c->header[0] = data[0];
    c->header_len = 1;
    *used = 1;
  }
  if (c->header_len == 0)
    return 0;
  switch (c->header[0]) {
  case CMD_UPLOAD:
    need = UPLOAD_HEADER_LEN;
    break;
  case CMD_DOWNLOAD:
    need = DOWNLOAD_HEADER_LEN;
    break;
  case CMD_ECHO:
  case CMD_CONNECT:
    return 1;
  default:
    return -1;
  }
  while (c->header_len < need && *used < len)
    c->header[c->header_len++] = data[(*used)++];
  return c->header_len == need ? 1 : 0;
}

static int start_workload(conn_t *c) {
  static const char ack = CMD_CONNECT;

  switch (c->header[0]) {
  case CMD_UPLOAD:
    c->state = UPLOAD;
    c->remaining = read_u64le(c->header + 1);
    break;
  case CMD_DOWNLOAD:
    c->state = DOWNLOAD;
    c->remaining = read_u64le(c->header + 1);
    c->send_size = read_u32le(c->header + 9);
    if (c->send_size == 0 || c->send_size > IO_SIZE)
      return -1;
    set_interest(c, EPOLLOUT);
    return send_download(c);
  case CMD_ECHO:
    c->state = ECHO;
    c->echo = malloc(ECHO_SIZE);
    if (c->echo == NULL)
      return -1;
    break;
  case CMD_CONNECT:
    c->state = DONE;
    if (send(c->fd, &ack, 1, MSG_NOSIGNAL) != 1)
      return -1;
    break;
  }
  return 0;
}

/* Handles bytes that arrived, and returns -1 to close the connection. */
static int consume(conn_t *c, const unsigned char *data, size_t len) {
  static const char ack = UPLOAD_ACK;

  while (len > 0) {
    size_t used;
    int r;

    switch (c->state) {
    case READ_HEADER:
      r = parse_header(c, data, len, &used);
      if (r < 0)
        return -1;
      data += used;
      len -= used;
      if (r == 1 && start_workload(c) != 0)
        return -1;
      break;
    case UPLOAD:
      used = len < c->remaining ? len : (size_t)c->remaining;
      c->remaining -= used;
      data += used;
      len -= used;
      if (c->remaining == 0) {
        c->state = DONE;
        if (send(c->fd, &ack, 1, MSG_NOSIGNAL) != 1)
          return -1;
      }
      break;
    case ECHO:
      used = len < ECHO_SIZE - c->echo_len ? len : ECHO_SIZE - c->echo_len;
      memcpy(c->echo + c->echo_len, data, used);
      c->echo_len += used;
      data += used;
      len -= used;
      if (flush_echo(c) != 0)
        return -1;
      if (len > 0 && c->echo_len > 0)
        return -1; /* the client does not wait for its echo */
      break;
    case DOWNLOAD:
    case DONE:
      return 0; /* ignored */
    }
  }
  return 0;
}

static int handle_readable(conn_t *c) {
  int i;

  for (i = 0; i < IO_PER_EVENT; i++) {
    /* An echo connection reads no more than its buffer can take. */
    size_t size = c->state == ECHO ? ECHO_SIZE - c->echo_len : IO_SIZE;
    ssize_t n = recv(c->fd, io_buffer, size, 0);

    if (n == 0)
      return -1;
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    if (consume(c, (unsigned char *)io_buffer, (size_t)n) != 0)
      return -1;
    if (c->state == DOWNLOAD || (c->state == ECHO && c->echo_len > 0))
      return 0;
  }
  return 0;
}

static void handle_event(conn_t *c, uint32_t events) {
  int r = 0;

  if (events & EPOLLOUT) {
    if (c->state == DOWNLOAD)
      r = send_download(c);
    else if (c->state == ECHO)
      r = flush_echo(c);
  }
  if (r == 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
      c->interest & EPOLLIN)
    r = handle_readable(c);
  else if (r == 0 && (events & EPOLLERR))
    r = -1;
  if (r != 0)
    close_conn(c);
}

static void raise_file_limit(void) {
  struct rlimit limit;

  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 &&
      limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

int main(void) {
  struct epoll_event events[MAX_EVENTS];
  struct epoll_event event;
  struct sockaddr_in address;
  socklen_t len;
  int mptcp_fd;
  int tcp_fd;
  int mptcp_port;

  signal(SIGPIPE, SIG_IGN);
  raise_file_limit();
  memset(io_buffer, 'x', sizeof(io_buffer));
  epoll_fd = epoll_create1(0);
  if (epoll_fd < 0)
    die("epoll_create1");

  mptcp_fd = open_listener(IPPROTO_MPTCP, &mptcp_tag);
  tcp_fd = open_listener(IPPROTO_TCP, &tcp_tag);
  memset(&event, 0, sizeof(event));
  event.events = EPOLLIN;
  event.data.ptr = &stdin_tag;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, STDIN_FILENO, &event) != 0)
    die("epoll_ctl(stdin)");

  len = sizeof(address);
  getsockname(mptcp_fd, (struct sockaddr *)&address, &len);
  mptcp_port = ntohs(address.sin_port);
  len = sizeof(address);
  getsockname(tcp_fd, (struct sockaddr *)&address, &len);
  printf("{\"mptcpPort\":%d,\"tcpPort\":%d}\n", mptcp_port,
         ntohs(address.sin_port));
  fflush(stdout);

  for (;;) {
    int n = epoll_wait(epoll_fd, events, MAX_EVENTS, -1);
    int i;

    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("epoll_wait");
    }
    for (i = 0; i < n; i++) {
      void *tag = events[i].data.ptr;
      if (tag == &mptcp_tag) {
        accept_all(mptcp_fd);
      } else if (tag == &tcp_tag) {
        accept_all(tcp_fd);
      } else if (tag == &stdin_tag) {
        char scratch[64];
        if (read(STDIN_FILENO, scratch, sizeof(scratch)) <= 0)
          return 0;
      } else {
        handle_event(tag, events[i].events);
      }
    }
  }
}
