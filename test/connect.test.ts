// connect(): MPTCP negotiation, plain TCP peers, the 'disabled' service and
// connection failures.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';

import { connect, createConnection, MptcpSocket } from '../lib/index';
import type { SystemError } from '../lib/errors';
import {
  canServeMptcp,
  collect,
  expectedMptcpFlag,
  expectedTcpFlag,
  recordEvents,
  startServer,
  type TestServer,
} from './helpers';

/** Returns a loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const probe = net.createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('connect', () => {
  let server: TestServer | undefined;

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('reports MPTCP in use with an MPTCP server', async () => {
    server = await startServer((socket) => socket.end('hi'));
    const client = connect(server.port, '127.0.0.1');
    assert.ok(client instanceof MptcpSocket);
    await once(client, 'connect');
    assert.equal(client.multipath, 'handover');
    assert.equal(client.mptcp, expectedMptcpFlag);
    assert.equal(client.remoteAddress, '127.0.0.1');
    assert.equal(client.remotePort, server.port);
    assert.equal(client.remoteFamily, 'IPv4');
    assert.equal(client.localAddress, '127.0.0.1');
    assert.equal(typeof client.localPort, 'number');
    assert.equal((await collect(client)).toString(), 'hi');
    assert.deepEqual(server.mptcp, [canServeMptcp ? true : null]);
  });

  it('works with a plain TCP server and reports MPTCP not in use', async () => {
    server = await startServer((socket) => socket.end('plain'), { tcp: true });
    const client = createConnection({ port: server.port, host: '127.0.0.1' });
    await once(client, 'connect');
    assert.equal(client.mptcp, expectedTcpFlag);
    assert.equal((await collect(client)).toString(), 'plain');
    assert.deepEqual(server.mptcp, [canServeMptcp ? false : null]);
  });

  it("'disabled' gives plain TCP even to an MPTCP server", async function () {
    server = await startServer((socket) => socket.end('tcp'));
    const client = connect({ port: server.port, host: '127.0.0.1', multipath: 'disabled' });
    await once(client, 'connect');
    assert.equal(client.multipath, 'disabled');
    assert.equal(client.mptcp, expectedTcpFlag);
    assert.equal((await collect(client)).toString(), 'tcp');
    assert.deepEqual(server.mptcp, [canServeMptcp ? false : null]);
  });

  it('fails with ECONNREFUSED then closes for a refused port', async () => {
    const port = await closedPort();
    const client = connect(port, '127.0.0.1');
    const events = recordEvents(client, ['connect', 'error', 'close']);
    const [error] = (await once(client, 'error')) as [SystemError];
    const [hadError] = await once(client, 'close');
    assert.deepEqual(await events, ['error', 'close']);
    assert.equal(hadError, true);
    assert.equal(error.code, 'ECONNREFUSED');
    assert.equal(error.errno, -(require('node:os').constants.errno.ECONNREFUSED as number));
    assert.equal(error.syscall, 'connect');
    assert.equal(error.address, '127.0.0.1');
    assert.equal(error.port, port);
    assert.equal(error.message, `connect ECONNREFUSED 127.0.0.1:${port}`);
  });
});
