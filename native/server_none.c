/*
 * server_none.c: the server side on platforms without one. The Network
 * framework offers MPTCP to clients only and gives no descriptors.
 */
#include "backend.h"

#include <errno.h>

int mp_listen(const char *address, uint16_t port, int family, int backlog,
              int ipv6_only, int *fallback) {
  (void)address;
  (void)port;
  (void)family;
  (void)backlog;
  (void)ipv6_only;
  *fallback = 0;
  return -ENOTSUP;
}

int mp_fd_is_mptcp(int fd) {
  (void)fd;
  return -ENOTSUP;
}
