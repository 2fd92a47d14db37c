// The contenders, workloads, metrics and targets of the benchmark suite.

export type ContenderId = 'mptcp-socket' | 'net-mptcp' | 'net-tcp' | 'c-mptcp';

export interface Contender {
  id: ContenderId;
  label: string;
  transport: 'mptcp' | 'tcp';
}

/** The baseline of every ratio is net-mptcp. */
export const CONTENDERS: Contender[] = [
  { id: 'mptcp-socket', label: 'MptcpSocket', transport: 'mptcp' },
  { id: 'net-mptcp', label: 'net.Socket MPTCP', transport: 'mptcp' },
  { id: 'net-tcp', label: 'net.Socket TCP', transport: 'tcp' },
  { id: 'c-mptcp', label: 'C MPTCP', transport: 'mptcp' },
];

export type WorkloadKind = 'upload' | 'download' | 'pingpong' | 'connrate' | 'idle';

export interface Workload {
  id: string;
  label: string;
  kind: WorkloadKind;
  /** Bytes moved by a bulk transfer. */
  bytes?: number;
  /** Write size of a bulk transfer (the peer's send size for downloads), or message size of a ping-pong. */
  chunk?: number;
  /** Round trips, connections, or idle connections. */
  count?: number;
  /** Round trips or connections before the measurement starts. */
  warmup?: number;
  /** Connections in flight at once. */
  concurrency?: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Returns the workloads. Quick mode moves 256 MiB per transfer and runs fewer rounds. */
export function workloadsFor(quick: boolean): Workload[] {
  const bytes = quick ? 256 * MiB : GiB;
  const size = quick ? '256 MiB' : '1 GiB';
  const rounds = quick ? 5000 : 20000;
  const roundsWarmup = quick ? 500 : 1000;
  return [
    {
      id: 'upload-64k',
      label: `upload ${size}, 64 KiB writes`,
      kind: 'upload',
      bytes,
      chunk: 64 * KiB,
    },
    { id: 'upload-1m', label: `upload ${size}, 1 MiB writes`, kind: 'upload', bytes, chunk: MiB },
    {
      id: 'download-64k',
      label: `download ${size}, 64 KiB sends`,
      kind: 'download',
      bytes,
      chunk: 64 * KiB,
    },
    {
      id: 'download-1m',
      label: `download ${size}, 1 MiB sends`,
      kind: 'download',
      bytes,
      chunk: MiB,
    },
    {
      id: 'pingpong-1',
      label: 'ping-pong 1 B',
      kind: 'pingpong',
      chunk: 1,
      count: rounds,
      warmup: roundsWarmup,
    },
    {
      id: 'pingpong-1k',
      label: 'ping-pong 1 KiB',
      kind: 'pingpong',
      chunk: KiB,
      count: rounds,
      warmup: roundsWarmup,
    },
    {
      id: 'connrate-1',
      label: 'connections, 1 at a time',
      kind: 'connrate',
      count: quick ? 500 : 2000,
      warmup: 50,
      concurrency: 1,
    },
    {
      id: 'connrate-8',
      label: 'connections, 8 at a time',
      kind: 'connrate',
      count: quick ? 1000 : 2000,
      warmup: 50,
      concurrency: 8,
    },
    { id: 'idle-1000', label: '1000 idle connections', kind: 'idle', count: 1000 },
  ];
}

export interface Metric {
  id: string;
  label: string;
  unit: string;
  /** False for diagnostics that are not compared with the baseline. */
  compared?: boolean;
  /** Computes the metric from a client's JSON result, or NaN when the client cannot measure it. */
  compute(raw: Record<string, number | string>): number;
}

function field(raw: Record<string, number | string>, name: string): number {
  const value = raw[name];
  return typeof value === 'number' ? value : Number.NaN;
}

const bulkMetrics: Metric[] = [
  {
    id: 'throughput',
    label: 'throughput',
    unit: 'MiB/s',
    compute: (raw) => field(raw, 'bytes') / MiB / field(raw, 'seconds'),
  },
  {
    id: 'cpu',
    label: 'client CPU',
    unit: 's/GiB',
    compute: (raw) =>
      (field(raw, 'cpuUser') + field(raw, 'cpuSystem')) / (field(raw, 'bytes') / GiB),
  },
  {
    // Machine-wide, so other MPTCP traffic adds to it. On loopback each
    // retransmit marks a stall that the MPTCP retransmission timer ended.
    id: 'stalls',
    label: 'MPTCP retransmits',
    unit: 'count',
    compared: false,
    compute: (raw) => field(raw, 'mptcpRetransmits'),
  },
];

export const METRICS: Record<WorkloadKind, Metric[]> = {
  upload: bulkMetrics,
  download: bulkMetrics,
  pingpong: [
    { id: 'p50', label: 'round trip p50', unit: 'us', compute: (raw) => field(raw, 'p50Us') },
    { id: 'p99', label: 'round trip p99', unit: 'us', compute: (raw) => field(raw, 'p99Us') },
    {
      id: 'cpu',
      label: 'client CPU',
      unit: 'us/round trip',
      compute: (raw) =>
        ((field(raw, 'cpuUser') + field(raw, 'cpuSystem')) * 1e6) / field(raw, 'count'),
    },
  ],
  connrate: [
    {
      id: 'rate',
      label: 'rate',
      unit: 'conn/s',
      compute: (raw) => field(raw, 'count') / field(raw, 'seconds'),
    },
    {
      id: 'cpu',
      label: 'client CPU',
      unit: 'us/conn',
      compute: (raw) =>
        ((field(raw, 'cpuUser') + field(raw, 'cpuSystem')) * 1e6) / field(raw, 'count'),
    },
  ],
  idle: [
    {
      id: 'rss',
      label: 'RSS',
      unit: 'B/conn',
      compute: (raw) => (field(raw, 'rssAfter') - field(raw, 'rssBefore')) / field(raw, 'count'),
    },
    {
      id: 'heap',
      label: 'V8 heap',
      unit: 'B/conn',
      compute: (raw) => (field(raw, 'heapAfter') - field(raw, 'heapBefore')) / field(raw, 'count'),
    },
  ],
};

export interface Target {
  op: '>=' | '<=';
  ratio: number;
}

/** Goals for MptcpSocket as a ratio to net.Socket over MPTCP. The suite reports them and no test asserts them. */
export const TARGETS: Partial<Record<WorkloadKind, Record<string, Target>>> = {
  upload: { throughput: { op: '>=', ratio: 0.9 } },
  download: { throughput: { op: '>=', ratio: 0.9 } },
  pingpong: { p50: { op: '<=', ratio: 1.25 } },
  connrate: { rate: { op: '>=', ratio: 0.8 } },
  idle: { rss: { op: '<=', ratio: 1.5 }, heap: { op: '<=', ratio: 1.5 } },
};
