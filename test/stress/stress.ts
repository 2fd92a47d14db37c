// A short stress script for memory checkers (test/stress/valgrind.sh): every
// way a connection can end, with writes, reads, option setters, path reports
// and garbage collection on the way, small enough to finish in a few minutes
// under valgrind. It exits with 0 when every connection ended as expected
// and with 1 otherwise, printing what differed.
//
// Usage: node --expose-gc stress.js [ROUNDS]

import { once } from 'node:events';
import * as net from 'node:net';
import { Worker } from 'node:worker_threads';

import { binding } from '../../lib/binding';
import { connect, createServer } from '../../lib/index';
import type { MptcpSocket } from '../../lib/socket';

const rounds = Number(process.argv[2] ?? 2);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

const KiB = 1024;
const problems: string[] = [];

/**
 * Serves one connection as its first byte selects: 'R' resets it, 'C' echoes
 * the first chunk and ends, and anything else echoes everything.
 */
function serve(socket: net.Socket): void {
  socket.on('error', () => {});
  socket.once('data', (chunk: Buffer) => {
    const mode = String.fromCharCode(chunk[0]);
    if (mode === 'R') {
      socket.resetAndDestroy();
      return;
    }
    if (mode === 'C') {
      socket.end(chunk);
      return;
    }
    socket.write(chunk);
    socket.pipe(socket);
  });
}

/** Records the socket's events and resolves with them, in order, at 'close'. */
function events(socket: MptcpSocket): Promise<string> {
  const seen: string[] = [];
  for (const name of ['connect', 'end', 'error', 'close'])
    socket.on(name, (arg: unknown) => {
      if (name === 'error') seen.push(`error ${(arg as NodeJS.ErrnoException).code}`);
      else if (seen[seen.length - 1] !== name) seen.push(name);
    });
  return new Promise((resolve) => socket.once('close', () => resolve(seen.join(' '))));
}

function expect(name: string, actual: string, expected: string | string[]): void {
  const allowed = Array.isArray(expected) ? expected : [expected];
  if (!allowed.includes(actual))
    problems.push(`${name}: ${actual}, expected ${allowed.join(' or ')}`);
}

async function echo(port: number, options: Record<string, unknown> = {}): Promise<string> {
  const socket = connect({ port, host: '127.0.0.1', noDelay: true, ...options });
  const trace = events(socket);
  const payload = Buffer.alloc(64 * KiB, 0x61);
  payload[0] = 'E'.charCodeAt(0);
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received === payload.length) socket.end();
  });
  await once(socket, 'connect');
  socket.setKeepAlive(true, 1000).setNoDelay(false).setTimeout(60000);
  socket.unref();
  socket.ref();
  void socket.address();
  if (binding.backend === 'linux') await socket.getPaths();
  socket.write(payload);
  const result = await trace;
  if (received !== payload.length) problems.push(`echo: received ${received} bytes`);
  return result;
}

async function one(port: number, closedPort: number): Promise<void> {
  expect('echo', await echo(port), 'connect end close');

  let socket = connect({ port, host: '127.0.0.1' });
  let trace = events(socket);
  socket.on('connect', () => socket.destroy());
  socket.write(Buffer.alloc(256 * KiB));
  expect('destroy with a pending write', await trace, 'connect close');

  socket = connect({ port, host: '127.0.0.1' });
  trace = events(socket);
  socket.resume();
  socket.write('R');
  expect('peer reset', await trace, 'connect error ECONNRESET close');

  socket = connect({ port, host: '127.0.0.1' });
  trace = events(socket);
  socket.resume();
  socket.write('C');
  expect('peer end', await trace, 'connect end close');

  socket = connect({ port, host: '127.0.0.1' });
  trace = events(socket);
  socket.on('connect', () => socket.resetAndDestroy());
  expect('reset and destroy', await trace, 'connect close');

  socket = connect({ port, host: '127.0.0.1' });
  trace = events(socket);
  socket.destroy();
  expect('destroy before connect', await trace, 'close');

  socket = connect({ port: closedPort, host: '127.0.0.1' });
  trace = events(socket);
  socket.write('lost');
  expect('refused', await trace, 'error ECONNREFUSED close');

  // Dropped: no reference is kept, and the server ends after its echo.
  await new Promise<void>((resolve) => {
    const dropped = connect({ port, host: '127.0.0.1' });
    dropped.on('close', () => resolve());
    dropped.resume();
    dropped.end('C dropped');
  });
  gc!();
}

/** Runs a worker that opens a connection and exits while it is open. */
async function worker(port: number): Promise<void> {
  const source = `
    const { connect } = require(${JSON.stringify(require.resolve('../../lib/index'))});
    const socket = connect({ port: ${port}, host: '127.0.0.1' });
    socket.on('error', () => {});
    socket.on('connect', () => { socket.write('E worker'); setTimeout(() => process.exit(0), 5); });
  `;
  const thread = new Worker(source, { eval: true });
  const [code] = (await once(thread, 'exit')) as [number];
  expect('worker exit code', String(code), '0');
}

async function main(): Promise<void> {
  const server = createServer(serve);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const closedPort = (probe.address() as net.AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));

  for (let round = 0; round < rounds; round++) {
    await one(port, closedPort);
    // Connections in parallel, and one of them from a worker.
    const results = await Promise.all([
      echo(port),
      echo(port),
      echo(port, { allowHalfOpen: true }),
    ]);
    for (const result of results) expect('parallel echo', result, 'connect end close');
    await worker(port);
  }
  server.close();
  gc!();

  if (problems.length > 0) {
    process.stderr.write(`stress: ${problems.length} problems\n${problems.join('\n')}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`stress: ${rounds} rounds passed\n`);
}

void main();
