// Certificates and servers for the TLS, HTTP and HTTP/2 tests. The
// certificates are made once per test run by lib/certificate.ts; servers
// listen on 127.0.0.1, on MPTCP where the platform can serve it.

import { once } from 'node:events';
import type * as net from 'node:net';

import {
  createCertificate,
  createLocalCertificates,
  type KeyAndCertificate,
} from '../lib/certificate';
import { isMptcpSocket, listenMptcp } from '../lib/index';
import { canServeMptcp } from './helpers';

/** A CA, a server certificate it signed for localhost and 127.0.0.1, and unrelated ones. */
export interface Certificates {
  ca: KeyAndCertificate;
  server: KeyAndCertificate;
  /** A CA that the clients never trust. */
  otherCa: KeyAndCertificate;
  /** A server certificate signed by otherCa. */
  otherServer: KeyAndCertificate;
  /** A server certificate that signed itself. */
  selfSigned: KeyAndCertificate;
}

let certificates: Certificates | undefined;

/** Returns the test certificates, creating them on the first call. */
export function testCertificates(): Certificates {
  if (certificates !== undefined) return certificates;
  const { ca, server } = createLocalCertificates({ caName: 'nw-mptcp test CA' });
  const other = createLocalCertificates({ caName: 'nw-mptcp untrusted CA' });
  const selfSigned = createCertificate({
    commonName: 'localhost',
    altNames: ['localhost', '127.0.0.1'],
  });
  certificates = { ca, server, otherCa: other.ca, otherServer: other.server, selfSigned };
  return certificates;
}

/** What isMptcpSocket reports on the server for an MPTCP client. */
export const serverMptcpFlag: boolean | null = canServeMptcp ? true : null;

/** What isMptcpSocket reports on the server for a plain TCP client. */
export const serverTcpFlag: boolean | null = canServeMptcp ? false : null;

export interface ListeningServer<T extends net.Server> {
  server: T;
  port: number;
  /** Raw TCP connections accepted so far, before any TLS. */
  connections: net.Socket[];
  /** isMptcpSocket() of each accepted connection, in order. */
  mptcp: Array<boolean | null>;
  /** Destroys the accepted connections and closes the server. */
  close(): Promise<void>;
}

/**
 * Starts `server` (net, tls, http, https or http2) on 127.0.0.1: on MPTCP
 * where the platform can serve it, on TCP otherwise. The 'connection' event
 * gives the raw socket before TLS, so its MPTCP state is read there.
 */
export async function listenOnLoopback<T extends net.Server>(
  server: T,
): Promise<ListeningServer<T>> {
  const connections: net.Socket[] = [];
  const mptcp: Array<boolean | null> = [];
  server.on('connection', (socket: net.Socket) => {
    connections.push(socket);
    mptcp.push(isMptcpSocket(socket));
  });
  if (canServeMptcp) listenMptcp(server, { host: '127.0.0.1', port: 0 });
  else server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    port,
    connections,
    mptcp,
    close: async () => {
      for (const socket of connections) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Returns a promise of the next 'close' event of `emitter`, with its
 * argument. Unlike events.once, it does not reject on 'error', so call it
 * before the socket can fail.
 */
export function closeEvent(emitter: NodeJS.EventEmitter): Promise<unknown> {
  return new Promise((resolve) => emitter.once('close', resolve));
}
