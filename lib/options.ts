// Argument normalization and validation for connect(). Every check runs
// before any native call and throws a TypeError or RangeError with the
// ERR_* code and message form of Node's own validators. Where net coerces a
// value (a number for a boolean option, a negative delay), this module
// rejects it instead, so that a mistake shows at the call.

import { isIP } from 'node:net';

import {
  invalidArgType,
  invalidArgValue,
  invalidIpAddress,
  missingArgs,
  outOfRange,
  socketBadPort,
} from './errors';
import type { MptcpTlsOptions } from './tls';

/** The Network framework's multipath services; Linux maps all but 'disabled' to MPTCP. */
export type MultipathService = 'handover' | 'interactive' | 'aggregate' | 'disabled';

export const MULTIPATH_SERVICES: readonly MultipathService[] = [
  'handover',
  'interactive',
  'aggregate',
  'disabled',
];

/** The backend's number for each service (mp_service_t in native/backend.h). */
export const SERVICE_CODES: Record<MultipathService, number> = {
  disabled: 0,
  handover: 1,
  interactive: 2,
  aggregate: 3,
};

export type LookupFunction = (
  hostname: string,
  options: { family?: number; all?: boolean; hints?: number },
  callback: (
    error: NodeJS.ErrnoException | null,
    address: string | { address: string; family: number }[],
    family?: number,
  ) => void,
) => void;

export interface SocketOptions {
  /** Keep the writable side open after the peer ends (default false). */
  allowHalfOpen?: boolean;
  /** Destroys the socket with an AbortError when the signal aborts. */
  signal?: AbortSignal;
  noDelay?: boolean;
  keepAlive?: boolean;
  /** Milliseconds before the first keep-alive probe. */
  keepAliveInitialDelay?: number;
}

export interface ConnectOptions extends SocketOptions {
  /** Host name or IP address (default 'localhost'). */
  host?: string;
  port: number | string;
  /** Multipath service to request (default 'handover'). */
  multipath?: MultipathService;
  /** 4 or 6 to use one address family only; 0 for both (default). */
  family?: number;
  localAddress?: string;
  localPort?: number;
  /** Idle timeout in ms: emits 'timeout', as socket.setTimeout does. */
  timeout?: number;
  /** Maximum time in ms to establish the connection; fails with ETIMEDOUT. */
  connectTimeout?: number;
  /** Custom resolver with the signature of dns.lookup. */
  lookup?: LookupFunction;
  /**
   * macOS: wait for a usable network instead of failing, emitting 'waiting'
   * with the reason. Linux has no waiting state and ignores it.
   */
  waitForConnectivity?: boolean;
  /** TLS over the MPTCP connection: true, or the options of tls.connect. */
  tls?: boolean | MptcpTlsOptions;
}

/** Options after validation, with defaults filled in. */
export interface NormalizedConnectOptions {
  host: string;
  port: number;
  multipath: MultipathService;
  family: number;
  localAddress?: string;
  localPort: number;
  timeout?: number;
  connectTimeout?: number;
  lookup?: LookupFunction;
  waitForConnectivity: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  signal?: AbortSignal;
  allowHalfOpen?: boolean;
  /** TLS options, or undefined for none; true becomes {}. */
  tls?: MptcpTlsOptions;
}

/** Maximum length of a DNS name in bytes (RFC 1035, 2.3.4). */
const MAX_HOST_NAME_BYTES = 253;

/**
 * Splits the arguments of connect(options[, cb]) and
 * connect(port[, host][, cb]) into options and callback.
 */
export function normalizeConnectArgs(
  args: unknown[],
): [Partial<ConnectOptions>, ((...args: unknown[]) => void) | undefined] {
  if (args.length === 0) throw missingArgs(['options', 'port']);
  let callback: ((...args: unknown[]) => void) | undefined;
  const last = args[args.length - 1];
  if (typeof last === 'function') {
    callback = last as (...args: unknown[]) => void;
    args = args.slice(0, -1);
  }
  const first = args[0];
  if (first !== null && typeof first === 'object') return [{ ...(first as object) }, callback];
  const options: Partial<ConnectOptions> = { port: first as number };
  // As in net, a null host means the default host.
  if (args.length > 1 && args[1] !== undefined && args[1] !== null)
    options.host = args[1] as string;
  return [options, callback];
}

export function validatePort(value: unknown, name = 'Port'): number {
  if (typeof value !== 'number' && typeof value !== 'string')
    throw invalidArgType('options.port', ['number', 'string'], value);
  // net accepts a numeric string such as "80" or " 80 ".
  const text = typeof value === 'string' ? value.trim() : '';
  const port = typeof value === 'string' ? (text === '' ? NaN : Number(text)) : value;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw socketBadPort(name, value);
  return port;
}

