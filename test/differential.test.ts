// Differential suite: each scenario runs against net.Socket over plain TCP
// and against MptcpSocket over MPTCP, on loopback, and the traces of events,
// data and error fields must be equal. Each scenario also checks the
// reference trace against the expected one, so that a mistake made by both
// sides still fails.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';

import { connect, MptcpSocket } from '../lib/index';
import { startServer, skipWithReason, type TestServer } from './helpers';
import {
  connectingSocketsTo,
  createBlackhole,
  namespaceUnavailableReason,
  openDescriptorCount,
  type Blackhole,
} from './netns';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The socket surface that both contenders share. */
type SocketLike = Duplex & {
  connecting: boolean;
  pending: boolean;
  readyState: string;
  bytesRead: number;
  bytesWritten: number;
  remoteAddress?: string;
  remotePort?: number;
  remoteFamily?: string;
  localAddress?: string;
  localPort?: number;
  address(): object;
  setTimeout(ms: number, callback?: () => void): unknown;
  setNoDelay(noDelay?: boolean): unknown;
  setKeepAlive(enable?: boolean, delay?: number): unknown;
  ref(): unknown;
  unref(): unknown;
  connect(...args: unknown[]): unknown;
};

interface Contender {
  name: string;
  connect(options: Record<string, unknown>): SocketLike;
  create(options?: Record<string, unknown>): SocketLike;
  startServer(
    onConnection: (socket: net.Socket) => void,
    options?: { allowHalfOpen?: boolean; pauseOnConnect?: boolean },
  ): Promise<TestServer>;
}

const reference: Contender = {
  name: 'net.Socket',
  connect: (options) =>
    net.connect(options as unknown as net.NetConnectOpts) as unknown as SocketLike,
  create: (options) => new net.Socket(options) as unknown as SocketLike,
  startServer: (onConnection, options = {}) => startServer(onConnection, { ...options, tcp: true }),
};

const candidate: Contender = {
  name: 'MptcpSocket',
  connect: (options) => connect(options as never) as unknown as SocketLike,
  create: (options) => new MptcpSocket(options) as unknown as SocketLike,
  startServer: (onConnection, options = {}) => startServer(onConnection, options),
};

/**
 * Records the events of a socket. Consecutive 'data' events become one
 * entry, because chunk sizes differ between stacks; 'close' records its
 * hadError argument and 'error' the fields of the error.
 */
class Trace {
  readonly events: string[] = [];
  readonly errors: Array<Record<string, unknown>> = [];
  readonly data: Buffer[] = [];

  constructor(
    socket: SocketLike,
    names = ['lookup', 'connect', 'ready', 'data', 'end', 'finish', 'timeout', 'error', 'close'],
  ) {
    for (const name of names) {
      socket.on(name, (arg: unknown) => {
        if (name === 'data') {
          this.data.push(arg as Buffer);
          if (this.events[this.events.length - 1] === 'data') return;
        }
        if (name === 'close') {
          this.events.push(`close:${arg}`);
          return;
        }
        if (name === 'error') this.errors.push(errorFields(arg as Error));
        if (name === 'lookup') {
          this.events.push(`lookup:${(arg as Error | null)?.constructor.name ?? 'ok'}`);
          return;
        }
        this.events.push(name);
      });
    }
  }

  get received(): Buffer {
    return Buffer.concat(this.data);
  }
}

