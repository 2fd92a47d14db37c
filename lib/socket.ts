// MptcpSocket: a stream.Duplex over one native MPTCP connection, shaped like
// net.Socket so that code and libraries written for one accept the other.
//
// The native handle reports everything through one event callback (see
// binding.ts). This file turns those events into stream operations and
// keeps net.Socket's order of events: 'lookup', 'connect', 'ready', 'data',
// 'end', 'error', and 'close' last, once the native side has let go.

import * as dns from 'node:dns';
import { isIP } from 'node:net';
import { constants } from 'node:os';
import { Duplex, addAbortSignal } from 'node:stream';
import { debuglog } from 'node:util';

import {
  NativeEvent,
  binding,
  type NativeConnectOptions,
  type NativeConnection,
  type NativeError,
  type NativeInfo,
  type NativePath,
  type NativePathReport,
} from './binding';
import {
  invalidArgType,
  invalidArgValue,
  invalidIpAddress,
  nativeSystemError,
  stateError,
  systemError,
  type SystemError,
} from './errors';
import {
  SERVICE_CODES,
  normalizeConnectArgs,
  validateConnectOptions,
  validateMsecs,
  type ConnectOptions,
  type LookupFunction,
  type MultipathService,
  type NormalizedConnectOptions,
  type SocketOptions,
} from './options';

const debug = debuglog('mptcp');

const ETIMEDOUT = -constants.errno.ETIMEDOUT;
const ENOTCONN = -constants.errno.ENOTCONN;
const EINVAL = -constants.errno.EINVAL;

/**
 * Node's maximum timer delay in milliseconds. setTimeout() runs a longer
 * delay after 1 ms, so longer ones are cut to it, as net.Socket does.
 */
const TIMEOUT_MAX = 2 ** 31 - 1;

/**
 * Converts a keep-alive delay in milliseconds to whole seconds for the
 * addon. The result is at most 2^31-1, which the glue's uint32 and the
 * Linux backend's int both carry unchanged; a kernel that takes less
 * rejects it and keeps its own delay, as for net.Socket.
 */
function keepAliveSeconds(ms: number): number {
  return Math.min(Math.trunc(ms / 1000), TIMEOUT_MAX);
}

type WriteCallback = (error?: Error | null) => void;

interface DeferredWrite {
  chunks: Buffer | Buffer[];
  callback: WriteCallback;
}

/**
 * The method that connects with validated options. connect() in index.ts
 * uses it, so that the options are not checked twice.
 */
export const kConnectValidated = Symbol('nw-mptcp.connectValidated');

/** A native handle that knows its socket, for the shared event callback. */
type OwnedConnection = NativeConnection & { owner: MptcpSocket };

interface BufferedChunk {
  chunk: Buffer | string;
  encoding: BufferEncoding;
}

/** Statistics of one path: a subflow on Linux, a path of the Network framework on macOS. */
export type PathStats = NativePath;

/** What socket.getPaths() resolves with. */
export type PathReport = NativePathReport;

/** The native connect options of TLS that the platform runs (the Network framework). */
export type NativeTlsOptions = Pick<
  NativeConnectOptions,
  'tls' | 'tlsServerName' | 'tlsAlpn' | 'tlsMinVersion'
>;

/** Address as socket.address() returns it. */
export interface AddressInfo {
  address: string;
  family: string;
  port: number;
}

function destroyedError(): Error {
  return stateError('ERR_STREAM_DESTROYED', 'Cannot call write after a stream was destroyed');
}

// Views of other TypedArray kinds and DataViews become Buffers over the same
// memory, because older Node streams take only strings and Uint8Arrays.
function asBuffer(chunk: unknown): unknown {
  if (ArrayBuffer.isView(chunk) && !(chunk instanceof Uint8Array))
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return chunk;
}

function byteLength(chunks: Buffer | Buffer[]): number {
  if (!Array.isArray(chunks)) return chunks.length;
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  return total;
}

/** A client connection over MPTCP with the interface of net.Socket. */
export class MptcpSocket extends Duplex {
  /** True while the connection is being established, as in net.Socket. */
  connecting = false;

