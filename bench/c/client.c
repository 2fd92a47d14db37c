/*
 * client.c: the C contender, the machine's limit for each workload. It runs
 * the workloads of the Node clients (bench/client.ts) with blocking sockets
 * and prints one JSON object with the same fields.
 *
 *   client --port N --workload upload|download|pingpong|connrate|idle
 *          [--transport mptcp|tcp] [--bytes N] [--chunk N] [--count N]
 *          [--warmup N] [--concurrency N]
 *
 * Reads use 64 KiB buffers, the size that libuv and the nw-mptcp backend
 * read with, so the comparison shows the cost of the layers above recv().
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE (64 * 1024)

static int port;
static int protocol = IPPROTO_MPTCP;

static void die(const char *operation) {
  fprintf(stderr, "client: %s: %s\n", operation, strerror(errno));
  exit(1);
}

static double now_seconds(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User and system CPU time of the whole process, in seconds. */
static void cpu_seconds(double *user, double *system) {
  struct rusage usage;

  getrusage(RUSAGE_SELF, &usage);
  *user = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6;
  *system =
      (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
}

static long rss_bytes(void) {
  long pages = 0;
  long resident = 0;
  FILE *file = fopen("/proc/self/statm", "r");

  if (file == NULL)
    return -1;
  if (fscanf(file, "%ld %ld", &pages, &resident) != 2)
    resident = -1;
  fclose(file);
  return resident * sysconf(_SC_PAGESIZE);
}

static int open_connection(void) {
  struct sockaddr_in address;
  int enable = 1;
  int fd = socket(AF_INET, SOCK_STREAM, protocol);

  if (fd < 0)
    die("socket");
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &enable, sizeof(enable));
  memset(&address, 0, sizeof(address));
  address.sin_family = AF_INET;
  address.sin_port = htons((uint16_t)port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0)
    die("connect");
  return fd;
}

/* Exits unless the connection uses the requested transport. */
static void check_transport(int fd) {
  int value = 0;
  socklen_t len = sizeof(value);
  int expected = protocol == IPPROTO_MPTCP;

  if (protocol == IPPROTO_MPTCP &&
      getsockopt(fd, SOL_TCP, TCP_IS_MPTCP, &value, &len) != 0)
    die("getsockopt(TCP_IS_MPTCP)");
  if (value != expected) {
    fprintf(stderr, "client: the connection %s MPTCP\n",
            expected ? "does not use" : "uses");
    exit(1);
  }
}

static void write_all(int fd, const void *data, size_t len) {
  const char *p = data;

  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("write");
    }
    p += n;
    len -= (size_t)n;
  }
}

static void read_exact(int fd, void *data, size_t len) {
  char *p = data;

  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n == 0) {
      errno = ECONNRESET;
      die("read: end of stream");
    }
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("read");
    }
    p += n;
    len -= (size_t)n;
  }
}

static void put_u64le(unsigned char *p, uint64_t value) {
  int i;

  for (i = 0; i < 8; i++)
    p[i] = (unsigned char)(value >> (8 * i));
}

static void put_u32le(unsigned char *p, uint32_t value) {
  int i;

  for (i = 0; i < 4; i++)
    p[i] = (unsigned char)(value >> (8 * i));
}

static void print_bulk(const char *workload, uint64_t bytes, double seconds,
                       double user, double system) {
  printf("{\"workload\":\"%s\",\"bytes\":%llu,\"seconds\":%.6f,"
         "\"cpuUser\":%.6f,\"cpuSystem\":%.6f}\n",
         workload, (unsigned long long)bytes, seconds, user, system);
}

static void run_upload(uint64_t bytes, size_t chunk) {
  unsigned char header[UPLOAD_HEADER_LEN];
  char *buffer = malloc(chunk);
  double start, user0, system0, user1, system1;
  uint64_t sent = 0;
  char ack;
  int fd = open_connection();

  if (buffer == NULL)
    die("malloc");
  memset(buffer, 'u', chunk);
  check_transport(fd);
  header[0] = CMD_UPLOAD;
  put_u64le(header + 1, bytes);
  cpu_seconds(&user0, &system0);
  start = now_seconds();
  write_all(fd, header, sizeof(header));
  while (sent < bytes) {
    size_t size = bytes - sent < chunk ? (size_t)(bytes - sent) : chunk;
    write_all(fd, buffer, size);
    sent += size;
  }
  read_exact(fd, &ack, 1);
  cpu_seconds(&user1, &system1);
  print_bulk("upload", bytes, now_seconds() - start, user1 - user0,
             system1 - system0);
  close(fd);
  free(buffer);
}

