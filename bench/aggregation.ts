// Aggregation benchmark: two hosts in network namespaces joined by two veth
// links, each limited with tbf to the same rate. It downloads the same data
// over single-path TCP and over MPTCP on both links and reports the ratio of
// their throughputs (goal: 1.8x or more). It needs Linux and root.
//
//   node dist/bench/aggregation.js [--quick] [--rate MBIT] [--reps N]

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { createTestbed, namespaceUnavailableReason, type Testbed } from '../test/netns';
import { median } from './stats';

const ROOT = path.resolve(__dirname, '..', '..');
const PEER = path.join(ROOT, 'dist', 'test', 'fixtures', 'peer.js');
const RESULTS = path.join(ROOT, 'bench', 'results');
const GOAL = 1.8;
const MiB = 1024 * 1024;

/** Runs a peer in a namespace and resolves with each JSON line it prints. */
function runPeer(
  namespace: string,
  args: string[],
): {
  lines: AsyncIterableIterator<string>;
  done: Promise<number | null>;
} {
  const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, PEER, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return {
    lines: createInterface({ input: child.stdout })[Symbol.asyncIterator](),
    done: new Promise((resolve) => child.on('exit', resolve)),
  };
}

async function nextMessage(lines: AsyncIterableIterator<string>): Promise<Record<string, unknown>> {
  const { value, done } = await lines.next();
  if (done) throw new Error('the peer exited early');
  const message = JSON.parse(value) as Record<string, unknown>;
  if (message.failed) throw new Error(`the peer failed: ${value}`);
  return message;
}

/** Downloads `size` bytes and returns the client's throughput in MiB/s. */
async function download(bed: Testbed, size: number, multipath: string): Promise<number> {
  const server = runPeer(bed.server, [
    'server',
    bed.links[0].serverAddress,
    'source',
    String(size),
  ]);
  const { listening } = (await nextMessage(server.lines)) as { listening: number };
  const client = runPeer(bed.client, [
    'client',
    bed.links[0].serverAddress,
    String(listening),
    'sink',
    String(size),
    multipath,
  ]);
  // The client times the transfer from 'connect' to the end of the data.
  const result = (await nextMessage(client.lines)) as {
    received: number;
    sha256: string;
    seconds: number;
  };
  const sent = (await nextMessage(server.lines)) as { sha256: string };
  await Promise.all([client.done, server.done]);
  if (result.received !== size || result.sha256 !== sent.sha256)
    throw new Error(`the ${multipath} transfer lost data`);
  return size / MiB / result.seconds;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rate: { type: 'string', default: '100' },
      reps: { type: 'string' },
    },
  });
  const reason = namespaceUnavailableReason();
  if (reason) {
    console.log(`aggregation: skipped (${reason})`);
    return;
  }
  const rate = Number(values.rate);
  const reps = Number(values.reps ?? (values.quick ? 3 : 5));
  // About three seconds of single-path transfer at the given rate.
  const size = Math.round(((rate / 8) * 3 * 1e6) / MiB) * MiB;

  const bed = createTestbed();
  const samples: Array<{ tcp: number; mptcp: number; ratio: number }> = [];
  try {
    bed.limitRate(rate);
    for (let rep = 0; rep < reps; rep++) {
      const tcp = await download(bed, size, 'disabled');
      const mptcp = await download(bed, size, 'aggregate');
      samples.push({ tcp, mptcp, ratio: mptcp / tcp });
    }
  } finally {
    bed.remove();
  }

  const ratios = samples.map((sample) => sample.ratio);
  const ratio = median(ratios);
  const row = (label: string, list: number[]) =>
    `${label.padEnd(22)} ${median(list).toFixed(1).padStart(8)} MiB/s  ` +
    `(${Math.min(...list).toFixed(1)}-${Math.max(...list).toFixed(1)})`;
  console.log(`\nAggregation: two links at ${rate} Mbit/s each, ${size / MiB} MiB, ${reps} runs`);
  console.log(
    row(
      'TCP, one link',
      samples.map((sample) => sample.tcp),
    ),
  );
  console.log(
    row(
      'MPTCP, two links',
      samples.map((sample) => sample.mptcp),
    ),
  );
  console.log(
    `${'ratio'.padEnd(22)} ${ratio.toFixed(2).padStart(8)}x      ` +
      `(${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}), goal ${GOAL}x: ` +
      `${ratio >= GOAL ? 'pass' : 'MISS'}`,
  );

  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(
    path.join(RESULTS, 'aggregation.json'),
    `${JSON.stringify({ rate, size, reps, samples, ratio, goal: GOAL }, null, 2)}\n`,
  );
}

main().catch((error: Error) => {
  console.error(`aggregation: ${error.message}`);
  process.exitCode = 1;
});
