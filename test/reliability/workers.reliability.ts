// Workers: 50 workers one after another, each with a connection that
// receives a steady stream, ending by process.exit(0) 5 ms in, and 50 more
// ended by worker.terminate() mid-transfer. The process must not crash, the
// main thread carries on (its timers run, its own connection keeps
// receiving), and the server closes every worker's connection. When the main
// thread never loads the addon, the last worker's exit unloads it, and the
// addon survives this by staying mapped.

import assert from 'node:assert/strict';

import { startFixture } from './processes';

const COUNT = 50;

describe('workers', function () {
  this.timeout(120000);

  for (const mode of ['exit', 'terminate'] as const) {
    for (const main of ['socket', 'idle'] as const) {
      const ending = mode === 'exit' ? 'process.exit(0)' : 'worker.terminate()';
      const thread = main === 'socket' ? 'a streaming main thread' : 'an idle main thread';
      it(`${COUNT} workers end by ${ending} beside ${thread}`, async () => {
        const child = startFixture('workers-main.js', [mode, String(COUNT), main]);
        const done = await child.event('done');
        assert.deepEqual(await child.exited, { code: 0, signal: null }, child.stderr);
        // process.exit(0) in a worker ends the worker with code 0;
        // terminate() ends it with code 1.
        assert.deepEqual(done.codes, { [mode === 'exit' ? 0 : 1]: COUNT });
        assert.equal(done.workerConnections, COUNT);
        assert.equal(done.closedByWorkers, COUNT);
        assert.ok((done.ticks as number) > 0);
        assert.equal(done.mainReceived, main === 'socket');
        assert.equal(done.mainStillReceives, main === 'socket');
        assert.equal(child.stderr, '');
      });
    }
  }
});
