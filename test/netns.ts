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

export interface Link {
  clientInterface: string;
  serverInterface: string;
  clientAddress: string;
  serverAddress: string;
}

export interface Testbed {
  /** Namespace of the client host. */
  client: string;
  /** Namespace of the server host. */
  server: string;
  /** Two links; each is its own /24 subnet. */
  links: [Link, Link];
  /** Takes a link down or up on the client's side. */
  setLink(index: 0 | 1, up: boolean): void;
  /** Limits the server's sending rate on every link with tbf. */
  limitRate(mbit: number): void;
  /** Adds the client's endpoint on the second link, for a testbed made without it. */
  addSubflowEndpoint(): void;
  remove(): void;
}

export interface TestbedOptions {
  /** Marks the client's endpoint on the second link as a backup path. */
  backup?: boolean;
  /** Turns MPTCP off in the server's namespace (net.mptcp.enabled=0). */
  serverWithoutMptcp?: boolean;
  /** Leaves out the client's endpoint on the second link (see addSubflowEndpoint). */
  withoutSubflowEndpoint?: boolean;
}

function addEndpoint(client: string, link: Link, backup: boolean): void {
  const flags = backup ? ['subflow', 'backup'] : ['subflow'];
  ip([
    '-n',
    client,
    'mptcp',
    'endpoint',
    'add',
    link.clientAddress,
    'dev',
    link.clientInterface,
    ...flags,
  ]);
}

/**
 * Creates two hosts, client and server, in network namespaces joined by two
 * veth links. The client has an MPTCP endpoint on the second link, so each
 * connection to the server's first address opens a second subflow over the
 * second link.
 */
export function createTestbed(options: TestbedOptions = {}): Testbed {
  const client = uniqueName('nwmc');
  const server = uniqueName('nwms');
  const base = subnetIndex();
  const links: Link[] = [0, 1].map((index) => ({
    clientInterface: uniqueName(`c${index}`),
    serverInterface: uniqueName(`s${index}`),
    clientAddress: `10.${214 + index}.${base}.1`,
    serverAddress: `10.${214 + index}.${base}.2`,
  }));

  ip(['netns', 'add', client]);
  created.add(client);
  ip(['netns', 'add', server]);
  created.add(server);
  try {
    for (const namespace of [client, server]) ip(['-n', namespace, 'link', 'set', 'lo', 'up']);
    for (const link of links) {
      ip([
        'link',
        'add',
        link.clientInterface,
        'netns',
        client,
        'type',
        'veth',
        'peer',
        'name',
        link.serverInterface,
        'netns',
        server,
      ]);
      ip(['-n', client, 'addr', 'add', `${link.clientAddress}/24`, 'dev', link.clientInterface]);
      ip(['-n', server, 'addr', 'add', `${link.serverAddress}/24`, 'dev', link.serverInterface]);
      ip(['-n', client, 'link', 'set', link.clientInterface, 'up']);
      ip(['-n', server, 'link', 'set', link.serverInterface, 'up']);
    }
    // The in-kernel path manager opens one extra subflow from the client's
    // second address, through the second link, to the server's first
    // address. The limits allow it on both ends.
    for (const namespace of [client, server])
      ip(['-n', namespace, 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '2']);
    if (!options.withoutSubflowEndpoint) addEndpoint(client, links[1], options.backup === true);
    if (options.serverWithoutMptcp)
      ip(['netns', 'exec', server, 'sysctl', '-qw', 'net.mptcp.enabled=0']);
  } catch (error) {
    deleteNamespace(client);
    deleteNamespace(server);
    throw error;
  }

  return {
    client,
    server,
    links: links as [Link, Link],
    setLink(index, up) {
      ip(['-n', client, 'link', 'set', links[index].clientInterface, up ? 'up' : 'down']);
    },
    addSubflowEndpoint() {
      addEndpoint(client, links[1], options.backup === true);
    },
    limitRate(mbit) {
      for (const link of links)
        execFileSync('tc', [
          '-n',
          server,
          'qdisc',
          'replace',
          'dev',
          link.serverInterface,
          'root',
          'tbf',
          'rate',
          `${mbit}mbit`,
          'burst',
          '256kb',
          'latency',
          '50ms',
        ]);
    },
    remove() {
      deleteNamespace(client);
      deleteNamespace(server);
    },
  };
}
