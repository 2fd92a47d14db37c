// The X.509 certificates that lib/certificate.ts builds for local TLS
// servers, checked with node:crypto and, where installed, openssl.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { createCertificate, createLocalCertificates } from '../lib/certificate';
import { skipWithReason } from './helpers';

describe('certificate', () => {
  const { ca, server } = createLocalCertificates({
    caName: 'certificate test CA',
    altNames: ['example.test', '2001:db8::1', '::ffff:192.0.2.1'],
    days: 2,
  });
  const caCertificate = new X509Certificate(ca.cert);
  const serverCertificate = new X509Certificate(server.cert);

  it('makes a CA that signed the server certificate', () => {
    assert.equal(caCertificate.ca, true);
    assert.equal(serverCertificate.ca, false);
    assert.equal(caCertificate.subject, 'CN=certificate test CA');
    assert.equal(serverCertificate.issuer, 'CN=certificate test CA');
    assert.equal(serverCertificate.subject, 'CN=localhost');
    assert.equal(serverCertificate.checkIssued(caCertificate), true);
    assert.equal(serverCertificate.verify(caCertificate.publicKey), true);
    assert.equal(caCertificate.verify(caCertificate.publicKey), true);
  });

  it('covers the names and addresses asked for', () => {
    assert.equal(
      serverCertificate.subjectAltName,
      'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, ' +
        'DNS:example.test, IP Address:2001:DB8:0:0:0:0:0:1, IP Address:0:0:0:0:0:FFFF:C000:201',
    );
    assert.equal(serverCertificate.checkHost('localhost'), 'localhost');
    assert.equal(serverCertificate.checkHost('example.test'), 'example.test');
    assert.equal(serverCertificate.checkHost('other.test'), undefined);
    assert.equal(serverCertificate.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(serverCertificate.checkIP('::1'), '::1');
    assert.equal(serverCertificate.checkIP('2001:db8::1'), '2001:db8::1');
  });

  it('is valid from before now for the days asked for', () => {
    const now = Date.now();
    const validFrom = Date.parse(serverCertificate.validFrom);
    const validTo = Date.parse(serverCertificate.validTo);
    assert.ok(validFrom < now);
    assert.ok(validTo > now);
    const hours = (validTo - validFrom) / 3_600_000;
    assert.equal(Math.round(hours), 2 * 24 + 1);
  });

  it('makes a self-signed server certificate without an issuer', () => {
    const selfSigned = new X509Certificate(
      createCertificate({ commonName: 'self', altNames: ['localhost'] }).cert,
    );
    assert.equal(selfSigned.ca, false);
    assert.equal(selfSigned.issuer, 'CN=self');
    assert.equal(selfSigned.verify(selfSigned.publicKey), true);
  });

  it('passes openssl verify', function () {
    if (spawnSync('openssl', ['version']).status !== 0)
      skipWithReason(this, 'the openssl command is not installed');
    const directory = mkdtempSync(path.join(tmpdir(), 'nw-mptcp-certificate-'));
    try {
      writeFileSync(path.join(directory, 'ca.pem'), ca.cert);
      writeFileSync(path.join(directory, 'server.pem'), server.cert);
      const output = execFileSync(
        'openssl',
        ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', 'ca.pem', 'server.pem'],
        { cwd: directory, encoding: 'utf8' },
      );
      assert.equal(output.trim(), 'server.pem: OK');
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
