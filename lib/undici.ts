// undici over MPTCP: a connector that opens MptcpSockets, and an
// undici.Agent built on it, so that fetch() and undici's request() use
// MPTCP. For https: URLs undici's own connector runs tls.connect over the
// MptcpSocket, with the servername, ALPN list and TLS session cache it uses
// for TCP.
//
// undici is loaded on the first call, because loading it takes tens of
// milliseconds that programs without fetch over MPTCP should not pay.

import type * as net from 'node:net';
import type * as tls from 'node:tls';
import type * as Undici from 'undici';

import { invalidArgType, outOfRange } from './errors';
import { validateMultipath, type LookupFunction, type MultipathService } from './options';
import { MptcpSocket } from './socket';
import { attachMptcpSocket, handOverToTls } from './tls';

/** undici's connect function type: (options, callback) => void. */
export type MptcpConnector = Undici.buildConnector.connector;

/** Options of createMptcpConnector: the TLS options of tls.connect and the MPTCP ones. */
export interface MptcpConnectorOptions extends Omit<tls.ConnectionOptions, 'lookup'> {
  /** Multipath service to request (default 'handover'). */
  multipath?: MultipathService;
  /** 4 or 6 to use one address family only; 0 for both (default). */
  family?: number;
  /** Custom resolver with the signature of dns.lookup. */
  lookup?: LookupFunction;
  /**
   * Maximum time in ms to establish a connection, TLS handshake included
   * (default 10000, as undici); 0 waits without limit. Fails with undici's
   * ConnectTimeoutError.
   */
  timeout?: number;
  /** TCP keep-alive (default true, as undici). */
  keepAlive?: boolean;
  /** Milliseconds before the first keep-alive probe (default 60000, as undici). */
  keepAliveInitialDelay?: number;
  /** Offer HTTP/2 with ALPN on https: connections (default false, as undici). */
  allowH2?: boolean;
  /** Maximum number of cached TLS sessions (default 100, as undici). */
  maxCachedSessions?: number;
}

/** Options of createMptcpDispatcher: those of undici.Agent, with MPTCP connect options. */
export interface MptcpDispatcherOptions extends Omit<Undici.Agent.Options, 'connect'> {
  /** Multipath service to request (default 'handover'). */
  multipath?: MultipathService;
  /** TLS and socket options for new connections. */
  connect?: Omit<MptcpConnectorOptions, 'multipath' | 'allowH2' | 'maxCachedSessions'>;
}

let undici: typeof Undici | undefined;

function loadUndici(): typeof Undici {
  // A require() call keeps the load lazy in the CommonJS build.
  undici ??= require('undici') as typeof Undici;
  return undici;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_KEEP_ALIVE_DELAY_MS = 60_000;

/**
 * Creates an undici connector (the `connect` option of undici's Agent,
 * Pool and Client) that opens MPTCP connections, with TLS for https:.
 */
export function createMptcpConnector(options: MptcpConnectorOptions = {}): MptcpConnector {
  if (options === null || typeof options !== 'object')
    throw invalidArgType('options', 'object', options);
  const {
    multipath: multipathOption,
    family,
    lookup,
    timeout: timeoutOption,
    keepAlive: keepAliveOption,
    keepAliveInitialDelay,
    ...tlsOptions
  } = options;
  const multipath = validateMultipath(multipathOption);
  const timeout = timeoutOption ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (!Number.isFinite(timeout) || timeout < 0)
    throw outOfRange('options.timeout', 'a non-negative finite number', timeout);
  const keepAlive = keepAliveOption ?? true;
  const { buildConnector, errors } = loadUndici();
  // The MptcpSocket gets keep-alive and no-delay, because the TLS socket
  // that undici's connector configures is not yet connected to it.
  const tlsConnector = buildConnector({ ...tlsOptions, timeout, keepAlive: false });

  return (connectOptions, callback) => {
    const https = connectOptions.protocol === 'https:';
    const port = Number(connectOptions.port) || (https ? 443 : 80);
    const socket = new MptcpSocket();
    try {
      socket.connect({
        host: connectOptions.hostname,
        port,
        multipath,
        family,
        lookup,
        localAddress: connectOptions.localAddress ?? undefined,
        noDelay: true,
        keepAlive,
        keepAliveInitialDelay: keepAliveInitialDelay ?? DEFAULT_KEEP_ALIVE_DELAY_MS,
      });
    } catch (error) {
      callback(error as Error, null);
      return;
    }

    if (https) {
      const httpSocket = socket as unknown as net.Socket;
      tlsConnector({ ...connectOptions, httpSocket }, (error, tlsSocket) => {
        if (error) callback(error, null);
        else callback(null, attachMptcpSocket(tlsSocket as tls.TLSSocket, socket));
      });
      // The connector has run tls.connect by now; the TLS socket itself is
      // passed to the callback only after the handshake.
      handOverToTls(socket);
      return;
    }

    let timer: NodeJS.Timeout | undefined;
    const settle = (error: Error | null) => {
      if (timer !== undefined) clearTimeout(timer);
      socket.removeListener('connect', onConnect);
      socket.removeListener('error', onError);
      if (error) callback(error, null);
      else callback(null, socket as unknown as net.Socket);
    };
    const onConnect = () => settle(null);
    const onError = (error: Error) => settle(error);
    socket.once('connect', onConnect);
    socket.once('error', onError);
    if (timeout > 0) {
      timer = setTimeout(() => {
        const message =
          `Connect Timeout Error (attempted address: ${connectOptions.hostname}:${port}, ` +
          `timeout: ${timeout}ms)`;
        socket.destroy(new errors.ConnectTimeoutError(message));
      }, timeout);
      timer.unref();
    }
  };
}

/**
 * Creates an undici.Agent whose connections are MPTCP, for the
 * `dispatcher` option of fetch() and of undici's request functions.
 * `allowH2`, `maxCachedSessions` and `connectTimeout` are applied by the
 * MPTCP connector; the other options are undici.Agent's.
 */
export function createMptcpDispatcher(options: MptcpDispatcherOptions = {}): Undici.Agent {
  if (options === null || typeof options !== 'object')
    throw invalidArgType('options', 'object', options);
  const { multipath, connect, ...agentOptions } = options;
  const connector = createMptcpConnector({
    timeout: agentOptions.connectTimeout,
    ...connect,
    multipath,
    allowH2: agentOptions.allowH2,
    maxCachedSessions: agentOptions.maxCachedSessions,
  });
  const { Agent } = loadUndici();
  return new Agent({ ...agentOptions, connect: connector });
}

let sharedDispatcher: Undici.Agent | undefined;

/**
 * Runs fetch() of the undici package that nw-mptcp depends on, over MPTCP:
 * with `init.dispatcher` when given, else with a dispatcher from
 * createMptcpDispatcher() that all such calls share. Unlike Node's global
 * fetch, it always uses the undici version that made the dispatcher.
 */
export function mptcpFetch(
  input: Undici.RequestInfo,
  init: Undici.RequestInit = {},
): Promise<Undici.Response> {
  const { fetch } = loadUndici();
  const dispatcher = init.dispatcher ?? (sharedDispatcher ??= createMptcpDispatcher());
  return fetch(input, { ...init, dispatcher });
}
