// TLS over MPTCP, from one of two implementations.
//
// 'node' (the default): Node's tls module runs the handshake and the record
// layer over an MptcpSocket, so certificate checks, SNI, ALPN and session
// reuse behave exactly as in tls.connect. The TLS socket also reports the
// MPTCP state of the connection below it. tls.connect wraps any stream that
// is not a net.Socket in an internal net.Socket over a JavaScript stream.
// That wrapper reads and writes the MptcpSocket, destroys it when the TLS
// socket is destroyed, and is destroyed when the MptcpSocket closes. It does
// not forward ref(), unref(), setNoDelay(), setKeepAlive() or the
// addresses, so the TLS socket made here forwards them itself.
//
// 'network-framework' (macOS backend only): Apple's Network framework runs
// TLS inside the connection, so the MptcpNetworkTlsSocket made here carries
// plaintext. This file checks its options before any native call and gives
// its TLS failures, which the framework reports as Security framework
// OSStatus codes, the codes of Node's TLS errors.

import { isIP } from 'node:net';
import { constants } from 'node:os';
import * as tls from 'node:tls';

import { binding } from './binding';
import {
  invalidArgType,
  invalidArgValue,
  stateError,
  systemError,
  type SystemError,
} from './errors';
import type {
  ConnectOptions,
  MultipathService,
  NormalizedConnectOptions,
  SocketOptions,
} from './options';
import { MptcpSocket, type AddressInfo, type NativeTlsOptions } from './socket';

/**
 * The TLS implementation: 'node' is Node's tls module (OpenSSL), over the
 * MPTCP connection. 'network-framework' is the TLS of Apple's Network
 * framework, inside the connection; only the macOS backend has it.
 */
export type TlsImplementation = 'node' | 'network-framework';

export const TLS_IMPLEMENTATIONS: readonly TlsImplementation[] = ['node', 'network-framework'];

/** The options of tls.connect, plus the choice of TLS implementation. */
export interface MptcpTlsOptions extends tls.ConnectionOptions {
  /** TLS implementation that runs the handshake (default 'node'). */
  implementation?: TlsImplementation;
}

/** connect() options that ask for Node's TLS, which returns an MptcpTlsSocket. */
export interface TlsConnectOptions extends Omit<ConnectOptions, 'tls'> {
  /** TLS over the MPTCP connection: true, or the options of tls.connect. */
  tls: true | (MptcpTlsOptions & { implementation?: 'node' });
}

/**
 * The TLS options that the Network framework's TLS accepts. The framework
 * checks the server's certificate against the system's trust store and the
 * server name; other tls.connect options are rejected.
 */
export interface NetworkTlsOptions {
  implementation: 'network-framework';
  /** Name for SNI and the certificate check (default: `host` when it is a name). */
  servername?: string;
  /** ALPN protocols to offer, in order of preference, in the forms tls.connect takes. */
  ALPNProtocols?: tls.ConnectionOptions['ALPNProtocols'];
  /** 'TLSv1.2' or 'TLSv1.3' (default: the framework's minimum). */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** Only 'TLSv1.3', the highest version the framework offers. */
  maxVersion?: 'TLSv1.3';
  /** Only true: the framework always checks the certificate. */
  rejectUnauthorized?: true;
}

/** connect() options that ask for the Network framework's TLS. */
export interface NetworkTlsConnectOptions extends Omit<ConnectOptions, 'tls'> {
  tls: NetworkTlsOptions;
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
    checkNetworkTlsBackend();
    // The framework runs TLS only on connections it opens with TLS
    // parameters; it cannot start TLS on an open connection.
    throw stateError(
      'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM',
      "TLS from Apple's Network framework (tls.implementation 'network-framework') " +
        'starts only with the connection: use connect({ tls: { implementation: ' +
        "'network-framework' } }), or set tls.implementation to 'node' here",
    );
  }
  throw invalidImplementation(implementation);
}

function invalidImplementation(implementation: unknown): Error {
  const list = TLS_IMPLEMENTATIONS.map((name) => `'${name}'`).join(', ');
  return invalidArgValue('options.tls.implementation', implementation, `must be one of: ${list}`);
}

