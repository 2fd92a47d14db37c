// TLS over MPTCP: connect({ tls }), startTls() before and after 'connect',
// certificate failures, closing in both directions, and the MPTCP state
// seen through the TLS socket.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import * as tls from 'node:tls';

import { connect, MptcpSocket, MptcpTlsSocket, startTls } from '../lib/index';
import { collect, expectedMptcpFlag, recordEvents } from './helpers';
import {
  closeEvent,
  listenOnLoopback,
  serverMptcpFlag,
  testCertificates,
  type ListeningServer,
} from './tls-fixtures';

type TlsServerHandler = (socket: tls.TLSSocket) => void;

/** Starts a TLS server with the test certificate; `options` can replace its key and cert. */
function startTlsServer(
  handler: TlsServerHandler,
  options: tls.TlsOptions = {},
): Promise<ListeningServer<tls.Server>> {
  const { server } = testCertificates();
  const tlsServer = tls.createServer({ key: server.key, cert: server.cert, ...options }, handler);
  // A client that rejects the certificate resets the handshake; that is
  // expected in the failure tests.
  tlsServer.on('tlsClientError', () => {});
  return listenOnLoopback(tlsServer);
}

/** Echoes every chunk prefixed with "echo:". */
const echo: TlsServerHandler = (socket) => {
  socket.on('data', (chunk: Buffer) => socket.write(`echo:${chunk.toString()}`));
  socket.on('error', () => {});
};

