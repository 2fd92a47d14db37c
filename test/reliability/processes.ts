// Child processes of the reliability tests: fixtures that print one JSON
// object per line, and the echo server of test/fixtures/echo-server.ts.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import * as path from 'node:path';

export const FIXTURES = path.join(__dirname, '..', 'fixtures');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Child {
  process: ChildProcess;
  /** The JSON lines printed so far. */
  lines: Array<Record<string, unknown>>;
  stderr: string;
  exited: Promise<Exit>;
  /** Resolves with the first line for which `match` is true. */
  line(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  /** Resolves with the first line whose `event` is `event`. */
  event(event: string): Promise<Record<string, unknown>>;
}

/** Starts `command` and collects the JSON lines of its standard output. */
export function startChild(command: string, args: string[], options: SpawnOptions = {}): Child {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
  const waiters: Array<() => void> = [];
  const line: Child['line'] = (match) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = result.lines.find(match);
        if (found) resolve(found);
        else if (child.exitCode !== null || child.signalCode !== null)
          reject(new Error(`${path.basename(args[0] ?? command)} exited first: ${result.stderr}`));
        else waiters.push(check);
      };
      check();
    });
  const result: Child = {
    process: child,
    lines: [],
    stderr: '',
    exited: once(child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    })),
    line,
    event: (event) => line((candidate) => candidate.event === event),
  };
  let pending = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    pending += text;
    const parts = pending.split('\n');
    pending = parts.pop()!;
    for (const part of parts) if (part !== '') result.lines.push(JSON.parse(part));
    for (const waiter of waiters.splice(0)) waiter();
  });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (result.stderr += text));
  child.on('exit', () => {
    for (const waiter of waiters.splice(0)) waiter();
  });
  return result;
}

export interface FixtureOptions {
  env?: NodeJS.ProcessEnv;
  nodeArgs?: string[];
  /** Raises the soft limit of open descriptors to this many, where the hard limit allows. */
  openFiles?: number;
}

/** Starts a fixture script with this Node and the given extra environment. */
export function startFixture(script: string, args: string[], options: FixtureOptions = {}): Child {
  let command = [
    process.execPath,
    ...(options.nodeArgs ?? []),
    path.join(FIXTURES, script),
    ...args,
  ];
  // The shell raises the limit and replaces itself with Node. It ignores a
  // failed ulimit, so a fixture that needs the limit checks it
  // (load-client.ts does).
  if (options.openFiles !== undefined)
    command = [
      'sh',
      '-c',
      `ulimit -n ${options.openFiles} 2>/dev/null; exec "$0" "$@"`,
      ...command,
    ];
  return startChild(command[0], command.slice(1), { env: { ...process.env, ...options.env } });
}

export interface EchoServer {
  port: number;
  /** Requests the server's counters of accepted and closed connections and of errors. */
  stats(): Promise<{ accepted: number; closed: number; errors: Record<string, number> }>;
  stop(): Promise<void>;
}

/** Starts test/fixtures/echo-server.js and waits for its port. */
export async function startEchoServer(options: FixtureOptions = {}): Promise<EchoServer> {
  const child = startFixture('echo-server.js', [], options);
  const { port } = await child.line((line) => typeof line.port === 'number');
  const replies = () => child.lines.filter((line) => 'accepted' in line);
  return {
    port: port as number,
    async stats() {
      const before = replies().length;
      child.process.stdin!.write('stats\n');
      await child.line(() => replies().length > before);
      return replies()[before] as Awaited<ReturnType<EchoServer['stats']>>;
    },
    async stop() {
      child.process.stdin!.end();
      await child.exited;
    },
  };
}

/** Waits until `condition` is true, checking every 20 ms, or fails after `ms`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
