// TLS over MPTCP. Node's tls module runs the handshake and the record layer
// over an MptcpSocket, so certificate checks, SNI, ALPN and session reuse
// behave exactly as in tls.connect. The TLS socket also reports the MPTCP
// state of the connection below it.
//
// tls.connect wraps any stream that is not a net.Socket in an internal
// net.Socket over a JavaScript stream. That wrapper reads and writes the
// MptcpSocket, destroys it when the TLS socket is destroyed, and is
// destroyed when the MptcpSocket closes. It does not forward ref(),
// unref(), setNoDelay(), setKeepAlive() or the addresses, so the TLS socket
// made here forwards them itself.

import { isIP } from 'node:net';
import * as tls from 'node:tls';

import { invalidArgType, invalidArgValue, stateError } from './errors';
import type { ConnectOptions, MultipathService, NormalizedConnectOptions } from './options';
import { MptcpSocket, type AddressInfo } from './socket';

/**
 * The TLS implementation: 'node' is Node's tls module (OpenSSL).
 * 'network-framework' names the TLS of Apple's Network framework, which is
 * not available yet.
 */
export type TlsImplementation = 'node' | 'network-framework';

export const TLS_IMPLEMENTATIONS: readonly TlsImplementation[] = ['node', 'network-framework'];

/** The options of tls.connect, plus the choice of TLS implementation. */
export interface MptcpTlsOptions extends tls.ConnectionOptions {
  /** TLS implementation that runs the handshake (default 'node'). */
  implementation?: TlsImplementation;
}

/** connect() options that ask for TLS. */
export interface TlsConnectOptions extends Omit<ConnectOptions, 'tls'> {
  /** TLS over the MPTCP connection: true, or the options of tls.connect. */
  tls: true | MptcpTlsOptions;
}

/** The key under which a TLS socket keeps the MptcpSocket below it. */
const kMptcpSocket = Symbol('nw-mptcp.mptcpSocket');

/**
 * A tls.TLSSocket over an MptcpSocket. Instances come from connect() with
 * `tls` and from startTls(); the constructor is not meant to be called.
 */
export class MptcpTlsSocket extends tls.TLSSocket {
  declare readonly [kMptcpSocket]: MptcpSocket;

  /** The MptcpSocket that carries the TLS records. */
  get mptcpSocket(): MptcpSocket {
    return this[kMptcpSocket];
  }

  /** MptcpSocket.mptcp of the connection below: true, false or null. */
  get mptcp(): boolean | null {
    return this[kMptcpSocket].mptcp;
  }

  /** The multipath service that was requested. */
  get multipath(): MultipathService {
    return this[kMptcpSocket].multipath;
  }

  /** True when the kernel refused an MPTCP socket and plain TCP was used. */
  get mptcpFallback(): boolean {
    return this[kMptcpSocket].mptcpFallback;
  }

  /** Lets the connection keep the process alive again. */
  override ref(): this {
    super.ref();
    this[kMptcpSocket].ref();
    return this;
  }

  /** Lets the process exit while the connection is open. */
  override unref(): this {
    super.unref();
    this[kMptcpSocket].unref();
    return this;
  }

  /** Sets Nagle's algorithm on the MPTCP connection. */
  override setNoDelay(noDelay?: boolean): this {
    this[kMptcpSocket].setNoDelay(noDelay);
    return this;
  }

  /** Sets TCP keep-alive on the MPTCP connection; initialDelay is in milliseconds. */
  override setKeepAlive(enable?: boolean, initialDelay?: number): this {
    this[kMptcpSocket].setKeepAlive(enable, initialDelay);
    return this;
  }

  /** Returns the local address of the MPTCP connection, or {} before connect. */
  override address(): AddressInfo | Record<string, never> {
    return this[kMptcpSocket].address();
  }

  /** Closes the MPTCP connection with a TCP RST, then destroys the TLS socket. */
  override resetAndDestroy(): this {
    this[kMptcpSocket].resetAndDestroy();
    this.destroy();
    return this;
  }
}

// net.Socket declares the addresses as properties, so TypeScript rejects
// accessors for them in a subclass; they are defined on the prototype here.
for (const property of [
  'remoteAddress',
  'remotePort',
  'remoteFamily',
  'localAddress',
  'localPort',
  'localFamily',
] as const) {
  Object.defineProperty(MptcpTlsSocket.prototype, property, {
    configurable: true,
    enumerable: false,
    get(this: MptcpTlsSocket) {
      return this[kMptcpSocket][property];
    },
  });
}

/**
 * Checks `implementation` and returns the tls.connect options without it.
 * Throws before anything is opened.
 */