/** Throws ERR_FEATURE_UNAVAILABLE_ON_PLATFORM unless the backend is the Network framework. */
function checkNetworkTlsBackend(): void {
  if (binding.backend === 'darwin') return;
  throw stateError(
    'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM',
    "TLS from Apple's Network framework (tls.implementation 'network-framework') " +
      `needs the macOS backend, and this is the ${binding.backend} backend; ` +
      "omit tls.implementation or set it to 'node'",
  );
}

// The Network framework's TLS.

/** tls.connect options that the framework's TLS takes, each checked below. */
const NETWORK_TLS_OPTIONS = new Set([
  'implementation',
  'servername',
  'ALPNProtocols',
  'minVersion',
  'maxVersion',
  'rejectUnauthorized',
  'host',
]);

/** Maximum length of a DNS name in bytes (RFC 1035, 2.3.4). */
const MAX_SERVER_NAME_BYTES = 253;

/** The native minimum version for each minVersion value. */
const NATIVE_MIN_VERSIONS: ReadonlyMap<unknown, number> = new Map([
  ['TLSv1.2', 12],
  ['TLSv1.3', 13],
]);

function unsupportedNetworkTlsOption(name: string, reason: string): Error {
  return stateError(
    'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM',
    `tls.${name} is not supported with tls.implementation 'network-framework': ${reason}; ` +
      "use tls.implementation 'node' for it",
  );
}

/** Returns ALPN protocol names from the forms tls.connect accepts. */
function alpnNames(value: unknown): string[] {
  const name = 'options.tls.ALPNProtocols';
  if (value === undefined) return [];
  let protocols: Buffer[];
  if (ArrayBuffer.isView(value)) {
    // One buffer in wire format: each name follows its length byte.
    const wire = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    protocols = [];
    for (let offset = 0; offset < wire.length; offset += 1 + wire[offset]) {
      const end = offset + 1 + wire[offset];
      if (wire[offset] === 0 || end > wire.length)
        throw invalidArgValue(name, value, 'is not a valid ALPN list in wire format');
      protocols.push(wire.subarray(offset + 1, end));
    }
  } else if (Array.isArray(value)) {
    protocols = value.map((entry: unknown) => {
      if (typeof entry === 'string') return Buffer.from(entry);
      if (ArrayBuffer.isView(entry))
        return Buffer.from(entry.buffer, entry.byteOffset, entry.byteLength);
      throw invalidArgType(`${name}[]`, ['string', 'Buffer', 'TypedArray', 'DataView'], entry);
    });
  } else {
    throw invalidArgType(name, ['Array', 'Buffer', 'TypedArray', 'DataView'], value);
  }
  // A protocol name has 1 to 255 bytes (RFC 7301, 3.1); the backend takes C
  // strings, so a name cannot contain a null byte.
  for (const protocol of protocols) {
    if (protocol.length === 0 || protocol.length > 255 || protocol.includes(0))
      throw invalidArgValue(name, value, 'must list names of 1 to 255 bytes without null bytes');
  }
  return protocols.map((protocol) => protocol.toString('latin1'));
}

/**
 * Checks the options of the Network framework's TLS and returns the native
 * connect options for them. Throws before anything is opened: on a backend
 * without the framework, for an option the framework cannot honour, and for
 * an invalid value.
 */
