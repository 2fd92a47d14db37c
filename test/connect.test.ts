// connect(): MPTCP negotiation, plain TCP peers, the 'disabled' service and
// connection failures.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { constants } from 'node:os';

import { binding } from '../lib/binding';
import { connect, createConnection, MptcpSocket } from '../lib/index';
import type { SystemError } from '../lib/errors';
import {
  backendName,
  canServeMptcp,
  collect,
  expectedMptcpFlag,
  expectedTcpFlag,
  recordEvents,
  skipWithReason,
  startServer,
  type TestServer,
} from './helpers';
import { createBlackhole, namespaceUnavailableReason, type Blackhole } from './netns';

const ECONNREFUSED = -constants.errno.ECONNREFUSED;
const ETIMEDOUT = -constants.errno.ETIMEDOUT;

/** Darwin's number for ECONNREFUSED, which the Network framework reports. */
const DARWIN_ECONNREFUSED = 61;

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
    assert.equal(error.errno, ECONNREFUSED);
    assert.equal(error.syscall, 'connect');
    assert.equal(error.address, '127.0.0.1');
    assert.equal(error.port, port);
    assert.equal(error.message, `connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  it('ignores family for an IP literal, as net does', async () => {
    server = await startServer((socket) => socket.end('literal'));
    const client = connect({ port: server.port, host: '127.0.0.1', family: 6 });
    await once(client, 'connect');
    assert.equal(client.remoteAddress, '127.0.0.1');
    assert.equal((await collect(client)).toString(), 'literal');
  });

  it('binds a local port in the family of the address', async () => {
    server = await startServer((socket) => socket.end('bound'));
    const localPort = await closedPort();
    const client = connect({ port: server.port, host: '127.0.0.1', family: 6, localPort });
    await once(client, 'connect');
    assert.equal(client.localPort, localPort);
    assert.equal(client.localFamily, 'IPv4');
    assert.equal((await collect(client)).toString(), 'bound');
  });

  it("emits 'lookup' before 'connect' for a host name", async () => {
    server = await startServer((socket) => socket.end());
    const lookups: unknown[][] = [];
    const client = connect({
      port: server.port,
      host: 'localhost',
      family: 4,
      lookup: (hostname, _options, callback) => {
        assert.equal(hostname, 'localhost');
        setImmediate(() => callback(null, [{ address: '127.0.0.1', family: 4 }]));
      },
    });
    const events = recordEvents(client, ['lookup', 'connect', 'close']);
    client.on('lookup', (...args: unknown[]) => lookups.push(args));
    client.resume();
    assert.deepEqual(await events, ['lookup', 'connect', 'close']);
    assert.deepEqual(lookups, [[null, '127.0.0.1', 4, 'localhost']]);
  });

  describe('connectTimeout', () => {
    let blackhole: Blackhole | undefined;

    before(function () {
      const reason = namespaceUnavailableReason();
      if (reason) skipWithReason(this, reason);
      blackhole = createBlackhole();
    });

    after(() => blackhole?.remove());

    it('fails a connect that takes too long with ETIMEDOUT', async () => {
      const address = blackhole!.address;
      const client = connect({ port: 80, host: address, connectTimeout: 100 });
      const events = recordEvents(client, ['connect', 'timeout', 'error', 'close']);
      const [error] = (await once(client, 'error')) as [SystemError];
      assert.deepEqual(await events, ['error', 'close']);
      assert.equal(error.code, 'ETIMEDOUT');
      assert.equal(error.errno, ETIMEDOUT);
      assert.equal(error.syscall, 'connect');
      assert.equal(error.address, address);
      assert.equal(error.port, 80);
      assert.equal(error.message, `connect ETIMEDOUT ${address}:80`);
    });

    it('covers connecting only', async () => {
      server = await startServer((socket) => setTimeout(() => socket.end('late'), 300));
      const client = connect({ port: server.port, host: '127.0.0.1', connectTimeout: 100 });
      const reply = await collect(client);
      assert.equal(reply.toString(), 'late');
    });
  });

  describe('Network framework waiting state', () => {
    before(function () {
      if (backendName !== 'darwin')
        skipWithReason(this, 'the waiting state exists only with the Network framework backend');
    });

    it('fails a refused connect with the mapped POSIX error', async () => {
      const port = await closedPort();
      const client = connect(port, '127.0.0.1');
      const [error] = (await once(client, 'error')) as [SystemError];
      assert.equal(error.code, 'ECONNREFUSED');
      assert.equal(error.errno, ECONNREFUSED);
      assert.equal(error.syscall, 'connect');
      assert.equal(error.networkDomain, 'posix');
      assert.equal(error.networkCode, DARWIN_ECONNREFUSED);
    });

    it('fails an unknown name with ENOTFOUND from the framework', async () => {
      assert.equal(binding.resolvesNames, true);
      const client = connect(80, 'nonexistent.invalid');
      const [error] = (await once(client, 'error')) as [SystemError];
      assert.equal(error.code, 'ENOTFOUND');
      assert.equal(error.syscall, 'getaddrinfo');
      assert.equal(error.hostname, 'nonexistent.invalid');
      assert.equal(error.networkDomain, 'dns');
    });

    it('waits for connectivity when asked, then connects', async () => {
      const port = await closedPort();
      const client = connect({ port, host: '127.0.0.1', waitForConnectivity: true });
      const [reason] = (await once(client, 'waiting')) as [SystemError];
      assert.equal(reason.code, 'ECONNREFUSED');
      assert.equal(client.connecting, true);

      // The server appears on the port that refused, and the framework's
      // next attempt succeeds.
      const late = net.createServer((socket) => socket.end('here'));
      late.listen(port, '127.0.0.1');
      await once(late, 'listening');
      try {
        const reply = await collect(client);
        assert.equal(reply.toString(), 'here');
      } finally {
        late.close();
      }
    });
  });
});