function validateBoolean(value: unknown, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw invalidArgType(name, 'boolean', value);
  return value;
}

export function validateMsecs(value: unknown, name: string): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'number', value);
  if (!Number.isFinite(value) || value < 0)
    throw outOfRange(name, 'a non-negative finite number', value);
  return value;
}

export function validateHost(value: unknown, name = 'options.host'): string {
  if (typeof value !== 'string') throw invalidArgType(name, 'string', value);
  if (value.length === 0) throw invalidArgValue(name, value, 'must be a non-empty string');
  if (value.includes('\0')) throw invalidArgValue(name, value, 'must not contain null bytes');
  if (isIP(value) === 0 && Buffer.byteLength(value) > MAX_HOST_NAME_BYTES)
    throw invalidArgValue(name, value, `must be at most ${MAX_HOST_NAME_BYTES} bytes`);
  return value;
}

export function validateMultipath(value: unknown, name = 'options.multipath'): MultipathService {
  if (value === undefined) return 'handover';
  if (typeof value !== 'string' || !(MULTIPATH_SERVICES as readonly string[]).includes(value)) {
    const list = MULTIPATH_SERVICES.map((service) => `'${service}'`).join(', ');
    throw invalidArgValue(name, value, `must be one of: ${list}`);
  }
  return value as MultipathService;
}

function validateFamily(value: unknown): number {
  if (value === undefined || value === null) return 0;
  if (value === 'IPv4') return 4;
  if (value === 'IPv6') return 6;
  if (value !== 0 && value !== 4 && value !== 6)
    throw invalidArgValue('options.family', value, 'must be one of: 0, 4, 6');
  return value;
}

/** Validates everything connect() accepts, in the order net.connect checks. */
export function validateConnectOptions(options: Partial<ConnectOptions>): NormalizedConnectOptions {
  if (options.port === undefined) throw missingArgs(['options', 'port']);
  const port = validatePort(options.port);
  const host =
    options.host === undefined || options.host === null ? 'localhost' : validateHost(options.host);
  const multipath = validateMultipath(options.multipath);
  const family = validateFamily(options.family);

  let localAddress: string | undefined;
  if (options.localAddress !== undefined) {
    if (typeof options.localAddress !== 'string')
      throw invalidArgType('options.localAddress', 'string', options.localAddress);
    if (isIP(options.localAddress) === 0) throw invalidIpAddress(options.localAddress);
    localAddress = options.localAddress;
  }
  let localPort = 0;
  if (options.localPort !== undefined) {
    if (typeof options.localPort !== 'number')
      throw invalidArgType('options.localPort', 'number', options.localPort);
    localPort = validatePort(options.localPort, 'options.localPort');
  }

  const timeout =
    options.timeout === undefined ? undefined : validateMsecs(options.timeout, 'options.timeout');
  const connectTimeout =
    options.connectTimeout === undefined
      ? undefined
      : validateMsecs(options.connectTimeout, 'options.connectTimeout');
  if (options.lookup !== undefined && typeof options.lookup !== 'function')
    throw invalidArgType('options.lookup', 'function', options.lookup);
  if (
    options.signal !== undefined &&
    (options.signal === null ||
      typeof options.signal !== 'object' ||
      !('aborted' in options.signal))
  )
    throw invalidArgType('options.signal', 'AbortSignal', options.signal);
  const keepAliveInitialDelay =
    options.keepAliveInitialDelay === undefined
      ? undefined
      : validateMsecs(options.keepAliveInitialDelay, 'options.keepAliveInitialDelay');

  let tls: MptcpTlsOptions | undefined;
  if (options.tls === true) tls = {};
  else if (options.tls !== undefined && options.tls !== false) {
    if (options.tls === null || typeof options.tls !== 'object')
      throw invalidArgType('options.tls', ['boolean', 'object'], options.tls);
    tls = options.tls;
  }

  return {
    host,
    port,
    tls,
    multipath,
    family,
    localAddress,
    localPort,
    timeout,
    connectTimeout,
    lookup: options.lookup,
    waitForConnectivity:
      validateBoolean(options.waitForConnectivity, 'options.waitForConnectivity') ?? false,
    noDelay: validateBoolean(options.noDelay, 'options.noDelay'),
    keepAlive: validateBoolean(options.keepAlive, 'options.keepAlive'),
    keepAliveInitialDelay,
    signal: options.signal,
    allowHalfOpen: validateBoolean(options.allowHalfOpen, 'options.allowHalfOpen'),
  };
}
