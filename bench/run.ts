// The benchmark suite: MptcpSocket against net.Socket over MPTCP, net.Socket
// over TCP and a C client over MPTCP, on loopback, against one peer process
// (bench/c/server.c). It prints a table and writes JSON and Markdown to
// bench/results/. docs/BENCHMARKS.md describes the method.
//
//   node dist/bench/run.js [--quick] [--reps N] [--workloads a,b] [--contenders a,b]
//   node dist/bench/run.js --serve          builds and starts the peer only, for profiling
//   node dist/bench/run.js --report FILE    prints the tables of a saved JSON result

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { median } from './stats';
import {
  CONTENDERS,
  METRICS,
  TARGETS,
  workloadsFor,
  type Contender,
  type Metric,
  type Workload,
} from './suite';

const ROOT = path.resolve(__dirname, '..', '..');
const C_SOURCES = path.join(ROOT, 'bench', 'c');
// Not under build/, which node-gyp rebuild deletes.
const C_BUILD = path.join(ROOT, 'bench', 'build');
const RESULTS = path.join(ROOT, 'bench', 'results');
const CLIENT_JS = path.join(__dirname, 'client.js');
const ADDON = path.join(ROOT, 'build', 'Release', 'nw_mptcp.node');
/** Maximum time for one client run before it counts as failed. */
const CLIENT_TIMEOUT_MS = 180_000;

interface Binaries {
  server: string;
  client: string;
  mptcpize: string;
}

interface PeerPorts {
  mptcpPort: number;
  tcpPort: number;
}

type RawResult = Record<string, number | string>;

interface Sample {
  rep: number;
  raw?: RawResult;
  metrics?: Record<string, number>;
  error?: string;
}

interface Summary {
  values: number[];
  median: number;
  min: number;
  max: number;
  /** This contender's value divided by net.Socket over MPTCP's, per repetition. */
  ratios: number[];
  /** The median of ratios. */
  ratio: number | null;
}

// ---------------------------------------------------------------------------
// Building and starting the C programs

function compile(args: string[]): void {
  const compiler = process.env.CC ?? 'cc';
  execFileSync(compiler, args, { stdio: ['ignore', 'inherit', 'inherit'] });
}

function buildC(): Binaries {
  fs.mkdirSync(C_BUILD, { recursive: true });
  const source = (name: string) => path.join(C_SOURCES, name);
  const output = (name: string) => path.join(C_BUILD, name);
  const flags = ['-O2', '-g', '-std=gnu11', '-Wall', '-Wextra'];
  compile([...flags, '-o', output('server'), source('server.c')]);
  compile([...flags, '-o', output('client'), source('client.c'), '-lpthread']);
  compile([
    ...flags,
    '-shared',
    '-fPIC',
    '-o',
    output('mptcpize.so'),
    source('mptcpize.c'),
    '-ldl',
  ]);
  return {
    server: output('server'),
    client: output('client'),
    mptcpize: output('mptcpize.so'),
  };
}

async function startPeer(binaries: Binaries): Promise<{ peer: ChildProcess; ports: PeerPorts }> {
  // The peer exits when its standard input closes, so it never outlives this process.
  const peer = spawn(binaries.server, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: peer.stdout! });
  const [line] = (await Promise.race([
    once(lines, 'line'),
    once(peer, 'exit').then(([code]) => {
      throw new Error(`the peer exited with code ${code} before listening`);
    }),
  ])) as [string];
  return { peer, ports: JSON.parse(line) as PeerPorts };
}

// ---------------------------------------------------------------------------
// Running one client

