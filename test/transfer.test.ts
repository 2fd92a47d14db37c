// Data transfer over MPTCP: integrity, byte counters, half-close and
// backpressure, against a server on loopback.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type * as net from 'node:net';

import { connect } from '../lib/index';
import {
  canServeMptcp,
  collect,
  expectedMptcpFlag,
  sha256,
  startServer,
  writeAll,
  type TestServer,
} from './helpers';

const MiB = 1024 * 1024;

describe('transfer', () => {
  let server: TestServer | undefined;

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('echoes 64 MiB each way with equal SHA-256 and exact counters', async () => {
    const size = 64 * MiB;
    const sent = randomBytes(size);
    const serverHash = { received: '' };
    server = await startServer((socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('end', () => {
        serverHash.received = sha256(Buffer.concat(chunks));
      });
      socket.pipe(socket);
    });

    const client = connect({ port: server.port, host: '127.0.0.1' });
    await once(client, 'connect');
    assert.equal(client.mptcp, expectedMptcpFlag);
    const received = collect(client);
    await writeAll(client, sent);
    client.end();
    const echoed = await received;
    await once(client, 'close');

    assert.equal(echoed.length, size);
    assert.equal(sha256(echoed), sha256(sent));
    assert.equal(serverHash.received, sha256(sent));
    assert.equal(client.bytesRead, size);
    assert.equal(client.bytesWritten, size);
    assert.deepEqual(server.mptcp, [canServeMptcp ? true : null]);
  });

  it('half-close delivers EOF while the client reads the reply', async () => {
    server = await startServer(
      (socket) => {
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        // The reply is sent only after the client's end of stream arrives.
        socket.on('end', () => socket.end(`got ${Buffer.concat(chunks).toString()}`));
      },
      { allowHalfOpen: true },
    );
    const client = connect({ port: server.port, host: '127.0.0.1' });
    const events: string[] = [];
    client.on('finish', () => events.push('finish'));
    client.on('end', () => events.push('end'));
    client.on('close', () => events.push('close'));
    client.end('request');
    const reply = await collect(client);
    await once(client, 'close');

    assert.equal(reply.toString(), 'got request');
    assert.deepEqual(events, ['finish', 'end', 'close']);
  });

  it('applies backpressure against a server that does not read', async () => {
    let serverSocket: net.Socket | undefined;
    let serverBytes = 0;
    server = await startServer(
      (socket) => {
        serverSocket = socket;
        socket.on('data', (chunk: Buffer) => {
          serverBytes += chunk.length;
        });
      },
      { pauseOnConnect: true },
    );
    const client = connect({ port: server.port, host: '127.0.0.1' });
    await once(client, 'connect');
    while (!serverSocket) await new Promise((resolve) => setImmediate(resolve));

    // Writes while the socket drains. A backend may complete writes while
    // the kernel still has room, so 'drain' can come a few times; once the
    // kernel's buffers are full it stops coming. What the socket accepted
    // by then is bounded by those buffers, not by the data.
    const chunk = Buffer.alloc(MiB, 7);
    let accepted = 0;
    for (;;) {
      accepted += chunk.length;
      if (client.write(chunk)) continue;
      const drained = await Promise.race([
        once(client, 'drain').then(() => true),
        new Promise((resolve) => setTimeout(() => resolve(false), 200)),
      ]);
      if (!drained) break;
      assert.ok(accepted < 256 * MiB, `the socket accepted ${accepted} bytes without stalling`);
    }
    assert.ok(client.writableLength > 0);

    const rssBefore = process.memoryUsage().rss;
    serverSocket.resume();
    await once(client, 'drain');
    client.end();
    client.resume();
    await once(serverSocket, 'end');
    assert.equal(serverBytes, accepted);
    assert.ok(process.memoryUsage().rss - rssBefore < 128 * MiB);
    await once(client, 'close');
  });
});
