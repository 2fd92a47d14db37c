// Runs one workload with one Node contender against the peer and prints
// one JSON line with the result, in the fields of bench/c/client.c.
//
//   node --expose-gc dist/bench/client.js --contender mptcp-socket|net-mptcp|net-tcp
//     --port N --workload upload|download|pingpong|connrate|idle
//     [--bytes N] [--chunk N] [--count N] [--warmup N] [--concurrency N]
//
// net-mptcp is net.connect() in a process started with bench/c/mptcpize.c
// preloaded, so that libuv's socket is an MPTCP socket. Each contender
// checks the transport of its first connection and exits with an error
// when it is not the expected one.

import { once } from 'node:events';
import * as net from 'node:net';
import { parseArgs } from 'node:util';

import { connect as connectMptcp, isMptcpSocket, type MptcpSocket } from '../lib/index';
import { CMD_CONNECT, CMD_ECHO, downloadHeader, uploadHeader } from './protocol';
import { mean, quantile } from './stats';

export type NodeContender = 'mptcp-socket' | 'net-mptcp' | 'net-tcp';
type BenchSocket = net.Socket | MptcpSocket;

interface ClientOptions {
  contender: NodeContender;
  port: number;
  bytes: number;
  chunk: number;
  count: number;
  warmup: number;
  concurrency: number;
}

const HOST = '127.0.0.1';
/** Bytes moved before a measured bulk transfer, so that the code is compiled. */
const BULK_WARMUP_BYTES = 32 * 1024 * 1024;
/** Idle connections opened at the same time while the idle workload builds up. */
const IDLE_BATCH = 50;

let transportChecked = false;

function checkTransport(contender: NodeContender, socket: BenchSocket): void {
  if (transportChecked) return;
  transportChecked = true;
  const mptcp = isMptcpSocket(socket);
  const expected = contender !== 'net-tcp';
  if (mptcp !== expected) {
    const hint = contender === 'net-mptcp' ? ' (is LD_PRELOAD set to the mptcpize library?)' : '';
    throw new Error(`${contender}: isMptcpSocket() returned ${mptcp}, expected ${expected}${hint}`);
  }
}

/** Connects with the contender's client and resolves on 'connect'. */
async function open(options: ClientOptions): Promise<BenchSocket> {
  const { contender, port } = options;
  const socket: BenchSocket =
    contender === 'mptcp-socket'
      ? connectMptcp({ host: HOST, port, noDelay: true })
      : net.connect({ host: HOST, port, noDelay: true });
  await once(socket, 'connect');
  checkTransport(contender, socket);
  return socket;
}

async function closeSocket(socket: BenchSocket): Promise<void> {
  if (socket.closed) return;
  const closed = once(socket, 'close');
  socket.destroy();
  await closed;
}

interface BulkResult {
  workload: 'upload' | 'download';
  bytes: number;
  seconds: number;
  cpuUser: number;
  cpuSystem: number;
}

function bulkResult(
  workload: 'upload' | 'download',
  bytes: number,
  start: bigint,
  cpu: NodeJS.CpuUsage,
): BulkResult {
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return { workload, bytes, seconds, cpuUser: used.user / 1e6, cpuSystem: used.system / 1e6 };
}

/** Sends `bytes` in writes of `chunk` bytes, honouring backpressure, and waits for the ack. */
async function upload(options: ClientOptions, bytes: number): Promise<BulkResult> {
  const socket = await open(options);
  const chunk = Buffer.alloc(options.chunk, 'u');
  const ack = once(socket, 'data');
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();

  socket.write(uploadHeader(bytes));
  let sent = 0;
  while (sent < bytes) {
    const size = Math.min(options.chunk, bytes - sent);
    const flowing = socket.write(size === options.chunk ? chunk : chunk.subarray(0, size));
    sent += size;
    if (!flowing) await once(socket, 'drain');
  }
  await ack;
  const result = bulkResult('upload', bytes, start, cpu);
  await closeSocket(socket);
  return result;
}

/** Asks the peer for `bytes` in sends of `chunk` bytes and counts them as they arrive. */
async function download(options: ClientOptions, bytes: number): Promise<BulkResult> {
  const socket = await open(options);
  let received = 0;
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (data: Buffer) => {
      received += data.length;
      if (received >= bytes) resolve();
    });
    socket.once('error', reject);
    socket.once('end', () => {
      if (received < bytes) reject(new Error(`end of stream after ${received} of ${bytes} bytes`));
    });
  });
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();

  socket.write(downloadHeader(bytes, options.chunk));
  await done;
  const result = bulkResult('download', bytes, start, cpu);
  await closeSocket(socket);
  return result;
}

