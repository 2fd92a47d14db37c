#!/usr/bin/env node
// Command-line interface: nw-mptcp check, and nw-mptcp check-server.

import { parseArgs } from 'node:util';

import { checkMptcp, startCheckServer, type CheckResult } from './check';
import { validateMultipath, validatePort } from './options';

const USAGE = `Usage:
  nw-mptcp check [host] [--port N] [--multipath SERVICE] [--local] [--timeout MS]
      Sends GET / with a curl User-Agent over an MPTCP connection and prints
      the server's verdict and what the socket knows. The host defaults to
      check.mptcp.dev and the port to 80. --local starts a local check server
      on 127.0.0.1 (Linux) and checks against it.
  nw-mptcp check-server [--host ADDRESS] [--port N]
      Runs a local check server on an MPTCP listener (Linux) until stopped.

Options:
  --multipath SERVICE   handover (default), interactive, aggregate or disabled
  --timeout MS          maximum time for the check in milliseconds (default 10000)
  -h, --help            prints this help
`;

function yesNo(value: boolean | null): string {
  if (value === null) return 'unknown';
  return value ? 'yes' : 'no';
}

function printResult(target: string, result: CheckResult): void {
  console.log(`Server:      ${target}`);
  console.log(`Verdict:     ${result.verdict || `(HTTP ${result.statusCode}, no verdict line)`}`);
  console.log(`Multipath:   ${result.multipath} requested`);
  console.log(`MPTCP in use (client socket): ${yesNo(result.clientMptcp)}`);
  console.log(`Local:       ${result.localAddress}:${result.localPort}`);
  console.log(`Remote:      ${result.remoteAddress}:${result.remotePort}`);
}

async function runCheck(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      multipath: { type: 'string' },
      local: { type: 'boolean', default: false },
      timeout: { type: 'string' },
    },
  });
  const multipath = validateMultipath(values.multipath, '--multipath');
  const timeout = values.timeout === undefined ? 10_000 : Number(values.timeout);
  if (!Number.isInteger(timeout) || timeout <= 0)
    throw new Error(
      `--timeout must be a positive integer of milliseconds; received ${values.timeout}`,
    );
  let host = positionals[0] ?? 'check.mptcp.dev';
  let port = values.port === undefined ? 80 : validatePort(values.port, '--port');

  let stop: (() => void) | undefined;
  if (values.local && process.platform !== 'linux') {
    console.log(`The local check server needs Linux; checking ${host}:${port} instead.`);
  } else if (values.local) {
    const { server, address } = await startCheckServer({
      port: values.port === undefined ? 0 : port,
    });
    host = address.address;
    port = address.port;
    stop = () => server.close();
    console.log(`Local check server listening on MPTCP at ${host}:${port}`);
  }

  try {
    const result = await checkMptcp({ host, port, multipath, timeout });
    printResult(`${host}:${port}`, result);
    return result.serverSawMptcp === true ? 0 : 1;
  } finally {
    stop?.();
  }
}

async function runServer(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { host: { type: 'string' }, port: { type: 'string' } },
  });
  const port = values.port === undefined ? 0 : validatePort(values.port, '--port');
  const { address } = await startCheckServer({ host: values.host ?? '127.0.0.1', port });
  console.log(`Check server listening on MPTCP at ${address.address}:${address.port}`);
  return new Promise(() => {});
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === 'check') return runCheck(rest);
  if (command === 'check-server') return runServer(rest);
  process.stderr.write(`nw-mptcp: unknown command '${command}'\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    process.stderr.write(`nw-mptcp: ${error.message}\n`);
    process.exitCode = 2;
  },
);
