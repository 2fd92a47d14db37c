// Shared test helpers: servers on loopback, data collection, and skips
// that show their reason in the test title.

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as net from 'node:net';

import { binding } from '../lib/binding';
import { createServer, isMptcpSocket } from '../lib/index';

/** The backend under test: kernel MPTCP or the Network framework (real or emulated). */
export const backendName = binding.backend;

/** Servers can listen on MPTCP where the kernel offers it. */
export const canServeMptcp = process.platform === 'linux';

/**
 * What MptcpSocket.mptcp reports for an MPTCP connection: Linux reads the
 * kernel's flag; the Network framework has no such flag and reports null.
 */
export const expectedMptcpFlag: boolean | null = backendName === 'linux' ? true : null;

/** What MptcpSocket.mptcp reports for a connection that fell back to TCP. */
export const expectedTcpFlag: boolean | null = backendName === 'linux' ? false : null;

function markSkipped(suite: Mocha.Suite, reason: string): void {
  for (const test of suite.tests) test.title += ` (skipped: ${reason})`;
  for (const child of suite.suites) markSkipped(child, reason);
}

/**
 * Marks the running test skipped, with the reason visible in its title.
 * Called from a before() hook, it marks every test of the suite.
 */
export function skipWithReason(context: Mocha.Context, reason: string): never {
  const runnable = context.test;
  const isHook = (runnable as { type?: string } | undefined)?.type === 'hook';
  if (isHook && runnable?.parent) markSkipped(runnable.parent, reason);
  else if (runnable) runnable.title += ` (skipped: ${reason})`;
  context.skip();
}

export interface TestServer {
  server: net.Server;
  port: number;
  /** Connections accepted so far, in order. */
  sockets: net.Socket[];
  /** Whether the kernel reported each accepted connection as MPTCP. */
  mptcp: Array<boolean | null>;
  close(): Promise<void>;
}

/**
 * Starts a server on 127.0.0.1 that calls `onConnection` for each client.
 * It listens on MPTCP where the platform can serve it, unless `tcp` is set.
 */
export async function startServer(
  onConnection: (socket: net.Socket) => void,
  options: { tcp?: boolean; allowHalfOpen?: boolean; pauseOnConnect?: boolean } = {},
): Promise<TestServer> {
  const serverOptions = {
    allowHalfOpen: options.allowHalfOpen ?? false,
    pauseOnConnect: options.pauseOnConnect ?? false,
  };
  const useMptcp = canServeMptcp && options.tcp !== true;
  const server = useMptcp ? createServer(serverOptions) : net.createServer(serverOptions);
  const sockets: net.Socket[] = [];
  const mptcp: Array<boolean | null> = [];
  server.on('connection', (socket: net.Socket) => {
    // Clients in these tests often reset or destroy with unread data; the
    // server side of such a connection reports ECONNRESET, which is expected.
    socket.on('error', () => {});
    sockets.push(socket);
    mptcp.push(isMptcpSocket(socket));
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    port,
    sockets,
    mptcp,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Reads a stream to its end and returns everything it produced. */
export async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Writes `data` in `chunkSize` pieces, waiting for 'drain' when write() returns false. */
export async function writeAll(
  stream: NodeJS.WritableStream,
  data: Buffer,
  chunkSize = 1024 * 1024,
): Promise<void> {
  for (let offset = 0; offset < data.length; offset += chunkSize) {
    if (!stream.write(data.subarray(offset, offset + chunkSize))) await once(stream, 'drain');
  }
}

/** Resolves with the events of `emitter` named in `names`, in order, until `until` fires. */
export function recordEvents(
  emitter: NodeJS.EventEmitter,
  names: string[],
  until = 'close',
): Promise<string[]> {
  const seen: string[] = [];
  return new Promise((resolve) => {
    for (const name of names) {
      emitter.on(name, () => {
        seen.push(name);
        if (name === until) resolve(seen);
      });
    }
  });
}
