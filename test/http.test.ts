// HTTP over MPTCP: the http and https agents with keep-alive, fetch through
// the undici dispatcher, HTTP/2 negotiated with ALPN, and the check server
// over HTTPS.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';

import * as undici from 'undici';

import {
  checkMptcp,
  connect,
  connectHttp2,
  createMptcpDispatcher,
  isMptcpSocket,
  MptcpAgent,
  MptcpHttpsAgent,
  MptcpSocket,
  MptcpTlsSocket,
  mptcpFetch,
  startCheckServer,
  VERDICT_MPTCP,
  VERDICT_NOT_MPTCP,
} from '../lib/index';
import { expectedMptcpFlag, skipWithReason } from './helpers';
import {
  listenOnLoopback,
  serverMptcpFlag,
  serverTcpFlag,
  testCertificates,
  type ListeningServer,
} from './tls-fixtures';

/** Environment variable that allows tests to reach check.mptcp.dev. */
const ONLINE = process.env.NW_MPTCP_ONLINE === '1';

interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
  socket: unknown;
  reusedSocket: boolean;
  /** TLSSocket.isSessionReused() when the response arrived; null without TLS. */
  tlsSessionReused: boolean | null;
}

/** GET through `module` (http or https) with the given request options. */
function get(module: typeof http | typeof https, options: https.RequestOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = module.get(options, (response) => {
      const socket = request.socket as Partial<MptcpTlsSocket> | null;
      const tlsSessionReused = socket?.isSessionReused?.() ?? null;
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          body,
          headers: response.headers,
          socket: request.socket,
          reusedSocket: request.reusedSocket,
          tlsSessionReused,
        }),
      );
    });
    request.on('error', reject);
  });
}

/**
 * Answers each request with what the server saw: "mptcp=<flag>". The
 * request to /close also gets Connection: close.
 */
const reportMptcp: http.RequestListener = (request, response) => {
  if (request.url === '/close') response.setHeader('Connection', 'close');
  response.end(`mptcp=${isMptcpSocket(request.socket)}`);
};

const serverSaw = `mptcp=${serverMptcpFlag}`;

/** Runs the keep-alive sequence of three GETs, the second answered with Connection: close. */
async function threeRequests(
  module: typeof http | typeof https,
  options: https.RequestOptions,
): Promise<Reply[]> {
  const replies: Reply[] = [];
  for (const path of ['/', '/close', '/']) {
    const reply = await get(module, { ...options, path });
    replies.push(reply);
    await settled(reply.socket as Duplex);
  }
  return replies;
}

/**
 * Waits until a keep-alive agent has taken the socket back, or the socket
 * closed. The agent takes it when the request has finished writing, which
 * can be after the response's 'end' on a backend whose writes complete late.
 */
