// Process exit with connections open: process.exit() from a timer and from
// a 'data' listener while 200 connections move data, and an uncaught
// exception from a timer and from a 'data' listener. Each ends the process
// with the exit code Node gives, no signal and no hang. In the last case, an
// 'uncaughtException' handler catches the exceptions of listeners, the
// connections then finish their transfers, and the server closes every
// connection.
//
// The server's side is not checked after an exit, because Linux (seen on
// 6.18, also with a Python client) leaves some MPTCP connections of an exited
// process open at the peer when data was in flight. Plain TCP resets them at
// once (docs/RELIABILITY.md).

import assert from 'node:assert/strict';

import { startEchoServer, startFixture, waitFor, type EchoServer } from './processes';

const COUNT = 200;

// A process that exits with connections open skips the environment's cleanup
// hooks, so the emulation's leak check at exit would count those
// connections (test/emulation/README.md).
const OPEN_AT_EXIT = { NW_EMULATION_LEAK_CHECK: 'off' };

describe('process exit', function () {
  this.timeout(120000);

  let server: EchoServer | undefined;
  beforeEach(async () => {
    server = await startEchoServer({ openFiles: 4096 });
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  /** Requests the server's counters and returns how many connections it accepted. */
  async function accepted(): Promise<number> {
    return (await server!.stats()).accepted;
  }

  /** Waits until the server has closed every connection it accepted, and returns how many. */
  async function serverClosedAll(): Promise<number> {
    await waitFor(
      async () => {
        const stats = await server!.stats();
        return stats.closed === stats.accepted;
      },
      10000,
      'the server to close every connection',
    );
    return accepted();
  }

  for (const [mode, code, where] of [
    ['exit-timer', 3, 'process.exit(3) from a timer'],
    ['exit-listener', 4, "process.exit(4) from a 'data' listener"],
  ] as const) {
    it(`${where} with ${COUNT} connections moving data`, async () => {
      const child = startFixture('exit-client.js', [mode, String(server!.port), String(COUNT)], {
        env: OPEN_AT_EXIT,
        openFiles: 4096,
      });
      assert.deepEqual(await child.exited, { code, signal: null });
      assert.equal(child.stderr, '');
      assert.deepEqual(child.lines, []);
      assert.equal(await accepted(), COUNT);
    });
  }

  for (const [mode, message, where] of [
    ['throw-timer', 'thrown from a timer', 'a timer'],
    ['throw-listener', 'thrown from a data listener', "a 'data' listener"],
  ] as const) {
    it(`uncaught exception from ${where} exits with 1`, async () => {
      const child = startFixture('exit-client.js', [mode, String(server!.port), String(COUNT)], {
        env: OPEN_AT_EXIT,
        openFiles: 4096,
      });
      assert.deepEqual(await child.exited, { code: 1, signal: null });
      // Node prints the exception and its stack, then its version.
      const lines = child.stderr.split('\n');
      assert.ok(lines.includes(`Error: ${message}`), child.stderr);
      assert.match(child.stderr, /\nNode\.js v\d+\.\d+\.\d+\n$/);
      assert.deepEqual(child.lines, []);
      assert.equal(await accepted(), COUNT);
    });
  }

  it("'uncaughtException' handler catches listener exceptions", async () => {
    const connections = 20;
    const child = startFixture('exit-client.js', [
      'handled-listener',
      String(server!.port),
      String(connections),
    ]);
    assert.deepEqual(await child.exited, { code: 0, signal: null }, child.stderr);
    assert.deepEqual(child.lines, [{ event: 'done', caught: 10, completed: connections }]);
    assert.equal(child.stderr, '');
    assert.equal(await serverClosedAll(), connections);
  });
});
