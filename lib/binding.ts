// Loads the native addon and types every call it offers. The contract of
// each call is stated here; native/addon.cc implements it.

import bindings from 'bindings';

/** Event codes passed to a connection's event callback (backend.h). */
export const enum NativeEvent {
  Connect = 1,
  Data = 2,
  Eof = 3,
  Write = 4,
  Shutdown = 5,
  Error = 6,
  Waiting = 7,
  Path = 8,
  Close = 9,
  Paths = 10,
  Viability = 11,
  BetterPath = 12,
}

/** Error details from the backend; JavaScript builds the Node error. */
export interface NativeError {
  /** Negative errno in the local numbering, or a libuv UV_EAI_* code. */
  errno: number;
  syscall: string;
  /** 0 none, 1 POSIX, 2 DNS, 3 TLS. */
  domain: number;
  /** The platform's own code in that domain. */
  raw: number;
  /** The address and port the failed operation used, when known. */
  address?: string;
  port?: number;
  family?: string;
}

export interface NativeInfo {
  localAddress?: string;
  localPort?: number;
  localFamily?: string;
  remoteAddress?: string;
  remotePort?: number;
  remoteFamily?: string;
  /** true or false when the platform can tell, null when it cannot. */
  mptcp: boolean | null;
  /** true when the kernel refused an MPTCP socket and TCP was used. */
  fallback: boolean;
  /** Platform TLS only: the negotiated version, such as 'TLSv1.3'. */
  tlsProtocol?: string;
  /** Platform TLS only: the negotiated ALPN protocol. */
  tlsAlpn?: string;
}

/** Statistics of one path: a subflow on Linux, a path of the data transfer report on macOS. */
export interface NativePath {
  /** Subflow id on Linux, index of the path on macOS. */
  id: number;
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
  /** Name of the network interface, when known. */
  interface?: string;
  /** Bytes sent on this path, retransmissions included. */
  bytesSent: number;
  bytesReceived: number;
  /** Smoothed round-trip time in milliseconds, when known. */
  rtt?: number;
  /** Whether the path is a backup path; null when the platform cannot tell. */
  backup: boolean | null;
}

export interface NativePathReport {
  /** Connection totals at the MPTCP level; 0 where the platform has none. */
  bytesSent: number;
  bytesReceived: number;
  paths: NativePath[];
}

export interface NativeConnectOptions {
  host: string;
  /** Address literals to try in order; used when the backend does not resolve names. */
  addresses: string[];
  port: number;
  /** 0 disabled, 1 handover, 2 interactive, 3 aggregate. */
  service: number;
  family: number;
  localAddress?: string;
  localPort: number;
  noDelay: boolean;
  keepAlive: boolean;
  /** Seconds before the first keep-alive probe; 0 keeps the system's value. */
  keepAliveDelay: number;
  waitForConnectivity: boolean;
  /** TLS run by the platform (the Network framework); Linux refuses it. */
  tls?: boolean;
  tlsServerName?: string;
  tlsAlpn?: string[];
  /** Minimum TLS version: 12 or 13; 0 for the platform's default. */
  tlsMinVersion?: number;
}

/**
 * Event callback of a connection. `arg` is a Buffer for Data, a NativeError
 * for Error and Waiting, a NativeError or null for Write and Shutdown, a
 * NativePathReport for Paths, a boolean for Viability and BetterPath, and
 * undefined otherwise. Close is the last call.
 */
export type NativeEventCallback = (type: NativeEvent, arg?: unknown) => void;

export interface NativeConnection {
  /** Starts connecting; returns 0, or a negative errno when nothing started. */
  connect(options: NativeConnectOptions): number;
  readStart(): void;
  readStop(): void;
  /**
   * Writes the chunks in order. Returns 1 when the stack took every byte, 0
   * when a Write event follows (the chunks are kept alive until then), or a
   * negative errno.
   */
  write(chunks: Uint8Array | Uint8Array[]): number;
  /** Half-closes after queued writes: 1 done, 0 a Shutdown event follows, or a negative errno. */
  shutdown(): number;
  /** Closes, with RST when reset is true. A Close event follows once. */
  close(reset?: boolean): void;
  /**
   * MPTCP and TLS state, and the addresses unless withAddresses is false;
   * null when no connection exists.
   */
  getInfo(withAddresses?: boolean): NativeInfo | null;
  /**
   * Per-path statistics: the report at once, undefined when a Paths event
   * brings it, or a negative errno.
   */
  getPaths(): NativePathReport | undefined | number;
  /** Both return 0 or a negative errno; a platform may not support them after start. */
  setNoDelay(enable: boolean): number;
  setKeepAlive(enable: boolean, delaySeconds: number): number;
  ref(): void;
  unref(): void;
}

export interface NativeBinding {
  Connection: new (callback: NativeEventCallback) => NativeConnection;
  /** Creates a listening socket; fd is negative errno on failure. */
  listen(
    address: string | null,
    port: number,
    family: number,
    backlog: number,
    ipv6Only: boolean,
  ): { fd: number; fallback: boolean };
  /** 1 when the socket uses MPTCP, 0 when not, or a negative errno. */
  isMptcp(fd: number): number;
  /** The compiled-in backend: the Network framework or kernel MPTCP sockets. */
  backend: 'darwin' | 'linux';
  /** True when the backend resolves host names itself (macOS). */
  resolvesNames: boolean;
}

/**
 * The addon to load. NW_MPTCP_BACKEND=emulated selects the test build of
 * the macOS backend on the Network framework emulation (Linux only; see
 * test/emulation/README.md).
 */
const ADDON_NAME = process.env.NW_MPTCP_BACKEND === 'emulated' ? 'nw_mptcp_emulated' : 'nw_mptcp';

function load(): NativeBinding {
  try {
    return bindings(ADDON_NAME) as NativeBinding;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `nw-mptcp: the native addon ${ADDON_NAME} for ${process.platform}-${process.arch} ` +
        `(Node ${process.versions.node}, ABI ${process.versions.modules}) ` +
        `could not be loaded. Run "npm rebuild nw-mptcp" to build it.\n${reason}`,
      { cause: error },
    );
  }
}

export const binding: NativeBinding = load();