describe('tls', () => {
  let server: ListeningServer<tls.Server> | undefined;

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('connect({ tls }) exchanges data over MPTCP', async () => {
    server = await startTlsServer(echo);
    const { ca } = testCertificates();
    const client = connect({ host: '127.0.0.1', port: server.port, tls: { ca: ca.cert } });
    assert.ok(client instanceof MptcpTlsSocket);
    assert.ok(client instanceof tls.TLSSocket);
    assert.ok(client.mptcpSocket instanceof MptcpSocket);
    await once(client, 'secureConnect');

    assert.equal(client.authorized, true);
    assert.equal(client.encrypted, true);
    assert.equal(client.mptcp, expectedMptcpFlag);
    assert.equal(client.mptcp, client.mptcpSocket.mptcp);
    assert.equal(client.multipath, 'handover');
    assert.equal(client.mptcpFallback, false);
    assert.equal(client.remoteAddress, '127.0.0.1');
    assert.equal(client.remotePort, server.port);
    assert.equal(client.localAddress, '127.0.0.1');
    assert.equal(client.localPort, client.mptcpSocket.localPort);
    assert.deepEqual(client.address(), client.mptcpSocket.address());

    client.write('ping');
    const [reply] = (await once(client, 'data')) as [Buffer];
    assert.equal(reply.toString(), 'echo:ping');
    const clientClosed = closeEvent(client);
    client.end();
    await clientClosed;
    assert.deepEqual(server.mptcp, [serverMptcpFlag]);
  });

  it('runs the connect listener on secureConnect', async () => {
    server = await startTlsServer(echo);
    const { ca } = testCertificates();
    let listenerSawSecure = false;
    const client: MptcpTlsSocket = connect(
      { host: '127.0.0.1', port: server.port, tls: { ca: ca.cert } },
      () => {
        listenerSawSecure = client.authorized;
      },
    );
    await once(client, 'secureConnect');
    assert.equal(listenerSawSecure, true);
    client.destroy();
    await closeEvent(client);
  });

  it('sends the host name as SNI, and no SNI for an IP address', async () => {
    const servernames: Array<string | false> = [];
    server = await startTlsServer((socket) => {
      servernames.push((socket as tls.TLSSocket & { servername: string | false }).servername);
      socket.end();
    });
    const { ca } = testCertificates();
    const port = server.port;
    for (const host of ['localhost', '127.0.0.1']) {
      const client = connect({ host, family: 4, port, tls: { ca: ca.cert } });
      await once(client, 'secureConnect');
      assert.equal(client.authorized, true);
      client.resume();
      await closeEvent(client);
    }
    assert.deepEqual(servernames, ['localhost', false]);
  });

  it('negotiates ALPN and reuses a TLS session', async () => {
    server = await startTlsServer(
      (socket) => {
        socket.on('error', () => {});
        socket.end('done');
      },
      { ALPNProtocols: ['h2', 'http/1.1'] },
    );
    const { ca } = testCertificates();
    const options = { ca: ca.cert, ALPNProtocols: ['http/1.1'] };

    const first = connect({ host: '127.0.0.1', port: server.port, tls: options });
    // TLS 1.3 sends the session ticket after the handshake.
    const [session] = (await once(first, 'session')) as [Buffer];
    assert.equal(first.alpnProtocol, 'http/1.1');
    assert.equal(first.isSessionReused(), false);
    first.resume();
    await closeEvent(first);

    const second = connect({ host: '127.0.0.1', port: server.port, tls: { ...options, session } });
    await once(second, 'secureConnect');
    assert.equal(second.isSessionReused(), true);
    second.resume();
    await closeEvent(second);
  });

  it('server end brings TLS and MPTCP end and close', async () => {
    server = await startTlsServer((socket) => {
      socket.on('error', () => {});
      socket.end('bye');
    });
    const { ca } = testCertificates();
    const client = connect({ host: '127.0.0.1', port: server.port, tls: { ca: ca.cert } });
    const tlsEvents = recordEvents(client, ['end', 'error', 'close']);
    const mptcpEvents = recordEvents(client.mptcpSocket, ['end', 'error', 'close']);
    const received = await collect(client);

    assert.equal(received.toString(), 'bye');
    assert.deepEqual(await tlsEvents, ['end', 'close']);
    assert.deepEqual(await mptcpEvents, ['end', 'close']);
    assert.equal(client.destroyed, true);
    assert.equal(client.mptcpSocket.destroyed, true);
  });

  it('closes cleanly when the server ends at once', async () => {
    // TLS answers the server's end with close_notify, which the MptcpSocket
    // must still accept after the server's FIN.
    server = await startTlsServer((socket) => {
      socket.on('error', () => {});
      socket.end('bye');
    });
    const { ca } = testCertificates();
    const errors: Error[] = [];
    for (let i = 0; i < 20; i++) {
      const client =
        i % 2 === 0
          ? connect({ host: '127.0.0.1', port: server.port, tls: { ca: ca.cert } })
          : startTls(connect({ host: '127.0.0.1', port: server.port }), {
              ca: ca.cert,
              host: '127.0.0.1',
            });
      client.on('error', (error: Error) => errors.push(error));
      client.mptcpSocket.on('error', (error: Error) => errors.push(error));
      const tlsClosed = closeEvent(client);
      const mptcpClosed = closeEvent(client.mptcpSocket);
      client.resume();
      await Promise.all([tlsClosed, mptcpClosed]);
    }
    assert.deepEqual(
      errors.map((error) => (error as NodeJS.ErrnoException).code),
      [],
    );
  });

  it('destroy() closes the MPTCP connection', async () => {
    server = await startTlsServer(echo);
    const { ca } = testCertificates();
    const client = connect({ host: '127.0.0.1', port: server.port, tls: { ca: ca.cert } });
    await once(client, 'secureConnect');
    const raw = server.connections[0];
    const rawClosed = closeEvent(raw);
    raw.on('error', () => {});
    const tlsClosed = closeEvent(client);
    const mptcpClosed = closeEvent(client.mptcpSocket);

    client.destroy();
    await Promise.all([tlsClosed, mptcpClosed, rawClosed]);
    assert.equal(client.mptcpSocket.destroyed, true);
    assert.equal(raw.destroyed, true);
  });

  it('resetAndDestroy() resets the MPTCP connection', async () => {
    // The server's TLS socket reads the connection, so the reset shows there.
    let serverSocket: tls.TLSSocket | undefined;
    server = await startTlsServer((socket) => {
      serverSocket = socket;
      echo(socket);
    });
    const { ca } = testCertificates();
    const client = connect({ host: '127.0.0.1', port: server.port, tls: { ca: ca.cert } });
    client.write('ping');
    await once(client, 'data');
    assert.ok(serverSocket);
    const serverError = new Promise<NodeJS.ErrnoException>((resolve) =>
      serverSocket!.once('error', resolve),
    );
    const tlsClosed = closeEvent(client);
    const mptcpClosed = closeEvent(client.mptcpSocket);

    client.resetAndDestroy();
    await Promise.all([tlsClosed, mptcpClosed]);
    assert.equal((await serverError).code, 'ECONNRESET');
  });

  it('starts TLS on an MptcpSocket before connect', async () => {
    server = await startTlsServer(echo);
    const { ca } = testCertificates();
    const socket = connect({ host: '127.0.0.1', port: server.port });
    assert.equal(socket.connecting, true);
    const client = startTls(socket, { ca: ca.cert, host: '127.0.0.1' });
    assert.equal(client.mptcpSocket, socket);
    await once(client, 'secureConnect');
    assert.equal(client.authorized, true);
    assert.equal(client.mptcp, expectedMptcpFlag);

    client.write('before');
    const [reply] = (await once(client, 'data')) as [Buffer];
    assert.equal(reply.toString(), 'echo:before');
    const mptcpClosed = closeEvent(socket);
    client.destroy();
    await mptcpClosed;
  });

  it('starts TLS on an MptcpSocket after connect and a plain exchange', async () => {
    // A STARTTLS exchange: plain text first, then TLS on the same connection.
    const { server: certificate, ca } = testCertificates();
    const plain = net.createServer((socket) => {
      socket.once('data', (command: Buffer) => {
        assert.equal(command.toString(), 'STARTTLS\n');
        socket.write('GO\n', () => {
          const secure = new tls.TLSSocket(socket, {
            isServer: true,
            key: certificate.key,
            cert: certificate.cert,
          });
          secure.on('data', (chunk: Buffer) => secure.end(`secure:${chunk.toString()}`));
          secure.on('error', () => {});
        });
      });
    });
    const started = await listenOnLoopback(plain);
    try {
      const socket = connect({ host: '127.0.0.1', port: started.port });
      await once(socket, 'connect');
      socket.write('STARTTLS\n');
      const [go] = (await once(socket, 'data')) as [Buffer];
      assert.equal(go.toString(), 'GO\n');

      const client = startTls(socket, { ca: ca.cert, servername: 'localhost' });
      await once(client, 'secureConnect');
      assert.equal(client.authorized, true);
      client.write('hello');
      const reply = await collect(client);
      assert.equal(reply.toString(), 'secure:hello');
      await closeEvent(socket);
      assert.deepEqual(started.mptcp, [serverMptcpFlag]);
    } finally {
      await started.close();
    }
  });

  describe('certificate failures', () => {
    const cases = [
      {
        title: 'an unknown CA',
        code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
        serverCertificate: () => testCertificates().otherServer,
        servername: undefined,
      },
      {
        title: 'an untrusted CA sent in the chain',
        code: 'SELF_SIGNED_CERT_IN_CHAIN',
        serverCertificate: () => {
          const { otherServer, otherCa } = testCertificates();
          return { key: otherServer.key, cert: otherServer.cert + otherCa.cert };
        },
        servername: undefined,
      },
      {
        title: 'a self-signed certificate',
        code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
        serverCertificate: () => testCertificates().selfSigned,
        servername: undefined,
      },
      {
        title: 'a name the certificate does not cover',
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
        serverCertificate: () => testCertificates().server,
        servername: 'other.invalid',
      },
    ];

    for (const testCase of cases) {
      it(`fails with ${testCase.code} for ${testCase.title}`, async () => {
        const { key, cert } = testCase.serverCertificate();
        server = await startTlsServer(echo, { key, cert });
        const { ca } = testCertificates();
        const client = connect({
          host: '127.0.0.1',
          port: server.port,
          tls: { ca: ca.cert, servername: testCase.servername },
        });
        const tlsClosed = closeEvent(client);
        const mptcpClosed = closeEvent(client.mptcpSocket);
        const events = recordEvents(client, ['secureConnect', 'error', 'close']);

        const [error] = (await once(client, 'error')) as [NodeJS.ErrnoException];
        assert.equal(error.code, testCase.code);
        await Promise.all([tlsClosed, mptcpClosed]);
        assert.deepEqual(await events, ['error', 'close']);
        assert.equal(client.destroyed, true);
        assert.equal(client.mptcpSocket.destroyed, true);

        // The server sees its connection closed too.
        const raw = server.connections[0];
        if (!raw.destroyed) await closeEvent(raw);
        assert.equal(raw.destroyed, true);
      });
    }
  });

  it('reports a refused connection on the TLS socket', async () => {
    const probe = net.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address() as net.AddressInfo;
    await new Promise((resolve) => probe.close(resolve));

    const client = connect({ host: '127.0.0.1', port, tls: true });
    const tlsClosed = closeEvent(client);
    const mptcpClosed = closeEvent(client.mptcpSocket);
    const [error] = (await once(client, 'error')) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ECONNREFUSED');
    await Promise.all([tlsClosed, mptcpClosed]);
    assert.equal(client.mptcpSocket.destroyed, true);
  });

  it('emits timeout on the TLS socket', async () => {
    server = await startTlsServer(echo);
    const { ca } = testCertificates();
    const client = connect({
      host: '127.0.0.1',
      port: server.port,
      timeout: 50,
      tls: { ca: ca.cert },
    });
    await once(client, 'timeout');
    assert.equal(client.destroyed, false);
    client.destroy();
    await closeEvent(client);
  });

  // network-tls.test.ts covers tls.implementation 'network-framework'.
  it('rejects an unknown tls.implementation before opening anything', async () => {
    server = await startTlsServer(echo);
    assert.throws(
      () =>
        connect({
          host: '127.0.0.1',
          port: server!.port,
          tls: { implementation: 'openssl' as 'node' },
        }),
      { code: 'ERR_INVALID_ARG_VALUE' },
    );
    assert.throws(
      () => connect({ host: '127.0.0.1', port: server!.port, tls: 'yes' as unknown as true }),
      { code: 'ERR_INVALID_ARG_TYPE' },
    );
    // Give a connection that should not exist the time to arrive.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(server.connections.length, 0);
  });

  it('unref() lets the process exit with the connection open', async function () {
    server = await startTlsServer(echo);
    const { ca } = testCertificates();
    // A child process connects, unrefs the TLS socket and must then exit by
    // itself while the connection stays open.
    const script = `
      const { connect } = require(${JSON.stringify(require.resolve('../lib/index'))});
      const client = connect({ host: '127.0.0.1', port: ${server.port}, tls: { ca: process.env.CA } });
      client.on('secureConnect', () => { client.unref(); process.stdout.write('unref'); });
    `;
    const child = spawn(process.execPath, ['-e', script], {
      env: { ...process.env, CA: ca.cert },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill(), 10_000);
    const [code, signal] = await once(child, 'exit');
    clearTimeout(timer);
    assert.equal(output, 'unref');
    assert.equal(signal, null, 'the child did not exit by itself');
    assert.equal(code, 0);
  });
});
