/*
 * paths_linux.c: per-subflow statistics of a kernel MPTCP socket.
 *
 * MPTCP_FULL_INFO (Linux 6.5) returns the subflow ids, addresses and
 * tcp_info of every subflow in one consistent snapshot. Older kernels get
 * MPTCP_SUBFLOW_ADDRS and MPTCP_TCPINFO (Linux 5.17), two calls whose lists
 * may differ if a subflow comes or goes in between; the shorter list wins.
 * A socket without MPTCP (plain TCP, or a fallback) has one path.
 *
 * The structures below follow include/uapi/linux/mptcp.h of Linux 6.10. C
 * libraries ship older copies, and the kernel copies only as many bytes as
 * both sides know, so fields a kernel lacks stay zero.
 */
#define _GNU_SOURCE
#include "paths_linux.h"

#include <errno.h>
#include <ifaddrs.h>
#include <linux/tcp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "socket_linux.h"

#define SOL_TCP_LEVEL 6
#define TCP_INFO_OPTION 11
#define SOL_MPTCP_LEVEL 284
#define MPTCP_INFO_OPTION 1
#define MPTCP_TCPINFO_OPTION 2
#define MPTCP_SUBFLOW_ADDRS_OPTION 3
#define MPTCP_FULL_INFO_OPTION 4

/* Most subflows reported; the kernel's own limit is 8 per connection. */
#define MAX_SUBFLOWS 16

struct kernel_mptcp_info {
  uint8_t subflows;
  uint8_t add_addr_signal;
  uint8_t add_addr_accepted;
  uint8_t subflows_max;
  uint8_t add_addr_signal_max;
  uint8_t add_addr_accepted_max;
  uint32_t flags;
  uint32_t token;
  uint64_t write_seq;
  uint64_t snd_una;
  uint64_t rcv_nxt;
  uint8_t local_addr_used;
  uint8_t local_addr_max;
  uint8_t csum_enabled;
  uint32_t retransmits;
  uint64_t bytes_retrans;
  uint64_t bytes_sent;
  uint64_t bytes_received;
  uint64_t bytes_acked;
  uint8_t subflows_total;
  uint8_t reserved[3];
  uint32_t last_data_sent;
  uint32_t last_data_recv;
  uint32_t last_ack_recv;
};

struct kernel_subflow_data {
  uint32_t size_subflow_data;
  uint32_t num_subflows;
  uint32_t size_kernel;
  uint32_t size_user;
} __attribute__((aligned(8)));

struct kernel_subflow_addrs {
  struct sockaddr_storage local;
  struct sockaddr_storage remote;
};

struct kernel_subflow_info {
  uint32_t id;
  struct kernel_subflow_addrs addrs;
};

struct kernel_full_info {
  uint32_t size_tcpinfo_kernel;
  uint32_t size_tcpinfo_user;
  uint32_t size_sfinfo_kernel;
  uint32_t size_sfinfo_user;
  uint32_t num_subflows;
  uint32_t size_arrays_user;
  uint64_t subflow_info;
  uint64_t tcp_info;
  struct kernel_mptcp_info mptcp_info;
};

/* Finds the interface that has the local address of a path. */
static void find_interface(struct ifaddrs *interfaces,
                           const struct sockaddr_storage *address, char *name,
                           size_t size) {
  struct ifaddrs *entry;

  name[0] = '\0';
  for (entry = interfaces; entry != NULL; entry = entry->ifa_next) {
    const struct sockaddr *candidate = entry->ifa_addr;
    if (candidate == NULL || candidate->sa_family != address->ss_family)
      continue;
    if (address->ss_family == AF_INET) {
      const struct sockaddr_in *a = (const struct sockaddr_in *)candidate;
      const struct sockaddr_in *b = (const struct sockaddr_in *)address;
      if (a->sin_addr.s_addr != b->sin_addr.s_addr)
        continue;
    } else if (address->ss_family == AF_INET6) {
      const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)candidate;
      const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)address;
      if (memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) != 0)
        continue;
    } else {
      continue;
    }
    strncpy(name, entry->ifa_name, size - 1);
    name[size - 1] = '\0';
    return;
  }
}

