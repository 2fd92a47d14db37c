// Network namespaces for tests that need more than loopback: an address
// that drops SYNs, and (for multipath tests) hosts joined by veth links.
// Everything created here is removed by remove(), and at process exit when a
// test fails before its cleanup runs.

import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const created = new Set<string>();
let counter = 0;

process.on('exit', () => {
  for (const name of created) deleteNamespace(name);
});

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function deleteNamespace(name: string): void {
  try {
    ip(['netns', 'delete', name]);
  } catch {
    // Already gone.
  }
  created.delete(name);
}

/** Returns why namespaces cannot be used here, or null when they can. */
export function namespaceUnavailableReason(): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    ip(['netns', 'list']);
  } catch {
    return 'the ip command (iproute2) is missing';
  }
  return null;
}

/** A short name, unique in this process, that fits an interface name (15 bytes). */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}${process.pid % 100000}x${counter}`;
}

/** A /30 subnet index in 10.213.0.0/16 that differs between test processes. */
function subnetIndex(): number {
  counter += 1;
  return ((process.pid * 7 + counter) % 250) + 1;
}

export interface Blackhole {
  /** An IPv4 address whose SYNs are silently dropped. */
  address: string;
  remove(): void;
}

/**
 * Creates an address that never answers: a veth pair into a new namespace,
 * with a permanent neighbor entry on this side and no address on the other,
 * so SYNs enter the namespace and are dropped there without a reply.
 */
export function createBlackhole(): Blackhole {
  const namespace = uniqueName('nwbh');
  const outside = uniqueName('nwbo');
  const inside = uniqueName('nwbi');
  const subnet = subnetIndex();
  const local = `10.213.${subnet}.1`;
  const address = `10.213.${subnet}.2`;

  ip(['netns', 'add', namespace]);
  created.add(namespace);
  try {
    ip(['link', 'add', outside, 'type', 'veth', 'peer', 'name', inside]);
    ip(['link', 'set', inside, 'netns', namespace]);
    ip(['addr', 'add', `${local}/30`, 'dev', outside]);
    ip(['link', 'set', outside, 'up']);
    ip(['-n', namespace, 'link', 'set', inside, 'up']);
    ip([
      'neigh',
      'replace',
      address,
      'lladdr',
      '02:00:00:00:00:02',
      'dev',
      outside,
      'nud',
      'permanent',
    ]);
  } catch (error) {
    deleteNamespace(namespace);
    throw error;
  }
  // Deleting the namespace deletes the veth pair with it.
  return { address, remove: () => deleteNamespace(namespace) };
}

/** Counts the open descriptors of this process. */
export function openDescriptorCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Lists TCP sockets of this machine that are connecting to `address`. */
export function connectingSocketsTo(address: string): string[] {
  const output = execFileSync('ss', ['-Htn', 'state', 'syn-sent', 'dst', address], {
    encoding: 'utf8',
  });
  return output.split('\n').filter((line) => line.trim() !== '');
}
