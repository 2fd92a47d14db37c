/*
 * paths_linux.h: per-subflow statistics of kernel MPTCP sockets, for the
 * Linux backend.
 */
#ifndef NW_MPTCP_PATHS_LINUX_H
#define NW_MPTCP_PATHS_LINUX_H

#include <stdint.h>
#include <sys/socket.h>

#include "backend.h"

/* Collects the paths of the connected socket fd into a new report that the
 * caller frees with free(). Returns 0 or a negative errno. */
int mp__collect_paths(int fd, mp_path_report_t **out);

/* Returns a hash of the subflows' addresses, which changes when a subflow
 * comes or goes, or 0 when the socket has no MPTCP subflows to report. */
uint64_t mp__path_signature(int fd);

/* Returns 1 when either end marked the subflow between local and remote as
 * a backup path, 0 when neither did, or a negative errno when the kernel
 * does not say (diag_linux.c). interface_name is the interface of the local
 * address, or empty. */
int mp__subflow_backup(const struct sockaddr_storage *local,
                       const struct sockaddr_storage *remote,
                       const char *interface_name);

#endif /* NW_MPTCP_PATHS_LINUX_H */
