/*
 * nw_emulation.h: test hooks of the Network framework emulation, for the
 * self-tests in test/emulation/selftest/. The real framework has none of
 * these; native code must not use them.
 */
#ifndef NW_EMULATION_HOOKS_H
#define NW_EMULATION_HOOKS_H

#include <Network/Network.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Environment variable read by the leak check at process exit. "off" or "0"
 * skips the check, for a process that exits with connections open on
 * purpose. */
#define NW_EMULATION_LEAK_CHECK_ENV "NW_EMULATION_LEAK_CHECK"

/* Exit status of a process whose leak check found live objects. */
#define NW_EMULATION_LEAK_EXIT_CODE 70

/* Returns the number of nw_* and dispatch objects alive now. The constant
 * contexts and configuration blocks are not counted. */
size_t nw_emulation_live_objects(void);

/* Prints the live objects, by type, to stream. */
void nw_emulation_print_live_objects(FILE *stream);

/* Waits until no block is queued or running on any queue and no started
 * connection is still open in the I/O thread. Returns 0, or -1 when
 * timeout_ms passed first. */
int nw_emulation_wait_idle(unsigned timeout_ms);

/* Returns the queue whose block runs on the calling thread, or NULL. The
 * queue is not retained. */
dispatch_queue_t nw_emulation_current_queue(void);

/* Returns the socket that connection uses now, or -1 when it has none. Only
 * for getsockopt and getsockname: the I/O thread owns the descriptor. */
int nw_emulation_connection_socket(nw_connection_t connection);

#ifdef __cplusplus
}
#endif

#endif /* NW_EMULATION_HOOKS_H */
