/*
 * report.c: emulated data transfer reports and the socket statistics they
 * are built from.
 *
 * A report covers a span, as in the framework: from its creation, or from
 * the ready state when it was created before, to its collection, or to the
 * end of the connection. Its values are the differences between two
 * snapshots of the socket. The paths are the subflows of an MPTCP socket
 * (MPTCP_TCPINFO and MPTCP_SUBFLOW_ADDRS, Linux 5.17), or the one path of a
 * TCP socket. A subflow is recognised in both snapshots by its addresses.
 */
#include "internal.h"

#include <Block.h>
#include <ifaddrs.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Socket option levels and names from linux/mptcp.h and linux/socket.h,
 * which C libraries may ship without the MPTCP ones. */
#define LEVEL_TCP 6
#define LEVEL_MPTCP 284
#define OPTION_MPTCP_TCPINFO 2
#define OPTION_MPTCP_SUBFLOW_ADDRS 3

/* struct mptcp_subflow_data of linux/mptcp.h: the header of both lists. */
struct subflow_data {
  uint32_t size_subflow_data;
  uint32_t num_subflows;
  uint32_t size_kernel;
  uint32_t size_user;
} __attribute__((aligned(8)));

/* struct mptcp_subflow_addrs of linux/mptcp.h. */
struct subflow_addrs {
  struct sockaddr_storage local;
  struct sockaddr_storage remote;
};

const uint32_t _nw_data_transfer_report_all_paths = UINT32_MAX;

/* Finds the name of the interface that has address. */
static void find_interface(struct ifaddrs *interfaces,
                           const struct sockaddr_storage *address, char *name,
                           size_t size) {
  struct ifaddrs *entry;

  name[0] = '\0';
  for (entry = interfaces; entry != NULL; entry = entry->ifa_next) {
    const struct sockaddr *candidate = entry->ifa_addr;
    bool same;

    if (candidate == NULL || candidate->sa_family != address->ss_family)
      continue;
    if (address->ss_family == AF_INET)
      same = ((const struct sockaddr_in *)candidate)->sin_addr.s_addr ==
             ((const struct sockaddr_in *)address)->sin_addr.s_addr;
    else
      same = memcmp(&((const struct sockaddr_in6 *)candidate)->sin6_addr,
                    &((const struct sockaddr_in6 *)address)->sin6_addr,
                    sizeof(struct in6_addr)) == 0;
    if (same) {
      snprintf(name, size, "%s", entry->ifa_name);
      return;
    }
  }
}

static void fill_path(emu_path_stats_t *path, const struct tcp_info *info) {
  path->bytes_sent = info->tcpi_bytes_sent;
  path->bytes_received = info->tcpi_bytes_received;
  path->rtt_us = info->tcpi_rtt;
}

/* Reads the subflows of an MPTCP socket. Returns false for a socket without
 * MPTCP, including one that fell back to TCP. The two lists come from two
 * calls; when a subflow comes or goes in between, the shorter list wins. */
static bool read_subflows(int fd, emu_stats_t *out) {
  struct {
    struct subflow_data header;
    struct subflow_addrs entries[EMU_MAX_PATHS];
  } addrs;
  struct {
    struct subflow_data header;
    struct tcp_info entries[EMU_MAX_PATHS];
  } infos;
  socklen_t len;
  size_t count;
  size_t i;

  memset(&addrs, 0, sizeof(addrs));
  addrs.header.size_subflow_data = sizeof(addrs.header);
  addrs.header.size_user = sizeof(struct subflow_addrs);
  len = sizeof(addrs);
  if (getsockopt(fd, LEVEL_MPTCP, OPTION_MPTCP_SUBFLOW_ADDRS, &addrs, &len) !=
      0)
    return false;

  memset(&infos, 0, sizeof(infos));
  infos.header.size_subflow_data = sizeof(infos.header);
  infos.header.size_user = sizeof(struct tcp_info);
  len = sizeof(infos);
  if (getsockopt(fd, LEVEL_MPTCP, OPTION_MPTCP_TCPINFO, &infos, &len) != 0)
    return false;

  count = addrs.header.num_subflows;
  if (infos.header.num_subflows < count)
    count = infos.header.num_subflows;
  if (count > EMU_MAX_PATHS)
    count = EMU_MAX_PATHS;
  for (i = 0; i < count; i++) {
    out->paths[i].local = addrs.entries[i].local;
    out->paths[i].remote = addrs.entries[i].remote;
    fill_path(&out->paths[i], &infos.entries[i]);
  }
  out->count = count;
  return true;
}

static void read_single_path(int fd, emu_stats_t *out) {
  emu_path_stats_t *path = &out->paths[0];
  struct tcp_info info;
  socklen_t len;

  len = sizeof(path->local);
  getsockname(fd, (struct sockaddr *)&path->local, &len);
  len = sizeof(path->remote);
  getpeername(fd, (struct sockaddr *)&path->remote, &len);
  memset(&info, 0, sizeof(info));
  len = sizeof(info);
  if (getsockopt(fd, LEVEL_TCP, TCP_INFO, &info, &len) == 0)
    fill_path(path, &info);
  out->count = 1;
}

