// The Linux MPTCP server side. The listening socket is created natively
// with IPPROTO_MPTCP and then handed to Node's net.Server by descriptor, so
// accepted connections are ordinary net.Socket objects over MPTCP, and
// http, https and http2 servers can listen the same way.

import * as dns from 'node:dns';
import * as net from 'node:net';
import { constants } from 'node:os';

import { binding } from './binding';
import { invalidArgType, invalidArgValue, stateError, systemError } from './errors';
import { validateHost, validateMultipath, validatePort, type MultipathService } from './options';
import { MptcpSocket } from './socket';

export interface ListenOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number | string;
  /** Address or name to listen on; all addresses when omitted. */
  host?: string;
  /** Maximum length of the queue of pending connections (default 511). */
  backlog?: number;
  /** For an IPv6 address: refuse IPv4 clients (default false). */
  ipv6Only?: boolean;
  /** 'disabled' listens with plain TCP; every other value with MPTCP. */
  multipath?: MultipathService;
  /** Closes the server when the signal aborts, as net.Server does. */
  signal?: AbortSignal;
}

const EAFNOSUPPORT = -constants.errno.EAFNOSUPPORT;
const DEFAULT_BACKLOG = 511;

/** Stored on a server that listens through listenMptcp. */
const kFallback = Symbol('nw-mptcp.fallback');

function assertLinux(): void {
  if (process.platform !== 'linux')
    throw stateError(
      'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM',
      `MPTCP servers need Linux; ${process.platform} offers MPTCP to clients only`,
    );
}

function normalizeListenArgs(args: unknown[]): [ListenOptions, (() => void) | undefined] {
  let callback: (() => void) | undefined;
  if (typeof args[args.length - 1] === 'function') callback = args.pop() as () => void;
  const first = args[0];
  if (first !== null && typeof first === 'object')
    return [{ ...(first as ListenOptions) }, callback];
  const options: ListenOptions = {};
  if (first !== undefined) options.port = first as number;
  if (typeof args[1] === 'string') {
    options.host = args[1];
    if (args[2] !== undefined) options.backlog = args[2] as number;
  } else if (args[1] !== undefined) {
    options.backlog = args[1] as number;
  }
  return [options, callback];
}

function openListener(
  server: net.Server,
  host: string | null,
  port: number,
  backlog: number,
  options: ListenOptions,
  callback?: () => void,
): void {
  const family = host === null ? 6 : net.isIP(host);
  let result = binding.listen(host, port, family, backlog, options.ipv6Only === true);
  if (host === null && result.fd === EAFNOSUPPORT)
    result = binding.listen(null, port, 4, backlog, false);
  if (result.fd < 0) {
    const error = systemError(result.fd, 'listen', {
      address: host ?? (family === 6 ? '::' : '0.0.0.0'),
      port,
    });
    process.nextTick(() => server.emit('error', error));
    return;
  }
  (server as unknown as Record<symbol, boolean>)[kFallback] = result.fallback;
  // With an fd, net.Server takes the backlog from the second argument only;
  // inside the options it would be ignored and the queue left at 511.
  const listen = net.Server.prototype.listen as (this: net.Server, ...args: unknown[]) => void;
  listen.call(server, { fd: result.fd }, backlog, callback);
}

/**
 * Makes `server` (a net, http, https or http2 server) listen on an MPTCP
 * socket. The kernel falls back to TCP for clients without MPTCP. Linux only.
 */
export function listenMptcp<T extends net.Server>(
  server: T,
  options: ListenOptions = {},
  callback?: () => void,
): T {
  assertLinux();
  if (!(server instanceof net.Server)) throw invalidArgType('server', 'net.Server', server);
  if (options === null || typeof options !== 'object')
    throw invalidArgType('options', 'object', options);
  const port = options.port === undefined ? 0 : validatePort(options.port, 'options.port');
  const host = options.host === undefined ? null : validateHost(options.host);
  const backlog = options.backlog === undefined ? DEFAULT_BACKLOG : options.backlog;
  if (!Number.isInteger(backlog) || backlog < 0)
    throw invalidArgType('options.backlog', 'integer', backlog);
  const multipath = validateMultipath(options.multipath);
  if ('path' in options && (options as { path?: unknown }).path !== undefined)
    throw invalidArgValue(
      'options.path',
      (options as { path?: unknown }).path,
      'is not supported: MPTCP servers listen on TCP ports, not on IPC paths',
    );
  const signal = options.signal;
  if (
    signal !== undefined &&
    (signal === null || typeof signal !== 'object' || !('aborted' in signal))
  )
    throw invalidArgType('options.signal', 'AbortSignal', signal);
  if (server.listening)
    throw stateError(
      'ERR_SERVER_ALREADY_LISTEN',
      'Listen method has been called more than once without closing.',
    );
  if (signal?.aborted) return server;
  signal?.addEventListener('abort', () => server.close(), { once: true });
  if (multipath === 'disabled') {
    net.Server.prototype.listen.call(server, { port, host: host ?? undefined, backlog }, callback);
    return server;
  }

  if (host === null || net.isIP(host) !== 0) {
    openListener(server, host, port, backlog, options, callback);
    return server;
  }
  dns.lookup(host, (error, address) => {
    if (error) server.emit('error', error);
    else openListener(server, address, port, backlog, options, callback);
  });
  return server;
}

/** A net.Server whose listen() opens an MPTCP socket. Linux only. */
export class MptcpServer extends net.Server {
  /** Same forms as net.Server's listen(): port, host, backlog, callback, or options. */
  override listen(...args: unknown[]): this {
    const [options, callback] = normalizeListenArgs(args);
    return listenMptcp(this, options, callback);
  }

  /** True when the kernel refused an MPTCP listener and TCP is used. */
  get mptcpFallback(): boolean {
    return (this as unknown as Record<symbol, boolean>)[kFallback] === true;
  }
}

/**
 * Creates an MPTCP server: createServer([options][, connectionListener]),
 * with the options of net.createServer. Linux only.
 */
export function createServer(
  options?: net.ServerOpts | ((socket: net.Socket) => void),
  connectionListener?: (socket: net.Socket) => void,
): MptcpServer {
  assertLinux();
  if (typeof options === 'function') return new MptcpServer(options);
  return new MptcpServer(options ?? {}, connectionListener);
}

/**
 * Tells whether a connected socket uses MPTCP: an MptcpSocket, or a
 * net.Socket accepted by an MPTCP server. Returns null when it cannot tell.
 */
export function isMptcpSocket(socket: net.Socket | MptcpSocket): boolean | null {
  if (socket instanceof MptcpSocket) return socket.mptcp;
  // A TLS socket from connect() reports the MptcpSocket below it; one that
  // a server accepted wraps the accepted net.Socket.
  const below = socket as unknown as { mptcpSocket?: MptcpSocket; _parent?: net.Socket | null };
  if (below.mptcpSocket instanceof MptcpSocket) return below.mptcpSocket.mptcp;
  if (below._parent instanceof net.Socket) return isMptcpSocket(below._parent);
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  const result = binding.isMptcp(fd);
  return result < 0 ? null : result === 1;
}