  #handle: NativeConnection | null = null;
  #nativeClosed = false;
  #closeEmitted = false;
  #hadError = false;
  #reset = false;

  #host = '';
  #port = 0;
  #multipath: MultipathService = 'handover';
  #info: NativeInfo | null = null;
  #infoHasAddresses = false;

  #wantRead = false;
  #bytesRead = 0;
  #bytesDispatched = 0;
  #deferredWrite: DeferredWrite | null = null;
  #deferredFinal: WriteCallback | null = null;
  #pendingWrite: WriteCallback | null = null;
  #pendingShutdown: WriteCallback | null = null;
  #pathRequests: Array<{
    resolve: (report: PathReport) => void;
    reject: (error: Error) => void;
  }> = [];

  #timeout = 0;
  #timer: NodeJS.Timeout | null = null;
  #connectTimer: NodeJS.Timeout | null = null;
  #refed = true;
  #noDelay: boolean | undefined;
  #keepAlive = false;
  #keepAliveDelay = 0;

  constructor(options: SocketOptions = {}) {
    if (options === null || typeof options !== 'object')
      throw invalidArgType('options', 'object', options);
    super({ allowHalfOpen: options.allowHalfOpen === true, emitClose: false, autoDestroy: true });
    if (options.noDelay !== undefined) this.#noDelay = Boolean(options.noDelay);
    if (options.keepAlive) {
      this.#keepAlive = true;
      // Checked as connect() checks it: a NaN or a string would otherwise
      // reach the addon as a delay.
      const delay = options.keepAliveInitialDelay ?? 0;
      this.#keepAliveDelay = keepAliveSeconds(
        validateMsecs(delay, 'options.keepAliveInitialDelay'),
      );
    }
    // Node 20's addAbortSignal() throws a TypeError without a code for null.
    if (options.signal === null) throw invalidArgType('options.signal', 'AbortSignal', null);
    if (options.signal !== undefined) addAbortSignal(options.signal, this);
  }

  /**
   * Opens the connection: connect(options[, listener]) or
   * connect(port[, host][, listener]). The listener runs on 'connect'.
   */
  connect(options: ConnectOptions, connectListener?: () => void): this;
  connect(port: number | string, host?: string, connectListener?: () => void): this;
  connect(port: number | string, connectListener?: () => void): this;
  connect(...args: unknown[]): this {
    const [raw, listener] = normalizeConnectArgs(args);
    const options = validateConnectOptions(raw);
    // TLS wraps the socket, so it cannot start from here. Silently sending
    // plaintext instead would be worse.
    if (options.tls !== undefined)
      throw invalidArgValue(
        'options.tls',
        raw.tls,
        'is not supported by MptcpSocket.connect(); use connect({ tls }) or startTls()',
      );
    return this[kConnectValidated](options, listener);
  }

  /** Connects with options that validateConnectOptions returned. */
  [kConnectValidated](
    options: NormalizedConnectOptions,
    listener?: (...args: unknown[]) => void,
  ): this {
    if (this.connecting) throw stateError('ERR_SOCKET_CONNECTING', 'Socket is already connecting');
    if (this.#handle !== null)
      throw stateError('ERR_SOCKET_CONNECTED', 'Socket is already connected');
    if (listener) this.once('connect', listener);
    if (this.destroyed) {
      // Destroyed before connect, for example by an aborted signal: net
      // reports that error and opens nothing.
      return this;
    }

    this.#host = options.host;
    this.#port = options.port;
    this.#multipath = options.multipath;
    if (options.noDelay !== undefined) this.#noDelay = options.noDelay;
    if (options.keepAlive) {
      this.#keepAlive = true;
      this.#keepAliveDelay = keepAliveSeconds(options.keepAliveInitialDelay ?? 0);
    }
    if (options.timeout !== undefined) this.setTimeout(options.timeout);
    if (options.connectTimeout !== undefined && options.connectTimeout > 0)
      this.#startConnectTimer(options.connectTimeout);

    this.connecting = true;
    debug('connect %s:%d multipath=%s', options.host, options.port, options.multipath);
    // An already aborted signal destroys the socket here, synchronously.
    if (options.signal !== undefined) addAbortSignal(options.signal, this);

    // As in net, the work starts on the next tick, so destroy() in the same
    // tick opens nothing.
    process.nextTick(() => {
      if (!this.connecting || this.destroyed) return;
      this.#resolve(options);
    });
    return this;
  }

  #startConnectTimer(ms: number): void {
    this.#connectTimer = setTimeout(
      () => {
        this.#connectTimer = null;
        if (!this.connecting) return;
        debug('connect timed out after %d ms', ms);
        this.destroy(systemError(ETIMEDOUT, 'connect', { address: this.#host, port: this.#port }));
      },
      Math.min(ms, TIMEOUT_MAX),
    );
    this.#connectTimer.unref();
  }

  #resolve(options: NormalizedConnectOptions): void {
    const literal = isIP(options.host) !== 0;
    if (literal || (binding.resolvesNames && options.lookup === undefined)) {
      // Without a lookup option the Network framework resolves the name.
      this.#open(options, literal ? [options.host] : [], literal);
      return;
    }

    const lookup: LookupFunction = options.lookup ?? (dns.lookup as unknown as LookupFunction);
    const lookupOptions = { family: options.family, all: true };
    let answered = false;
    const onLookup: Parameters<LookupFunction>[2] = (error, result, family) => {
      // A custom lookup may call back more than once. Only the first result
      // counts, because one connect makes one connection.
      if (answered) return;
      answered = true;
      if (!this.connecting || this.destroyed) return;
      if (error) {
        this.emit('lookup', error, undefined, undefined, options.host);
        this.destroy(error);
        return;
      }
      const entries =
        typeof result === 'string'
          ? [{ address: result, family: family ?? isIP(result) }]
          : Array.isArray(result)
            ? result
            : [];
      const invalid = entries.find((entry) => isIP(entry?.address) === 0);
      if (invalid !== undefined) {
        this.destroy(invalidIpAddress(String(invalid?.address)));
        return;
      }
      const addresses = entries
        .filter((entry) => options.family === 0 || entry.family === options.family)
        .map((entry) => entry.address);
      if (addresses.length === 0) {
        const notFound = systemError(-3008, 'getaddrinfo', { hostname: options.host });
        this.emit('lookup', notFound, undefined, undefined, options.host);
        this.destroy(notFound);
        return;
      }
      this.emit('lookup', null, addresses[0], isIP(addresses[0]), options.host);
      this.#open(options, addresses, true);
    };
    try {
      lookup(options.host, lookupOptions, onLookup);
    } catch (error) {
      // A lookup that throws fails this socket, not the process.
      answered = true;
      this.destroy(error as Error);
    }
  }

  /**
   * Opens the native connection. `resolved` is true when `addresses` is the
   * complete result (a literal host or a lookup). Otherwise the backend
   * resolves `host` itself.
   */
  #open(options: NormalizedConnectOptions, addresses: string[], resolved: boolean): void {
    // A local address binds one family only. Destinations of the other
    // family would fail to bind, and net reports that as bind EINVAL; on
    // macOS the framework would pick its own error.
    let family = options.family;
    if (options.localAddress !== undefined) {
      const localFamily = isIP(options.localAddress);
      addresses = addresses.filter((address) => isIP(address) === localFamily);
      if (resolved && addresses.length === 0) {
        this.destroy(
          systemError(EINVAL, 'bind', {
            address: options.localAddress,
            port: options.localPort || undefined,
          }),
        );
        return;
      }
      family = localFamily;
    }
    let nativeTls = this.nativeTlsOptions();
    let host = options.host;
    if (binding.resolvesNames && addresses.length > 0 && host !== addresses[0]) {
      // A backend that resolves names (the Network framework) connects to
      // `host` and ignores `addresses`. After the caller's lookup it gets
      // the first address found, so that the lookup decides where the
      // connection goes and the framework sends no DNS query of its own.
      host = addresses[0];
      if (nativeTls.tls && nativeTls.tlsServerName === undefined)
        nativeTls = { ...nativeTls, tlsServerName: options.host };
    }
    const handle = new binding.Connection(MptcpSocket.#dispatch) as OwnedConnection;
    handle.owner = this;
    const status = handle.connect({
      ...nativeTls,
      host,
      addresses,
      port: options.port,
      service: SERVICE_CODES[options.multipath],
      family,
      localAddress: options.localAddress,
      localPort: options.localPort,
      noDelay: this.#noDelay === true,
      keepAlive: this.#keepAlive,
      keepAliveDelay: this.#keepAliveDelay,
      waitForConnectivity: options.waitForConnectivity,
    });
    if (status < 0) {
      this.destroy(systemError(status, 'connect', { address: options.host, port: options.port }));
      return;
    }
    this.#handle = handle;
    if (!this.#refed) handle.unref();
  }

  // The event callback of every handle. The addon calls it with the handle
  // as `this`; one shared function costs less memory per socket than a
  // closure per socket.
  static #dispatch(this: OwnedConnection, type: NativeEvent, arg?: unknown): void {
    this.owner.#onNativeEvent(type, arg);
  }

  #onNativeEvent(type: NativeEvent, arg?: unknown): void {
    // After destroy() the connection still reports what was under way, but
    // only completions and the final Close concern the socket now: net
    // emits no 'connect', 'data' or 'end' after destroy().
    if (
      this.destroyed &&
      type !== NativeEvent.Write &&
      type !== NativeEvent.Shutdown &&
      type !== NativeEvent.Paths &&
      type !== NativeEvent.Close
    ) {
      return;
    }
    switch (type) {
      case NativeEvent.Connect:
        this.#onConnect();
        break;
      case NativeEvent.Data:
        this.#onData(arg as Buffer);
        break;
      case NativeEvent.Eof:
        debug('end of stream from %s:%d', this.#host, this.#port);
        this.push(null);
        // net calls read(0) here too. Without a reader, 'end' would wait for
        // a read() that never comes, and the socket would never close.
        this.read(0);
        break;
      case NativeEvent.Write:
        this.#onWriteDone(arg as NativeError | null);
        break;
      case NativeEvent.Shutdown:
        this.#onShutdownDone(arg as NativeError | null);
        break;
      case NativeEvent.Error:
        this.#onError(arg as NativeError);
        break;
      case NativeEvent.Waiting: {
        const reason = this.#nativeError(arg as NativeError);
        debug('waiting for connectivity: %s', reason.message);
        this.emit('waiting', reason);
        break;
      }
      case NativeEvent.Path:
        this.#refreshInfo();
        debug('paths changed %s:%d', this.#host, this.#port);
        this.emit('path');
        break;
      case NativeEvent.Paths:
        this.#onPaths(arg as PathReport);
        break;
      case NativeEvent.Viability:
        debug('path viable: %s', arg);
        this.emit('viability', arg as boolean);
        break;
      case NativeEvent.BetterPath:
        debug('better path available: %s', arg);
        this.emit('betterPath', arg as boolean);
        break;
      case NativeEvent.Close:
        this.#onNativeClose();
        break;
    }
  }

  #onConnect(): void {
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    this.connecting = false;
    // The MPTCP state is kept from now on, so that it can still be read
    // after 'close'. The addresses are read when a property first needs
    // them, as in net.Socket, which saves system calls on short connections.
    this.#info = this.#handle?.getInfo(false) ?? null;
    if (debug.enabled) {
      const info = this.#currentInfo();
      debug(
        'connected %s:%s -> %s:%s mptcp=%s%s',
        info?.localAddress,
        info?.localPort,
        info?.remoteAddress,
        info?.remotePort,
        info?.mptcp,
        info?.fallback ? ' (the kernel refused MPTCP: plain TCP)' : '',
      );
    }
    this.#touch();

    const deferred = this.#deferredWrite;
    this.#deferredWrite = null;
    if (deferred) this.#writeChunks(deferred.chunks, deferred.callback);
    const final = this.#deferredFinal;
    this.#deferredFinal = null;
    if (final) this._final(final);

    this.emit('connect');
    this.emit('ready');
    if (this.destroyed) return;
    if (this.#wantRead) this.#handle?.readStart();
    else if (!this.isPaused()) this.read(0);
  }

  #onData(chunk: Buffer): void {
    this.#bytesRead += chunk.length;
    this.#touch();
    if (!this.push(chunk)) {
      this.#wantRead = false;
      this.#handle?.readStop();
    }
  }

  #onWriteDone(error: NativeError | null): void {
    const callback = this.#pendingWrite;
    this.#pendingWrite = null;
    if (!callback) return;
    if (error === null) {
      this.#touch();
      callback();
    } else if (this.destroyed) {
      callback(destroyedError());
    } else {
      callback(this.#nativeError(error));
    }
  }

  #onShutdownDone(error: NativeError | null): void {
    const callback = this.#pendingShutdown;
    this.#pendingShutdown = null;
    if (!callback) return;
    if (error === null || error.errno === ENOTCONN || this.destroyed) callback();
    else callback(this.#nativeError(error));
  }

  #nativeError(error: NativeError): SystemError {
    return this.convertNativeError(nativeSystemError(error, this.#target()));
  }

  /**
   * Native connect options for TLS that the platform runs on this
   * connection: none here. The socket of the Network framework's TLS
   * (tls.ts) overrides it.
   */
  protected nativeTlsOptions(): NativeTlsOptions {
    return {};
  }

  /**
   * Returns the error to report for a backend error. Here it is the error
   * itself; the socket of the Network framework's TLS gives TLS failures
   * Node's TLS codes.
   */
  protected convertNativeError(error: SystemError): SystemError {
    return error;
  }

  #onError(error: NativeError): void {
    if (this.destroyed) return;
    const exception = this.#nativeError(error);
    debug('error: %s', exception.message);
    this.destroy(exception);
  }

  #onPaths(report: PathReport): void {
    this.#refreshInfo();
    this.#pathRequests.shift()?.resolve(report);
  }

  #onNativeClose(): void {
    this.#nativeClosed = true;
    this.#handle = null;
    for (const request of this.#pathRequests.splice(0))
      request.reject(
        stateError('ERR_SOCKET_CLOSED', 'The socket closed before it reported its paths'),
      );
    debug('closed %s:%d', this.#host, this.#port);
    this.#emitClose();
  }

  #emitClose(): void {
    if (this.#closeEmitted) return;
    this.#closeEmitted = true;
    this.emit('close', this.#hadError);
  }

  #target() {
    return { host: this.#host, port: this.#port };
  }

  #forgetLocalAddress(): void {
    if (!this.#info) return;
    this.#info = {
      ...this.#info,
      localAddress: undefined,
      localPort: undefined,
      localFamily: undefined,
    };
  }

  #refreshInfo(): void {
    if (this.destroyed) return;
    const info = this.#handle?.getInfo();
    if (!info) return;
    this.#info = info;
    this.#infoHasAddresses = true;
  }

  /** The connection's state, with the addresses read on first use. */
  #currentInfo(): NativeInfo | null {
    if (!this.#infoHasAddresses && this.#handle !== null && !this.connecting) this.#refreshInfo();
    return this.#info;
  }

  // Any read or write restarts the idle timer, as in net.Socket.
  #touch(): void {
    this.#timer?.refresh();
  }

  /** Writes a string, Buffer, TypedArray or DataView, as net.Socket accepts. */
  override write(
    chunk: unknown,
    encoding?: BufferEncoding | WriteCallback,
    callback?: WriteCallback,
  ): boolean {
    return super.write(asBuffer(chunk), encoding as BufferEncoding, callback);
  }

  override end(
    chunk?: unknown,
    encoding?: BufferEncoding | (() => void),
    callback?: () => void,
  ): this {
    if (typeof chunk === 'function') return super.end(chunk as () => void);
    return super.end(asBuffer(chunk), encoding as BufferEncoding, callback);
  }

  override _read(): void {
    if (this.connecting || this.#handle === null) {
      this.#wantRead = true;
      return;
    }
    this.#wantRead = true;
    this.#handle.readStart();
  }

  #writeChunks(chunks: Buffer | Buffer[], callback: WriteCallback): void {
    if (this.connecting || this.#handle === null) {
      this.#deferredWrite = { chunks, callback };
      return;
    }
    const bytes = byteLength(chunks);
    const status = this.#handle.write(chunks);
    if (status < 0) {
      callback(systemError(status, 'write'));
      return;
    }
    this.#bytesDispatched += bytes;
    this.#touch();
    if (status === 1) callback();
    else this.#pendingWrite = callback;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    this.#writeChunks(chunk, callback);
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: WriteCallback,
  ): void {
    this.#writeChunks(
      chunks.map((entry) => entry.chunk),
      callback,
    );
  }

  override _final(callback: WriteCallback): void {
    if (this.connecting) {
      this.#deferredFinal = callback;
      return;
    }
    if (this.#handle === null) {
      callback();
      return;
    }
    // A shutdown that completes at once still calls back on a later tick,
    // as libuv's does, so that an error raised in the same tick (such as a
    // write after end) wins over 'finish'.
    const status = this.#handle.shutdown();
    if (status === 1 || status === ENOTCONN) process.nextTick(callback);
    else if (status === 0) this.#pendingShutdown = callback;
    else callback(systemError(status, 'shutdown'));
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.connecting = false;
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#hadError = error !== null && error !== undefined;
    // As in net.Socket, the local address is forgotten at destroy and the
    // remote one is kept.
    this.#forgetLocalAddress();

    const deferred = this.#deferredWrite;
    this.#deferredWrite = null;
    if (deferred) deferred.callback(destroyedError());
    const final = this.#deferredFinal;
    this.#deferredFinal = null;
    if (final) final(destroyedError());

    if (this.#handle !== null && !this.#nativeClosed) {
      debug('destroy %s:%d%s', this.#host, this.#port, this.#reset ? ' with reset' : '');
      // 'close' follows the native Close event; pending writes complete
      // with an error before it.
      this.#handle.close(this.#reset);
      callback(error);
      return;
    }
    callback(error);
    process.nextTick(() => this.#emitClose());
  }

  /**
   * Resolves with per-path statistics: for each subflow (Linux) or path of
   * the Network framework (macOS), its addresses, interface, bytes sent and
   * received, round-trip time and backup state, and the connection's totals.
   */
  getPaths(): Promise<PathReport> {
    if (this.#handle === null || this.connecting || this.destroyed)
      return Promise.reject(stateError('ERR_SOCKET_CLOSED', 'The socket is not connected'));
    const result = this.#handle.getPaths();
    if (typeof result === 'number') return Promise.reject(systemError(result, 'getsockopt'));
    if (result !== undefined) {
      this.#refreshInfo();
      return Promise.resolve(result);
    }
    return new Promise((resolve, reject) => this.#pathRequests.push({ resolve, reject }));
  }

  /** Closes the connection with a TCP RST instead of a FIN. */
  resetAndDestroy(): this {
    this.#reset = true;
    this.destroy();
    return this;
  }

  /**
   * Emits 'timeout' after `ms` of inactivity; 0 turns it off. The socket
   * stays open: the listener decides what to do.
   */
  setTimeout(ms: number, callback?: () => void): this {
    validateMsecs(ms, 'msecs');
    if (callback !== undefined && typeof callback !== 'function')
      throw invalidArgType('callback', 'function', callback);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timeout = ms;
    if (ms === 0) {
      if (callback) this.removeListener('timeout', callback);
      return this;
    }
    if (callback) this.once('timeout', callback);
    if (this.destroyed) return this;
    this.#timer = setTimeout(
      () => {
        debug('idle for %d ms', this.#timeout);
        this.emit('timeout');
      },
      Math.min(ms, TIMEOUT_MAX),
    );
    this.#timer.unref();
    return this;
  }

  /** Turns Nagle's algorithm off (true, the default) or on. */
  setNoDelay(noDelay = true): this {
    this.#noDelay = Boolean(noDelay);
    if (this.#handle !== null && !this.connecting) {
      const status = this.#handle.setNoDelay(this.#noDelay);
      if (status < 0)
        debug('setNoDelay(%s) not applied: %s', noDelay, systemError(status, 'setsockopt').code);
    }
    return this;
  }

  /** Turns TCP keep-alive on or off; initialDelay is in milliseconds. */
  setKeepAlive(enable = false, initialDelay = 0): this {
    // Number() throws a TypeError without a code for a symbol.
    if (typeof initialDelay === 'symbol')
      throw invalidArgType('initialDelay', 'number', initialDelay);
    this.#keepAlive = Boolean(enable);
    this.#keepAliveDelay = keepAliveSeconds(Math.max(0, Number(initialDelay) || 0));
    if (this.#handle !== null && !this.connecting) {
      const status = this.#handle.setKeepAlive(this.#keepAlive, this.#keepAliveDelay);
      if (status < 0)
        debug('setKeepAlive(%s) not applied: %s', enable, systemError(status, 'setsockopt').code);
    }
    return this;
  }

  /** Lets the socket keep the process alive again. */
  ref(): this {
    this.#refed = true;
    this.#handle?.ref();
    return this;
  }

  /** Lets the process exit while this socket is open. */
  unref(): this {
    this.#refed = false;
    this.#handle?.unref();
    return this;
  }

  /** Local address, family and port, or {} before connect. */
  address(): AddressInfo | Record<string, never> {
    const info = this.#currentInfo();
    if (!info || info.localAddress === undefined) return {};
    return {
      address: info.localAddress,
      family: info.localFamily ?? 'IPv4',
      port: info.localPort ?? 0,
    };
  }

  get remoteAddress(): string | undefined {
    return this.#currentInfo()?.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.#currentInfo()?.remotePort;
  }

  get remoteFamily(): string | undefined {
    return this.#currentInfo()?.remoteFamily;
  }

  get localAddress(): string | undefined {
    return this.#currentInfo()?.localAddress;
  }

  get localPort(): number | undefined {
    return this.#currentInfo()?.localPort;
  }

  get localFamily(): string | undefined {
    return this.#currentInfo()?.localFamily;
  }

  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** Bytes handed to the connection plus bytes still buffered, as in net.Socket. */
  get bytesWritten(): number {
    let bytes = this.#bytesDispatched;
    if (this.destroyed) return bytes;
    if (this.#deferredWrite) bytes += byteLength(this.#deferredWrite.chunks);
    // writableBuffer is public in Node's streams but missing from the types.
    const buffered = (this as unknown as { writableBuffer: BufferedChunk[] }).writableBuffer;
    for (const entry of buffered)
      bytes +=
        typeof entry.chunk === 'string'
          ? Buffer.byteLength(entry.chunk, entry.encoding)
          : entry.chunk.length;
    return bytes;
  }

  /** True until the connection is established. */
  get pending(): boolean {
    return this.#handle === null || this.connecting;
  }

  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  /** The multipath service that connect() requested. */
  get multipath(): MultipathService {
    return this.#multipath;
  }

  /**
   * Whether the connection uses MPTCP: true or false where the platform can
   * tell, null where it cannot (macOS with one path) or before connect.
   */
  get mptcp(): boolean | null {
    return this.#currentInfo()?.mptcp ?? null;
  }

  /** True when the kernel refused an MPTCP socket and plain TCP was used. */
  get mptcpFallback(): boolean {
    return this.#currentInfo()?.fallback ?? false;
  }

  /**
   * The TLS version that the platform's TLS negotiated, such as 'TLSv1.3';
   * null without it (Node's TLS runs on an MptcpTlsSocket) or before
   * 'connect'.
   */
  get tlsProtocol(): string | null {
    return this.#currentInfo()?.tlsProtocol ?? null;
  }

  /**
   * The ALPN protocol that the platform's TLS negotiated, false when it
   * negotiated none, and null without platform TLS or before 'connect', as
   * TLSSocket.alpnProtocol reports.
   */
  get alpnProtocol(): string | false | null {
    const info = this.#currentInfo();
    if (info?.tlsProtocol === undefined) return null;
    return info.tlsAlpn ?? false;
  }
}
