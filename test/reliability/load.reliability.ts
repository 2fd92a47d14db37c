// Load: 1,000 concurrent connections, each moving 1 MiB to the echo server
// and back with every byte checked, and 10,000 sequential connect, exchange,
// close cycles. No error, and as many descriptors after as before.

import assert from 'node:assert/strict';

import { startEchoServer, startFixture, type EchoServer } from './processes';

const MiB = 1024 * 1024;
const CONCURRENT = 1000;
const SEQUENTIAL = 10000;

// Each connection takes one descriptor in the client and one in the server.
const OPEN_FILES = 4096;

describe('load', function () {
  this.timeout(300000);

  let server: EchoServer | undefined;

  beforeEach(async () => {
    server = await startEchoServer({ openFiles: OPEN_FILES });
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it(`${CONCURRENT} concurrent connections each echo 1 MiB intact`, async () => {
    const child = startFixture(
      'load-client.js',
      ['concurrent', String(server!.port), String(CONCURRENT), String(MiB)],
      { openFiles: OPEN_FILES },
    );
    const result = await child.line((line) => line.event === 'done' || line.event === 'failed');
    assert.deepEqual(await child.exited, { code: 0, signal: null }, child.stderr);
    assert.equal(result.event, 'done', String(result.message));
    assert.equal(result.ok, CONCURRENT);
    assert.equal(result.failed, 0);
    assert.deepEqual(result.errors, {});
    assert.equal(result.after, result.before);
    const stats = await server!.stats();
    assert.equal(stats.accepted, CONCURRENT + 1);
    assert.deepEqual(stats.errors, {});
  });

  it(`${SEQUENTIAL} sequential connect, exchange, close cycles`, async () => {
    const child = startFixture('load-client.js', [
      'sequential',
      String(server!.port),
      String(SEQUENTIAL),
    ]);
    const result = await child.line((line) => line.event === 'done' || line.event === 'failed');
    assert.deepEqual(await child.exited, { code: 0, signal: null }, child.stderr);
    assert.equal(result.event, 'done', String(result.message));
    assert.equal(result.ok, SEQUENTIAL);
    assert.equal(result.failed, 0);
    assert.deepEqual(result.errors, {});
    assert.equal(result.after, result.before);
    const stats = await server!.stats();
    assert.equal(stats.accepted, SEQUENTIAL + 1);
    assert.deepEqual(stats.errors, {});
  });
});
