// The check.mptcp.dev protocol: the local check server, and the public
// server when the network allows.

import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';

import { checkMptcp, startCheckServer, VERDICT_MPTCP, VERDICT_NOT_MPTCP } from '../lib/index';
import { canServeMptcp, expectedMptcpFlag, expectedTcpFlag, skipWithReason } from './helpers';

/** Environment variable that allows tests to reach check.mptcp.dev. */
const ONLINE = process.env.NW_MPTCP_ONLINE === '1';

function get(
  port: number,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', headers }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('check', () => {
  it('checkMptcp() fails after its timeout', async () => {
    // A server that accepts and never responds.
    const accepted: net.Socket[] = [];
    const silent = net.createServer((socket) => accepted.push(socket.on('error', () => {})));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      await assert.rejects(checkMptcp({ host: '127.0.0.1', port, timeout: 300 }), {
        message: `The check of 127.0.0.1:${port} timed out after 300 ms`,
      });
    } finally {
      for (const socket of accepted) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  describe('local check server', () => {
    let server: http.Server | undefined;
    let port = 0;

    before(async function () {
      if (!canServeMptcp) skipWithReason(this, 'MPTCP servers need Linux');
      const started = await startCheckServer();
      server = started.server;
      port = (started.address as AddressInfo).port;
    });

    after(() => server?.close());

    it('answers "You are using MPTCP." over MPTCP', async () => {
      const result = await checkMptcp({ host: '127.0.0.1', port });
      assert.equal(result.statusCode, 200);
      assert.equal(result.verdict, VERDICT_MPTCP);
      assert.equal(result.serverSawMptcp, true);
      assert.equal(result.clientMptcp, expectedMptcpFlag);
      assert.equal(result.remoteAddress, '127.0.0.1');
      assert.equal(result.remotePort, port);
    });

    it('answers "You are not using MPTCP." over plain TCP', async () => {
      const result = await checkMptcp({ host: '127.0.0.1', port, multipath: 'disabled' });
      assert.equal(result.verdict, VERDICT_NOT_MPTCP);
      assert.equal(result.serverSawMptcp, false);
      assert.equal(result.clientMptcp, expectedTcpFlag);
    });

    it('judges from the kernel view of a plain net client', async () => {
      const reply = await get(port, { 'User-Agent': 'curl/8.5.0' });
      assert.deepEqual(reply, { status: 200, body: `${VERDICT_NOT_MPTCP}\n` });
    });

    it('answers HTML to browsers and 500 without a User-Agent', async () => {
      const page = await get(port, { 'User-Agent': 'Mozilla/5.0' });
      assert.equal(page.status, 200);
      assert.match(page.body, /^<!doctype html>/);
      assert.match(page.body, new RegExp(VERDICT_NOT_MPTCP.replace('.', '\\.')));
      const bare = await get(port, {});
      assert.equal(bare.status, 500);
    });
  });

  describe('check.mptcp.dev', () => {
    it('port 80 answers with a verdict over MPTCP', async function () {
      if (!ONLINE) skipWithReason(this, 'set NW_MPTCP_ONLINE=1 to reach check.mptcp.dev');
      let result;
      try {
        result = await checkMptcp({ host: 'check.mptcp.dev', port: 80, timeout: 15_000 });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ENETUNREACH')
          skipWithReason(this, `no network: ${code}`);
        throw error;
      }
      assert.equal(result.statusCode, 200);
      assert.equal(result.verdict, VERDICT_MPTCP);
    });
  });
});
