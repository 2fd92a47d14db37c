// The check.mptcp.dev protocol: a GET / with a User-Agent that starts with
// "curl" returns one plain-text line saying whether the server's kernel
// sees an established MPTCP connection. This file has the client, over HTTP
// or HTTPS, and a local server that returns the same lines from a real
// MPTCP listener.

import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo as NetAddressInfo } from 'node:net';
import type * as tls from 'node:tls';

import { MptcpSocket } from './socket';
import { isMptcpSocket, listenMptcp } from './server';
import type { MultipathService } from './options';
import { defaultServername, startTls, type MptcpTlsOptions } from './tls';

export const VERDICT_MPTCP = 'You are using MPTCP.';
export const VERDICT_NOT_MPTCP = 'You are not using MPTCP.';

/** The User-Agent sent by checkMptcp; the server answers in plain text for curl. */
export const CHECK_USER_AGENT = 'curl/8.5.0 (nw-mptcp)';

export interface CheckOptions {
  /** Default 'check.mptcp.dev'. */
  host?: string;
  /** Default 443 with TLS, 80 without. */
  port?: number;
  /**
   * HTTPS: true, or the options of tls.connect, such as `ca` for a local
   * server. Default false: plain HTTP.
   */
  tls?: boolean | MptcpTlsOptions;
  multipath?: MultipathService;
  /** Maximum time in ms for the whole check (default 10000). */
  timeout?: number;
}

export interface CheckResult {
  /** HTTP status code of the reply. */
  statusCode: number;
  /** The reply's first line, such as "You are using MPTCP.". */
  verdict: string;
  /** What the server saw: true, false, or null for an unknown reply. */
  serverSawMptcp: boolean | null;
  /** What the client socket knows (see MptcpSocket.mptcp). */
  clientMptcp: boolean | null;
  /** The negotiated TLS version, such as 'TLSv1.3', or null for plain HTTP. */
  tlsProtocol: string | null;
  multipath: MultipathService;
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
}

function parseVerdict(line: string): boolean | null {
  if (line.startsWith(VERDICT_MPTCP)) return true;
  if (line.startsWith(VERDICT_NOT_MPTCP)) return false;
  return null;
}

/**
 * Destroys `request` with a timeout error unless it closes within `ms`,
 * body included. The timeout option of http.request needs a socket timer
 * that a custom createConnection does not start.
 */
export function setDeadline(request: http.ClientRequest, ms: number, message: string): void {
  const deadline = setTimeout(() => request.destroy(new Error(message)), ms);
  request.on('close', () => clearTimeout(deadline));
}

/**
 * Asks an MPTCP check server, over an MPTCP connection, whether it sees
 * MPTCP. With `tls`, the request goes over HTTPS and the server certificate
 * is checked as https.request checks it.
 */
export function checkMptcp(options: CheckOptions = {}): Promise<CheckResult> {
  const host = options.host ?? 'check.mptcp.dev';
  const tlsOptions = options.tls === true ? {} : options.tls || undefined;
  const port = options.port ?? (tlsOptions ? 443 : 80);
  const multipath = options.multipath ?? 'handover';
  const timeout = options.timeout ?? 10_000;

  return new Promise((resolve, reject) => {
    let socket: MptcpSocket | undefined;
    let mptcp: boolean | null = null;
    let tlsProtocol: string | null = null;
    const createConnection = () => {
      socket = new MptcpSocket();
      socket.connect({ host, port, multipath, connectTimeout: timeout });
      // The flag is read once the connection exists, before the server
      // closes it.
      socket.once('connect', () => {
        mptcp = socket?.mptcp ?? null;
      });
      if (!tlsOptions) return socket;
      const tlsSocket = startTls(socket, {
        ...tlsOptions,
        host: tlsOptions.host ?? host,
        servername: tlsOptions.servername ?? defaultServername(host),
      });
      tlsSocket.once('secureConnect', () => {
        tlsProtocol = tlsSocket.getProtocol();
      });
      return tlsSocket;
    };
    // https.request sets the Host header without the default port 443.
    const request = (tlsOptions ? https : http).request(
      {
        host,
        port,
        path: '/',
        method: 'GET',
        headers: { 'User-Agent': CHECK_USER_AGENT, Accept: '*/*', Connection: 'close' },
        createConnection,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const verdict = Buffer.concat(chunks).toString('utf8').split('\n')[0].trim();
          resolve({
            statusCode: response.statusCode ?? 0,
            verdict,
            serverSawMptcp: parseVerdict(verdict),
            clientMptcp: mptcp,
            tlsProtocol,
            multipath,
            localAddress: socket?.localAddress,
            localPort: socket?.localPort,
            remoteAddress: socket?.remoteAddress,
            remotePort: socket?.remotePort,
          });
        });
      },
    );
    setDeadline(request, timeout, `The check of ${host}:${port} timed out after ${timeout} ms`);
    request.on('error', reject);
    request.end();
  });
}

function describeSocket(socket: import('node:net').Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}

/** Options of createCheckServer and startCheckServer. */
export interface CheckServerOptions {
  /**
   * Serves HTTPS with these options of tls.createServer (at least `key` and
   * `cert`); plain HTTP when omitted.
   */
  tls?: tls.TlsOptions;
}

/**
 * Creates an HTTP or HTTPS server that answers like check.mptcp.dev: for a
 * User-Agent starting with "curl", one line with the verdict taken from
 * the kernel's view of the accepted socket; an HTML page for other
 * clients; 500 without a User-Agent. Call listen() to start it on MPTCP
 * (Linux only), or use startCheckServer.
 */
export function createCheckServer(options: CheckServerOptions = {}): http.Server | https.Server {
  const listener = (request: http.IncomingMessage, response: http.ServerResponse) => {
    const agent = request.headers['user-agent'];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
      response.end('Method not allowed\n');
      return;
    }
    if (agent === undefined) {
      response.writeHead(500, { 'Content-Type': 'text/plain' });
      response.end('Internal server error: no User-Agent\n');
      return;
    }
    if (request.url !== '/') {
      response.writeHead(404, { 'Content-Type': 'text/plain' });
      response.end('Not found\n');
      return;
    }

    // Over HTTPS, request.socket is a TLSSocket. Its handle reports the file
    // descriptor of the TCP socket below it, so isMptcpSocket reads the
    // kernel's flag of the accepted connection either way.
    const verdict = isMptcpSocket(request.socket) === true ? VERDICT_MPTCP : VERDICT_NOT_MPTCP;
    if (agent.startsWith('curl')) {
      response.writeHead(200, { 'Content-Type': 'text/plain' });
      response.end(`${verdict}\n`);
      return;
    }
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    response.end(
      `<!doctype html>\n<html><head><title>MPTCP check</title></head>` +
        `<body><p>${verdict}</p><p>Client: ${describeSocket(request.socket)}</p></body></html>\n`,
    );
  };
  return options.tls === undefined
    ? http.createServer(listener)
    : https.createServer(options.tls, listener);
}

/**
 * Starts a local check server on an MPTCP listener (Linux only), over HTTPS
 * when `tls` is given, and resolves with the server and its address.
 */
export function startCheckServer(
  options: CheckServerOptions & { host?: string; port?: number } = {},
): Promise<{ server: http.Server | https.Server; address: NetAddressInfo }> {
  const server = createCheckServer({ tls: options.tls });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    listenMptcp(server, { host: options.host ?? '127.0.0.1', port: options.port ?? 0 }, () => {
      server.removeListener('error', reject);
      resolve({ server, address: server.address() as NetAddressInfo });
    });
  });
}
