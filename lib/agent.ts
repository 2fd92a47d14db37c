// HTTP and HTTPS agents whose connections are MPTCP. They subclass Node's
// agents and replace only createConnection, so keep-alive, socket reuse,
// maxSockets, timeouts and, for HTTPS, certificate checks and TLS session
// reuse are Node's own.

import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';

import { invalidArgValue } from './errors';
import { validateMultipath, type ConnectOptions, type MultipathService } from './options';
import { MptcpSocket } from './socket';
import { attachMptcpSocket, type MptcpTlsSocket } from './tls';

/** Options an MPTCP agent adds to those of http.Agent and https.Agent. */
export interface MptcpAgentConnectOptions {
  /**
   * Multipath service for new connections (default 'handover'). Set on the
   * agent, it applies to every request; Node gives agent options priority
   * over request options.
   */
  multipath?: MultipathService;
  /** Maximum time in ms to establish a connection; fails with ETIMEDOUT. */
  connectTimeout?: number;
  /** macOS: wait for a usable network instead of failing (see connect()). */
  waitForConnectivity?: boolean;
}

export interface MptcpAgentOptions extends http.AgentOptions, MptcpAgentConnectOptions {}

export interface MptcpHttpsAgentOptions extends https.AgentOptions, MptcpAgentConnectOptions {}

/**
 * Request options as an agent passes them to createConnection: the request's
 * options merged with the agent's, and TCP keep-alive from agents with keepAlive.
 */
type AgentConnectionOptions = http.ClientRequestArgs &
  MptcpAgentConnectOptions & {
    noDelay?: boolean;
    keepAlive?: boolean;
    keepAliveInitialDelay?: number;
  };

/** Picks the connect() options out of the request options an agent receives. */
function toConnectOptions(options: AgentConnectionOptions, defaultPort: number): ConnectOptions {
  if (options.socketPath)
    throw invalidArgValue(
      'options.socketPath',
      options.socketPath,
      'is not supported: MPTCP agents connect to a host and port',
    );
  return {
    host: options.host ?? options.hostname ?? 'localhost',
    port: options.port ?? defaultPort,
    family: options.family,
    localAddress: options.localAddress,
    localPort: options.localPort,
    lookup: options.lookup as ConnectOptions['lookup'],
    multipath: options.multipath,
    connectTimeout: options.connectTimeout,
    waitForConnectivity: options.waitForConnectivity,
    noDelay: options.noDelay === undefined ? undefined : Boolean(options.noDelay),
    // Agents with keepAlive ask for TCP keep-alive as net.createConnection
    // receives it from them.
    keepAlive: options.keepAlive === true,
    keepAliveInitialDelay: options.keepAliveInitialDelay,
  };
}

/** Adds the multipath service to an agent's pool key, so services never share sockets. */
function nameWithMultipath(name: string, options: AgentConnectionOptions | undefined): string {
  return `${name}:${validateMultipath(options?.multipath)}`;
}

/**
 * An http.Agent whose connections are MPTCP sockets. Use it as the `agent`
 * of http.request() and http.get(); keepAlive and the other http.Agent
 * options work as in Node.
 */
export class MptcpAgent extends http.Agent {
  constructor(options: MptcpAgentOptions = {}) {
    validateMultipath(options.multipath);
    super(options);
  }

  /** Opens an MptcpSocket for a request; called by the agent. */
  override createConnection(options: AgentConnectionOptions): MptcpSocket {
    const socket = new MptcpSocket({ allowHalfOpen: false });
    return socket.connect({ ...toConnectOptions(options, 80), timeout: options.timeout });
  }

  override getName(options?: AgentConnectionOptions): string {
    return nameWithMultipath(super.getName(options), options);
  }
}

/**
 * An https.Agent whose connections are TLS over MPTCP sockets. Certificate
 * checks, `ca`, `servername`, `rejectUnauthorized` and TLS session reuse
 * work as with https.Agent, which runs tls.connect over the MptcpSocket.
 */
export class MptcpHttpsAgent extends https.Agent {
  constructor(options: MptcpHttpsAgentOptions = {}) {
    validateMultipath(options.multipath);
    super(options);
  }

  /** Opens an MptcpSocket and starts TLS on it; called by the agent. */
  override createConnection(options: AgentConnectionOptions): MptcpTlsSocket {
    const socket = new MptcpSocket({ allowHalfOpen: false });
    socket.connect(toConnectOptions(options, 443));
    let tlsSocket: Duplex | null | undefined;
    try {
      // https.Agent passes `socket` on to tls.connect and keeps its TLS
      // session cache.
      tlsSocket = super.createConnection({ ...options, socket } as https.RequestOptions);
    } catch (error) {
      socket.destroy();
      throw error;
    }
    const result = attachMptcpSocket(tlsSocket as import('node:tls').TLSSocket, socket);
    // tls.connect applies `timeout` only to sockets it opens itself.
    if (options.timeout !== undefined) result.setTimeout(options.timeout);
    return result;
  }

  override getName(options?: AgentConnectionOptions): string {
    return nameWithMultipath(super.getName(options as https.RequestOptions), options);
  }
}