void emu_socket_stats(int fd, emu_stats_t *out) {
  struct ifaddrs *interfaces = NULL;
  size_t i;

  out->count = 0;
  memset(out->paths, 0, sizeof(out->paths));
  if (!read_subflows(fd, out))
    read_single_path(fd, out);
  if (getifaddrs(&interfaces) != 0)
    return;
  for (i = 0; i < out->count; i++)
    find_interface(interfaces, &out->paths[i].local,
                   out->paths[i].interface_name,
                   sizeof(out->paths[i].interface_name));
  freeifaddrs(interfaces);
}

/* Reports */

struct nw_data_transfer_report {
  emu_object_t base;
  nw_connection_t connection;
  pthread_mutex_t lock;
  /* Guarded by lock. */
  nw_data_transfer_report_state_t state;
  bool has_start; /* false: the span starts at the ready state */
  emu_stats_t start;
  emu_stats_t values; /* the span's values, once collected */
};

static void dispose_report(void *object) {
  nw_data_transfer_report_t report = object;

  nw_release(report->connection);
  pthread_mutex_destroy(&report->lock);
}

const emu_class_t emu_class_data_transfer_report = {
    "nw_data_transfer_report", EMU_FAMILY_NW, dispose_report};

/* Checks report and locks it. */
static void lock_report(nw_data_transfer_report_t report,
                        const char *function) {
  emu_object_check(report, &emu_class_data_transfer_report, function);
  pthread_mutex_lock(&report->lock);
}

nw_data_transfer_report_t
nw_connection_create_new_data_transfer_report(nw_connection_t connection) {
  nw_data_transfer_report_t report;

  emu_object_check(connection, &emu_class_connection,
                   "nw_connection_create_new_data_transfer_report");
  report = emu_object_create(&emu_class_data_transfer_report, sizeof(*report));
  pthread_mutex_init(&report->lock, NULL);
  report->connection = nw_retain(connection);
  report->state = nw_data_transfer_report_state_collecting;
  report->has_start = emu_connection_stats(connection, &report->start);
  return report;
}

nw_data_transfer_report_state_t
nw_data_transfer_report_get_state(nw_data_transfer_report_t report) {
  nw_data_transfer_report_state_t state;

  lock_report(report, "nw_data_transfer_report_get_state");
  state = report->state;
  pthread_mutex_unlock(&report->lock);
  return state;
}

static bool same_address(const struct sockaddr_storage *a,
                         const struct sockaddr_storage *b) {
  return memcmp(a, b, sizeof(*a)) == 0;
}

static uint64_t difference(uint64_t end, uint64_t start) {
  return end > start ? end - start : 0;
}

/* Sets values to end minus start, path by path. A path missing from start
 * began during the span and counts in full. */
static void subtract(const emu_stats_t *end, const emu_stats_t *start,
                     emu_stats_t *values) {
  size_t i;
  size_t j;

  *values = *end;
  for (i = 0; i < end->count; i++) {
    for (j = 0; j < start->count; j++) {
      if (same_address(&end->paths[i].local, &start->paths[j].local) &&
          same_address(&end->paths[i].remote, &start->paths[j].remote))
        break;
    }
    if (j == start->count)
      continue;
    values->paths[i].bytes_sent =
        difference(end->paths[i].bytes_sent, start->paths[j].bytes_sent);
    values->paths[i].bytes_received = difference(
        end->paths[i].bytes_received, start->paths[j].bytes_received);
  }
  values->application_sent =
      difference(end->application_sent, start->application_sent);
  values->application_received =
      difference(end->application_received, start->application_received);
}

/* Collects once: later calls keep the first values, as the framework's
 * report is complete after its first collection. */
static void collect_values(nw_data_transfer_report_t report) {
  emu_stats_t end;
  emu_stats_t start;

  if (report->state == nw_data_transfer_report_state_collected)
    return;
  report->state = nw_data_transfer_report_state_collected;
  memset(&report->values, 0, sizeof(report->values));
  if (!emu_connection_stats(report->connection, &end))
    return;
  if (report->has_start)
    start = report->start;
  else if (!emu_connection_ready_stats(report->connection, &start))
    return;
  subtract(&end, &start, &report->values);
}

void nw_data_transfer_report_collect(
    nw_data_transfer_report_t report, dispatch_queue_t queue,
    nw_data_transfer_report_collect_block_t collect_block) {
  nw_data_transfer_report_collect_block_t block;

  emu_object_check(report, &emu_class_data_transfer_report,
                   "nw_data_transfer_report_collect");
  emu_object_check(queue, &emu_class_queue, "nw_data_transfer_report_collect");
  if (collect_block == NULL)
    emu_fatal("nw_data_transfer_report_collect without a block");

  pthread_mutex_lock(&report->lock);
  collect_values(report);
  pthread_mutex_unlock(&report->lock);

  block = Block_copy(collect_block);
  nw_retain(report);
  dispatch_async(queue, ^{
    block(report);
    Block_release(block);
    nw_release(report);
  });
}