/** The fields that net.Socket sets on an error, with stack and class left out. */
function errorFields(error: Error): Record<string, unknown> {
  const fields: Record<string, unknown> = { name: error.name, message: error.message };
  for (const key of ['code', 'errno', 'syscall', 'address', 'port', 'hostname'])
    if (key in error) fields[key] = (error as unknown as Record<string, unknown>)[key];
  return fields;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function closed(socket: SocketLike): Promise<void> {
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

/** Returns a loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const probe = net.createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A lookup that resolves only on this machine: localhost, and nothing else. */
function localLookup(
  hostname: string,
  options: { all?: boolean },
  callback: (error: NodeJS.ErrnoException | null, address?: unknown, family?: number) => void,
): void {
  setImmediate(() => {
    if (hostname === 'localhost') {
      if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
      else callback(null, '127.0.0.1', 4);
      return;
    }
    const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
    error.errno = -3008;
    error.code = 'ENOTFOUND';
    error.syscall = 'getaddrinfo';
    (error as unknown as { hostname: string }).hostname = hostname;
    callback(error);
  });
}

/**
 * Runs `scenario` against both contenders, one after the other, and returns
 * both results for comparison.
 */
async function runBoth<T>(scenario: (contender: Contender) => Promise<T>): Promise<[T, T]> {
  const expected = await scenario(reference);
  const actual = await scenario(candidate);
  return [expected, actual];
}

describe('differential: MptcpSocket against net.Socket', () => {
  const servers: TestServer[] = [];

  async function serve(
    contender: Contender,
    onConnection: (socket: net.Socket) => void,
    options?: { allowHalfOpen?: boolean; pauseOnConnect?: boolean },
  ): Promise<TestServer> {
    const server = await contender.startServer(onConnection, options);
    servers.push(server);
    return server;
  }

  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
  });

  describe('half-close by the server', () => {
    for (const size of [5, 64 * KiB]) {
      it(`delivers ${size} bytes then one 'end' (allowHalfOpen false)`, async () => {
        const payload = randomBytes(size);
        const [expected, actual] = await runBoth(async (contender) => {
          let serverSawEnd = false;
          const server = await serve(contender, (socket) => {
            socket.on('end', () => {
              serverSawEnd = true;
            });
            socket.resume();
            socket.end(payload);
          });
          const socket = contender.connect({ port: server.port, host: '127.0.0.1' });
          const trace = new Trace(socket);
          await closed(socket);
          await delay(20);
          return { events: trace.events, hash: sha256(trace.received), serverSawEnd };
        });
        assert.deepEqual(actual, expected);
        assert.deepEqual(expected.events, [
          'connect',
          'ready',
          'data',
          'end',
          'finish',
          'close:false',
        ]);
        assert.equal(expected.hash, sha256(payload));
        assert.equal(expected.serverSawEnd, true);
      });

      it(`lets the client write after 'end' of ${size} bytes (allowHalfOpen true)`, async () => {
        const payload = randomBytes(size);
        const [expected, actual] = await runBoth(async (contender) => {
          const serverReceived: Buffer[] = [];
          const server = await serve(
            contender,
            (socket) => {
              socket.on('data', (chunk: Buffer) => serverReceived.push(chunk));
              socket.end(payload);
            },
            { allowHalfOpen: true },
          );
          const socket = contender.connect({
            port: server.port,
            host: '127.0.0.1',
            allowHalfOpen: true,
          });
          const trace = new Trace(socket);
          await once(socket, 'end');

          // The socket stays open after 'end'. A reader that kept polling
          // the closed direction would burn CPU here.
          const before = process.cpuUsage();
          await delay(300);
          const cpu = process.cpuUsage(before);
          const cpuMs = (cpu.user + cpu.system) / 1000;

          socket.end('after end');
          await closed(socket);
          await delay(20);
          return {
            events: trace.events,
            hash: sha256(trace.received),
            serverReceived: Buffer.concat(serverReceived).toString(),
            idle: cpuMs < 150,
          };
        });
        assert.deepEqual(actual, expected);
        assert.deepEqual(expected.events, [
          'connect',
          'ready',
          'data',
          'end',
          'finish',
          'close:false',
        ]);
        assert.equal(expected.serverReceived, 'after end');
        assert.equal(actual.idle, true, 'the process was busy while the socket idled after end');
      });
    }
  });

  describe('paused reader', () => {
    it("gets all data, 'end' and one 'close' after resuming", async () => {
      const payload = randomBytes(MiB);
      const [expected, actual] = await runBoth(async (contender) => {
        const server = await serve(contender, (socket) => socket.end(payload));
        const socket = contender.connect({ port: server.port, host: '127.0.0.1' });
        const trace = new Trace(socket);
        socket.on('connect', () => {
          socket.pause();
          setTimeout(() => socket.resume(), 500);
        });
        await closed(socket);
        await delay(20);
        return { events: trace.events, size: trace.received.length, hash: sha256(trace.received) };
      });
      assert.deepEqual(actual, expected);
      assert.deepEqual(expected.events, [
        'connect',
        'ready',
        'data',
        'end',
        'finish',
        'close:false',
      ]);
      assert.equal(expected.size, MiB);
      assert.equal(expected.hash, sha256(payload));
    });

    it("emits only 'close' when destroyed without resuming", async () => {
      const [expected, actual] = await runBoth(async (contender) => {
        const server = await serve(contender, (socket) => socket.end(randomBytes(MiB)));
        const socket = contender.connect({ port: server.port, host: '127.0.0.1' });
        const trace = new Trace(socket);
        await once(socket, 'connect');
        socket.pause();
        await delay(200);
        socket.destroy();
        await closed(socket);
        return trace.events;
      });
      assert.deepEqual(actual, expected);
      assert.deepEqual(expected, ['connect', 'ready', 'close:false']);
    });
  });

  describe('destroy while connecting', () => {
    it('destroy in the same tick as connect emits only close', async () => {
      const [expected, actual] = await runBoth(async (contender) => {
        const server = await serve(contender, () => {});
        const socket = contender.connect({ port: server.port, host: '127.0.0.1' });
        const trace = new Trace(socket);
        socket.destroy();
        await closed(socket);
        await delay(100);
        return { events: trace.events, accepted: server.sockets.length };
      });
      assert.deepEqual(actual, expected);
      assert.deepEqual(expected, { events: ['close:false'], accepted: 0 });
    });

    describe('with an address that drops SYNs', () => {
      let blackhole: Blackhole | undefined;

      before(function () {
        const reason = namespaceUnavailableReason();
        if (reason) skipWithReason(this, reason);
        blackhole = createBlackhole();
      });

      after(() => blackhole?.remove());

      it('destroy 50 ms in emits only close and frees the socket', async () => {
        const address = blackhole!.address;
        const [expected, actual] = await runBoth(async (contender) => {
          const descriptors = openDescriptorCount();
          const socket = contender.connect({ port: 80, host: address });
          const trace = new Trace(socket);
          await delay(50);
          const connectingBefore = socket.connecting;
          const attempts = connectingSocketsTo(address).length;
          socket.destroy();
          await closed(socket);
          await delay(50);
          return {
            events: trace.events,
            connectingBefore,
            attempts,
            attemptsAfter: connectingSocketsTo(address).length,
            leakedDescriptors: openDescriptorCount() - descriptors,
          };
        });
        assert.deepEqual(actual, expected);
        assert.deepEqual(expected, {
          events: ['close:false'],
          connectingBefore: true,
          attempts: 1,
          attemptsAfter: 0,
          leakedDescriptors: 0,
        });
      });

      it('a timeout set before connect covers connecting', async () => {
        const address = blackhole!.address;
        const [expected, actual] = await runBoth(async (contender) => {
          const socket = contender.create();
          const trace = new Trace(socket);
          let connectingAtTimeout: boolean | undefined;
          socket.setTimeout(100, () => {
            connectingAtTimeout = socket.connecting;
            socket.destroy();
          });
          socket.connect({ port: 80, host: address });
          await closed(socket);
          return { events: trace.events, connectingAtTimeout };
        });
        assert.deepEqual(actual, expected);
        assert.deepEqual(expected, {
          events: ['timeout', 'close:false'],
          connectingAtTimeout: true,
        });
      });
    });
  });

  describe('connect failures', () => {
    it('a refused port gives ECONNREFUSED with net fields', async () => {
      const port = await closedPort();
      const [expected, actual] = await runBoth(async (contender) => {
        const socket = contender.connect({ port, host: '127.0.0.1' });
        const trace = new Trace(socket);
        await closed(socket);
        return { events: trace.events, errors: trace.errors };
      });
      assert.deepEqual(actual, expected);
      assert.deepEqual(expected.events, ['error', 'close:true']);
      assert.deepEqual(expected.errors, [
        {
          name: 'Error',
          message: `connect ECONNREFUSED 127.0.0.1:${port}`,
          code: 'ECONNREFUSED',
          errno: -111,
          syscall: 'connect',
          address: '127.0.0.1',
          port,
        },
      ]);
    });

    it('a local address of the other family fails to bind', async () => {
      const [expected, actual] = await runBoth(async (contender) => {
        const server = await serve(contender, () => {});
        const socket = contender.connect({
          port: server.port,
          host: '127.0.0.1',
          localAddress: '::1',
        });
        const trace = new Trace(socket);
        await closed(socket);
        return { events: trace.events, errors: trace.errors, accepted: server.sockets.length };
      });
      assert.deepEqual(actual, expected);
      assert.deepEqual(expected, {
        events: ['error', 'close:true'],
        errors: [
          {
            name: 'Error',
            message: 'bind EINVAL ::1',
            code: 'EINVAL',
            errno: -22,
            syscall: 'bind',
            address: '::1',
          },
        ],
        accepted: 0,
      });
    });

    it('a name that does not resolve gives ENOTFOUND', async () => {
      const [expected, actual] = await runBoth(async (contender) => {
        const socket = contender.connect({
          port: 80,
          host: 'nonexistent.invalid',
          lookup: localLookup,
        });
        const trace = new Trace(socket);
        await closed(socket);
        return { events: trace.events, errors: trace.errors };
      });
      assert.deepEqual(actual, expected);
      assert.deepEqual(expected.events, ['lookup:Error', 'error', 'close:true']);
      assert.deepEqual(expected.errors, [
        {
          name: 'Error',
          message: 'getaddrinfo ENOTFOUND nonexistent.invalid',
          code: 'ENOTFOUND',
          errno: -3008,
          syscall: 'getaddrinfo',
          hostname: 'nonexistent.invalid',
        },
      ]);
    });

    it('a server that accepts then resets gives ECONNRESET', async () => {
      const [expected, actual] = await runBoth(async (contender) => {
        const server = await serve(contender, (socket) => {
          setTimeout(() => socket.resetAndDestroy(), 50);
        });
        const socket = contender.connect({ port: server.port, host: '127.0.0.1' });
        const trace = new Trace(socket);
        await closed(socket);
        return { events: trace.events, errors: trace.errors };
      });
      assert.deepEqual(actual, expected);
      assert.deepEqual(expected.events, ['connect', 'ready', 'error', 'close:true']);
      assert.deepEqual(expected.errors, [
        {
          name: 'Error',
          message: 'read ECONNRESET',
          code: 'ECONNRESET',
          errno: -104,
          syscall: 'read',
        },
      ]);
    });

    it('an aborted signal gives AbortError', async () => {
      const [expected, actual] = await runBoth(async (contender) => {
        const server = await serve(contender, () => {});
        const controller = new AbortController();
        const socket = contender.connect({
          port: server.port,
          host: '127.0.0.1',
          signal: controller.signal,
        });
        const trace = new Trace(socket);
        await once(socket, 'connect');
        controller.abort();
        await closed(socket);
        return { events: trace.events, errors: trace.errors };
      });
      assert.deepEqual(actual, expected);
      assert.deepEqual(expected.events, ['connect', 'ready', 'error', 'close:true']);
      assert.deepEqual(expected.errors, [
        { name: 'AbortError', message: 'The operation was aborted', code: 'ABORT_ERR' },
      ]);
    });

    // A deliberate difference: Node 20's net.connect with an aborted
    // signal emits 'error' and 'close', then connects anyway. MptcpSocket
    // opens nothing.
    it('a signal aborted before connect gives AbortError', async () => {
      const server = await serve(candidate, () => {});
      const socket = candidate.connect({
        port: server.port,
        host: '127.0.0.1',
        signal: AbortSignal.abort(),
      });
      const trace = new Trace(socket);
      await closed(socket);
      await delay(50);
      assert.deepEqual(trace.events, ['error', 'close:true']);
      assert.deepEqual(trace.errors, [
        { name: 'AbortError', message: 'The operation was aborted', code: 'ABORT_ERR' },
      ]);
      assert.equal(server.sockets.length, 0);
    });
  });

  describe('setTimeout', () => {
    it("emits 'timeout' and leaves the socket open", async () => {
      const [expected, actual] = await runBoth(async (contender) => {
        const server = await serve(contender, () => {});
        const socket = contender.connect({ port: server.port, host: '127.0.0.1' });
        const trace = new Trace(socket);
        await once(socket, 'connect');
        socket.setTimeout(100);
        await once(socket, 'timeout');
        const state = { readyState: socket.readyState, destroyed: socket.destroyed };
        await delay(250);
        socket.destroy();
        await closed(socket);
        return { events: trace.events, state };
      });
      assert.deepEqual(actual, expected);
      assert.deepEqual(expected, {
        events: ['connect', 'ready', 'timeout', 'close:false'],
        state: { readyState: 'open', destroyed: false },
      });
    });

    it('activity restarts the timer', async () => {
      const [expected, actual] = await runBoth(async (contender) => {
        const server = await serve(contender, (socket) => {
          let sent = 0;
          const timer = setInterval(() => {
            socket.write('x');
            sent += 1;
            if (sent === 6) clearInterval(timer);
          }, 50);
          socket.on('close', () => clearInterval(timer));
        });
        const socket = contender.connect({ port: server.port, host: '127.0.0.1', timeout: 200 });
        const order: string[] = [];
        socket.on('data', (chunk: Buffer) => {
          for (let i = 0; i < chunk.length; i++) order.push('data');
        });
        await once(socket, 'timeout');
        order.push('timeout');
        socket.destroy();
        await closed(socket);
        return order;
      });
      assert.deepEqual(actual, expected);
      assert.deepEqual(expected, [...Array(6).fill('data'), 'timeout']);
    });

    it('setTimeout(0) turns the timer off', async () => {
      const [expected, actual] = await runBoth(async (contender) => {
        const server = await serve(contender, () => {});
        const socket = contender.connect({ port: server.port, host: '127.0.0.1' });
        const trace = new Trace(socket);
        await once(socket, 'connect');
        socket.setTimeout(100);
        socket.setTimeout(0);
        await delay(300);
        socket.destroy();
        await closed(socket);
        return trace.events;
      });
      assert.deepEqual(actual, expected);
      assert.deepEqual(expected, ['connect', 'ready', 'close:false']);
    });

    it('the callback form runs once on timeout', async () => {
      const [expected, actual] = await runBoth(async (contender) => {
        const server = await serve(contender, () => {});
        const socket = contender.connect({ port: server.port, host: '127.0.0.1' });
        await once(socket, 'connect');
        let calls = 0;
        const result = socket.setTimeout(80, () => {
          calls += 1;
        });
        await delay(300);
        socket.destroy();
        await closed(socket);
        return { calls, returnsSocket: result === socket };
      });
      assert.deepEqual(actual, expected);
      assert.deepEqual(expected, { calls: 1, returnsSocket: true });
    });
  });

  describe('properties at each stage', () => {
    function snapshot(socket: SocketLike, server?: TestServer) {
      const address = socket.address() as { address?: string; family?: string; port?: number };
      return {
        connecting: socket.connecting,
        pending: socket.pending,
        readyState: socket.readyState,
        bytesRead: socket.bytesRead,
        bytesWritten: socket.bytesWritten,
        address: address.address,
        family: address.family,
        hasLocalPort: typeof address.port === 'number' && address.port > 0,
        remoteAddress: socket.remoteAddress,
        remotePortMatches: server ? socket.remotePort === server.port : socket.remotePort,
        remoteFamily: socket.remoteFamily,
        localAddress: socket.localAddress,
      };
    }

    it('match through connect, write, end and close', async () => {
      const [expected, actual] = await runBoth(async (contender) => {
        const server = await serve(contender, (socket) => {
          socket.once('data', () => socket.write('pong'));
          socket.on('end', () => socket.end());
        });
        const stages: Record<string, unknown> = {};
        const socket = contender.create();
        stages.created = snapshot(socket);
        socket.connect({ port: server.port, host: '127.0.0.1' });
        stages.connecting = snapshot(socket);
        await once(socket, 'connect');
        stages.connected = snapshot(socket, server);
        socket.write('ping');
        stages.written = snapshot(socket, server);
        await once(socket, 'data');
        stages.replied = snapshot(socket, server);
        socket.end();
        stages.ending = snapshot(socket, server);
        socket.resume();
        await closed(socket);
        stages.closed = snapshot(socket, server);
        return stages;
      });
      assert.deepEqual(actual, expected);
      assert.deepEqual((expected.connected as { readyState: string }).readyState, 'open');
      assert.deepEqual((expected.replied as { bytesRead: number }).bytesRead, 4);
      assert.deepEqual((expected.closed as { bytesWritten: number }).bytesWritten, 4);
    });

    it('option setters return the socket at each stage', async () => {
      const [expected, actual] = await runBoth(async (contender) => {
        const server = await serve(contender, () => {});
        const results: boolean[] = [];
        const exercise = (socket: SocketLike) => {
          results.push(socket.setNoDelay() === socket);
          results.push(socket.setNoDelay(false) === socket);
          results.push(socket.setKeepAlive(true, 1000) === socket);
          results.push(socket.setKeepAlive(false) === socket);
          results.push(socket.ref() === socket);
          results.push(socket.unref() === socket);
          results.push(socket.ref() === socket);
        };
        const socket = contender.create();
        exercise(socket);
        socket.connect({ port: server.port, host: '127.0.0.1' });
        exercise(socket);
        await once(socket, 'connect');
        exercise(socket);
        socket.destroy();
        exercise(socket);
        await closed(socket);
        exercise(socket);
        return results;
      });
      assert.deepEqual(actual, expected);
      assert.ok(expected.every((result) => result === true));
    });
  });

  describe('writes after the end', () => {
    it('write() after end() fails with ERR_STREAM_WRITE_AFTER_END', async () => {
      const [expected, actual] = await runBoth(async (contender) => {
        const server = await serve(contender, (socket) => socket.resume());
        const socket = contender.connect({ port: server.port, host: '127.0.0.1' });
        const trace = new Trace(socket);
        await once(socket, 'connect');
        socket.end();
        let callbackCode: string | undefined;
        socket.write('late', (error) => {
          callbackCode = (error as NodeJS.ErrnoException | null)?.code;
        });
        socket.resume();
        await closed(socket);
        return { events: trace.events, errors: trace.errors, callbackCode };
      });
      assert.deepEqual(actual, expected);
      assert.equal(expected.callbackCode, 'ERR_STREAM_WRITE_AFTER_END');
      assert.deepEqual(
        expected.errors.map((error) => error.code),
        ['ERR_STREAM_WRITE_AFTER_END'],
      );
    });

    it('write() after destroy() fails with ERR_STREAM_DESTROYED', async () => {
      const [expected, actual] = await runBoth(async (contender) => {
        const server = await serve(contender, () => {});
        const socket = contender.connect({ port: server.port, host: '127.0.0.1' });
        const trace = new Trace(socket);
        await once(socket, 'connect');
        socket.destroy();
        let callbackCode: string | undefined;
        const accepted = socket.write('late', (error) => {
          callbackCode = (error as NodeJS.ErrnoException | null)?.code;
        });
        await closed(socket);
        await delay(10);
        return { events: trace.events, accepted, callbackCode };
      });
      assert.deepEqual(actual, expected);
      assert.deepEqual(expected, {
        events: ['connect', 'ready', 'close:false'],
        accepted: false,
        callbackCode: 'ERR_STREAM_DESTROYED',
      });
    });

    // A deliberate difference: Node 20 calls back a write that was still
    // in the kernel's hands at destroy() without an error, although its
    // bytes may never be sent. MptcpSocket reports ERR_STREAM_DESTROYED.
    it('a pending write fails when the socket is destroyed', async () => {
      const server = await serve(candidate, () => {}, { pauseOnConnect: true });
      const socket = candidate.connect({ port: server.port, host: '127.0.0.1' });
      await once(socket, 'connect');
      const outcome = new Promise<Error | null | undefined>((resolve) =>
        socket.write(Buffer.alloc(64 * MiB), resolve),
      );
      await delay(20);
      const close = closed(socket);
      socket.destroy();
      const error = await outcome;
      assert.equal((error as NodeJS.ErrnoException | null)?.code, 'ERR_STREAM_DESTROYED');
      await close;
    });
  });
});
