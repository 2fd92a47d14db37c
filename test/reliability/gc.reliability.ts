// Garbage collection: 1,000 sockets that write and are dropped with no
// reference kept, while gc() runs every 2 ms (--expose-gc). The native side
// must keep each socket and its write buffer alive while anything is
// pending. The test checks that every write callback runs once, every byte
// that must arrive arrives intact, every socket closes and is then
// collected, and no event reaches a socket after its collection.

import assert from 'node:assert/strict';

import { startFixture } from './processes';

const COUNT = 1000;

describe('garbage collection', function () {
  this.timeout(120000);

  it(`${COUNT} dropped sockets with pending writes under gc()`, async () => {
    const child = startFixture('gc-client.js', [String(COUNT)], { nodeArgs: ['--expose-gc'] });
    const done = await child.event('done');
    assert.deepEqual(await child.exited, { code: 0, signal: null }, child.stderr);
    assert.deepEqual(done.problems, []);
    assert.equal(done.closed, COUNT);
    assert.equal(done.collected, COUNT);
    // One way in five connects to a closed port and fails.
    assert.equal(done.hadError, COUNT / 5);
    // Three ways in five must deliver all 256 KiB. The destroyed fifth
    // delivers all, a prefix, or nothing when destroy() came before the
    // first write left.
    const complete = done.complete as number;
    const prefixes = done.prefixes as number;
    const empty = done.empty as number;
    assert.equal(complete + prefixes + empty, (COUNT * 4) / 5);
    assert.ok(complete >= (COUNT * 3) / 5, `complete ${complete}`);
    assert.ok(empty <= COUNT / 5, `empty ${empty}`);
    assert.equal(child.stderr, '');
  });
});
