// The nw-mptcp command: check against a local server over HTTPS and HTTP,
// and get over MPTCP with the verbose connection details.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { isMptcpSocket, VERDICT_MPTCP } from '../lib/index';
import { canServeMptcp, expectedMptcpFlag, skipWithReason } from './helpers';
import { listenOnLoopback, serverMptcpFlag, testCertificates } from './tls-fixtures';

const CLI = path.join(__dirname, '..', 'lib', 'cli.js');

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? ((error as { code?: number }).code ?? null) : 0;
      resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
    });
  });
}

describe('cli', () => {
  describe('check --local', () => {
    before(function () {
      // Elsewhere --local checks check.mptcp.dev instead, which needs the network.
      if (!canServeMptcp) skipWithReason(this, 'the local check server needs Linux');
    });

    it('prints the MPTCP verdict over HTTPS', async () => {
      const result = await runCli(['check', '--local']);
      assert.equal(result.stderr, '');
      assert.match(
        result.stdout,
        /^Local check server listening on MPTCP at https:\/\/127\.0\.0\.1:\d+$/m,
      );
      assert.match(
        result.stdout,
        new RegExp(`^Verdict: +${VERDICT_MPTCP.replace('.', '\\.')}$`, 'm'),
      );
      assert.match(result.stdout, /^TLS: +TLSv1\.3$/m);
      const clientFlag = expectedMptcpFlag === null ? 'unknown' : 'yes';
      assert.match(
        result.stdout,
        new RegExp(`^MPTCP in use \\(client socket\\): ${clientFlag}$`, 'm'),
      );
      assert.equal(result.code, 0);
    });

    it('prints the verdict over plain HTTP with --http', async () => {
      const result = await runCli(['check', '--local', '--http']);
      assert.match(result.stdout, /listening on MPTCP at http:\/\/127\.0\.0\.1:\d+$/m);
      assert.match(
        result.stdout,
        new RegExp(`^Verdict: +${VERDICT_MPTCP.replace('.', '\\.')}$`, 'm'),
      );
      assert.doesNotMatch(result.stdout, /^TLS:/m);
      assert.equal(result.code, 0);
    });

    it('exits with 1 when MPTCP is disabled', async () => {
      const result = await runCli(['check', '--local', '--multipath', 'disabled']);
      assert.match(result.stdout, /^Verdict: +You are not using MPTCP\.$/m);
      assert.equal(result.code, 1);
    });
  });

  it('check rejects --http with an https: URL', async () => {
    const result = await runCli(['check', 'https://127.0.0.1:9/', '--http']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--http conflicts with the https: URL/);
  });

  describe('get', () => {
    let server: Awaited<ReturnType<typeof listenOnLoopback<https.Server>>> | undefined;
    let directory = '';
    let caFile = '';

    before(async () => {
      const { server: certificate, ca } = testCertificates();
      directory = mkdtempSync(path.join(tmpdir(), 'nw-mptcp-cli-'));
      caFile = path.join(directory, 'ca.pem');
      writeFileSync(caFile, ca.cert);
      const httpsServer = https.createServer(
        { key: certificate.key, cert: certificate.cert },
        (request, response) => {
          response.setHeader('X-Server-Mptcp', String(isMptcpSocket(request.socket)));
          if (request.url === '/missing') {
            response.statusCode = 404;
            response.end('no such page\n');
          } else {
            response.end('hello over MPTCP\n');
          }
        },
      );
      httpsServer.on('tlsClientError', () => {});
      server = await listenOnLoopback(httpsServer);
    });

    after(async () => {
      await server?.close();
      rmSync(directory, { recursive: true, force: true });
    });

    it('writes the body and, with -v, the MPTCP state', async () => {
      const url = `https://localhost:${server!.port}/`;
      const result = await runCli(['get', url, '--ca', caFile, '-v']);
      assert.equal(result.stdout, 'hello over MPTCP\n');
      assert.match(result.stderr, /^\* Connected to 127\.0\.0\.1:\d+$/m);
      assert.match(result.stderr, /^\* Multipath service: handover requested$/m);
      const mptcpLine =
        expectedMptcpFlag === null ? 'unknown (the platform does not report it)' : 'yes';
      assert.match(
        result.stderr,
        new RegExp(`^\\* MPTCP in use: ${mptcpLine.replace(/[()]/g, '\\$&')}$`, 'm'),
      );
      assert.match(result.stderr, /^\* TLS: TLSv1\.3, cipher \S+$/m);
      assert.match(result.stderr, /^\* Paths: 1, \d+ bytes received by then$/m);
      assert.match(result.stderr, /^\* {3}path \d+: .* on lo, sent \d+ B, received \d+ B, RTT /m);
      assert.match(result.stderr, /^< HTTP\/1\.1 200 OK$/m);
      assert.match(result.stderr, new RegExp(`^< X-Server-Mptcp: ${serverMptcpFlag}$`, 'm'));
      assert.equal(result.code, 0);
    });

    it('lists the paths with -v over plain HTTP', async () => {
      // The server answers and closes at once, which once made the paths
      // unreadable by the time the response was parsed.
      const plain = await listenOnLoopback(
        http.createServer((_request, response) => {
          response.setHeader('Connection', 'close');
          response.end('plain\n');
        }),
      );
      try {
        for (let round = 0; round < 3; round++) {
          const result = await runCli(['get', '-v', `http://127.0.0.1:${plain.port}/`]);
          assert.equal(result.stdout, 'plain\n');
          assert.match(result.stderr, /^\* Paths: 1, \d+ bytes received by then$/m);
          assert.equal(result.code, 0);
        }
      } finally {
        await plain.close();
      }
    });

    it('fails for a certificate it does not trust', async () => {
      const result = await runCli(['get', `https://localhost:${server!.port}/`]);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)$/m);
      assert.equal(result.code, 2);
    });

    it('exits with 1 for an HTTP error status', async () => {
      const result = await runCli([
        'get',
        `https://localhost:${server!.port}/missing`,
        '--ca',
        caFile,
      ]);
      assert.equal(result.stdout, 'no such page\n');
      assert.equal(result.code, 1);
    });
  });
});
