// The wire protocol between the benchmark clients and the peer. The peer
// (bench/c/server.c) and the C client use the same values from
// bench/c/protocol.h, which also describes each workload.

export const CMD_UPLOAD = 0x55; // 'U'
export const CMD_DOWNLOAD = 0x44; // 'D'
export const CMD_ECHO = 0x45; // 'E'
export const CMD_CONNECT = 0x43; // 'C'
export const UPLOAD_ACK = 0x4b; // 'K'

/** 'U', then the byte count as a little-endian u64. */
export function uploadHeader(bytes: number): Buffer {
  const header = Buffer.alloc(9);
  header[0] = CMD_UPLOAD;
  header.writeBigUInt64LE(BigInt(bytes), 1);
  return header;
}

/** 'D', the byte count as a little-endian u64, and the peer's send size as a u32. */
export function downloadHeader(bytes: number, sendSize: number): Buffer {
  const header = Buffer.alloc(13);
  header[0] = CMD_DOWNLOAD;
  header.writeBigUInt64LE(BigInt(bytes), 1);
  header.writeUInt32LE(sendSize, 9);
  return header;
}
