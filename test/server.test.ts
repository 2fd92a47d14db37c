// The Linux MPTCP server: listen() options, and the accepted sockets.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import type * as net from 'node:net';

import { connect, createServer, isMptcpSocket, type MptcpServer } from '../lib/index';
import { canServeMptcp, skipWithReason } from './helpers';

/** The accept queue length of the listening socket on `port`, from ss. */
function backlogOf(port: number): number {
  const line = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim();
  return Number(line.split(/\s+/)[2]);
}

describe('server', () => {
  let server: MptcpServer | undefined;

  before(function () {
    if (!canServeMptcp) skipWithReason(this, 'MPTCP servers need Linux');
  });

  afterEach(async () => {
    if (server?.listening) await new Promise((resolve) => server!.close(resolve));
    server = undefined;
  });

  it('listens on MPTCP with the backlog asked for', async () => {
    server = createServer();
    server.listen({ port: 0, host: '127.0.0.1', backlog: 1000 });
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    assert.equal(backlogOf(port), 1000);
    assert.equal(server.mptcpFallback, false);
  });

  it('takes port, host, backlog and callback as net does', async () => {
    server = createServer();
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', 100, resolve));
    const { address, port } = server.address() as net.AddressInfo;
    assert.equal(address, '127.0.0.1');
    assert.equal(backlogOf(port), 100);
  });

  it('rejects a second listen() as net does', async () => {
    server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    assert.throws(() => server!.listen(0, '127.0.0.1'), {
      name: 'Error',
      code: 'ERR_SERVER_ALREADY_LISTEN',
    });
  });

  it('rejects an IPC path', () => {
    assert.throws(() => createServer().listen({ path: '/tmp/nw-mptcp.sock' } as never), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_VALUE',
    });
  });

  it('closes when its signal aborts', async () => {
    const controller = new AbortController();
    server = createServer();
    server.listen({ port: 0, host: '127.0.0.1', signal: controller.signal });
    await once(server, 'listening');
    const closed = once(server, 'close');
    controller.abort();
    await closed;
    assert.equal(server.listening, false);
  });

  it('reports EADDRINUSE as an error event', async () => {
    server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    const second = createServer();
    second.listen(port, '127.0.0.1');
    const [error] = (await once(second, 'error')) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'EADDRINUSE');
    assert.equal(error.syscall, 'listen');
  });

  it('tells an accepted socket uses MPTCP', async () => {
    server = createServer((socket) => socket.end());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection');
    const client = connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const [socket] = (await accepted) as [net.Socket];
    assert.equal(isMptcpSocket(socket), true);
    client.destroy();
  });
});
