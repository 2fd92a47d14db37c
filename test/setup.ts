// Root hooks of the mocha suite: before any test, check that this kernel
// makes loopback connections with MPTCP, so that a host problem reads as
// one clear failure instead of many failed assertions.

import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import type * as net from 'node:net';

import { connect, createServer, isMptcpSocket } from '../lib/index';

function sysctl(name: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

async function loopbackUsesMptcp(): Promise<boolean | null> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  const [socket] = (await accepted) as [net.Socket];
  const mptcp = isMptcpSocket(socket);
  socket.destroy();
  client.destroy();
  await new Promise((resolve) => server.close(resolve));
  return mptcp;
}

export const mochaHooks = {
  async beforeAll(): Promise<void> {
    if (process.platform !== 'linux') return;
    if (sysctl('net.mptcp.enabled') !== '1')
      throw new Error(
        'MPTCP is off in this network namespace: run `sysctl -w net.mptcp.enabled=1` ' +
          '(or the tests in a namespace where it is on).',
      );
    if ((await loopbackUsesMptcp()) === true) return;
    throw new Error(
      'net.mptcp.enabled is 1, but the kernel made a loopback connection plain TCP. ' +
        "The kernel's blackhole detection turns MPTCP off for new connections for a while " +
        'after MPTCP SYNs were dropped (nstat shows MPTcpExtBlackhole). Writing ' +
        '`net.mptcp.blackhole_timeout` resets it, for example `sysctl -w ' +
        `net.mptcp.blackhole_timeout=${sysctl('net.mptcp.blackhole_timeout') ?? 3600}\`; ` +
        'or run the tests in a fresh network namespace.',
    );
  },
};
