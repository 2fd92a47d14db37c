// TLS from Apple's Network framework (tls.implementation 'network-framework'):
// the options it rejects before any native call, on every backend, and on the
// macOS backend the handshake, data, negotiated results, SNI, and certificate
// and version failures with Node's TLS codes.
//
// The connection tests run on the emulated macOS backend (npm run
// test:emulated), whose TLS trusts OpenSSL's default store. They make a test
// CA the whole store by pointing SSL_CERT_FILE at it in this process: the
// emulation reads the variable at each connect (one OpenSSL context per
// connection), and Node's own TLS, with its bundled CA list, ignores it. A
// Mac trusts its keychain instead, so there they are skipped.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';

import { createCertificate, type KeyAndCertificate } from '../lib/certificate';
import { connect, MptcpSocket, startTls, type SystemError } from '../lib/index';
import type { MptcpNetworkTlsSocket, NetworkTlsOptions } from '../lib/tls';
import { backendName, collect, sha256, skipWithReason, writeAll } from './helpers';
import {
  closeEvent,
  listenOnLoopback,
  testCertificates,
  type ListeningServer,
} from './tls-fixtures';

/** Opens a connection with the framework's TLS. */
function connectNetworkTls(
  port: number,
  host: string,
  tlsOptions: Omit<NetworkTlsOptions, 'implementation'> = {},
): MptcpNetworkTlsSocket {
  return connect({
    host,
    port,
    family: 4,
    tls: { implementation: 'network-framework' as const, ...tlsOptions },
  }) as unknown as MptcpNetworkTlsSocket;
}

/** Starts a TLS server with `certificate`, the test server certificate by default. */
async function startTlsServer(
  handler: (socket: tls.TLSSocket) => void,
  options: tls.TlsOptions = {},
): Promise<ListeningServer<tls.Server>> {
  const { server } = testCertificates();
  const tlsServer = tls.createServer({ key: server.key, cert: server.cert, ...options }, handler);
  // Clients that reject the certificate end the handshake with an alert.
  tlsServer.on('tlsClientError', () => {});
  return listenOnLoopback(tlsServer);
}

/** Echoes everything and ends when the client ends. */
function echo(socket: tls.TLSSocket): void {
  socket.on('error', () => {});
  socket.pipe(socket);
}

/**
 * Resolves with the client's error and 'close' argument once the client
 * and the server's side of its connection, the last one accepted, have
 * closed.
 */
async function expectFailure(
  client: MptcpSocket,
  server: ListeningServer<tls.Server>,
): Promise<{ error: SystemError; hadError: unknown }> {
  const closed = closeEvent(client);
  const [error] = (await once(client, 'error')) as [SystemError];
  const hadError = await closed;
  const connection = server.connections[server.connections.length - 1];
  assert.ok(connection !== undefined, 'the server accepted no connection');
  if (!connection.destroyed) await once(connection, 'close');
  return { error, hadError };
}

/** A server whose certificate the test CA does not vouch for, and what each failure reports. */
interface UntrustedCase {
  title: string;
  /** The server's key and certificate chain. */
  server: () => KeyAndCertificate;
  code: string;
  networkCode: number;
  /** What Node's TLS reports for the same server. */
  nodeCode: string;
}

const UNTRUSTED_CASES: UntrustedCase[] = [
  {
    title: 'an unknown CA',
    server: () => testCertificates().otherServer,
    code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    networkCode: -9813,
    nodeCode: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  },
  {
    title: 'an untrusted root in the chain',
    server: () => {
      const { otherServer, otherCa } = testCertificates();
      return { key: otherServer.key, cert: otherServer.cert + otherCa.cert };
    },
    code: 'SELF_SIGNED_CERT_IN_CHAIN',
    networkCode: -9812,
    nodeCode: 'SELF_SIGNED_CERT_IN_CHAIN',
  },
  {
    title: 'an expired certificate',
    // Valid from an hour ago until about 15 minutes ago.
    server: () =>
      createCertificate({
        commonName: 'localhost',
        altNames: ['localhost', '127.0.0.1'],
        issuer: testCertificates().ca,
        days: -0.01,
      }),
    code: 'CERT_HAS_EXPIRED',
    networkCode: -9814,
    nodeCode: 'CERT_HAS_EXPIRED',
  },
  {
    // An OSStatus cannot tell a self-signed certificate from an unknown CA.
    title: 'a self-signed certificate',
    server: () => testCertificates().selfSigned,
    code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    networkCode: -9813,
    nodeCode: 'DEPTH_ZERO_SELF_SIGNED_CERT',
  },
];

