// X.509 certificates for local TLS servers, built with node:crypto alone so
// that `nw-mptcp check --local` and the tests need no openssl binary.
// Node can sign but has no API to build a certificate, so this file encodes
// the DER of RFC 5280 itself: ECDSA P-256 keys, SHA-256 signatures, a CA and
// leaf certificates with subjectAltName entries for names and IP addresses.

import {
  X509Certificate,
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { isIP } from 'node:net';

/** A private key and its certificate, both PEM-encoded. */
export interface KeyAndCertificate {
  /** PKCS #8 private key. */
  key: string;
  cert: string;
}

export interface CertificateOptions {
  /** Subject common name (CN). */
  commonName: string;
  /** Makes a CA certificate (CA:TRUE, keyCertSign) instead of a server certificate. */
  ca?: boolean;
  /** DNS names and IP addresses for subjectAltName (server certificates only). */
  altNames?: string[];
  /**
   * A CA made by createCertificate that signs the certificate; the
   * certificate signs itself when omitted.
   */
  issuer?: KeyAndCertificate;
  /** Validity in days from now (default 30). */
  days?: number;
}

const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extendedKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
};

/** Certificates start one hour in the past to tolerate clock differences. */
const CLOCK_SKEW_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

// DER tag-length-value helpers (X.690).

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

const sequence = (...items: Buffer[]) => tlv(0x30, ...items);
const set = (...items: Buffer[]) => tlv(0x31, ...items);
const octetString = (data: Buffer) => tlv(0x04, data);
const utf8String = (text: string) => tlv(0x0c, Buffer.from(text, 'utf8'));
/** A context-specific constructed tag, [n] EXPLICIT. */
const explicit = (n: number, item: Buffer) => tlv(0xa0 | n, item);

/** BIT STRING with `unusedBits` zero bits at the end of the last byte. */
function bitString(data: Buffer, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.from([unusedBits]), data);
}