static void fill_path(mp_path_t *path, uint32_t id,
                      const struct sockaddr_storage *local,
                      const struct sockaddr_storage *remote,
                      const struct tcp_info *info, int has_info) {
  memset(path, 0, sizeof(*path));
  path->id = id;
  path->backup = -1;
  if (local->ss_family == AF_INET || local->ss_family == AF_INET6) {
    path->local = *local;
    path->has_local = 1;
  }
  if (remote->ss_family == AF_INET || remote->ss_family == AF_INET6) {
    path->remote = *remote;
    path->has_remote = 1;
  }
  if (has_info) {
    path->bytes_sent = info->tcpi_bytes_sent;
    path->bytes_received = info->tcpi_bytes_received;
    path->rtt_us = info->tcpi_rtt;
  }
}

static mp_path_report_t *new_report(size_t count) {
  mp_path_report_t *report =
      calloc(1, sizeof(*report) + count * sizeof(mp_path_t));

  if (report != NULL)
    report->count = count;
  return report;
}

/* One path for a socket without MPTCP. */
static int collect_single(int fd, mp_path_report_t **out) {
  struct sockaddr_storage local;
  struct sockaddr_storage remote;
  struct tcp_info info;
  socklen_t len;
  int has_info;
  mp_path_report_t *report = new_report(1);

  if (report == NULL)
    return -ENOMEM;
  memset(&local, 0, sizeof(local));
  memset(&remote, 0, sizeof(remote));
  memset(&info, 0, sizeof(info));
  len = sizeof(local);
  getsockname(fd, (struct sockaddr *)&local, &len);
  len = sizeof(remote);
  getpeername(fd, (struct sockaddr *)&remote, &len);
  len = sizeof(info);
  has_info = getsockopt(fd, SOL_TCP_LEVEL, TCP_INFO_OPTION, &info, &len) == 0;
  fill_path(&report->paths[0], 0, &local, &remote, &info, has_info);
  report->bytes_sent =
      has_info ? info.tcpi_bytes_sent - info.tcpi_bytes_retrans : 0;
  report->bytes_received = has_info ? info.tcpi_bytes_received : 0;
  *out = report;
  return 0;
}

/* MPTCP_FULL_INFO, Linux 6.5 and later. */
static int collect_full(int fd, mp_path_report_t **out) {
  struct kernel_full_info full;
  struct kernel_subflow_info subflows[MAX_SUBFLOWS];
  struct tcp_info infos[MAX_SUBFLOWS];
  socklen_t len = sizeof(full);
  mp_path_report_t *report;
  size_t count;
  size_t i;

  memset(&full, 0, sizeof(full));
  memset(subflows, 0, sizeof(subflows));
  memset(infos, 0, sizeof(infos));
  full.size_tcpinfo_user = sizeof(struct tcp_info);
  full.size_sfinfo_user = sizeof(struct kernel_subflow_info);
  full.size_arrays_user = MAX_SUBFLOWS;
  full.subflow_info = (uint64_t)(uintptr_t)subflows;
  full.tcp_info = (uint64_t)(uintptr_t)infos;
  if (getsockopt(fd, SOL_MPTCP_LEVEL, MPTCP_FULL_INFO_OPTION, &full, &len) != 0)
    return -errno;

  count = full.num_subflows < MAX_SUBFLOWS ? full.num_subflows : MAX_SUBFLOWS;
  report = new_report(count);
  if (report == NULL)
    return -ENOMEM;
  for (i = 0; i < count; i++)
    fill_path(&report->paths[i], subflows[i].id, &subflows[i].addrs.local,
              &subflows[i].addrs.remote, &infos[i], 1);
  report->bytes_sent = full.mptcp_info.bytes_sent;
  report->bytes_received = full.mptcp_info.bytes_received;
  *out = report;
  return 0;
}

