#!/usr/bin/env node
// Command-line interface: nw-mptcp check, get and check-server.

import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { parseArgs } from 'node:util';

import { createLocalCertificates } from './certificate';
import {
  checkMptcp,
  setDeadline,
  startCheckServer,
  type CheckOptions,
  type CheckResult,
} from './check';
import { validateMultipath, validatePort, type MultipathService } from './options';
import { MptcpSocket, type PathReport } from './socket';
import { defaultServername, startTls, type MptcpTlsOptions, type MptcpTlsSocket } from './tls';

const USAGE = `Usage:
  nw-mptcp check [URL | host] [--port N] [--http] [--multipath SERVICE] [--local]
                 [--ca FILE] [--timeout MS]
      Sends GET / with a curl User-Agent over an MPTCP connection and prints
      the server's verdict and what the socket knows. The default target is
      https://check.mptcp.dev (HTTPS, port 443). A URL chooses HTTP or HTTPS
      by its scheme; a bare host uses HTTPS unless --http is given.
      --local starts a local HTTPS check server on 127.0.0.1 (Linux), with a
      certificate from a CA generated for this run, and checks against it.
  nw-mptcp get URL [-v] [--multipath SERVICE] [--ca FILE] [--timeout MS]
      Fetches an http: or https: URL over MPTCP and writes the body to
      standard output. -v writes the connection's MPTCP state, the TLS
      details and the response headers to standard error.
  nw-mptcp check-server [--host ADDRESS] [--port N] [--key FILE --cert FILE]
      Runs a local check server on an MPTCP listener (Linux) until stopped:
      HTTPS with the PEM key and certificate given, plain HTTP without.

Options:
  --port N              server port (default 443 for HTTPS, 80 for HTTP)
  --http                plain HTTP instead of HTTPS
  --multipath SERVICE   handover (default), interactive, aggregate or disabled
  --ca FILE             PEM file of CA certificates to trust instead of the defaults
  --timeout MS          maximum time for the request in milliseconds (default 10000)
  -v, --verbose         get: print the connection details to standard error
  -h, --help            prints this help

Exit status: 0 when the server saw MPTCP (check) or the reply status is
below 400 (get), 1 otherwise, 2 on errors.
`;

const DEFAULT_CHECK_HOST = 'check.mptcp.dev';
const DEFAULT_TIMEOUT_MS = 10_000;

function yesNo(value: boolean | null): string {
  if (value === null) return 'unknown';
  return value ? 'yes' : 'no';
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function parseTimeout(value: string | undefined): number {
  if (value === undefined) return DEFAULT_TIMEOUT_MS;
  const timeout = Number(value);
  if (!Number.isInteger(timeout) || timeout <= 0)
    throw new Error(`--timeout must be a positive integer of milliseconds; received ${value}`);
  return timeout;
}

function readCa(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`--ca: cannot read ${file}: ${(error as Error).message}`);
  }
}

interface Target {
  host: string;
  port: number;
  https: boolean;
}

/** Reads the check target from a URL or host argument, --port and --http. */
function parseCheckTarget(argument: string | undefined, port?: string, plainHttp = false): Target {
  let host = DEFAULT_CHECK_HOST;
  let useHttps = !plainHttp;
  let urlPort: number | undefined;
  if (argument !== undefined && /^[a-z][a-z0-9+.-]*:\/\//i.test(argument)) {
    const url = new URL(argument);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new Error(`The URL must start with http:// or https://; received ${argument}`);
    if (plainHttp && url.protocol === 'https:')
      throw new Error(`--http conflicts with the https: URL ${argument}`);
    useHttps = url.protocol === 'https:';
    host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (url.port !== '') urlPort = Number(url.port);
  } else if (argument !== undefined) {
    host = argument;
  }
  const defaultPort = useHttps ? 443 : 80;
  return {
    host,
    port: port === undefined ? (urlPort ?? defaultPort) : validatePort(port, '--port'),
    https: useHttps,
  };
}

