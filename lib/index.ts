// The public entry point of nw-mptcp.

import { MptcpSocket } from './socket';
import { normalizeConnectArgs, validateConnectOptions, type ConnectOptions } from './options';

export { MptcpSocket, type AddressInfo } from './socket';
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
 */
export function connect(options: ConnectOptions, connectListener?: () => void): MptcpSocket;
export function connect(
  port: number | string,
  host?: string,
  connectListener?: () => void,
): MptcpSocket;
export function connect(port: number | string, connectListener?: () => void): MptcpSocket;
export function connect(...args: unknown[]): MptcpSocket {
  const [options, listener] = normalizeConnectArgs(args);
  // Validation runs before the socket exists, so a bad argument creates
  // nothing.
  validateConnectOptions(options);
  const socket = new MptcpSocket({ allowHalfOpen: options.allowHalfOpen });
  return socket.connect(options as ConnectOptions, listener);
}

/** Alias of connect(), as net.createConnection is of net.connect. */
export const createConnection = connect;