/** INTEGER from unsigned big-endian bytes, with a leading 0 when the top bit is set. */
function unsignedInteger(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return tlv(0x02, trimmed[0] & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function objectIdentifier(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const bytes = [40 * arcs[0] + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const base128 = [arc & 0x7f];
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128))
      base128.unshift(0x80 | (rest & 0x7f));
    bytes.push(...base128);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime until 2049, GeneralizedTime from 2050 (RFC 5280, 4.1.2.5). */
function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  if (date.getUTCFullYear() < 2050) return tlv(0x17, Buffer.from(iso.slice(2), 'ascii'));
  return tlv(0x18, Buffer.from(iso, 'ascii'));
}

function name(commonName: string): Buffer {
  return sequence(set(sequence(objectIdentifier(OID.commonName), utf8String(commonName))));
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  const parts = [objectIdentifier(oid)];
  if (critical) parts.push(tlv(0x01, Buffer.from([0xff])));
  parts.push(octetString(value));
  return sequence(...parts);
}

/** GeneralName: dNSName [2] for names, iPAddress [7] for IPv4 and IPv6 literals. */
function generalName(altName: string): Buffer {
  const family = isIP(altName);
  if (family === 4) return tlv(0x87, Buffer.from(altName.split('.').map(Number)));
  if (family === 6) return tlv(0x87, ipv6Bytes(altName));
  return tlv(0x82, Buffer.from(altName, 'ascii'));
}

function ipv6Bytes(address: string): Buffer {
  let text = address;
  // An embedded IPv4 tail (::ffff:192.0.2.1) becomes two hexadecimal groups.
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number);
    text =
      text.slice(0, dotted.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = new Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const groups = tail === undefined ? headGroups : [...headGroups, ...zeros, ...tailGroups];
  const bytes = Buffer.alloc(16);
  groups.forEach((group, index) => bytes.writeUInt16BE(parseInt(group, 16), index * 2));
  return bytes;
}

function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * Key identifier: SHA-1 of the DER SubjectPublicKeyInfo. RFC 5280 (4.2.1.2)
 * accepts any method that gives unique values.
 */
function keyIdentifier(spki: Buffer): Buffer {
  return createHash('sha1').update(spki).digest();
}

/** Builds the DER issuer name from an issuer certificate made by createCertificate (CN only). */
function issuerName(issuer: KeyAndCertificate): Buffer {
  const subject = new X509Certificate(issuer.cert).subject;
  const commonName = /^CN=(.*)$/m.exec(subject)?.[1];
  if (commonName === undefined)
    throw new Error(`The issuer certificate has no common name; its subject is "${subject}"`);
  return name(commonName);
}

/**
 * Creates a key pair and a certificate: a CA, or a server certificate for
 * `altNames`. The certificate is signed by `issuer`, or by its own key when
 * no issuer is given.
 */
export function createCertificate(options: CertificateOptions): KeyAndCertificate {
  const isCa = options.ca === true;
  const days = options.days ?? 30;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const subjectKeyId = keyIdentifier(spki);

  let signingKey: KeyObject | string = privateKey;
  let issuer = name(options.commonName);
  let authorityKeyId = subjectKeyId;
  if (options.issuer !== undefined) {
    signingKey = options.issuer.key;
    issuer = issuerName(options.issuer);
    const issuerSpki = createPublicKey(options.issuer.cert).export({ type: 'spki', format: 'der' });
    authorityKeyId = keyIdentifier(issuerSpki);
  }

  const extensions = [
    extension(
      OID.basicConstraints,
      true,
      isCa ? sequence(tlv(0x01, Buffer.from([0xff]))) : sequence(),
    ),
    // keyUsage bits: digitalSignature (0), keyCertSign (5), cRLSign (6).
    extension(
      OID.keyUsage,
      true,
      isCa ? bitString(Buffer.from([0x86]), 1) : bitString(Buffer.from([0x80]), 7),
    ),
    extension(OID.subjectKeyIdentifier, false, octetString(subjectKeyId)),
    extension(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, authorityKeyId))),
  ];
  if (!isCa) {
    extensions.push(
      extension(OID.extendedKeyUsage, false, sequence(objectIdentifier(OID.serverAuth))),
    );
    const altNames = options.altNames ?? [];
    extensions.push(extension(OID.subjectAltName, false, sequence(...altNames.map(generalName))));
  }

  const now = Date.now();
  const serial = randomBytes(16);
  serial[0] = (serial[0] & 0x7f) | 0x40;
  const signatureAlgorithm = sequence(objectIdentifier(OID.ecdsaWithSha256));
  const tbsCertificate = sequence(
    explicit(0, unsignedInteger(Buffer.from([2]))),
    unsignedInteger(serial),
    signatureAlgorithm,
    issuer,
    sequence(time(new Date(now - CLOCK_SKEW_MS)), time(new Date(now + days * DAY_MS))),
    name(options.commonName),
    spki,
    explicit(3, sequence(...extensions)),
  );
  // ECDSA signatures from node:crypto are DER-encoded Ecdsa-Sig-Value, as X.509 expects.
  const signature = sign('sha256', tbsCertificate, signingKey);
  const certificate = sequence(tbsCertificate, signatureAlgorithm, bitString(signature));

  return {
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    cert: toPem('CERTIFICATE', certificate),
  };
}

/** A CA and a server certificate it signed, for local TLS servers. */
export interface LocalCertificates {
  ca: KeyAndCertificate;
  server: KeyAndCertificate;
}

/**
 * Creates a CA named `caName` and a server certificate for localhost,
 * 127.0.0.1 and ::1, plus any `altNames`.
 */
export function createLocalCertificates(
  options: { caName?: string; altNames?: string[]; days?: number } = {},
): LocalCertificates {
  const ca = createCertificate({
    commonName: options.caName ?? 'nw-mptcp local CA',
    ca: true,
    days: options.days,
  });
  const server = createCertificate({
    commonName: 'localhost',
    altNames: ['localhost', '127.0.0.1', '::1', ...(options.altNames ?? [])],
    issuer: ca,
    days: options.days,
  });
  return { ca, server };
}