function clientCommand(
  contender: Contender,
  workload: Workload,
  binaries: Binaries,
  ports: PeerPorts,
): { file: string; args: string[]; env: NodeJS.ProcessEnv } {
  const port = contender.transport === 'tcp' ? ports.tcpPort : ports.mptcpPort;
  const args = [
    '--port',
    String(port),
    '--workload',
    workload.kind,
    '--bytes',
    String(workload.bytes ?? 0),
    '--chunk',
    String(workload.chunk ?? 1),
    '--count',
    String(workload.count ?? 1),
    '--warmup',
    String(workload.warmup ?? 0),
    '--concurrency',
    String(workload.concurrency ?? 1),
  ];
  if (contender.id === 'c-mptcp')
    return { file: binaries.client, args: ['--transport', 'mptcp', ...args], env: process.env };
  const env = { ...process.env };
  if (contender.id === 'net-mptcp') env.LD_PRELOAD = binaries.mptcpize;
  return {
    file: process.execPath,
    args: ['--expose-gc', CLIENT_JS, '--contender', contender.id, ...args],
    env,
  };
}

/**
 * Reads MPTcpExtMPTCPRetrans from /proc/net/netstat: data retransmitted at
 * the MPTCP level, counted for the whole machine. On loopback each one
 * follows a stall that the MPTCP retransmission timer ends.
 */
function readMptcpRetransmits(): number {
  const lines = fs.readFileSync('/proc/net/netstat', 'utf8').split('\n');
  const rows = lines.filter((line) => line.startsWith('MPTcpExt:'));
  if (rows.length < 2) return Number.NaN;
  const names = rows[0].split(/\s+/);
  const values = rows[1].split(/\s+/);
  const index = names.indexOf('MPTCPRetrans');
  return index < 0 ? Number.NaN : Number(values[index]);
}

function runClient(
  contender: Contender,
  workload: Workload,
  binaries: Binaries,
  ports: PeerPorts,
): RawResult {
  const { file, args, env } = clientCommand(contender, workload, binaries, ports);
  const retransmitsBefore = readMptcpRetransmits();
  const result = spawnSync(file, args, {
    env,
    encoding: 'utf8',
    timeout: CLIENT_TIMEOUT_MS,
    maxBuffer: 1024 * 1024,
  });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    const reason = result.signal ? `signal ${result.signal}` : `exit code ${result.status}`;
    const errorLines = result.stderr.trim().split('\n');
    const message = errorLines.find((line) => /^\w*Error\b|^client: /.test(line)) ?? errorLines[0];
    throw new Error(`${reason}: ${message}`);
  }
  const lines = result.stdout.trim().split('\n');
  const raw = JSON.parse(lines[lines.length - 1]) as RawResult;
  raw.mptcpRetransmits = readMptcpRetransmits() - retransmitsBefore;
  return raw;
}

// ---------------------------------------------------------------------------
// Load on the machine

interface CpuTimes {
  busy: number;
  total: number;
}

function readCpuTimes(): CpuTimes {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const values = fields.slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const idle = values[3] + (values[4] ?? 0);
  const total = values.slice(0, 8).reduce((sum, value) => sum + value, 0);
  return { busy: total - idle, total };
}

/** Measures the share of all CPUs that other processes keep busy for `ms`, while the suite waits. */
async function sampleBackgroundLoad(ms: number): Promise<number> {
  const start = readCpuTimes();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const end = readCpuTimes();
  const total = end.total - start.total;
  return total > 0 ? (end.busy - start.busy) / total : 0;
}