/* Returns the collected values, or NULL before the collection. Runs with
 * report->lock held. */
static const emu_stats_t *collected(nw_data_transfer_report_t report) {
  return report->state == nw_data_transfer_report_state_collected
             ? &report->values
             : NULL;
}

uint32_t
nw_data_transfer_report_get_path_count(nw_data_transfer_report_t report) {
  const emu_stats_t *values;
  uint32_t count;

  lock_report(report, "nw_data_transfer_report_get_path_count");
  values = collected(report);
  count = values != NULL ? (uint32_t)values->count : 0;
  pthread_mutex_unlock(&report->lock);
  return count;
}

typedef enum counter {
  COUNTER_SENT,
  COUNTER_RECEIVED,
  COUNTER_APPLICATION_SENT,
  COUNTER_APPLICATION_RECEIVED,
  COUNTER_RTT_MS
} counter_t;

static uint64_t path_value(const emu_stats_t *values, size_t index,
                           counter_t counter) {
  const emu_path_stats_t *path = &values->paths[index];

  switch (counter) {
  case COUNTER_SENT:
    return path->bytes_sent;
  case COUNTER_RECEIVED:
    return path->bytes_received;
  case COUNTER_RTT_MS:
    return path->rtt_us / 1000;
  default:
    return 0;
  }
}

/* Reads one counter of path_index, or the sum over the paths for
 * NW_ALL_PATHS. The application counts belong to the whole connection, so
 * path 0 and NW_ALL_PATHS carry them (a guess at the framework's split). */
static uint64_t read_counter(nw_data_transfer_report_t report,
                             uint32_t path_index, counter_t counter,
                             const char *function) {
  const emu_stats_t *values;
  uint64_t value = 0;
  size_t i;

  lock_report(report, function);
  values = collected(report);
  if (values == NULL || values->count == 0) {
    pthread_mutex_unlock(&report->lock);
    return 0;
  }
  if (counter == COUNTER_APPLICATION_SENT ||
      counter == COUNTER_APPLICATION_RECEIVED) {
    if (path_index == 0 || path_index == NW_ALL_PATHS)
      value = counter == COUNTER_APPLICATION_SENT
                  ? values->application_sent
                  : values->application_received;
  } else if (path_index == NW_ALL_PATHS) {
    if (counter == COUNTER_RTT_MS)
      value = path_value(values, 0, counter);
    else
      for (i = 0; i < values->count; i++)
        value += path_value(values, i, counter);
  } else if (path_index < values->count) {
    value = path_value(values, path_index, counter);
  }
  pthread_mutex_unlock(&report->lock);
  return value;
}

uint64_t nw_data_transfer_report_get_sent_transport_byte_count(
    nw_data_transfer_report_t report, uint32_t path_index) {
  return read_counter(report, path_index, COUNTER_SENT,
                      "nw_data_transfer_report_get_sent_transport_byte_count");
}

uint64_t nw_data_transfer_report_get_received_transport_byte_count(
    nw_data_transfer_report_t report, uint32_t path_index) {
  return read_counter(
      report, path_index, COUNTER_RECEIVED,
      "nw_data_transfer_report_get_received_transport_byte_count");
}

uint64_t nw_data_transfer_report_get_sent_application_byte_count(
    nw_data_transfer_report_t report, uint32_t path_index) {
  return read_counter(
      report, path_index, COUNTER_APPLICATION_SENT,
      "nw_data_transfer_report_get_sent_application_byte_count");
}

uint64_t nw_data_transfer_report_get_received_application_byte_count(
    nw_data_transfer_report_t report, uint32_t path_index) {
  return read_counter(
      report, path_index, COUNTER_APPLICATION_RECEIVED,
      "nw_data_transfer_report_get_received_application_byte_count");
}

uint64_t nw_data_transfer_report_get_transport_smoothed_rtt_milliseconds(
    nw_data_transfer_report_t report, uint32_t path_index) {
  return read_counter(
      report, path_index, COUNTER_RTT_MS,
      "nw_data_transfer_report_get_transport_smoothed_rtt_milliseconds");
}

nw_interface_t
nw_data_transfer_report_copy_path_interface(nw_data_transfer_report_t report,
                                            uint32_t path_index) {
  const emu_stats_t *values;
  nw_interface_t interface = NULL;

  lock_report(report, "nw_data_transfer_report_copy_path_interface");
  values = collected(report);
  if (path_index == NW_ALL_PATHS)
    path_index = 0;
  if (values != NULL && path_index < values->count &&
      values->paths[path_index].interface_name[0] != '\0')
    interface = emu_interface_create(values->paths[path_index].interface_name);
  pthread_mutex_unlock(&report->lock);
  return interface;
}
