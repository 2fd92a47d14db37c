// Edge cases of MptcpSocket: events after destroy(), misbehaving lookup
// functions, and options that MptcpSocket.connect() cannot honour.

import assert from 'node:assert/strict';
import { once } from 'node:events';

import { connect, MptcpSocket } from '../lib/index';
import { startServer, type TestServer } from './helpers';

function closed(socket: MptcpSocket): Promise<void> {
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

describe('edge cases', () => {
  let server: TestServer | undefined;

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("emits no 'connect' or 'data' after destroy()", async () => {
    server = await startServer((socket) => socket.write(Buffer.alloc(64 * 1024)));
    const late: string[] = [];
    // Two connections race; the loser is destroyed when the winner connects,
    // often while the loser's own connect is already on its way to
    // JavaScript.
    for (let round = 0; round < 50; round++) {
      const pair = [0, 1].map(() => connect(server!.port, '127.0.0.1'));
      for (const socket of pair) {
        socket.on('connect', () => {
          if (socket.destroyed) late.push('connect');
          for (const other of pair) if (other !== socket) other.destroy();
        });
        socket.on('data', () => {
          if (socket.destroyed) late.push('data');
        });
      }
      // Let the race run until one side connects, or briefly if neither
      // does, then tear both down.
      await Promise.race([
        Promise.any(pair.map((socket) => once(socket, 'connect'))).catch(() => undefined),
        new Promise((resolve) => setTimeout(resolve, 200)),
      ]);
      for (const socket of pair) socket.destroy();
      await Promise.all(pair.map(closed));
    }
    assert.deepEqual(late, []);
  });

  it('counts only delivered bytes in bytesRead', async () => {
    server = await startServer((socket) => socket.end(Buffer.alloc(4 * 1024 * 1024)));
    const socket = connect(server.port, '127.0.0.1');
    let delivered = 0;
    socket.on('data', (chunk: Buffer) => {
      delivered += chunk.length;
      if (delivered >= 1024 * 1024) socket.destroy();
    });
    await closed(socket);
    assert.equal(socket.bytesRead, delivered);
  });

  it("emits 'end' and 'close' without a reader", async () => {
    server = await startServer((socket) => {
      socket.resume();
      socket.on('end', () => socket.end());
    });
    // No 'data' listener and no resume(): the end of the stream must still
    // close the socket, as with net.Socket.
    const socket = connect(server.port, '127.0.0.1');
    const events: string[] = [];
    socket.on('end', () => events.push('end'));
    socket.end('hello');
    await closed(socket);
    assert.deepEqual(events, ['end']);
  });

  it("emits 'end' and 'close' while paused", async () => {
    server = await startServer((socket) => {
      socket.write('hello');
      setTimeout(() => socket.end(), 100);
    });
    const socket = connect(server.port, '127.0.0.1');
    const events: string[] = [];
    socket.on('data', (chunk: Buffer) => {
      events.push(`data:${chunk.toString()}`);
      socket.pause();
    });
    socket.on('end', () => events.push('end'));
    await closed(socket);
    assert.deepEqual(events, ['data:hello', 'end']);
  });

  it('sends 20000 corked small writes intact', async () => {
    // One _writev() batch of many chunks: the macOS backend joins them into
    // one send.
    const received: Buffer[] = [];
    let serverEnded!: () => void;
    const ended = new Promise<void>((resolve) => (serverEnded = resolve));
    server = await startServer((socket) => {
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      socket.on('end', serverEnded);
    });
    const socket = connect(server.port, '127.0.0.1');
    await once(socket, 'connect');
    const expected: string[] = [];
    socket.cork();
    for (let i = 0; i < 20000; i++) {
      const chunk = `${i % 10}`.repeat((i % 7) + 1);
      expected.push(chunk);
      socket.write(chunk);
    }
    socket.uncork();
    socket.end();
    socket.resume();
    await ended;
    assert.equal(Buffer.concat(received).toString(), expected.join(''));
    await closed(socket);
  });

  it('rejects tls in MptcpSocket.connect()', () => {
    const socket = new MptcpSocket();
    assert.throws(() => socket.connect({ port: 443, host: '127.0.0.1', tls: true }), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_VALUE',
    });
    assert.equal(socket.connecting, false);
    socket.destroy();
  });

  describe('a custom lookup', () => {
    it('that returns no IP address fails with ERR_INVALID_IP_ADDRESS', async () => {
      const socket = connect({
        port: 80,
        host: 'example.test',
        lookup: (_host, _options, callback) => callback(null, 'not-an-ip', 4),
      });
      // 'close' follows 'error' in the same tick, so wait for both at once.
      const [[error]] = (await Promise.all([once(socket, 'error'), closed(socket)])) as [
        [NodeJS.ErrnoException],
        void,
      ];
      assert.equal(error.code, 'ERR_INVALID_IP_ADDRESS');
      assert.equal(error.message, 'Invalid IP address: not-an-ip');
    });

    it('that throws fails the socket, not the process', async () => {
      const socket = connect({
        port: 80,
        host: 'example.test',
        lookup: () => {
          throw new Error('resolver broke');
        },
      });
      const [[error]] = (await Promise.all([once(socket, 'error'), closed(socket)])) as [
        [Error],
        void,
      ];
      assert.equal(error.message, 'resolver broke');
    });

    it('whose addresses all differ in family from localAddress fails to bind', async () => {
      // The lookup decides the addresses on every backend: the Network
      // framework must not resolve the name itself when none fits.
      const socket = connect({
        port: 80,
        host: 'example.test',
        localAddress: '127.0.0.1',
        lookup: (_host, _options, callback) => callback(null, [{ address: '::1', family: 6 }]),
      });
      const [[error]] = (await Promise.all([once(socket, 'error'), closed(socket)])) as [
        [NodeJS.ErrnoException],
        void,
      ];
      assert.equal(error.code, 'EINVAL');
      assert.equal(error.syscall, 'bind');
      assert.equal((error as { address?: string }).address, '127.0.0.1');
    });

    it('that calls back twice makes one connection', async () => {
      server = await startServer((socket) => socket.end('once'));
      const port = server.port;
      const socket = connect({
        port,
        host: 'example.test',
        lookup: (_host, _options, callback) => {
          callback(null, [{ address: '127.0.0.1', family: 4 }]);
          callback(null, [{ address: '127.0.0.1', family: 4 }]);
        },
      });
      let connects = 0;
      socket.on('connect', () => (connects += 1));
      socket.resume();
      await closed(socket);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(connects, 1);
      assert.equal(server.sockets.length, 1);
    });
  });
});
