// The public entry point of nw-mptcp.

import { kConnectValidated, MptcpSocket } from './socket';
import { normalizeConnectArgs, validateConnectOptions, type ConnectOptions } from './options';
import {
  connectTls,
  type MptcpNetworkTlsSocket,
  type MptcpTlsSocket,
  type NetworkTlsConnectOptions,
  type TlsConnectOptions,
} from './tls';

export { MptcpSocket, type AddressInfo, type PathReport, type PathStats } from './socket';
export {
  MULTIPATH_SERVICES,
  type ConnectOptions,
  type LookupFunction,
  type MultipathService,
  type SocketOptions,
} from './options';
export { type SystemError } from './errors';
export {
  createServer,
  listenMptcp,
  isMptcpSocket,
  MptcpServer,
  type ListenOptions,
} from './server';
export {
  MptcpNetworkTlsSocket,
  MptcpTlsSocket,
  startTls,
  type NetworkTlsConnectOptions,
  type NetworkTlsOptions,
  TLS_IMPLEMENTATIONS,
  type MptcpTlsOptions,
  type TlsConnectOptions,
  type TlsImplementation,
} from './tls';
export {
  MptcpAgent,
  MptcpHttpsAgent,
  type MptcpAgentConnectOptions,
  type MptcpAgentOptions,
  type MptcpHttpsAgentOptions,
} from './agent';
export {
  createMptcpConnector,
  createMptcpDispatcher,
  mptcpFetch,
  type MptcpConnector,
  type MptcpConnectorOptions,
  type MptcpDispatcherOptions,
} from './undici';
export { connectHttp2, createHttp2Connection, type MptcpHttp2Options } from './http2';
export {
  createCheckServer,
  startCheckServer,
  checkMptcp,
  VERDICT_MPTCP,
  VERDICT_NOT_MPTCP,
  type CheckResult,
  type CheckOptions,
} from './check';

/**
 * Opens an MPTCP connection: connect(options[, listener]) or
 * connect(port[, host][, listener]). Returns the socket at once; the
 * listener runs on 'connect'.
 *
 * With `tls`, returns an MptcpTlsSocket, a tls.TLSSocket over the MPTCP
 * connection, and the listener runs on 'secureConnect'. With the Network
 * framework's TLS (`tls.implementation: 'network-framework'`, macOS), it
 * returns an MptcpNetworkTlsSocket, whose 'connect' follows the handshake.
 */
export function connect(
  options: NetworkTlsConnectOptions,
  connectListener?: () => void,
): MptcpNetworkTlsSocket;
export function connect(
  options: TlsConnectOptions,
  secureConnectListener?: () => void,
): MptcpTlsSocket;
export function connect(
  options: ConnectOptions & { tls?: false },
  connectListener?: () => void,
): MptcpSocket;
export function connect(
  options: ConnectOptions | TlsConnectOptions,
  connectListener?: () => void,
): MptcpSocket | MptcpTlsSocket | MptcpNetworkTlsSocket;
export function connect(
  port: number | string,
  host?: string,
  connectListener?: () => void,
): MptcpSocket;
export function connect(port: number | string, connectListener?: () => void): MptcpSocket;
export function connect(...args: unknown[]): MptcpSocket | MptcpTlsSocket | MptcpNetworkTlsSocket {
  const [options, listener] = normalizeConnectArgs(args);
  // Validation runs before the socket exists, so a bad argument creates
  // nothing.
  const normalized = validateConnectOptions(options);
  if (normalized.tls !== undefined)
    return connectTls({ ...normalized, tls: normalized.tls }, options, listener);
  const socket = new MptcpSocket({ allowHalfOpen: normalized.allowHalfOpen });
  return socket[kConnectValidated](normalized, listener);
}

/** Alias of connect(), as net.createConnection is of net.connect. */
export const createConnection = connect;
