// HTTP/2 over MPTCP: http2.connect with a createConnection that opens an
// MPTCP connection, with TLS and ALPN 'h2' for https: authorities and
// cleartext HTTP/2 (h2c, prior knowledge) for http: ones.

import * as http2 from 'node:http2';

import { validateConnectOptions, type ConnectOptions, type MultipathService } from './options';
import { MptcpSocket } from './socket';
import { connectTls, defaultServername, type MptcpTlsOptions, type MptcpTlsSocket } from './tls';

/** Options of connectHttp2: those of http2.connect, plus the MPTCP ones. */
export interface MptcpHttp2Options extends http2.SecureClientSessionOptions {
  /** Multipath service to request (default 'handover'). */
  multipath?: MultipathService;
  /** Maximum time in ms to establish the MPTCP connection; fails with ETIMEDOUT. */
  connectTimeout?: number;
  /** 4 or 6 to use one address family only; 0 for both (default). */
  family?: number;
  localAddress?: string;
}

/**
 * Returns a createConnection function for http2.connect that opens MPTCP
 * connections: TLS with ALPN 'h2' for https:, plain MPTCP for http:. The TLS options are taken from `options`,
 * as http2.connect takes them for TCP.
 */
export function createHttp2Connection(
  options: MptcpHttp2Options = {},
): (authority: URL) => MptcpSocket | MptcpTlsSocket {
  return (authority) => {
    const protocol = authority.protocol || options.protocol || 'https:';
    let host = authority.hostname || 'localhost';
    if (host.startsWith('[')) host = host.slice(1, -1);
    const port = authority.port !== '' ? Number(authority.port) : protocol === 'http:' ? 80 : 443;
    const { multipath, connectTimeout, family, lookup, localAddress } = options;
    const socketOptions: ConnectOptions = {
      host,
      port,
      multipath,
      connectTimeout,
      family,
      lookup: lookup as ConnectOptions['lookup'],
      localAddress,
    };
    if (protocol === 'http:') return new MptcpSocket().connect(socketOptions);

    // http2.connect hands all its options to tls.connect, which ignores the
    // HTTP/2 ones; the same options go to tls.connect here.
    const { createConnection: _createConnection, ...sessionOptions } = options;
    const tlsOptions: MptcpTlsOptions = {
      ...sessionOptions,
      ALPNProtocols: ['h2'],
      servername: options.servername || defaultServername(host),
    };
    return connectTls({ ...validateConnectOptions(socketOptions), tls: tlsOptions }, socketOptions);
  };
}

/**
 * Opens an HTTP/2 session over MPTCP, as http2.connect(authority, options,
 * listener) does over TCP. The session negotiates 'h2' with ALPN on https:
 * authorities.
 */
export function connectHttp2(
  authority: string | URL,
  options: MptcpHttp2Options = {},
  listener?: (session: http2.ClientHttp2Session, socket: MptcpSocket | MptcpTlsSocket) => void,
): http2.ClientHttp2Session {
  const createConnection = createHttp2Connection(options);
  return http2.connect(
    authority,
    { ...options, createConnection },
    listener as ((session: http2.ClientHttp2Session, socket: unknown) => void) | undefined,
  );
}