static void run_download(uint64_t bytes, size_t chunk) {
  unsigned char header[DOWNLOAD_HEADER_LEN];
  char *buffer = malloc(READ_SIZE);
  double start, user0, system0, user1, system1;
  uint64_t received = 0;
  int fd = open_connection();

  if (buffer == NULL)
    die("malloc");
  check_transport(fd);
  header[0] = CMD_DOWNLOAD;
  put_u64le(header + 1, bytes);
  put_u32le(header + 9, (uint32_t)chunk);
  cpu_seconds(&user0, &system0);
  start = now_seconds();
  write_all(fd, header, sizeof(header));
  while (received < bytes) {
    ssize_t n = read(fd, buffer, READ_SIZE);
    if (n == 0) {
      errno = ECONNRESET;
      die("read: end of stream before the last byte");
    }
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("read");
    }
    received += (uint64_t)n;
  }
  cpu_seconds(&user1, &system1);
  print_bulk("download", bytes, now_seconds() - start, user1 - user0,
             system1 - system0);
  close(fd);
  free(buffer);
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a;
  double y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The value at quantile q of sorted values, by the nearest-rank method. */
static double quantile(const double *sorted, size_t count, double q) {
  size_t rank = (size_t)(q * (double)count + 0.999999);
  if (rank < 1)
    rank = 1;
  return sorted[rank - 1];
}

static void run_pingpong(size_t size, size_t count, size_t warmup) {
  char *out = malloc(size);
  char *in = malloc(size);
  double *rtt = malloc(count * sizeof(double));
  const char command = CMD_ECHO;
  double user0 = 0, system0 = 0, user1, system1;
  double sum = 0;
  size_t i;
  int fd = open_connection();

  if (out == NULL || in == NULL || rtt == NULL)
    die("malloc");
  memset(out, 'p', size);
  check_transport(fd);
  write_all(fd, &command, 1);
  for (i = 0; i < warmup + count; i++) {
    double start;
    if (i == warmup)
      cpu_seconds(&user0, &system0);
    start = now_seconds();
    write_all(fd, out, size);
    read_exact(fd, in, size);
    if (i >= warmup)
      rtt[i - warmup] = (now_seconds() - start) * 1e6;
  }
  cpu_seconds(&user1, &system1);
  for (i = 0; i < count; i++)
    sum += rtt[i];
  qsort(rtt, count, sizeof(double), compare_doubles);
  printf("{\"workload\":\"pingpong\",\"size\":%zu,\"count\":%zu,"
         "\"p50Us\":%.3f,\"p99Us\":%.3f,\"meanUs\":%.3f,"
         "\"cpuUser\":%.6f,\"cpuSystem\":%.6f}\n",
         size, count, quantile(rtt, count, 0.5), quantile(rtt, count, 0.99),
         sum / (double)count, user1 - user0, system1 - system0);
  close(fd);
  free(out);
  free(in);
  free(rtt);
}

/* One connect, one byte each way, one close. */
static void connect_once(void) {
  const char command = CMD_CONNECT;
  char reply;
  int fd = open_connection();

  write_all(fd, &command, 1);
  read_exact(fd, &reply, 1);
  close(fd);
}

static void *connect_loop(void *arg) {
  size_t count = *(size_t *)arg;
  size_t i;

  for (i = 0; i < count; i++)
    connect_once();
  return NULL;
}