function printResult(target: Target, result: CheckResult): void {
  const scheme = target.https ? 'https' : 'http';
  console.log(`Server:      ${scheme}://${hostForUrl(target.host)}:${target.port}`);
  console.log(`Verdict:     ${result.verdict || `(HTTP ${result.statusCode}, no verdict line)`}`);
  console.log(`Multipath:   ${result.multipath} requested`);
  console.log(`MPTCP in use (client socket): ${yesNo(result.clientMptcp)}`);
  if (result.tlsProtocol !== null) console.log(`TLS:         ${result.tlsProtocol}`);
  console.log(`Local:       ${result.localAddress}:${result.localPort}`);
  console.log(`Remote:      ${result.remoteAddress}:${result.remotePort}`);
}

async function runCheck(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      http: { type: 'boolean', default: false },
      multipath: { type: 'string' },
      local: { type: 'boolean', default: false },
      ca: { type: 'string' },
      timeout: { type: 'string' },
    },
  });
  const multipath = validateMultipath(values.multipath, '--multipath');
  const timeout = parseTimeout(values.timeout);
  const target = parseCheckTarget(positionals[0], values.port, values.http);
  let ca = readCa(values.ca);

  let stop: (() => void) | undefined;
  if (values.local && process.platform !== 'linux') {
    console.log(
      `The local check server needs Linux; checking ${target.host}:${target.port} instead.`,
    );
  } else if (values.local) {
    // The local server gets a certificate from a CA made for this run, and
    // the client trusts only that CA.
    const certificates = target.https ? createLocalCertificates() : undefined;
    const { server, address } = await startCheckServer({
      port: values.port === undefined ? 0 : target.port,
      tls: certificates && { key: certificates.server.key, cert: certificates.server.cert },
    });
    target.host = address.address;
    target.port = address.port;
    ca = certificates?.ca.cert;
    stop = () => server.close();
    const scheme = target.https ? 'https' : 'http';
    console.log(
      `Local check server listening on MPTCP at ${scheme}://${target.host}:${target.port}`,
    );
  }

  let tls: CheckOptions['tls'] = false;
  if (target.https) tls = ca === undefined ? true : { ca };
  try {
    const result = await checkMptcp({
      host: target.host,
      port: target.port,
      tls,
      multipath,
      timeout,
    });
    printResult(target, result);
    return result.serverSawMptcp === true ? 0 : 1;
  } finally {
    stop?.();
  }
}

/** Writes one line of `get -v` output to standard error, prefixed as curl does. */
function info(prefix: string, line: string): void {
  process.stderr.write(`${prefix} ${line}\n`);
}

function describeConnection(
  socket: MptcpSocket,
  tlsSocket: MptcpTlsSocket | undefined,
  multipath: MultipathService,
): void {
  info('*', `Connected to ${socket.remoteAddress}:${socket.remotePort}`);
  info('*', `Local address: ${socket.localAddress}:${socket.localPort}`);
  info('*', `Multipath service: ${multipath} requested`);
  const mptcp = socket.mptcp;
  const state = mptcp === null ? 'unknown (the platform does not report it)' : yesNo(mptcp);
  info('*', `MPTCP in use: ${state}`);
  if (socket.mptcpFallback) info('*', 'The kernel refused an MPTCP socket: plain TCP is used');
  socket.on('path', () => info('*', 'The set of paths changed'));
  if (tlsSocket !== undefined) {
    tlsSocket.once('secureConnect', () => {
      info('*', `TLS: ${tlsSocket.getProtocol()}, cipher ${tlsSocket.getCipher().name}`);
      info('*', `ALPN: ${tlsSocket.alpnProtocol || 'none'}`);
      info('*', `Certificate verified: ${tlsSocket.authorized ? 'yes' : 'no'}`);
    });
  }
}

/** Writes the paths of the connection from a report that getPaths() promised. */
async function printPaths(pending: Promise<PathReport>): Promise<void> {
  let report;
  try {
    report = await pending;
  } catch (error) {
    info('*', `Paths: not available (${(error as Error).message})`);
    return;
  }
  info('*', `Paths: ${report.paths.length}, ${report.bytesReceived} bytes received by then`);
  for (const path of report.paths) {
    const local = path.localAddress === undefined ? '?' : `${path.localAddress}:${path.localPort}`;
    const remote =
      path.remoteAddress === undefined ? '?' : `${path.remoteAddress}:${path.remotePort}`;
    const rtt = path.rtt === undefined ? 'unknown' : `${path.rtt.toFixed(2)} ms`;
    const backup = path.backup === null ? '' : path.backup ? ', backup' : '';
    info(
      '*',
      `  path ${path.id}: ${local} -> ${remote} on ${path.interface ?? '?'}, ` +
        `sent ${path.bytesSent} B, received ${path.bytesReceived} B, RTT ${rtt}${backup}`,
    );
  }
}

