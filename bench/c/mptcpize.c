/*
 * mptcpize.c: an LD_PRELOAD library that turns every IPv4 and IPv6 TCP
 * socket the process creates into an MPTCP socket, as the mptcpize tool of
 * mptcpd does. With it, an unchanged net.connect() in Node opens its
 * connection over MPTCP through libuv's own code path, which makes it the
 * fastest net.Socket over MPTCP to compare MptcpSocket with.
 *
 * Build: cc -O2 -shared -fPIC -o mptcpize.so mptcpize.c -ldl
 */
#define _GNU_SOURCE
#include "protocol.h"

#include <dlfcn.h>
#include <stddef.h>
#include <sys/socket.h>

typedef int (*socket_fn)(int, int, int);

int socket(int domain, int type, int protocol) {
  static socket_fn next_socket;
  int base_type = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);

  if (next_socket == NULL)
    next_socket = (socket_fn)dlsym(RTLD_NEXT, "socket");
  if ((domain == AF_INET || domain == AF_INET6) && base_type == SOCK_STREAM &&
      (protocol == 0 || protocol == IPPROTO_TCP))
    protocol = IPPROTO_MPTCP;
  return next_socket(domain, type, protocol);
}