static void run_connrate(size_t count, size_t warmup, size_t concurrency) {
  pthread_t *threads = calloc(concurrency, sizeof(pthread_t));
  size_t *shares = calloc(concurrency, sizeof(size_t));
  double start, seconds, user0, system0, user1, system1;
  size_t i;
  int fd = open_connection();

  if (threads == NULL || shares == NULL)
    die("calloc");
  check_transport(fd);
  close(fd);
  for (i = 0; i < warmup; i++)
    connect_once();
  for (i = 0; i < concurrency; i++)
    shares[i] = count / concurrency + (i < count % concurrency ? 1 : 0);
  cpu_seconds(&user0, &system0);
  start = now_seconds();
  for (i = 0; i < concurrency; i++) {
    errno = pthread_create(&threads[i], NULL, connect_loop, &shares[i]);
    if (errno != 0)
      die("pthread_create");
  }
  for (i = 0; i < concurrency; i++)
    pthread_join(threads[i], NULL);
  seconds = now_seconds() - start;
  cpu_seconds(&user1, &system1);
  printf("{\"workload\":\"connrate\",\"count\":%zu,\"concurrency\":%zu,"
         "\"seconds\":%.6f,\"cpuUser\":%.6f,\"cpuSystem\":%.6f}\n",
         count, concurrency, seconds, user1 - user0, system1 - system0);
  free(threads);
  free(shares);
}

static void run_idle(size_t count) {
  int *fds = malloc(count * sizeof(int));
  long before, after;
  size_t i;
  int first = open_connection();

  if (fds == NULL)
    die("malloc");
  check_transport(first);
  before = rss_bytes();
  for (i = 0; i < count; i++)
    fds[i] = open_connection();
  after = rss_bytes();
  printf("{\"workload\":\"idle\",\"count\":%zu,\"rssBefore\":%ld,"
         "\"rssAfter\":%ld}\n",
         count, before, after);
  for (i = 0; i < count; i++)
    close(fds[i]);
  close(first);
  free(fds);
}

static unsigned long long parse_number(const char *name, const char *text) {
  char *end;
  unsigned long long value;

  errno = 0;
  value = strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || end == text) {
    fprintf(stderr, "client: invalid value for %s: %s\n", name, text);
    exit(2);
  }
  return value;
}

static void raise_file_limit(void) {
  struct rlimit limit;

  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 &&
      limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

int main(int argc, char **argv) {
  const char *workload = NULL;
  unsigned long long bytes = 1ULL << 30;
  unsigned long long chunk = 64 * 1024;
  unsigned long long count = 1000;
  unsigned long long warmup = 0;
  unsigned long long concurrency = 1;
  int i;

  signal(SIGPIPE, SIG_IGN);
  raise_file_limit();
  for (i = 1; i + 1 < argc; i += 2) {
    const char *name = argv[i];
    const char *value = argv[i + 1];
    if (strcmp(name, "--port") == 0)
      port = (int)parse_number(name, value);
    else if (strcmp(name, "--workload") == 0)
      workload = value;
    else if (strcmp(name, "--transport") == 0)
      protocol = strcmp(value, "tcp") == 0 ? IPPROTO_TCP : IPPROTO_MPTCP;
    else if (strcmp(name, "--bytes") == 0)
      bytes = parse_number(name, value);
    else if (strcmp(name, "--chunk") == 0)
      chunk = parse_number(name, value);
    else if (strcmp(name, "--count") == 0)
      count = parse_number(name, value);
    else if (strcmp(name, "--warmup") == 0)
      warmup = parse_number(name, value);
    else if (strcmp(name, "--concurrency") == 0)
      concurrency = parse_number(name, value);
    else {
      fprintf(stderr, "client: unknown option %s\n", name);
      return 2;
    }
  }
  if (i != argc || workload == NULL || port <= 0 || port > 65535 ||
      chunk == 0 || count == 0 || concurrency == 0) {
    fprintf(stderr, "usage: client --port N --workload "
                    "upload|download|pingpong|connrate|idle [--transport "
                    "mptcp|tcp] [--bytes N] [--chunk N] [--count N] "
                    "[--warmup N] [--concurrency N]\n");
    return 2;
  }

  if (strcmp(workload, "upload") == 0)
    run_upload(bytes, chunk);
  else if (strcmp(workload, "download") == 0)
    run_download(bytes, chunk);
  else if (strcmp(workload, "pingpong") == 0)
    run_pingpong(chunk, count, warmup);
  else if (strcmp(workload, "connrate") == 0)
    run_connrate(count, warmup, concurrency);
  else if (strcmp(workload, "idle") == 0)
    run_idle(count);
  else {
    fprintf(stderr, "client: unknown workload %s\n", workload);
    return 2;
  }
  return 0;
}