describe('network-framework TLS', () => {
  describe('option checks', () => {
    it('rejects the implementation without the framework', function () {
      if (backendName === 'darwin') skipWithReason(this, 'the backend is the Network framework');
      for (const tlsOptions of [{}, { ca: 'not checked first' }]) {
        assert.throws(
          () =>
            connect({
              host: '127.0.0.1',
              port: 9,
              tls: { implementation: 'network-framework', ...tlsOptions },
            }),
          {
            code: 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM',
            message: /needs the macOS backend, and this is the linux backend.*'node'/,
          },
        );
      }
    });

    it('rejects startTls with the implementation', function () {
      const socket = new MptcpSocket();
      assert.throws(() => startTls(socket, { implementation: 'network-framework' }), {
        code: 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM',
        message: /'network-framework'/,
      });
      socket.destroy();
    });

    describe('on the Network framework backend', () => {
      let server: ListeningServer<tls.Server>;

      before(async function () {
        if (backendName !== 'darwin')
          skipWithReason(this, 'needs the macOS backend; run npm run test:emulated');
        server = await startTlsServer(echo);
      });

      after(async () => {
        await server?.close();
      });

      afterEach(async () => {
        // Give a connection that should not exist the time to arrive.
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(server.connections.length, 0, 'a rejected connect reached the server');
      });

      const unsupported: Array<[string, Record<string, unknown>]> = [
        ['ca', { ca: 'PEM' }],
        ['cert', { cert: 'PEM' }],
        ['key', { key: 'PEM' }],
        ['checkServerIdentity', { checkServerIdentity: () => undefined }],
        ['rejectUnauthorized', { rejectUnauthorized: false }],
        ['maxVersion', { maxVersion: 'TLSv1.2' }],
        ['host', { host: 'example.org' }],
        ['session', { session: Buffer.alloc(8) }],
      ];
      for (const [name, tlsOptions] of unsupported) {
        it(`rejects tls.${name}`, () => {
          assert.throws(
            () =>
              connect({
                host: '127.0.0.1',
                port: server.port,
                tls: { implementation: 'network-framework', ...tlsOptions },
              }),
            {
              code: 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM',
              message: new RegExp(`^tls\\.${name} is not supported .*'node'`),
            },
          );
        });
      }

      it('keeps the private key out of the message', () => {
        const { server: certificate } = testCertificates();
        assert.throws(
          () =>
            connect({
              host: '127.0.0.1',
              port: server.port,
              tls: { implementation: 'network-framework', key: certificate.key },
            }),
          (error: Error) => !error.message.includes('PRIVATE KEY'),
        );
      });

      const invalid: Array<[string, Record<string, unknown>, string]> = [
        ['minVersion TLSv1.1', { minVersion: 'TLSv1.1' }, 'ERR_INVALID_ARG_VALUE'],
        ['a numeric servername', { servername: 42 }, 'ERR_INVALID_ARG_TYPE'],
        ['an IP servername', { servername: '127.0.0.1' }, 'ERR_INVALID_ARG_VALUE'],
        ['an empty servername', { servername: '' }, 'ERR_INVALID_ARG_VALUE'],
        ['an empty ALPN name', { ALPNProtocols: [''] }, 'ERR_INVALID_ARG_VALUE'],
        ['a 256-byte ALPN name', { ALPNProtocols: ['x'.repeat(256)] }, 'ERR_INVALID_ARG_VALUE'],
        ['a numeric ALPN name', { ALPNProtocols: [1] }, 'ERR_INVALID_ARG_TYPE'],
        [
          'a truncated ALPN buffer',
          { ALPNProtocols: Buffer.from([5, 0x68]) },
          'ERR_INVALID_ARG_VALUE',
        ],
        ['a string rejectUnauthorized', { rejectUnauthorized: 'no' }, 'ERR_INVALID_ARG_TYPE'],
      ];
      for (const [title, tlsOptions, code] of invalid) {
        it(`rejects ${title}`, () => {
          assert.throws(
            () =>
              connect({
                host: '127.0.0.1',
                port: server.port,
                tls: { implementation: 'network-framework', ...tlsOptions },
              }),
            { code },
          );
        });
      }
    });
  });

  describe('connections', () => {
    let server: ListeningServer<tls.Server> | undefined;
    let storeDir = '';
    let savedCertFile: string | undefined;

    before(function () {
      if (backendName !== 'darwin')
        skipWithReason(this, 'needs the macOS backend; run npm run test:emulated');
      if (process.platform === 'darwin')
        skipWithReason(this, 'a Mac trusts its keychain, not a test CA in SSL_CERT_FILE');
      storeDir = mkdtempSync(path.join(tmpdir(), 'nw-mptcp-store-'));
      const storeFile = path.join(storeDir, 'ca.pem');
      writeFileSync(storeFile, testCertificates().ca.cert);
      savedCertFile = process.env.SSL_CERT_FILE;
      process.env.SSL_CERT_FILE = storeFile;
    });

    after(() => {
      if (storeDir === '') return;
      if (savedCertFile === undefined) delete process.env.SSL_CERT_FILE;
      else process.env.SSL_CERT_FILE = savedCertFile;
      rmSync(storeDir, { recursive: true, force: true });
    });

    afterEach(async () => {
      await server?.close();
      server = undefined;
    });

    it('exchanges data both ways after the handshake', async () => {
      server = await startTlsServer(echo);
      const client = connectNetworkTls(server.port, 'localhost');
      assert.ok(client instanceof MptcpSocket);
      assert.ok(!(client instanceof tls.TLSSocket));
      const events: string[] = [];
      for (const name of ['connect', 'ready', 'secureConnect'])
        client.on(name, () => events.push(name));
      assert.equal(client.tlsProtocol, null);

      const data = Buffer.alloc(1024 * 1024, 'network framework TLS ');
      const received = collect(client);
      await writeAll(client, data, 100_000);
      client.end();
      const echoed = await received;

      assert.deepEqual(events, ['connect', 'ready', 'secureConnect']);
      assert.equal(echoed.length, data.length);
      assert.equal(sha256(echoed), sha256(data));
      assert.equal(client.tlsProtocol, 'TLSv1.3');
      assert.equal(client.getProtocol(), 'TLSv1.3');
      assert.equal(client.alpnProtocol, false);
      assert.equal(client.bytesRead, data.length);
    });

    it('runs the connect listener after the handshake', async () => {
      server = await startTlsServer(echo);
      const { port } = server;
      let protocolInListener: string | null = null;
      const client = connect(
        { host: 'localhost', family: 4, port, tls: { implementation: 'network-framework' } },
        () => {
          protocolInListener = (client as MptcpSocket).tlsProtocol;
        },
      );
      await once(client, 'connect');
      assert.equal(protocolInListener, 'TLSv1.3');
      client.destroy();
      await once(client, 'close');
    });

    it('negotiates ALPN and sends the server name', async () => {
      const seen: Array<{ servername: string | false; alpn: string | false | null }> = [];
      server = await startTlsServer(
        (socket) => {
          const tlsSocket = socket as tls.TLSSocket & { servername: string | false };
          seen.push({ servername: tlsSocket.servername, alpn: socket.alpnProtocol });
          socket.on('error', () => {});
          socket.end();
        },
        { ALPNProtocols: ['http/1.1'] },
      );
      const cases: Array<[string, Omit<NetworkTlsOptions, 'implementation'>]> = [
        ['localhost', { ALPNProtocols: ['h2', 'http/1.1'] }],
        ['127.0.0.1', { servername: 'localhost', ALPNProtocols: Buffer.from('\x08http/1.1') }],
        ['127.0.0.1', {}],
      ];
      const results: Array<string | false | null> = [];
      for (const [host, tlsOptions] of cases) {
        const client = connectNetworkTls(server.port, host, tlsOptions);
        await once(client, 'connect');
        results.push(client.alpnProtocol);
        client.resume();
        await once(client, 'close');
      }
      assert.deepEqual(results, ['http/1.1', 'http/1.1', false]);
      // An IP address host sends no SNI (RFC 6066, 3) and is checked against
      // the certificate's IP addresses.
      assert.deepEqual(seen, [
        { servername: 'localhost', alpn: 'http/1.1' },
        { servername: 'localhost', alpn: 'http/1.1' },
        { servername: false, alpn: false },
      ]);
    });

    it('honours minVersion', async () => {
      server = await startTlsServer(echo, { maxVersion: 'TLSv1.2' });
      const client = connectNetworkTls(server.port, 'localhost', { minVersion: 'TLSv1.2' });
      await once(client, 'connect');
      assert.equal(client.tlsProtocol, 'TLSv1.2');
      client.destroy();
      await once(client, 'close');

      const strict = connectNetworkTls(server.port, 'localhost', { minVersion: 'TLSv1.3' });
      const { error } = await expectFailure(strict, server);
      // Node's TLS reports the same code for the same cause.
      assert.equal(error.code, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
      assert.equal(error.networkDomain, 'tls');
      assert.equal(error.networkCode, -9836);
    });

    for (const example of UNTRUSTED_CASES) {
      it(`fails on ${example.title} with Node's code`, async () => {
        const certificate = example.server();
        server = await startTlsServer(echo, { key: certificate.key, cert: certificate.cert });
        const client = connectNetworkTls(server.port, 'localhost');
        const { error, hadError } = await expectFailure(client, server);
        assert.equal(error.code, example.code);
        assert.equal(error.networkDomain, 'tls');
        assert.equal(error.networkCode, example.networkCode);
        assert.equal(hadError, true);
        assert.equal(client.tlsProtocol, null);

        // Node's TLS, trusting the same CA, for the same server.
        const nodeClient = tls.connect({
          host: '127.0.0.1',
          port: server.port,
          servername: 'localhost',
          ca: testCertificates().ca.cert,
        });
        const [nodeError] = (await once(nodeClient, 'error')) as [SystemError];
        assert.equal(nodeError.code, example.nodeCode);
      });
    }

    it('fails on a host name the certificate does not list', async () => {
      server = await startTlsServer(echo);
      const client = connectNetworkTls(server.port, '127.0.0.1', { servername: 'example.org' });
      const { error, hadError } = await expectFailure(client, server);
      assert.equal(error.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
      assert.match(error.message, /Host: example\.org\./);
      assert.equal(error.networkDomain, 'tls');
      assert.equal(error.networkCode, -9843);
      assert.equal(hadError, true);
    });
  });
});
