// Node-shaped errors: system errors with errno, code, syscall, address and
// port, and the ERR_* argument errors that Node's own validators throw.

import { getSystemErrorName, inspect } from 'node:util';

import type { NativeError } from './binding';

/** libuv's codes for "name not found", which Node reports as ENOTFOUND. */
const UV_EAI_NONAME = -3008;
const UV_EAI_NODATA = -3007;

const NETWORK_DOMAINS = ['', 'posix', 'dns', 'tls'];

/** A system error as Node's net and dns modules build them. */
export interface SystemError extends Error {
  errno?: number;
  code?: string;
  syscall?: string;
  address?: string;
  port?: number;
  hostname?: string;
  /** Network framework only: the error domain ('posix', 'dns' or 'tls'). */
  networkDomain?: string;
  /** Network framework only: the framework's own code in that domain. */
  networkCode?: number;
}

export function errorName(errno: number): string {
  if (errno === UV_EAI_NONAME || errno === UV_EAI_NODATA) return 'ENOTFOUND';
  try {
    return getSystemErrorName(errno);
  } catch {
    return `Unknown system error ${errno}`;
  }
}

export interface SystemErrorDetails {
  address?: string;
  port?: number;
  hostname?: string;
}

/**
 * Builds the error Node would build for a failed syscall: the message reads
 * "connect ECONNREFUSED 127.0.0.1:80" or "getaddrinfo ENOTFOUND host".
 */
export function systemError(
  errno: number,
  syscall: string,
  details: SystemErrorDetails = {},
): SystemError {
  const code = errorName(errno);
  let where = '';
  if (details.hostname !== undefined) where = ` ${details.hostname}`;
  else if (details.address !== undefined)
    where = details.port ? ` ${details.address}:${details.port}` : ` ${details.address}`;

  const error: SystemError = new Error(`${syscall} ${code}${where}`);
  error.errno = errno;
  error.code = code;
  error.syscall = syscall;
  if (details.hostname !== undefined) error.hostname = details.hostname;
  if (details.address !== undefined) error.address = details.address;
  if (details.port !== undefined && details.hostname === undefined) error.port = details.port;
  return error;
}

/**
 * Builds the Node error for an error reported by the backend. As in net,
 * name resolution errors carry the host name, connect errors the address
 * and port, and errors of an established connection neither.
 */
export function nativeSystemError(
  native: NativeError,
  target: { host: string; port: number },
): SystemError {
  let details: SystemErrorDetails = {};
  if (native.syscall === 'getaddrinfo') details = { hostname: target.host };
  else if (native.address !== undefined)
    // Port 0 is a local address bound without a port; net leaves it out.
    details = { address: native.address, port: native.port || undefined };
  else if (native.syscall === 'connect') details = { address: target.host, port: target.port };

  const error = systemError(native.errno, native.syscall, details);
  if (native.domain > 0) {
    error.networkDomain = NETWORK_DOMAINS[native.domain];
    error.networkCode = native.raw;
  }
  return error;
}

/** Describes a received value the way Node's argument errors do. */
function describeReceived(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'function') return `function ${value.name}`;
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    return name ? `an instance of ${name}` : inspect(value, { depth: -1 });
  }
  let shown = inspect(value, { colors: false });
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  return `type ${typeof value} (${shown})`;
}

function kind(name: string): string {
  return name.includes('.') ? 'property' : 'argument';
}

function withCode<T extends Error>(error: T, code: string): T & { code: string } {
  const coded = error as T & { code: string };
  coded.code = code;
  // Node's own errors print as "TypeError [ERR_X]: message".
  // The name is set on the instance only while V8 formats the stack, so the
  // prototype's name shows again afterwards.
  error.name = `${error.name} [${code}]`;
  void error.stack;
  delete (error as { name?: string }).name;
  return coded;
}

function joinTypes(types: string[]): string {
  if (types.length === 1) return types[0];
  if (types.length === 2) return `${types[0]} or ${types[1]}`;
  return `${types.slice(0, -1).join(', ')}, or ${types[types.length - 1]}`;
}

/** ERR_INVALID_ARG_TYPE: `expected` lists type names such as 'number'. */
export function invalidArgType(name: string, expected: string | string[], actual: unknown) {
  const types = Array.isArray(expected) ? expected : [expected];
  const phrase = types.length > 1 ? 'one of type' : 'of type';
  return withCode(
    new TypeError(
      `The "${name}" ${kind(name)} must be ${phrase} ${joinTypes(types)}. ` +
        `Received ${describeReceived(actual)}`,
    ),
    'ERR_INVALID_ARG_TYPE',
  );
}

/** ERR_INVALID_ARG_VALUE, with a reason such as "must be one of: 'a', 'b'". */
export function invalidArgValue(name: string, value: unknown, reason = 'is invalid') {
  return withCode(
    new TypeError(
      `The ${kind(name)} '${name}' ${reason}. Received ${inspect(value, { colors: false })}`,
    ),
    'ERR_INVALID_ARG_VALUE',
  );
}

/** ERR_SOCKET_BAD_PORT, worded as net.connect words it. */
export function socketBadPort(name: string, port: unknown) {
  return withCode(
    new RangeError(`${name} should be >= 0 and < 65536. Received ${describeReceived(port)}.`),
    'ERR_SOCKET_BAD_PORT',
  );
}

/** ERR_OUT_OF_RANGE: `range` says what is allowed, as in "an integer >= 0". */
export function outOfRange(name: string, range: string, received: unknown) {
  return withCode(
    new RangeError(
      `The value of "${name}" is out of range. It must be ${range}. ` +
        `Received ${inspect(received, { colors: false })}`,
    ),
    'ERR_OUT_OF_RANGE',
  );
}

/** ERR_MISSING_ARGS for a call that lacks every one of `names`. */
export function missingArgs(names: string[]) {
  const quoted = names.map((name) => `"${name}"`).join(' or ');
  return withCode(new TypeError(`The ${quoted} argument must be specified`), 'ERR_MISSING_ARGS');
}

/** ERR_SOCKET_CLOSED or another code for a misuse of the socket's state. */
export function stateError(code: string, message: string) {
  return withCode(new Error(message), code);
}

/** ERR_INVALID_IP_ADDRESS for a local address that is no IP literal. */
export function invalidIpAddress(address: string) {
  return withCode(new TypeError(`Invalid IP address: ${address}`), 'ERR_INVALID_IP_ADDRESS');
}
