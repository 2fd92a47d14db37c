/*
 * socket_linux.c: kernel MPTCP sockets shared by the Linux client backend
 * and the server side: opening a socket with the fallback to TCP, telling
 * whether a connected socket uses MPTCP, and listening.
 */
#define _GNU_SOURCE
#include "socket_linux.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Values from the kernel's include/uapi/linux/in.h, mptcp.h and tcp.h, for
 * C libraries whose headers predate them. */
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef SOL_MPTCP
#define SOL_MPTCP 284
#endif
#ifndef MPTCP_INFO
#define MPTCP_INFO 1
#endif
#ifndef TCP_IS_MPTCP
#define TCP_IS_MPTCP 43
#endif

/* Opens a stream socket, MPTCP unless the service is disabled. A kernel that
 * lacks MPTCP (EPROTONOSUPPORT), has it switched off (ENOPROTOOPT, the
 * net.mptcp.enabled sysctl) or predates it (EINVAL, before 5.6) gets plain
 * TCP, and *fallback records that. */
int mp__open_stream_socket(int family, mp_service_t service, int *fallback) {
  int type = SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
  int fd;

  *fallback = 0;
  if (service != MP_SERVICE_DISABLED) {
    fd = socket(family, type, IPPROTO_MPTCP);
    if (fd >= 0)
      return fd;
    if (errno != ENOPROTOOPT && errno != EPROTONOSUPPORT && errno != EINVAL)
      return -errno;
    *fallback = 1;
  }
  fd = socket(family, type, IPPROTO_TCP);
  return fd >= 0 ? fd : -errno;
}

int mp_fd_is_mptcp(int fd) {
  int value = 0;
  int protocol = 0;
  socklen_t len = sizeof(protocol);
  char info[256];

  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) != 0)
    return -errno;
  if (protocol != IPPROTO_MPTCP)
    return 0;

  /* TCP_IS_MPTCP (Linux 6.10) also tells whether an MPTCP socket fell back
   * to TCP. */
  len = sizeof(value);
  if (getsockopt(fd, SOL_TCP, TCP_IS_MPTCP, &value, &len) == 0)
    return value != 0;

  /* Before 6.10, MPTCP_INFO (Linux 5.16) fails with EOPNOTSUPP once the
   * connection fell back to TCP. */
  len = sizeof(info);
  if (getsockopt(fd, SOL_MPTCP, MPTCP_INFO, info, &len) == 0)
    return 1;
  if (errno == EOPNOTSUPP)
    return 0;
  return -errno;
}

static socklen_t address_length(const struct sockaddr_storage *address) {
  return address->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                        : sizeof(struct sockaddr_in);
}

int mp_listen(const char *address, uint16_t port, int family, int backlog,
              int ipv6_only, int *fallback) {
  struct sockaddr_storage storage;
  struct sockaddr_in *v4 = (struct sockaddr_in *)&storage;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&storage;
  int one = 1;
  int fd;

  memset(&storage, 0, sizeof(storage));
  if (address != NULL && inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
  } else if (address != NULL &&
             inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
  } else if (address != NULL) {
    return -EINVAL;
  } else {
    storage.ss_family = family == 4 ? AF_INET : AF_INET6;
  }
  if (storage.ss_family == AF_INET6)
    v6->sin6_port = htons(port);
  else
    v4->sin_port = htons(port);

  fd = mp__open_stream_socket(storage.ss_family, MP_SERVICE_HANDOVER, fallback);
  if (fd < 0)
    return fd;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
    goto fail;
  if (storage.ss_family == AF_INET6 &&
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &ipv6_only,
                 sizeof(ipv6_only)) != 0)
    goto fail;
  if (bind(fd, (struct sockaddr *)&storage, address_length(&storage)) != 0)
    goto fail;
  if (listen(fd, backlog) != 0)
    goto fail;
  return fd;

fail:
  one = -errno;
  close(fd);
  return one;
}