export function validateTlsOptions(options: MptcpTlsOptions): tls.ConnectionOptions {
  if (options === null || typeof options !== 'object')
    throw invalidArgType('options.tls', 'object', options);
  const { implementation, ...tlsOptions } = options;
  if (implementation === undefined || implementation === 'node') return tlsOptions;
  if (implementation === 'network-framework') {
    // NOTE: TLS in the Network framework needs a native path that does not
    // exist yet. The macOS backend creates its parameters with TLS off
    // (nw_parameters_create_secure_tcp with NW_PARAMETERS_DISABLE_PROTOCOL),
    // and backend.h has no TLS options, no peer-certificate check and no
    // ALPN result. Until the backend has them, this value is rejected on
    // every platform.
    throw stateError(
      'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM',
      "TLS from Apple's Network framework (tls.implementation 'network-framework') is " +
        `not available in this version of nw-mptcp on ${process.platform}; ` +
        "omit tls.implementation or set it to 'node'",
    );
  }
  const list = TLS_IMPLEMENTATIONS.map((name) => `'${name}'`).join(', ');
  throw invalidArgValue('options.tls.implementation', implementation, `must be one of: ${list}`);
}

/** Runs tls.connect over `socket` and gives the TLS socket the MPTCP accessors. */
function wrapTls(
  socket: MptcpSocket,
  tlsOptions: tls.ConnectionOptions,
  secureConnectListener?: () => void,
): MptcpTlsSocket {
  if (secureConnectListener !== undefined && typeof secureConnectListener !== 'function')
    throw invalidArgType('secureConnectListener', 'function', secureConnectListener);
  return attachMptcpSocket(tls.connect({ ...tlsOptions, socket }, secureConnectListener), socket);
}

/**
 * Lets the TLS layer end the MPTCP connection. TLS answers the peer's end of
 * stream with a close_notify record before it ends its own side, and an
 * MptcpSocket that had ended its writable side on the peer's FIN would fail
 * that write with ERR_STREAM_WRITE_AFTER_END. Call it right after
 * tls.connect, which copies allowHalfOpen from the socket to the TLS socket.
 */
export function handOverToTls(socket: MptcpSocket): void {
  socket.allowHalfOpen = true;
}

/**
 * Turns a TLSSocket that tls.connect made over `socket` into an
 * MptcpTlsSocket. tls.connect creates the TLSSocket itself, so the subclass
 * is applied afterwards. Call it in the tick of tls.connect.
 */
export function attachMptcpSocket(tlsSocket: tls.TLSSocket, socket: MptcpSocket): MptcpTlsSocket {
  handOverToTls(socket);
  Object.defineProperty(tlsSocket, kMptcpSocket, { value: socket, enumerable: false });
  return Object.setPrototypeOf(tlsSocket, MptcpTlsSocket.prototype) as MptcpTlsSocket;
}

/**
 * Starts TLS on an MptcpSocket, connecting or connected, with the options
 * of tls.connect. Returns the TLS socket at once; `secureConnectListener`
 * runs on 'secureConnect'.
 *
 * The server's identity is checked against `servername`, else `host`, as in
 * tls.connect. Pass one of them: the MptcpSocket does not tell tls.connect
 * which host it connected to, and without either Node checks 'localhost'.
 *
 * When the TLS socket is destroyed, for example after a failed certificate
 * check, the MptcpSocket is destroyed too.
 */
export function startTls(
  socket: MptcpSocket,
  options: MptcpTlsOptions = {},
  secureConnectListener?: () => void,
): MptcpTlsSocket {
  if (!(socket instanceof MptcpSocket)) throw invalidArgType('socket', 'MptcpSocket', socket);
  return wrapTls(socket, validateTlsOptions(options), secureConnectListener);
}

/** Returns the SNI name for `host`: the host itself for a name, none for an IP address. */
export function defaultServername(host: string): string | undefined {
  return isIP(host) === 0 ? host : undefined;
}

/**
 * Opens an MPTCP connection and starts TLS on it at once, before the
 * connection is established: the ClientHello waits in the MptcpSocket until
 * 'connect'. Called by connect() with validated options; `rawOptions` are
 * the caller's options before validation.
 */
export function connectTls(
  options: NormalizedConnectOptions & { tls: MptcpTlsOptions },
  rawOptions: Partial<ConnectOptions>,
  secureConnectListener?: () => void,
): MptcpTlsSocket {
  const tlsOptions = validateTlsOptions(options.tls);
  const socket = new MptcpSocket({ allowHalfOpen: options.allowHalfOpen });
  // The idle timeout belongs to the TLS socket, which emits 'timeout' as a
  // TLS socket from tls.connect does.
  socket.connect({ ...rawOptions, tls: undefined, timeout: undefined } as ConnectOptions);
  let tlsSocket: MptcpTlsSocket;
  try {
    tlsSocket = wrapTls(
      socket,
      {
        ...tlsOptions,
        host: tlsOptions.host ?? options.host,
        servername: tlsOptions.servername ?? defaultServername(options.host),
      },
      secureConnectListener,
    );
  } catch (error) {
    // tls.connect throws for invalid options such as a malformed `ca`. The
    // connection starts on the next tick, so destroying it now opens nothing.
    socket.destroy();
    throw error;
  }
  if (options.timeout !== undefined) tlsSocket.setTimeout(options.timeout);
  return tlsSocket;
}
