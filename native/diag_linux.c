/*
 * diag_linux.c: the backup state of an MPTCP subflow, from sock_diag.
 *
 * The kernel reports a subflow's MPTCP flags only in the ULP information of
 * an inet_diag reply (INET_DIAG_ULP_INFO, nested MPTCP_SUBFLOW_ATTR_FLAGS),
 * and only to a process with CAP_NET_ADMIN; see tcp_diag_get_aux in the
 * kernel's net/ipv4/tcp_diag.c. Without it the state stays unknown.
 */
#define _GNU_SOURCE
#include "paths_linux.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/mptcp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Looks for a nested attribute of the given type in [start, start + len). */
static const struct rtattr *find_attribute(const void *start, size_t len,
                                           unsigned short type) {
  const struct rtattr *attribute = start;
  size_t left = len;

  for (; RTA_OK(attribute, left); attribute = RTA_NEXT(attribute, left))
    if ((attribute->rta_type & NLA_TYPE_MASK) == type)
      return attribute;
  return NULL;
}

/* Reads the MPTCP subflow flags out of one inet_diag reply. */
static int parse_reply(const struct nlmsghdr *header, uint32_t *flags) {
  const struct inet_diag_msg *message = NLMSG_DATA(header);
  size_t len = header->nlmsg_len - NLMSG_LENGTH(sizeof(*message));
  const struct rtattr *ulp;
  const struct rtattr *mptcp;
  const struct rtattr *value;

  ulp = find_attribute(message + 1, len, INET_DIAG_ULP_INFO);
  if (ulp == NULL)
    return -ENODATA;
  mptcp = find_attribute(RTA_DATA(ulp), RTA_PAYLOAD(ulp), INET_ULP_INFO_MPTCP);
  if (mptcp == NULL)
    return -ENODATA;
  value = find_attribute(RTA_DATA(mptcp), RTA_PAYLOAD(mptcp),
                         MPTCP_SUBFLOW_ATTR_FLAGS);
  if (value == NULL || RTA_PAYLOAD(value) < sizeof(uint32_t))
    return -ENODATA;
  memcpy(flags, RTA_DATA(value), sizeof(*flags));
  return 0;
}

static void fill_id(struct inet_diag_sockid *id,
                    const struct sockaddr_storage *local,
                    const struct sockaddr_storage *remote,
                    unsigned interface_index) {
  memset(id, 0, sizeof(*id));
  id->idiag_if = interface_index;
  id->idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  id->idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (local->ss_family == AF_INET6) {
    const struct sockaddr_in6 *l = (const struct sockaddr_in6 *)local;
    const struct sockaddr_in6 *r = (const struct sockaddr_in6 *)remote;
    id->idiag_sport = l->sin6_port;
    id->idiag_dport = r->sin6_port;
    memcpy(id->idiag_src, &l->sin6_addr, sizeof(l->sin6_addr));
    memcpy(id->idiag_dst, &r->sin6_addr, sizeof(r->sin6_addr));
  } else {
    const struct sockaddr_in *l = (const struct sockaddr_in *)local;
    const struct sockaddr_in *r = (const struct sockaddr_in *)remote;
    id->idiag_sport = l->sin_port;
    id->idiag_dport = r->sin_port;
    id->idiag_src[0] = l->sin_addr.s_addr;
    id->idiag_dst[0] = r->sin_addr.s_addr;
  }
}

static int query_backup(const struct sockaddr_storage *local,
                        const struct sockaddr_storage *remote,
                        unsigned interface_index) {
  struct {
    struct nlmsghdr header;
    struct inet_diag_req_v2 request;
  } query;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  struct timeval timeout = {.tv_sec = 1, .tv_usec = 0};
  char reply[8192];
  const struct nlmsghdr *header;
  uint32_t flags = 0;
  ssize_t n;
  int fd;
  int r = -ENODATA;

  fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0)
    return -errno;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));

  /* Without NLM_F_DUMP the kernel looks up the one socket with this
   * four-tuple. INET_DIAG_INFO also brings the ULP information. */
  memset(&query, 0, sizeof(query));
  query.header.nlmsg_len = sizeof(query);
  query.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  query.header.nlmsg_flags = NLM_F_REQUEST;
  query.request.sdiag_family = (unsigned char)local->ss_family;
  query.request.sdiag_protocol = IPPROTO_TCP;
  query.request.idiag_ext = 1 << (INET_DIAG_INFO - 1);
  query.request.idiag_states = ~0U;
  fill_id(&query.request.id, local, remote, interface_index);
  if (sendto(fd, &query, sizeof(query), 0, (struct sockaddr *)&kernel,
             sizeof(kernel)) < 0) {
    r = -errno;
    close(fd);
    return r;
  }

  n = recv(fd, reply, sizeof(reply), 0);
  close(fd);
  if (n < 0)
    return -errno;
  for (header = (const struct nlmsghdr *)reply; NLMSG_OK(header, (size_t)n);
       header = NLMSG_NEXT(header, n)) {
    if (header->nlmsg_type == NLMSG_ERROR) {
      const struct nlmsgerr *error = NLMSG_DATA(header);
      return error->error < 0 ? error->error : -ENODATA;
    }
    if (header->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
      r = parse_reply(header, &flags);
      break;
    }
  }
  if (r != 0)
    return r;
  return (flags & (MPTCP_SUBFLOW_FLAG_BKUP_LOC | MPTCP_SUBFLOW_FLAG_BKUP_REM))
             ? 1
             : 0;
}

int mp__subflow_backup(const struct sockaddr_storage *local,
                       const struct sockaddr_storage *remote,
                       const char *interface_name) {
  int r = query_backup(local, remote, 0);

  /* A subflow bound to its interface, as the path manager binds subflows
   * of an endpoint with a device, is found only with that interface. */
  if (r == -ENOENT && interface_name[0] != '\0')
    r = query_backup(local, remote, if_nametoindex(interface_name));
  return r;
}