/* MPTCP_SUBFLOW_ADDRS and MPTCP_TCPINFO, Linux 5.17 to 6.4. */
static int collect_split(int fd, mp_path_report_t **out) {
  struct {
    struct kernel_subflow_data header;
    struct kernel_subflow_addrs entries[MAX_SUBFLOWS];
  } addrs;
  struct {
    struct kernel_subflow_data header;
    struct tcp_info entries[MAX_SUBFLOWS];
  } infos;
  struct kernel_mptcp_info totals;
  socklen_t len;
  mp_path_report_t *report;
  size_t count;
  size_t with_info;
  size_t i;

  memset(&addrs, 0, sizeof(addrs));
  addrs.header.size_subflow_data = sizeof(addrs.header);
  addrs.header.size_user = sizeof(struct kernel_subflow_addrs);
  len = sizeof(addrs);
  if (getsockopt(fd, SOL_MPTCP_LEVEL, MPTCP_SUBFLOW_ADDRS_OPTION, &addrs,
                 &len) != 0)
    return -errno;
  memset(&infos, 0, sizeof(infos));
  infos.header.size_subflow_data = sizeof(infos.header);
  infos.header.size_user = sizeof(struct tcp_info);
  len = sizeof(infos);
  with_info =
      getsockopt(fd, SOL_MPTCP_LEVEL, MPTCP_TCPINFO_OPTION, &infos, &len) == 0
          ? infos.header.num_subflows
          : 0;
  memset(&totals, 0, sizeof(totals));
  len = sizeof(totals);
  getsockopt(fd, SOL_MPTCP_LEVEL, MPTCP_INFO_OPTION, &totals, &len);

  count = addrs.header.num_subflows < MAX_SUBFLOWS ? addrs.header.num_subflows
                                                   : MAX_SUBFLOWS;
  report = new_report(count);
  if (report == NULL)
    return -ENOMEM;
  for (i = 0; i < count; i++)
    fill_path(&report->paths[i], (uint32_t)i + 1, &addrs.entries[i].local,
              &addrs.entries[i].remote, &infos.entries[i], i < with_info);
  report->bytes_sent = totals.bytes_sent;
  report->bytes_received = totals.bytes_received;
  *out = report;
  return 0;
}

int mp__collect_paths(int fd, mp_path_report_t **out) {
  struct ifaddrs *interfaces = NULL;
  int mptcp = mp_fd_is_mptcp(fd);
  int r;
  size_t i;

  *out = NULL;
  if (mptcp < 0)
    return mptcp;
  if (mptcp == 0) {
    r = collect_single(fd, out);
  } else {
    r = collect_full(fd, out);
    if (r == -EOPNOTSUPP || r == -ENOPROTOOPT || r == -EINVAL)
      r = collect_split(fd, out);
  }
  if (r != 0)
    return r;

  if (getifaddrs(&interfaces) == 0) {
    for (i = 0; i < (*out)->count; i++)
      if ((*out)->paths[i].has_local)
        find_interface(interfaces, &(*out)->paths[i].local,
                       (*out)->paths[i].interface_name,
                       sizeof((*out)->paths[i].interface_name));
    freeifaddrs(interfaces);
  }

  /* Only subflows of MPTCP have a backup state. */
  for (i = 0; mptcp == 1 && i < (*out)->count; i++) {
    mp_path_t *path = &(*out)->paths[i];
    if (path->has_local && path->has_remote) {
      int backup =
          mp__subflow_backup(&path->local, &path->remote, path->interface_name);
      path->backup = backup < 0 ? -1 : backup;
    }
  }
  return 0;
}

static uint64_t mix(uint64_t hash, const void *data, size_t size) {
  const unsigned char *bytes = data;
  size_t i;

  /* FNV-1a, 64 bits. */
  for (i = 0; i < size; i++) {
    hash ^= bytes[i];
    hash *= 1099511628211ULL;
  }
  return hash;
}

uint64_t mp__path_signature(int fd) {
  struct {
    struct kernel_subflow_data header;
    struct kernel_subflow_addrs entries[MAX_SUBFLOWS];
  } addrs;
  socklen_t len = sizeof(addrs);
  uint64_t hash = 14695981039346656037ULL;
  size_t count;
  size_t i;

  memset(&addrs, 0, sizeof(addrs));
  addrs.header.size_subflow_data = sizeof(addrs.header);
  addrs.header.size_user = sizeof(struct kernel_subflow_addrs);
  if (getsockopt(fd, SOL_MPTCP_LEVEL, MPTCP_SUBFLOW_ADDRS_OPTION, &addrs,
                 &len) != 0)
    return 0;
  count = addrs.header.num_subflows < MAX_SUBFLOWS ? addrs.header.num_subflows
                                                   : MAX_SUBFLOWS;
  hash = mix(hash, &count, sizeof(count));
  for (i = 0; i < count; i++)
    hash = mix(hash, &addrs.entries[i], sizeof(addrs.entries[i]));
  return hash;
}
