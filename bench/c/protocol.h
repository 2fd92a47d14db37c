/*
 * protocol.h: the wire protocol between the benchmark clients and the peer
 * (server.c). bench/protocol.ts contains the same values for the Node clients.
 *
 * The first byte a client sends selects the workload:
 *   'U' n:u64le          upload: the peer reads n bytes, then sends 'K'.
 *   'D' n:u64le size:u32le  download: the peer sends n bytes in send() calls
 *                        of at most size bytes, then shuts down its side.
 *   'E'                  echo: the peer sends back every later byte.
 *   'C'                  connection rate: the peer sends 'C' once.
 * A client that sends nothing keeps an idle connection. The peer closes a
 * connection when the client closes its side.
 */
#ifndef BENCH_PROTOCOL_H
#define BENCH_PROTOCOL_H

#include <netinet/in.h>
#include <netinet/tcp.h>

#define CMD_UPLOAD 'U'
#define CMD_DOWNLOAD 'D'
#define CMD_ECHO 'E'
#define CMD_CONNECT 'C'
#define UPLOAD_ACK 'K'

#define UPLOAD_HEADER_LEN 9
#define DOWNLOAD_HEADER_LEN 13

/* Values from the kernel's include/uapi/linux/in.h and tcp.h, for C
 * libraries whose headers predate them. */
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef TCP_IS_MPTCP
#define TCP_IS_MPTCP 43
#endif

#endif