export function validateNetworkTlsOptions(
  options: MptcpTlsOptions,
  host: string,
): NativeTlsOptions {
  checkNetworkTlsBackend();
  for (const [name, value] of Object.entries(options)) {
    if (value !== undefined && !NETWORK_TLS_OPTIONS.has(name))
      throw unsupportedNetworkTlsOption(
        name,
        'the framework checks certificates against the system trust store and offers ' +
          'only servername, ALPNProtocols and minVersion',
      );
  }

  const { servername, minVersion, maxVersion, rejectUnauthorized } = options;
  if (options.host !== undefined && options.host !== host)
    throw unsupportedNetworkTlsOption(
      'host',
      'the certificate is checked against tls.servername, else the connection host',
    );
  if (rejectUnauthorized !== undefined && typeof rejectUnauthorized !== 'boolean')
    throw invalidArgType('options.tls.rejectUnauthorized', 'boolean', rejectUnauthorized);
  if (rejectUnauthorized === false)
    throw unsupportedNetworkTlsOption(
      'rejectUnauthorized',
      "the framework's default TLS always checks the server certificate",
    );
  // tls_protocol_version_t has no version above TLS 1.3 (SecProtocolTypes.h).
  if (maxVersion !== undefined && maxVersion !== 'TLSv1.3')
    throw unsupportedNetworkTlsOption('maxVersion', "only 'TLSv1.3' is accepted");

  let tlsMinVersion = 0;
  if (minVersion !== undefined) {
    tlsMinVersion = NATIVE_MIN_VERSIONS.get(minVersion) ?? 0;
    if (tlsMinVersion === 0)
      throw invalidArgValue(
        'options.tls.minVersion',
        minVersion,
        "must be 'TLSv1.2' or 'TLSv1.3' with tls.implementation 'network-framework'",
      );
  }

  let tlsServerName: string | undefined;
  if (servername !== undefined) {
    const name = 'options.tls.servername';
    if (typeof servername !== 'string') throw invalidArgType(name, 'string', servername);
    if (servername === '' || servername.includes('\0') || isIP(servername) !== 0)
      throw invalidArgValue(
        name,
        servername,
        'must be a host name; omit it to check the certificate against an IP address host',
      );
    if (Buffer.byteLength(servername) > MAX_SERVER_NAME_BYTES)
      throw invalidArgValue(name, servername, `must be at most ${MAX_SERVER_NAME_BYTES} bytes`);
    tlsServerName = servername;
  }

  return {
    tls: true,
    tlsServerName,
    tlsAlpn: alpnNames(options.ALPNProtocols),
    tlsMinVersion,
  };
}

/**
 * Node's code and message for the OSStatus codes (Security/SecBase.h) of
 * nw_error_domain_tls that have an equivalent. The certificate codes are
 * those of OpenSSL's verification, the alert codes those of the alert
 * OpenSSL would report. An OSStatus is coarser than OpenSSL's result: the
 * framework reports a self-signed server certificate as errSSLNoRootCert,
 * which becomes UNABLE_TO_VERIFY_LEAF_SIGNATURE, where Node's TLS reports
 * DEPTH_ZERO_SELF_SIGNED_CERT.
 */