/** Returns the commit under test and whether lib/, native/ or binding.gyp have changes on top of it. */
function sourceInfo(): { commit: string; modified: boolean } {
  try {
    const git = (args: string[]) =>
      execFileSync('git', args, {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
    const commit = git(['rev-parse', 'HEAD']).trim();
    const status = git(['status', '--porcelain', '--', 'lib', 'native', 'binding.gyp']).trim();
    return { commit, modified: status !== '' };
  } catch {
    return { commit: 'unknown', modified: false };
  }
}

/** Returns the modification time of the built addon, to detect a rebuild during the run. */
function addonBuildTime(): string {
  try {
    return fs.statSync(ADDON).mtime.toISOString();
  } catch {
    return 'missing';
  }
}

/** Returns net.mptcp.enabled, or 'missing' on a kernel without MPTCP. */
function readMptcpSysctl(): string {
  try {
    return fs.readFileSync('/proc/sys/net/mptcp/enabled', 'utf8').trim();
  } catch {
    return 'missing';
  }
}

function machineInfo(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    node: process.version,
    mptcpEnabled: readMptcpSysctl(),
  };
}

// ---------------------------------------------------------------------------
// Summaries and output

/** Returns the metric's value in each repetition, by repetition number. */
function valuesByRep(samples: Sample[] | undefined, metric: string): Map<number, number> {
  const values = new Map<number, number>();
  for (const sample of samples ?? []) {
    const value = sample.metrics?.[metric];
    if (typeof value === 'number' && Number.isFinite(value)) values.set(sample.rep, value);
  }
  return values;
}

function summarize(
  samples: Map<string, Map<string, Sample[]>>,
  workloads: Workload[],
  contenders: Contender[],
): Map<string, Map<string, Map<string, Summary>>> {
  const summaries = new Map<string, Map<string, Map<string, Summary>>>();
  for (const workload of workloads) {
    const byMetric = new Map<string, Map<string, Summary>>();
    const bySample = samples.get(workload.id);
    for (const metric of METRICS[workload.kind]) {
      const byContender = new Map<string, Summary>();
      const baseline = valuesByRep(bySample?.get('net-mptcp'), metric.id);
      for (const contender of contenders) {
        const perRep = valuesByRep(bySample?.get(contender.id), metric.id);
        const values = [...perRep.values()];
        if (values.length === 0) continue;
        // Each ratio pairs a repetition with the baseline's run of the same
        // repetition, which ran right before or after it.
        const ratios: number[] = [];
        for (const [rep, value] of perRep) {
          const base = baseline.get(rep);
          if (base !== undefined && base !== 0) ratios.push(value / base);
        }
        byContender.set(contender.id, {
          values,
          median: median(values),
          min: Math.min(...values),
          max: Math.max(...values),
          ratios,
          ratio: ratios.length > 0 ? median(ratios) : null,
        });
      }
      byMetric.set(metric.id, byContender);
    }
    summaries.set(workload.id, byMetric);
  }
  return summaries;
}

function formatNumber(value: number): string {
  const magnitude = Math.abs(value);
  if (magnitude >= 100) return value.toFixed(0);
  if (magnitude >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function formatCell(metric: Metric, summary: Summary | undefined): string {
  if (summary === undefined) return 'n/a';
  const ratio =
    metric.compared === false || summary.ratio === null ? '' : ` ${summary.ratio.toFixed(2)}x`;
  return `${formatNumber(summary.median)} (${formatNumber(summary.min)}-${formatNumber(summary.max)})${ratio}`;
}

function verdict(workload: Workload, metric: Metric, summary: Summary | undefined): string {
  const target = TARGETS[workload.kind]?.[metric.id];
  if (target === undefined) return '';
  if (summary === undefined || summary.ratio === null) return `${target.op} ${target.ratio}x: n/a`;
  const pass = target.op === '>=' ? summary.ratio >= target.ratio : summary.ratio <= target.ratio;
  const low = Math.min(...summary.ratios).toFixed(2);
  const high = Math.max(...summary.ratios).toFixed(2);
  return `${target.op} ${target.ratio}x: ${pass ? 'pass' : 'MISS'} (${low}-${high})`;
}

function buildRows(
  summaries: Map<string, Map<string, Map<string, Summary>>>,
  workloads: Workload[],
  contenders: Contender[],
): string[][] {
  const header = ['workload', 'metric', ...contenders.map((c) => c.label), 'target (MptcpSocket)'];
  const rows = [header];
  for (const workload of workloads) {
    for (const metric of METRICS[workload.kind]) {
      const byContender = summaries.get(workload.id)?.get(metric.id);
      const mine = byContender?.get('mptcp-socket');
      rows.push([
        workload.label,
        `${metric.label} (${metric.unit})`,
        ...contenders.map((c) => formatCell(metric, byContender?.get(c.id))),
        verdict(workload, metric, mine),
      ]);
    }
  }
  return rows;
}

function renderText(rows: string[][]): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows
    .map((row) => row.map((cell, column) => cell.padEnd(widths[column])).join('  '))
    .join('\n');
}

function renderMarkdown(rows: string[][]): string {
  const [header, ...body] = rows;
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => ' --- ').join('|')}|`];
  for (const row of body) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// Main

function parseList<T extends { id: string }>(
  all: T[],
  text: string | undefined,
  name: string,
): T[] {
  if (text === undefined) return all;
  const ids = text.split(',').map((id) => id.trim());
  for (const id of ids)
    if (!all.some((item) => item.id === id))
      throw new Error(`invalid --${name} ${id}: use ${all.map((item) => item.id).join(', ')}`);
  return all.filter((item) => ids.includes(item.id));
}

async function serve(binaries: Binaries): Promise<void> {
  const { peer, ports } = await startPeer(binaries);
  console.log(`peer: MPTCP port ${ports.mptcpPort}, TCP port ${ports.tcpPort}`);
  console.log(`C client: ${binaries.client}; LD_PRELOAD library: ${binaries.mptcpize}`);
  console.log('Press Ctrl-C to stop.');
  await once(peer, 'exit');
}

/** Prints the tables of a saved JSON result again, with the metrics recomputed from the samples. */
function printReport(file: string): void {
  const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    workloads: Workload[];
    contenders: Contender[];
    samples: Record<string, Record<string, Sample[]>>;
  };
  const samples = new Map<string, Map<string, Sample[]>>();
  for (const workload of saved.workloads) {
    const byContender = new Map<string, Sample[]>();
    for (const [contender, list] of Object.entries(saved.samples[workload.id] ?? {}))
      byContender.set(
        contender,
        list.map((sample) => ({
          ...sample,
          metrics:
            sample.raw === undefined
              ? undefined
              : Object.fromEntries(
                  METRICS[workload.kind].map((metric) => [metric.id, metric.compute(sample.raw!)]),
                ),
        })),
      );
    samples.set(workload.id, byContender);
  }
  const rows = buildRows(
    summarize(samples, saved.workloads, saved.contenders),
    saved.workloads,
    saved.contenders,
  );
  console.log(renderText(rows));
  console.log('');
  console.log(renderMarkdown(rows));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      reps: { type: 'string' },
      workloads: { type: 'string' },
      contenders: { type: 'string' },
      serve: { type: 'boolean', default: false },
      report: { type: 'string' },
    },
  });
  if (values.report !== undefined) {
    printReport(values.report);
    return;
  }
  if (process.platform !== 'linux')
    throw new Error('the benchmarks need Linux: they compare against kernel MPTCP sockets');
  const mptcpEnabled = readMptcpSysctl();
  if (mptcpEnabled !== '1')
    throw new Error(
      `net.mptcp.enabled is ${mptcpEnabled}: the benchmarks need MPTCP ` +
        '(enable it with sysctl -w net.mptcp.enabled=1)',
    );

  const quick = values.quick === true;
  let reps = quick ? 3 : 5;
  if (values.reps !== undefined) reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1)
    throw new Error(`invalid --reps ${values.reps}: expected a positive integer`);
  const workloads = parseList(workloadsFor(quick), values.workloads, 'workloads');
  const contenders = parseList(CONTENDERS, values.contenders, 'contenders');

  const binaries = buildC();
  if (values.serve) {
    await serve(binaries);
    return;
  }

  const startedAt = new Date();
  const source = sourceInfo();
  const addonBuiltBefore = addonBuildTime();
  const loadBefore = await sampleBackgroundLoad(1000);
  const loadAverageBefore = os.loadavg();
  const { peer, ports } = await startPeer(binaries);
  console.log(
    `${quick ? 'Quick' : 'Full'} run: ${reps} repetitions, ${workloads.length} workloads, ` +
      `${contenders.length} contenders, commit ${source.commit.slice(0, 12)}` +
      `${source.modified ? ' with local changes' : ''}. Background CPU use before: ` +
      `${(loadBefore * 100).toFixed(0)}% of ${os.cpus().length} cores.`,
  );

  const samples = new Map<string, Map<string, Sample[]>>();
  for (let rep = 0; rep < reps; rep++) {
    for (const workload of workloads) {
      // The order of contenders rotates, so that a change of background load
      // does not always hit the same one.
      for (let k = 0; k < contenders.length; k++) {
        const contender = contenders[(k + rep) % contenders.length];
        const sample: Sample = { rep };
        try {
          sample.raw = runClient(contender, workload, binaries, ports);
          sample.metrics = Object.fromEntries(
            METRICS[workload.kind].map((metric) => [metric.id, metric.compute(sample.raw!)]),
          );
        } catch (error) {
          sample.error = error instanceof Error ? error.message : String(error);
          console.error(`${workload.id} ${contender.id} rep ${rep + 1}: failed: ${sample.error}`);
        }
        const byContender = samples.get(workload.id) ?? new Map<string, Sample[]>();
        samples.set(workload.id, byContender);
        byContender.set(contender.id, [...(byContender.get(contender.id) ?? []), sample]);
      }
    }
    console.log(`repetition ${rep + 1} of ${reps} done`);
  }
  peer.stdin?.end();
  await once(peer, 'exit');

  const addonBuiltAfter = addonBuildTime();
  if (addonBuiltAfter !== addonBuiltBefore)
    console.error(
      `The addon was rebuilt during the run (${addonBuiltBefore}, then ${addonBuiltAfter}): ` +
        'the results mix two builds. Run again.',
    );
  const loadAverageAfter = os.loadavg();
  const loadAfter = await sampleBackgroundLoad(1000);
  const summaries = summarize(samples, workloads, contenders);
  const rows = buildRows(summaries, workloads, contenders);
  const seconds = (Date.now() - startedAt.getTime()) / 1000;

  console.log('');
  console.log(renderText(rows));
  console.log('');
  console.log(
    'Cells: median (min-max) over the repetitions, then the median of the ratios to ' +
      'net.Socket over MPTCP in the same repetition. Targets: the range of those ratios.',
  );
  console.log(
    `Background CPU use: ${(loadBefore * 100).toFixed(0)}% before, ` +
      `${(loadAfter * 100).toFixed(0)}% after; load average ${loadAverageBefore[0].toFixed(2)} ` +
      `before, ${loadAverageAfter[0].toFixed(2)} after; ${seconds.toFixed(0)} s in all.`,
  );

  fs.mkdirSync(RESULTS, { recursive: true });
  const report = {
    startedAt: startedAt.toISOString(),
    seconds,
    mode: quick ? 'quick' : 'full',
    reps,
    machine: machineInfo(),
    source: { ...source, addonBuiltBefore, addonBuiltAfter },
    load: {
      backgroundBefore: loadBefore,
      backgroundAfter: loadAfter,
      loadAverageBefore,
      loadAverageAfter,
    },
    workloads,
    contenders,
    targets: TARGETS,
    summaries: Object.fromEntries(
      [...summaries].map(([workload, byMetric]) => [
        workload,
        Object.fromEntries(
          [...byMetric].map(([metric, byContender]) => [metric, Object.fromEntries(byContender)]),
        ),
      ]),
    ),
    samples: Object.fromEntries(
      [...samples].map(([workload, byContender]) => [workload, Object.fromEntries(byContender)]),
    ),
  };
  const jsonPath = path.join(RESULTS, 'latest.json');
  const markdownPath = path.join(RESULTS, 'latest.md');
  fs.writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(markdownPath, `${renderMarkdown(rows)}\n`);
  console.log(`Wrote ${path.relative(ROOT, jsonPath)} and ${path.relative(ROOT, markdownPath)}.`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
