/*
 * socket_linux.h: helpers of socket_linux.c for the Linux backend.
 */
#ifndef NW_MPTCP_SOCKET_LINUX_H
#define NW_MPTCP_SOCKET_LINUX_H

#include "backend.h"

#include <netinet/in.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/* Opens a non-blocking stream socket, MPTCP unless service is
 * MP_SERVICE_DISABLED, and sets *fallback when the kernel refused MPTCP and
 * plain TCP was used. Returns the descriptor or a negative errno. */
int mp__open_stream_socket(int family, mp_service_t service, int *fallback);

#endif /* NW_MPTCP_SOCKET_LINUX_H */