async function runGet(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      verbose: { type: 'boolean', short: 'v', default: false },
      multipath: { type: 'string' },
      ca: { type: 'string' },
      timeout: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new Error('get needs one URL, such as https://example.org/');
  const url = new URL(positionals[0]);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`The URL must start with http:// or https://; received ${positionals[0]}`);
  const multipath = validateMultipath(values.multipath, '--multipath');
  const timeout = parseTimeout(values.timeout);
  const ca = readCa(values.ca);
  const useHttps = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const defaultPort = useHttps ? 443 : 80;
  const port = url.port === '' ? defaultPort : Number(url.port);

  // The paths are asked for when the first data arrives: by the time the
  // response is parsed, a server that closes may have ended the connection.
  let paths: Promise<PathReport> | undefined;
  const createConnection = () => {
    const socket = new MptcpSocket();
    if (values.verbose)
      socket.once('data', () => {
        paths = socket.getPaths();
        paths.catch(() => {});
      });
    socket.connect({ host, port, multipath, connectTimeout: timeout });
    let tlsSocket: MptcpTlsSocket | undefined;
    if (useHttps) {
      const tlsOptions: MptcpTlsOptions = { host, servername: defaultServername(host) };
      if (ca !== undefined) tlsOptions.ca = ca;
      tlsSocket = startTls(socket, tlsOptions);
    }
    if (values.verbose)
      socket.once('connect', () => describeConnection(socket, tlsSocket, multipath));
    return tlsSocket ?? socket;
  };

  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const request = (useHttps ? https : http).get(url, {
      headers: { 'User-Agent': 'nw-mptcp', Accept: '*/*', Connection: 'close' },
      createConnection,
    });
    setDeadline(request, timeout, `GET ${url.href} timed out after ${timeout} ms`);
    request.on('response', resolve);
    request.on('error', reject);
  });

  if (values.verbose && paths !== undefined) await printPaths(paths);
  if (values.verbose) {
    info('<', `HTTP/${response.httpVersion} ${response.statusCode} ${response.statusMessage}`);
    for (let i = 0; i < response.rawHeaders.length; i += 2)
      info('<', `${response.rawHeaders[i]}: ${response.rawHeaders[i + 1]}`);
  }
  for await (const chunk of response) process.stdout.write(chunk as Buffer);
  return (response.statusCode ?? 0) < 400 ? 0 : 1;
}

async function runServer(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      key: { type: 'string' },
      cert: { type: 'string' },
    },
  });
  if ((values.key === undefined) !== (values.cert === undefined))
    throw new Error('--key and --cert go together: give both for HTTPS, or neither for HTTP');
  const port = values.port === undefined ? 0 : validatePort(values.port, '--port');
  const tls =
    values.key === undefined || values.cert === undefined
      ? undefined
      : { key: readFileSync(values.key), cert: readFileSync(values.cert) };
  const { address } = await startCheckServer({ host: values.host ?? '127.0.0.1', port, tls });
  const scheme = tls === undefined ? 'http' : 'https';
  console.log(
    `Check server listening on MPTCP at ${scheme}://${hostForUrl(address.address)}:${address.port}`,
  );
  return new Promise(() => {});
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === 'check') return runCheck(rest);
  if (command === 'get') return runGet(rest);
  if (command === 'check-server') return runServer(rest);
  process.stderr.write(`nw-mptcp: unknown command '${command}'\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: NodeJS.ErrnoException) => {
    // TLS and system errors carry a code, such as UNABLE_TO_VERIFY_LEAF_SIGNATURE.
    const code = error.code && !error.message.includes(error.code) ? ` (${error.code})` : '';
    process.stderr.write(`nw-mptcp: ${error.message}${code}\n`);
    process.exitCode = 2;
  },
);
