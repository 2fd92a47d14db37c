// socket.getPaths() on the macOS backend, where the statistics come from the
// Network framework's data transfer reports: one path per interface, the
// bytes of each report added up, application totals, and the MPTCP flag
// that a second path proves. Runs on the emulated backend (npm run
// test:emulated); the Linux backend has its own per-subflow tests.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';

import { connect, type MptcpSocket, type PathReport } from '../lib/index';
import {
  backendName,
  collect,
  skipWithReason,
  startServer,
  writeAll,
  type TestServer,
} from './helpers';
import { listenOnLoopback, testCertificates, type ListeningServer } from './tls-fixtures';

/** The loopback interface's name. */
const LOOPBACK = process.platform === 'darwin' ? 'lo0' : 'lo';

const CHUNK = 256 * 1024;

/** Sends `bytes` and reads as many back from an echo server. */
async function roundTrip(socket: MptcpSocket, bytes: number): Promise<void> {
  let received = 0;
  const done = new Promise<void>((resolve) => {
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received < bytes) return;
      socket.off('data', onData);
      resolve();
    };
    socket.on('data', onData);
  });
  await writeAll(socket, Buffer.alloc(bytes, 'p'));
  await done;
}

describe('getPaths on the macOS backend', () => {
  let server: TestServer | undefined;

  before(function () {
    if (backendName !== 'darwin')
      skipWithReason(this, 'needs the macOS backend; run npm run test:emulated');
  });

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('reports the path, its interface and bytes', async () => {
    server = await startServer((socket) => socket.pipe(socket));
    const socket = connect({ host: '127.0.0.1', port: server.port });
    await once(socket, 'connect');
    await roundTrip(socket, CHUNK);
    const report = await socket.getPaths();

    assert.equal(report.bytesSent, CHUNK);
    assert.equal(report.bytesReceived, CHUNK);
    assert.equal(report.paths.length, 1);
    const [first] = report.paths;
    assert.equal(first.id, 0);
    assert.equal(first.interface, LOOPBACK);
    assert.ok(first.bytesSent >= CHUNK, `bytesSent ${first.bytesSent}`);
    assert.ok(first.bytesReceived >= CHUNK, `bytesReceived ${first.bytesReceived}`);
    assert.equal(first.localAddress, socket.localAddress);
    assert.equal(first.localPort, socket.localPort);
    assert.equal(first.remoteAddress, '127.0.0.1');
    assert.equal(first.remotePort, server.port);
    assert.equal(first.backup, null);
    // One path proves nothing: the framework has no MPTCP flag.
    assert.equal(socket.mptcp, null);

    socket.destroy();
    await once(socket, 'close');
  });

  it('adds up the bytes of successive reports', async () => {
    server = await startServer((socket) => socket.pipe(socket));
    const socket = connect({ host: '127.0.0.1', port: server.port });
    await once(socket, 'connect');
    await roundTrip(socket, CHUNK);
    const first = await socket.getPaths();
    await roundTrip(socket, 2 * CHUNK);
    const second = await socket.getPaths();
    const third = await socket.getPaths();

    assert.equal(first.bytesSent, CHUNK);
    assert.equal(second.bytesSent, 3 * CHUNK);
    assert.equal(second.bytesReceived, 3 * CHUNK);
    assert.equal(second.paths.length, 1);
    assert.ok(second.paths[0].bytesSent >= 3 * CHUNK);
    assert.ok(second.paths[0].bytesSent > first.paths[0].bytesSent);
    // Nothing moved between the last two reports.
    assert.equal(third.bytesSent, second.bytesSent);
    assert.equal(third.paths[0].bytesSent, second.paths[0].bytesSent);

    socket.destroy();
    await once(socket, 'close');
  });

  it('answers concurrent requests in order', async () => {
    server = await startServer((socket) => socket.pipe(socket));
    const socket = connect({ host: '127.0.0.1', port: server.port });
    await once(socket, 'connect');
    await roundTrip(socket, CHUNK);
    const reports = await Promise.all([socket.getPaths(), socket.getPaths(), socket.getPaths()]);
    for (const report of reports) assert.equal(report.bytesSent, CHUNK);
    socket.destroy();
    await once(socket, 'close');
  });

  it('settles a request that a destroy overtakes', async () => {
    server = await startServer((socket) => socket.pipe(socket));
    const socket = connect({ host: '127.0.0.1', port: server.port });
    await once(socket, 'connect');
    const request = socket.getPaths().then(
      (report: PathReport) => report,
      (error: NodeJS.ErrnoException) => error,
    );
    socket.destroy();
    await once(socket, 'close');
    const outcome = await request;
    // The report may win the race; otherwise the close rejects it.
    if (outcome instanceof Error) assert.equal(outcome.code, 'ERR_SOCKET_CLOSED');
    else assert.equal(outcome.paths.length, 1);
    await assert.rejects(socket.getPaths(), { code: 'ERR_SOCKET_CLOSED' });
  });

  describe('with TLS from the framework', () => {
    let tlsServer: ListeningServer<tls.Server> | undefined;
    let storeDir = '';
    let savedCertFile: string | undefined;

    before(function () {
      if (process.platform === 'darwin')
        skipWithReason(this, 'a Mac trusts its keychain, not a test CA in SSL_CERT_FILE');
      // The emulation's TLS trusts what SSL_CERT_FILE names (network-tls.test.ts).
      storeDir = mkdtempSync(path.join(tmpdir(), 'nw-mptcp-store-'));
      writeFileSync(path.join(storeDir, 'ca.pem'), testCertificates().ca.cert);
      savedCertFile = process.env.SSL_CERT_FILE;
      process.env.SSL_CERT_FILE = path.join(storeDir, 'ca.pem');
    });

    after(async () => {
      await tlsServer?.close();
      if (storeDir === '') return;
      if (savedCertFile === undefined) delete process.env.SSL_CERT_FILE;
      else process.env.SSL_CERT_FILE = savedCertFile;
      rmSync(storeDir, { recursive: true, force: true });
    });

    it('counts plaintext in the totals and TLS records on the path', async () => {
      const { server: certificate } = testCertificates();
      tlsServer = await listenOnLoopback(
        tls.createServer({ key: certificate.key, cert: certificate.cert }, (socket) => {
          socket.on('error', () => {});
          socket.pipe(socket);
        }),
      );
      const socket = connect({
        host: 'localhost',
        family: 4,
        port: tlsServer.port,
        tls: { implementation: 'network-framework' },
      }) as unknown as MptcpSocket;
      await once(socket, 'connect');
      await roundTrip(socket, CHUNK);
      const report = await socket.getPaths();

      assert.equal(report.bytesSent, CHUNK);
      assert.equal(report.bytesReceived, CHUNK);
      // Record headers and tags come on top of the plaintext; the handshake,
      // before the ready state, is outside the report.
      assert.ok(report.paths[0].bytesSent > CHUNK, `bytesSent ${report.paths[0].bytesSent}`);
      assert.ok(report.paths[0].bytesReceived > CHUNK);
      socket.end();
      await collect(socket);
    });
  });

  describe('with a second subflow', () => {
    it('reports both paths and turns mptcp true', function () {
      if (process.env.NW_MPTCP_BACKEND !== 'emulated' || process.platform !== 'linux')
        skipWithReason(this, 'the kernel opens the second subflow only under the emulation');
      if (process.getuid?.() !== 0) skipWithReason(this, 'a network namespace needs root');
      // A private namespace, so that its MPTCP endpoint affects no other
      // test: lo gets 127.0.0.2, from which the path manager opens a second
      // subflow of every connection.
      const setup = [
        'ip link set lo up',
        'ip addr add 127.0.0.2/8 dev lo',
        'ip mptcp limits set subflows 2 add_addr_accepted 2',
        'ip mptcp endpoint add 127.0.0.2 dev lo subflow',
        'exec "$0" "$1"',
      ].join(' && ');
      const script = path.join(__dirname, 'fixtures', 'subflows.js');
      const child = spawnSync('unshare', ['-n', 'sh', '-c', setup, process.execPath, script], {
        encoding: 'utf8',
        env: { ...process.env, NW_MPTCP_BACKEND: 'emulated' },
        timeout: 30_000,
      });
      if (child.error !== undefined) skipWithReason(this, `unshare failed: ${child.error.message}`);
      const refused = /^unshare: .*/m.exec(child.stderr);
      if (child.status !== 0 && refused !== null) skipWithReason(this, refused[0]);
      assert.equal(child.status, 0, `the child failed:\n${child.stdout}${child.stderr}`);

      const result = JSON.parse(child.stdout) as {
        before: boolean | null;
        after: boolean | null;
        paths: Array<{ id: number; interface?: string; hasLocal: boolean }>;
      };
      assert.equal(result.before, null);
      assert.equal(result.after, true);
      assert.deepEqual(result.paths, [
        { id: 0, interface: 'lo', hasLocal: true },
        { id: 1, interface: 'lo', hasLocal: false },
      ]);
    });
  });
});