const NETWORK_TLS_ERRORS: ReadonlyMap<number, { code: string; message: string }> = new Map([
  // errSSLXCertChainInvalid: invalid certificate chain.
  [-9807, { code: 'CERT_UNTRUSTED', message: 'certificate not trusted' }],
  // errSSLUnknownRootCert: valid cert chain, untrusted root.
  [
    -9812,
    { code: 'SELF_SIGNED_CERT_IN_CHAIN', message: 'self-signed certificate in certificate chain' },
  ],
  // errSSLNoRootCert: cert chain not verified by root.
  [
    -9813,
    { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', message: 'unable to verify the first certificate' },
  ],
  // errSSLCertExpired: chain had an expired cert.
  [-9814, { code: 'CERT_HAS_EXPIRED', message: 'certificate has expired' }],
  // errSSLCertNotYetValid: chain had a cert not yet valid.
  [-9815, { code: 'CERT_NOT_YET_VALID', message: 'certificate is not yet valid' }],
  // errSSLHostNameMismatch: peer host name mismatch.
  [
    -9843,
    {
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      message: "Hostname/IP does not match certificate's altnames",
    },
  ],
  // errSSLPeerHandshakeFail: the server's handshake_failure alert.
  [
    -9824,
    { code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', message: 'sslv3 alert handshake failure' },
  ],
  // errSSLPeerBadCert: the server's bad_certificate alert.
  [-9825, { code: 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', message: 'sslv3 alert bad certificate' }],
  // errSSLPeerCertExpired: the server's certificate_expired alert.
  [
    -9828,
    {
      code: 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
      message: 'sslv3 alert certificate expired',
    },
  ],
  // errSSLPeerCertUnknown: the server's certificate_unknown alert.
  [
    -9829,
    {
      code: 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
      message: 'sslv3 alert certificate unknown',
    },
  ],
  // errSSLPeerUnknownCA: the server's unknown_ca alert.
  [-9831, { code: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', message: 'tlsv1 alert unknown ca' }],
  // errSSLPeerProtocolVersion: the server's protocol_version alert.
  [
    -9836,
    { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', message: 'tlsv1 alert protocol version' },
  ],
  // errSSLPeerInternalError: the server's internal_error alert.
  [-9838, { code: 'ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR', message: 'tlsv1 alert internal error' }],
  // errSSLUnrecognizedName: the server's unrecognized_name alert.
  [-9865, { code: 'ERR_SSL_TLSV1_UNRECOGNIZED_NAME', message: 'tlsv1 unrecognized name' }],
]);

/** OSStatus codes of a connection that the server closed or reset. */
const NETWORK_TLS_RESETS = new Set([
  -9816, // errSSLClosedNoNotify: server closed session with no notification.
  -9852, // errSSLTransportReset: transport (socket) shutdown.
]);

/**
 * Returns the error for a failure of the framework's TLS: Node's TLS code
 * and message where the OSStatus has an equivalent, ECONNRESET for a
 * connection the server closed, else `error` itself (EPROTO). The result
 * keeps networkDomain 'tls' and the OSStatus in networkCode.
 */
export function networkTlsError(error: SystemError, serverName: string): SystemError {
  if (error.networkDomain !== 'tls' || error.networkCode === undefined) return error;
  const status = error.networkCode;

  if (NETWORK_TLS_RESETS.has(status)) {
    const reset = systemError(-constants.errno.ECONNRESET, error.syscall ?? 'read', {
      address: error.address,
      port: error.port,
    });
    reset.networkDomain = 'tls';
    reset.networkCode = status;
    return reset;
  }

  const known = NETWORK_TLS_ERRORS.get(status);
  if (known === undefined) return error;
  let message = known.message;
  if (known.code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    message += `: ${isIP(serverName) === 0 ? 'Host' : 'IP'}: ${serverName}.`;
  const converted: SystemError & { host?: string } = new Error(message);
  converted.code = known.code;
  converted.networkDomain = 'tls';
  converted.networkCode = status;
  if (known.code === 'ERR_TLS_CERT_ALTNAME_INVALID') converted.host = serverName;
  return converted;
}

/**
 * An MptcpSocket whose connection runs TLS in Apple's Network framework.
 * It carries plaintext: 'connect' (and 'ready', then 'secureConnect')
 * follows the TLS handshake, because the framework reports a connection
 * ready only after it. Instances come from connect() with
 * `tls: { implementation: 'network-framework' }`.
 */
export class MptcpNetworkTlsSocket extends MptcpSocket {
  readonly #native: NativeTlsOptions;
  readonly #serverName: string;

  /** `native` comes from validateNetworkTlsOptions; `host` is the connection's host. */
  constructor(native: NativeTlsOptions, host: string, options: SocketOptions = {}) {
    super(options);
    this.#native = native;
    this.#serverName = native.tlsServerName ?? host;
  }

  /** Emits 'secureConnect' after 'ready', for code written for tls.connect. */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const handled = super.emit(event, ...args);
    if (event === 'ready' && !this.destroyed) super.emit('secureConnect');
    return handled;
  }

  /** The negotiated TLS version, as TLSSocket.getProtocol() returns it, or null before 'connect'. */
  getProtocol(): string | null {
    return this.tlsProtocol;
  }

  protected override nativeTlsOptions(): NativeTlsOptions {
    return this.#native;
  }

  protected override convertNativeError(error: SystemError): SystemError {
    return networkTlsError(error, this.#serverName);
  }
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
 * 'connect'. With tls.implementation 'network-framework' the framework runs
 * TLS instead, and the result is an MptcpNetworkTlsSocket. Called by
 * connect() with validated options; `rawOptions` are the caller's options
 * before validation.
 */
export function connectTls(
  options: NormalizedConnectOptions & { tls: MptcpTlsOptions },
  rawOptions: Partial<ConnectOptions>,
  secureConnectListener?: () => void,
): MptcpTlsSocket | MptcpNetworkTlsSocket {
  if (options.tls !== null && typeof options.tls === 'object') {
    if (options.tls.implementation === 'network-framework')
      return connectNetworkTls(options, rawOptions, secureConnectListener);
  }
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

/**
 * Opens an MPTCP connection with the Network framework's TLS. The listener
 * runs on 'connect', which follows the handshake.
 */
function connectNetworkTls(
  options: NormalizedConnectOptions & { tls: MptcpTlsOptions },
  rawOptions: Partial<ConnectOptions>,
  connectListener?: () => void,
): MptcpNetworkTlsSocket {
  const native = validateNetworkTlsOptions(options.tls, options.host);
  const socket = new MptcpNetworkTlsSocket(native, options.host, {
    allowHalfOpen: options.allowHalfOpen,
  });
  return socket.connect({ ...rawOptions, tls: undefined } as ConnectOptions, connectListener);
}
