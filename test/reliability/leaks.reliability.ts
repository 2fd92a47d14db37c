// Leaks: 2,000 connections to the echo server, 50 at a time, each ending
// one of five ways (the client ends, the client destroys, the peer closes
// first, the peer resets, every reference dropped with garbage collected on
// the way). Afterwards the client process has as many descriptors as before
// (within 5), no socket in CLOSE_WAIT, an RSS within 20 MB of before, and
// every socket object collected.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

import { backendName } from '../helpers';
import { startEchoServer, startFixture, waitFor, type EchoServer } from './processes';

const COUNT = 2000;
const CONCURRENCY = 50;
const MB = 1000 * 1000;

/** Lists the sockets of this machine in CLOSE_WAIT with `port` at either end. */
function closeWaitSockets(port: number): string[] {
  const output = execFileSync(
    'ss',
    ['-Htan', 'state', 'close-wait', `( sport = :${port} or dport = :${port} )`],
    { encoding: 'utf8' },
  );
  return output.split('\n').filter((line) => line.trim() !== '');
}

describe('leaks', function () {
  this.timeout(120000);

  let server: EchoServer | undefined;

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it(`${COUNT} connections ending five ways leave nothing behind`, async () => {
    server = await startEchoServer();
    const child = startFixture(
      'leaks-client.js',
      [String(server.port), String(COUNT), String(CONCURRENCY)],
      {
        nodeArgs: ['--expose-gc'],
      },
    );
    const done = await child.event('done');
    const before = done.before as { fds: number; rss: number };
    const after = done.after as { fds: number; rss: number };
    const warmup = done.warmup as number;

    // While the client still runs, none of its sockets and none of the
    // server's may wait in CLOSE_WAIT for a close that never comes.
    assert.deepEqual(closeWaitSockets(server.port), []);
    child.process.stdin!.end();
    assert.deepEqual(await child.exited, { code: 0, signal: null }, child.stderr);

    assert.ok(Math.abs(after.fds - before.fds) <= 5, `descriptors ${before.fds} -> ${after.fds}`);
    assert.ok(after.rss - before.rss < 20 * MB, `RSS ${before.rss} -> ${after.rss}`);
    assert.equal(done.finalized, warmup + COUNT);

    const each = COUNT / 5;
    const resets =
      backendName === 'linux'
        ? { 'connect echo error ECONNRESET close true': each }
        : (done.outcomes as Record<string, Record<string, number>>).reset;
    assert.deepEqual(done.outcomes, {
      end: { 'connect echo end close false': each },
      destroy: { 'connect echo close false': each },
      'peer-end': { 'connect echo end close false': each },
      reset: resets,
      dropped: { 'connect echo end close false': each },
    });
    if (backendName !== 'linux') {
      // NOTE: the macOS backend drops the data that arrived before a reset
      // when the failed state comes while no receive is outstanding, so
      // on the emulation some resets arrive without their echo.
      const total = Object.values(resets).reduce((sum, value) => sum + value, 0);
      assert.equal(total, each);
      for (const outcome of Object.keys(resets))
        assert.ok(
          [
            'connect echo error ECONNRESET close true',
            'connect error ECONNRESET close true',
          ].includes(outcome),
          outcome,
        );
    }

    // The server closes every connection.
    await waitFor(
      async () => {
        const stats = await server!.stats();
        return stats.closed === stats.accepted;
      },
      10000,
      'the server to close every connection',
    );
    const stats = await server.stats();
    assert.equal(stats.accepted, warmup + COUNT);
  });
});