/** Sends `chunk` bytes and waits for all of them to come back, `warmup + count` times. */
async function pingpong(options: ClientOptions): Promise<object> {
  const socket = await open(options);
  const message = Buffer.alloc(options.chunk, 'p');
  const total = options.warmup + options.count;
  const rtts: number[] = [];
  let received = 0;
  let round = 0;
  let start = 0n;
  let cpu = process.cpuUsage();

  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.on('data', (data: Buffer) => {
      received += data.length;
      if (received < options.chunk) return;
      received -= options.chunk;
      const end = process.hrtime.bigint();
      if (round >= options.warmup) rtts.push(Number(end - start) / 1e3);
      round++;
      if (round === options.warmup) cpu = process.cpuUsage();
      if (round === total) {
        cpu = process.cpuUsage(cpu);
        resolve();
        return;
      }
      start = process.hrtime.bigint();
      socket.write(message);
    });
    socket.write(Buffer.from([CMD_ECHO]));
    start = process.hrtime.bigint();
    socket.write(message);
  });
  await closeSocket(socket);
  return {
    workload: 'pingpong',
    size: options.chunk,
    count: options.count,
    p50Us: quantile(rtts, 0.5),
    p99Us: quantile(rtts, 0.99),
    meanUs: mean(rtts),
    cpuUser: cpu.user / 1e6,
    cpuSystem: cpu.system / 1e6,
  };
}

/** Connects, exchanges one byte each way, destroys the socket and resolves on 'close'. */
async function connectOnce(options: ClientOptions): Promise<void> {
  const socket = await open(options);
  const closed = once(socket, 'close');
  socket.once('data', () => socket.destroy());
  socket.write(Buffer.from([CMD_CONNECT]));
  await closed;
}

async function connectLoop(options: ClientOptions, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await connectOnce(options);
}

/** Runs `count` connections in `concurrency` parallel chains. */
async function connrate(options: ClientOptions): Promise<object> {
  await connectLoop(options, options.warmup);
  const chains: Promise<void>[] = [];
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < options.concurrency; i++) {
    const share =
      Math.floor(options.count / options.concurrency) +
      (i < options.count % options.concurrency ? 1 : 0);
    chains.push(connectLoop(options, share));
  }
  await Promise.all(chains);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return {
    workload: 'connrate',
    count: options.count,
    concurrency: options.concurrency,
    seconds,
    cpuUser: used.user / 1e6,
    cpuSystem: used.system / 1e6,
  };
}

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('the idle workload needs node --expose-gc');
  gc();
  gc();
}

async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 50));
  collectGarbage();
}

/** Opens `count` connections that send nothing and measures the memory they hold. */
async function idle(options: ClientOptions): Promise<object> {
  // The first connection pays one-time costs (the addon's I/O thread, code
  // compilation), so it opens before the baseline.
  const first = await open(options);
  await settle();
  const before = process.memoryUsage();

  const sockets: BenchSocket[] = [];
  for (let opened = 0; opened < options.count;) {
    const batch = Math.min(IDLE_BATCH, options.count - opened);
    const pending: Promise<BenchSocket>[] = [];
    for (let i = 0; i < batch; i++) pending.push(open(options));
    sockets.push(...(await Promise.all(pending)));
    opened += batch;
  }
  await settle();
  const after = process.memoryUsage();

  await Promise.all([first, ...sockets].map(closeSocket));
  return {
    workload: 'idle',
    count: options.count,
    rssBefore: before.rss,
    rssAfter: after.rss,
    heapBefore: before.heapUsed,
    heapAfter: after.heapUsed,
    externalBefore: before.external,
    externalAfter: after.external,
  };
}

function parseOptions(): { workload: string; options: ClientOptions } {
  const { values } = parseArgs({
    options: {
      contender: { type: 'string' },
      port: { type: 'string' },
      workload: { type: 'string' },
      bytes: { type: 'string', default: String(2 ** 30) },
      chunk: { type: 'string', default: String(64 * 1024) },
      count: { type: 'string', default: '1000' },
      warmup: { type: 'string', default: '0' },
      concurrency: { type: 'string', default: '1' },
    },
  });
  const contender = values.contender;
  if (contender !== 'mptcp-socket' && contender !== 'net-mptcp' && contender !== 'net-tcp')
    throw new Error(`invalid --contender ${contender}: use mptcp-socket, net-mptcp or net-tcp`);
  if (values.workload === undefined) throw new Error('missing --workload');
  const numberOf = (name: string, text: string | undefined): number => {
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < 0)
      throw new Error(`invalid --${name} ${text}: expected a non-negative integer`);
    return value;
  };
  return {
    workload: values.workload,
    options: {
      contender,
      port: numberOf('port', values.port),
      bytes: numberOf('bytes', values.bytes),
      chunk: numberOf('chunk', values.chunk),
      count: numberOf('count', values.count),
      warmup: numberOf('warmup', values.warmup),
      concurrency: Math.max(1, numberOf('concurrency', values.concurrency)),
    },
  };
}

async function run(workload: string, options: ClientOptions): Promise<object> {
  switch (workload) {
    case 'upload':
      await upload(options, Math.min(BULK_WARMUP_BYTES, options.bytes));
      return upload(options, options.bytes);
    case 'download':
      await download(options, Math.min(BULK_WARMUP_BYTES, options.bytes));
      return download(options, options.bytes);
    case 'pingpong':
      return pingpong(options);
    case 'connrate':
      return connrate(options);
    case 'idle':
      return idle(options);
    default:
      throw new Error(`invalid --workload ${workload}`);
  }
}

async function main(): Promise<void> {
  const { workload, options } = parseOptions();
  const result = await run(workload, options);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
