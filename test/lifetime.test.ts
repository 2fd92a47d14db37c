// Process lifetime: what keeps a process alive, garbage collection of
// unreferenced sockets, debug logging, and the fallback to TCP when the
// kernel refuses MPTCP. Each case runs a client process; the socket cases run
// for net.Socket and MptcpSocket and must agree.

import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as path from 'node:path';

import { backendName, skipWithReason, startServer, type TestServer } from './helpers';
import { namespaceUnavailableReason, uniqueName } from './netns';

const CLIENT = path.join(__dirname, 'fixtures', 'client.js');

interface Child {
  process: ChildProcess;
  stdout: string[];
  stderr: string;
  exited: Promise<number | null>;
}

function runClient(args: string[], env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): Child {
  const child = spawn(process.execPath, [...nodeArgs, CLIENT, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const result: Child = {
    process: child,
    stdout: [],
    stderr: '',
    exited: once(child, 'exit').then(([code]) => code as number | null),
  };
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    result.stdout.push(...text.split('\n').filter((line) => line !== ''));
  });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    result.stderr += text;
  });
  return result;
}

async function untilLine(child: Child, line: string): Promise<void> {
  while (!child.stdout.includes(line)) {
    if (child.process.exitCode !== null)
      throw new Error(`client exited before "${line}": ${child.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function hasExited(child: Child): boolean {
  return child.process.exitCode !== null || child.process.signalCode !== null;
}

describe('lifetime', () => {
  let server: TestServer | undefined;

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  for (const kind of ['net', 'mptcp']) {
    describe(kind === 'net' ? 'net.Socket' : 'MptcpSocket', () => {
      it('an open socket keeps the process alive', async () => {
        server = await startServer(() => {}, { tcp: kind === 'net' });
        const child = runClient([kind, 'open', String(server.port)]);
        await untilLine(child, 'connected');
        await new Promise((resolve) => setTimeout(resolve, 500));
        assert.equal(hasExited(child), false);
        for (const socket of server.sockets) socket.end();
        assert.equal(await child.exited, 0);
        assert.deepEqual(child.stdout, ['connected', 'closed']);
      });

      it('unref() lets the process exit', async () => {
        let serverClosed: Promise<unknown> | undefined;
        server = await startServer(
          (socket) => {
            serverClosed = new Promise((resolve) => socket.on('close', resolve));
            socket.resume();
          },
          { tcp: kind === 'net' },
        );
        const child = runClient([kind, 'unref', String(server.port)]);
        assert.equal(await child.exited, 0);
        assert.deepEqual(child.stdout, ['connected']);
        // The connection ends with the process.
        await serverClosed;
      });

      for (const [mode, lines] of [
        ['unref-write', ['connected', 'written', 'closed']],
        ['unref-end', ['connected', 'finished']],
      ] as const) {
        it(`${mode}: pending work outlives unref()`, async () => {
          let received = 0;
          let serverEnded: Promise<unknown> | undefined;
          server = await startServer(
            (socket) => {
              serverEnded = new Promise((resolve) => socket.on('close', resolve));
              socket.on('data', (chunk: Buffer) => (received += chunk.length));
            },
            { tcp: kind === 'net' },
          );
          const child = runClient([kind, mode, String(server.port)]);
          assert.equal(await child.exited, 0, child.stderr);
          assert.deepEqual(child.stdout, lines);
          await serverEnded;
          if (mode === 'unref-end') assert.equal(received, 16 * 1024 * 1024);
        });
      }

      it('nothing keeps the process alive after close', async () => {
        server = await startServer(() => {}, { tcp: kind === 'net' });
        const child = runClient([kind, 'destroy', String(server.port)]);
        assert.equal(await child.exited, 0);
        assert.deepEqual(child.stdout, ['connected', 'closed']);
      });

      it('an unreferenced socket still gets its data', async () => {
        const payload = Buffer.alloc(256 * 1024, 1);
        server = await startServer(
          (socket) => {
            // The data comes after the client has collected garbage.
            setTimeout(() => socket.end(payload), 400);
          },
          { tcp: kind === 'net' },
        );
        const child = runClient([kind, 'gc', String(server.port)], {}, ['--expose-gc']);
        assert.equal(await child.exited, 0, child.stderr);
        assert.deepEqual(child.stdout, [`received ${payload.length}`]);
      });
    });
  }

  it('NODE_DEBUG=mptcp logs connect, state and close', async () => {
    server = await startServer(() => {});
    const child = runClient(['mptcp', 'destroy', String(server.port)], { NODE_DEBUG: 'mptcp' });
    assert.equal(await child.exited, 0);
    const pid = child.process.pid;
    const lines = child.stderr.split('\n').filter((line) => line.startsWith(`MPTCP ${pid}:`));
    assert.equal(lines[0], `MPTCP ${pid}: connect 127.0.0.1:${server.port} multipath=handover`);
    assert.match(
      lines[1],
      new RegExp(
        `^MPTCP ${pid}: connected 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${server.port} mptcp=`,
      ),
    );
    assert.equal(lines[2], `MPTCP ${pid}: destroy 127.0.0.1:${server.port}`);
    assert.equal(lines[3], `MPTCP ${pid}: closed 127.0.0.1:${server.port}`);
    assert.equal(lines.length, 4);
  });

  describe('kernel without MPTCP', () => {
    let namespace: string | undefined;

    before(function () {
      if (backendName !== 'linux')
        skipWithReason(this, 'only the Linux backend opens kernel sockets from the client');
      const reason = namespaceUnavailableReason();
      if (reason) skipWithReason(this, reason);
      namespace = uniqueName('nwfb');
      execFileSync('ip', ['netns', 'add', namespace]);
      execFileSync('ip', ['-n', namespace, 'link', 'set', 'lo', 'up']);
      // net.mptcp.enabled is per network namespace.
      execFileSync('ip', ['netns', 'exec', namespace, 'sysctl', '-qw', 'net.mptcp.enabled=0']);
    });

    after(() => {
      if (namespace) execFileSync('ip', ['netns', 'delete', namespace]);
    });

    it('falls back to TCP and says so', async () => {
      const child = spawn(
        'ip',
        ['netns', 'exec', namespace!, process.execPath, CLIENT, 'mptcp', 'fallback', '0'],
        { env: { ...process.env, NODE_DEBUG: 'mptcp' }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
      const [code] = await once(child, 'exit');
      assert.equal(code, 0, stderr);
      assert.deepEqual(JSON.parse(stdout), {
        mptcp: false,
        mptcpFallback: true,
        serverFallback: true,
      });
      assert.match(stderr, /the kernel refused MPTCP: plain TCP/);
    });
  });
});