async function settled(socket: Duplex): Promise<void> {
  for (let turn = 0; turn < 200; turn++) {
    if (socket.destroyed || (socket as unknown as { _httpMessage: unknown })._httpMessage === null)
      return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('http', () => {
  describe('MptcpAgent', () => {
    let server: ListeningServer<http.Server> | undefined;
    let agent: MptcpAgent | undefined;

    afterEach(async () => {
      agent?.destroy();
      agent = undefined;
      await server?.close();
      server = undefined;
    });

    it('keeps connections alive and reconnects after Connection: close', async () => {
      server = await listenOnLoopback(http.createServer(reportMptcp));
      agent = new MptcpAgent({ keepAlive: true });
      const replies = await threeRequests(http, {
        host: '127.0.0.1',
        port: server.port,
        agent,
      });

      for (const reply of replies) {
        assert.equal(reply.status, 200);
        assert.equal(reply.body, serverSaw);
        const socket = reply.socket;
        assert.ok(socket instanceof MptcpSocket);
        assert.equal(socket.mptcp, expectedMptcpFlag);
      }
      assert.deepEqual(
        replies.map((reply) => reply.reusedSocket),
        [false, true, false],
      );
      assert.equal(replies[0].socket, replies[1].socket);
      assert.notEqual(replies[1].socket, replies[2].socket);
      assert.equal(replies[1].headers.connection, 'close');
      assert.deepEqual(server.mptcp, [serverMptcpFlag, serverMptcpFlag]);
    });

    it("keeps 'disabled' connections apart from MPTCP ones", async () => {
      server = await listenOnLoopback(http.createServer(reportMptcp));
      agent = new MptcpAgent({ keepAlive: true });
      const options = { host: '127.0.0.1', port: server.port, agent, path: '/' };
      const mptcp = await get(http, options);
      const tcp = await get(http, { ...options, multipath: 'disabled' } as http.RequestOptions);
      assert.equal(mptcp.body, serverSaw);
      assert.equal(tcp.body, `mptcp=${serverTcpFlag}`);
      assert.notEqual(mptcp.socket, tcp.socket);
    });

    it('rejects an invalid multipath service', () => {
      assert.throws(() => new MptcpAgent({ multipath: 'fast' as 'handover' }), {
        code: 'ERR_INVALID_ARG_VALUE',
      });
    });
  });

  describe('MptcpHttpsAgent', () => {
    let server: ListeningServer<https.Server> | undefined;
    let agent: MptcpHttpsAgent | undefined;

    afterEach(async () => {
      agent?.destroy();
      agent = undefined;
      await server?.close();
      server = undefined;
    });

    async function startHttpsServer(): Promise<ListeningServer<https.Server>> {
      const { server: certificate } = testCertificates();
      const httpsServer = https.createServer(
        { key: certificate.key, cert: certificate.cert },
        reportMptcp,
      );
      httpsServer.on('tlsClientError', () => {});
      return listenOnLoopback(httpsServer);
    }

    it('keeps connections alive, reconnects and resumes the TLS session', async () => {
      server = await startHttpsServer();
      const servernames: Array<string | false> = [];
      server.server.on('secureConnection', (socket: { servername: string | false }) =>
        servernames.push(socket.servername),
      );
      agent = new MptcpHttpsAgent({ keepAlive: true, ca: testCertificates().ca.cert });
      const replies = await threeRequests(https, {
        host: 'localhost',
        family: 4,
        port: server.port,
        agent,
      });

      for (const reply of replies) {
        assert.equal(reply.status, 200);
        assert.equal(reply.body, serverSaw);
        const socket = reply.socket;
        assert.ok(socket instanceof MptcpTlsSocket);
        assert.equal(socket.authorized, true);
        assert.equal(socket.mptcp, expectedMptcpFlag);
      }
      assert.deepEqual(
        replies.map((reply) => reply.reusedSocket),
        [false, true, false],
      );
      assert.equal(replies[0].socket, replies[1].socket);
      assert.notEqual(replies[1].socket, replies[2].socket);
      assert.deepEqual(
        replies.map((reply) => reply.tlsSessionReused),
        [false, false, true],
      );
      assert.deepEqual(servernames, ['localhost', 'localhost']);
      assert.deepEqual(server.mptcp, [serverMptcpFlag, serverMptcpFlag]);
    });

    it('rejects a certificate from an unknown CA', async () => {
      server = await startHttpsServer();
      agent = new MptcpHttpsAgent({ ca: testCertificates().otherCa.cert });
      const options = { host: '127.0.0.1', port: server.port, agent, path: '/' };
      await assert.rejects(get(https, options), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });

      const insecure = new MptcpHttpsAgent({ rejectUnauthorized: false });
      try {
        const reply = await get(https, { ...options, agent: insecure });
        assert.equal(reply.body, serverSaw);
        assert.equal((reply.socket as MptcpTlsSocket).authorized, false);
      } finally {
        insecure.destroy();
      }
    });

    it('checks the name given as servername', async () => {
      server = await startHttpsServer();
      agent = new MptcpHttpsAgent({ ca: testCertificates().ca.cert });
      const options = { host: '127.0.0.1', port: server.port, agent, path: '/' };
      await assert.rejects(get(https, { ...options, servername: 'other.invalid' }), {
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      });
      const reply = await get(https, { ...options, servername: 'localhost' });
      assert.equal(reply.body, serverSaw);
    });
  });

  describe('fetch with createMptcpDispatcher', () => {
    let server: ListeningServer<https.Server> | undefined;
    let plainServer: ListeningServer<http.Server> | undefined;
    let dispatcher: undici.Agent | undefined;

    before(async () => {
      const { server: certificate } = testCertificates();
      server = await listenOnLoopback(
        https.createServer({ key: certificate.key, cert: certificate.cert }, reportMptcp),
      );
      plainServer = await listenOnLoopback(http.createServer(reportMptcp));
    });

    afterEach(async () => {
      await dispatcher?.close();
      dispatcher = undefined;
    });

    after(async () => {
      await server?.close();
      await plainServer?.close();
    });

    it('runs 100 requests over MPTCP with undici.fetch', async () => {
      dispatcher = createMptcpDispatcher({ connect: { ca: testCertificates().ca.cert } });
      const before = server!.connections.length;
      const url = `https://localhost:${server!.port}/`;
      const bodies = await Promise.all(
        Array.from({ length: 100 }, async () => {
          const response = await undici.fetch(url, { dispatcher });
          assert.equal(response.status, 200);
          return response.text();
        }),
      );
      for (const body of bodies) assert.equal(body, serverSaw);
      const opened = server!.mptcp.slice(before);
      assert.ok(opened.length >= 1);
      assert.ok(opened.length <= 100);
      assert.deepEqual(
        opened,
        opened.map(() => serverMptcpFlag),
      );
    });

    it("works with Node's global fetch over http and https", async () => {
      dispatcher = createMptcpDispatcher({ connect: { ca: testCertificates().ca.cert } });
      // The dispatcher option of the global fetch is missing from its type.
      const init = { dispatcher } as RequestInit;
      for (const url of [
        `http://127.0.0.1:${plainServer!.port}/`,
        `https://localhost:${server!.port}/`,
      ]) {
        const response = await fetch(url, init);
        assert.equal(response.status, 200);
        assert.equal(await response.text(), serverSaw);
      }
    });

    it('mptcpFetch uses a shared dispatcher or the one given', async () => {
      const plain = await mptcpFetch(`http://127.0.0.1:${plainServer!.port}/`);
      assert.equal(await plain.text(), serverSaw);

      dispatcher = createMptcpDispatcher({ connect: { ca: testCertificates().ca.cert } });
      const secure = await mptcpFetch(`https://localhost:${server!.port}/`, { dispatcher });
      assert.equal(await secure.text(), serverSaw);
    });

    it('rejects a certificate from an unknown CA', async () => {
      dispatcher = createMptcpDispatcher({ connect: { ca: testCertificates().otherCa.cert } });
      const url = `https://localhost:${server!.port}/`;
      await assert.rejects(undici.fetch(url, { dispatcher }), (error: Error) => {
        const cause = error.cause as NodeJS.ErrnoException;
        assert.equal(cause.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
        return true;
      });
    });

    it('fails with ConnectTimeoutError when the timeout expires', async () => {
      // A lookup that never answers keeps the connection from starting.
      dispatcher = createMptcpDispatcher({
        connect: { timeout: 50, lookup: () => {} },
      });
      await assert.rejects(
        undici.request(`http://unresolved.invalid:${plainServer!.port}/`, { dispatcher }),
        { code: 'UND_ERR_CONNECT_TIMEOUT' },
      );
    });
  });

  describe('http2', () => {
    let server: ListeningServer<http2.Http2SecureServer> | undefined;

    beforeEach(async () => {
      const { server: certificate } = testCertificates();
      const secureServer = http2.createSecureServer({
        key: certificate.key,
        cert: certificate.cert,
      });
      secureServer.on('stream', (stream) => {
        stream.respond({ ':status': 200 });
        stream.end(`${stream.session?.alpnProtocol} ${serverSaw}`);
      });
      server = await listenOnLoopback(secureServer);
    });

    afterEach(async () => {
      await server?.close();
      server = undefined;
    });

    async function request(session: http2.ClientHttp2Session, path: string): Promise<string> {
      const stream = session.request({ ':path': path });
      stream.setEncoding('utf8');
      let body = '';
      stream.on('data', (chunk: string) => (body += chunk));
      await once(stream, 'end');
      return body;
    }

    it('negotiates h2 with connectHttp2', async () => {
      const session = connectHttp2(`https://localhost:${server!.port}`, {
        ca: testCertificates().ca.cert,
      });
      try {
        await once(session, 'connect');
        assert.equal(session.alpnProtocol, 'h2');
        assert.equal((session.socket as unknown as MptcpTlsSocket).mptcp, expectedMptcpFlag);
        const bodies = await Promise.all([request(session, '/a'), request(session, '/b')]);
        assert.deepEqual(bodies, [`h2 ${serverSaw}`, `h2 ${serverSaw}`]);
        assert.deepEqual(server!.mptcp, [serverMptcpFlag]);
      } finally {
        session.close();
      }
      await once(session, 'close');
    });

    it('negotiates h2 with createConnection and connect({ tls })', async () => {
      const port = server!.port;
      const session = http2.connect(`https://localhost:${port}`, {
        createConnection: () =>
          connect({
            host: '127.0.0.1',
            port,
            tls: {
              ALPNProtocols: ['h2'],
              servername: 'localhost',
              ca: testCertificates().ca.cert,
            },
          }),
      });
      try {
        await once(session, 'connect');
        assert.equal(session.alpnProtocol, 'h2');
        assert.equal(await request(session, '/'), `h2 ${serverSaw}`);
        assert.deepEqual(server!.mptcp, [serverMptcpFlag]);
      } finally {
        session.close();
      }
      await once(session, 'close');
    });

    it('speaks cleartext HTTP/2 to an http: authority', async () => {
      const plain = http2.createServer();
      plain.on('stream', (stream) => {
        stream.respond({ ':status': 200 });
        stream.end(serverSaw);
      });
      const started = await listenOnLoopback(plain);
      const session = connectHttp2(`http://127.0.0.1:${started.port}`);
      try {
        await once(session, 'connect');
        assert.equal(await request(session, '/'), serverSaw);
        assert.deepEqual(started.mptcp, [serverMptcpFlag]);
      } finally {
        session.close();
        await once(session, 'close');
        await started.close();
      }
    });
  });

  describe('check server over HTTPS', () => {
    let server: http.Server | https.Server | undefined;
    let port = 0;

    before(async function () {
      if (serverMptcpFlag === null) skipWithReason(this, 'MPTCP servers need Linux');
      const { server: certificate } = testCertificates();
      const started = await startCheckServer({
        tls: { key: certificate.key, cert: certificate.cert },
      });
      server = started.server;
      port = (started.address as AddressInfo).port;
    });

    after(() => server?.close());

    it('answers "You are using MPTCP." over TLS', async () => {
      const result = await checkMptcp({
        host: '127.0.0.1',
        port,
        tls: { ca: testCertificates().ca.cert },
      });
      assert.equal(result.statusCode, 200);
      assert.equal(result.verdict, VERDICT_MPTCP);
      assert.equal(result.serverSawMptcp, true);
      assert.equal(result.clientMptcp, expectedMptcpFlag);
      assert.equal(result.tlsProtocol, 'TLSv1.3');
      assert.equal(result.remotePort, port);
    });

    it('answers "You are not using MPTCP." over TLS on plain TCP', async () => {
      const result = await checkMptcp({
        host: '127.0.0.1',
        port,
        multipath: 'disabled',
        tls: { ca: testCertificates().ca.cert },
      });
      assert.equal(result.verdict, VERDICT_NOT_MPTCP);
      assert.equal(result.serverSawMptcp, false);
    });

    it('fails for a certificate the client does not trust', async () => {
      await assert.rejects(checkMptcp({ host: '127.0.0.1', port, tls: true }), {
        code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      });
    });
  });

  describe('check.mptcp.dev over HTTPS', () => {
    it('port 443 answers with a verdict over MPTCP', async function () {
      if (!ONLINE) skipWithReason(this, 'set NW_MPTCP_ONLINE=1 to reach check.mptcp.dev');
      let result;
      try {
        result = await checkMptcp({ host: 'check.mptcp.dev', tls: true, timeout: 15_000 });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ENETUNREACH')
          skipWithReason(this, `no network: ${code}`);
        throw error;
      }
      assert.equal(result.statusCode, 200);
      assert.equal(result.verdict, VERDICT_MPTCP);
      assert.equal(result.tlsProtocol?.startsWith('TLSv1.'), true);
    });
  });
});
