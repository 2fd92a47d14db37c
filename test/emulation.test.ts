// Self-tests of the Network framework emulation (test/emulation/selftest/):
// builds them with clang and runs each rule that the emulation keeps as a
// test of its own. They call the emulated C interface directly and never
// load the addon, so they run under either backend. Without Linux, clang,
// the BlocksRuntime or OpenSSL's headers they skip, with the reason in the
// title.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const SELFTEST_DIR = path.join(ROOT, 'test', 'emulation', 'selftest');
const BUILD_DIR = path.join(ROOT, 'build', 'emulation-selftest');
const PROGRAM = path.join(BUILD_DIR, 'selftest');

/** Self-test names (selftest list) and the rule each one checks. */
const RULES: ReadonlyArray<[name: string, title: string]> = [
  ['completions-once-on-queue', 'runs each completion once, on the queue'],
  ['content-with-end-or-error', 'delivers content with FIN or an error'],
  ['end-of-stream-final-context', 'ends the stream with a final context'],
  ['final-send-half-closes', 'half-closes on an empty final send'],
  ['cancel-fails-outstanding', 'fails outstanding work before cancelled'],
  ['refused-waits-and-retries', 'waits and retries a refused connect'],
  ['refcount-and-leak-check', 'aborts on over-release and fails on leaks'],
  ['states-and-paths', 'reports states in order and real addresses'],
  ['parameters', 'applies multipath, TCP, local and IP parameters'],
  ['receive-minimum-maximum', 'honours receive minimum and maximum'],
  ['dns-names', 'resolves names from the hosts file only'],
  ['dispatch', 'runs serial queues and data objects'],
];

const BLOCKS_PROBE = `#include <Block.h>
int main(void) {
  void (^block)(void) = Block_copy(^{});
  block();
  Block_release(block);
  return 0;
}
`;

// The emulation's TLS links the system's OpenSSL in the self-tests.
const OPENSSL_PROBE = `#include <openssl/ssl.h>
int main(void) {
  SSL_CTX *context = SSL_CTX_new(TLS_client_method());
  SSL_CTX_free(context);
  return 0;
}
`;

/** Returns why the self-tests cannot be built here, or undefined. */
function missingPrerequisite(): string | undefined {
  if (process.platform !== 'linux') return `the emulation runs on Linux, not ${process.platform}`;
  const clang = spawnSync('clang', ['--version'], { encoding: 'utf8' });
  if (clang.error !== undefined || clang.status !== 0) return 'clang not installed';
  const make = spawnSync('make', ['--version'], { encoding: 'utf8' });
  if (make.error !== undefined || make.status !== 0) return 'make not installed';

  const dir = mkdtempSync(path.join(tmpdir(), 'nw-emulation-'));
  try {
    const source = path.join(dir, 'probe.c');
    writeFileSync(source, BLOCKS_PROBE);
    const probe = spawnSync(
      'clang',
      ['-fblocks', source, '-o', path.join(dir, 'probe'), '-lBlocksRuntime'],
      { encoding: 'utf8' },
    );
    if (probe.status !== 0) return 'BlocksRuntime not installed (libblocksruntime-dev)';
    const openssl = path.join(dir, 'openssl.c');
    writeFileSync(openssl, OPENSSL_PROBE);
    const linked = spawnSync(
      'clang',
      [openssl, '-o', path.join(dir, 'openssl'), '-lssl', '-lcrypto'],
      { encoding: 'utf8' },
    );
    if (linked.status !== 0) return 'OpenSSL headers not installed (libssl-dev)';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return undefined;
}

describe('Network framework emulation', function () {
  let skipReason: string | undefined;

  before(function () {
    this.timeout(120_000);
    skipReason = missingPrerequisite();
    if (skipReason !== undefined) return;
    const build = spawnSync('make', ['-C', SELFTEST_DIR, `BUILD_DIR=${BUILD_DIR}`], {
      encoding: 'utf8',
    });
    assert.equal(
      build.status,
      0,
      `building the self-tests failed:\n${build.stdout}${build.stderr}`,
    );
  });

  for (const [name, title] of RULES) {
    it(title, function () {
      if (skipReason !== undefined) {
        this.test!.title += ` (skipped: ${skipReason})`;
        this.skip();
      }
      this.timeout(60_000);
      // The self-tests check leaks themselves; an opt-out inherited from
      // the environment must not turn that off.
      const env = { ...process.env };
      delete env.NW_EMULATION_LEAK_CHECK;
      const run = spawnSync(PROGRAM, [name], { encoding: 'utf8', env });
      assert.equal(
        run.status,
        0,
        `selftest ${name} ended with ${run.status ?? run.signal}:\n${run.stdout}${run.stderr}`,
      );
    });
  }
});
