// Argument validation: every bad argument throws Node's TypeError or
// RangeError with its ERR_* code, names the option and the value, and opens
// nothing native.

import assert from 'node:assert/strict';
import * as net from 'node:net';

import { binding } from '../lib/binding';
import { connect, MptcpSocket } from '../lib/index';

interface Case {
  title: string;
  options: unknown;
  name: 'TypeError' | 'RangeError';
  code: string;
  message: string | RegExp;
}

const LONG_NAME = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;

const cases: Case[] = [
  {
    title: 'port above 65535',
    options: { port: 65536 },
    name: 'RangeError',
    code: 'ERR_SOCKET_BAD_PORT',
    message: 'Port should be >= 0 and < 65536. Received type number (65536).',
  },
  {
    title: 'negative port',
    options: { port: -1 },
    name: 'RangeError',
    code: 'ERR_SOCKET_BAD_PORT',
    message: 'Port should be >= 0 and < 65536. Received type number (-1).',
  },
  {
    title: 'fractional port',
    options: { port: 1.5 },
    name: 'RangeError',
    code: 'ERR_SOCKET_BAD_PORT',
    message: 'Port should be >= 0 and < 65536. Received type number (1.5).',
  },
  {
    title: 'non-numeric port string',
    options: { port: 'abc' },
    name: 'RangeError',
    code: 'ERR_SOCKET_BAD_PORT',
    message: "Port should be >= 0 and < 65536. Received type string ('abc').",
  },
  {
    title: 'empty port string',
    options: { port: '' },
    name: 'RangeError',
    code: 'ERR_SOCKET_BAD_PORT',
    message: "Port should be >= 0 and < 65536. Received type string ('').",
  },
  {
    title: 'boolean port',
    options: { port: true },
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_TYPE',
    message:
      'The "options.port" property must be one of type number or string. Received type boolean (true)',
  },
  {
    title: 'null port',
    options: { port: null },
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'The "options.port" property must be one of type number or string. Received null',
  },
  {
    title: 'missing port',
    options: {},
    name: 'TypeError',
    code: 'ERR_MISSING_ARGS',
    message: 'The "options" or "port" argument must be specified',
  },
  {
    title: 'numeric host',
    options: { port: 80, host: 5 },
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'The "options.host" property must be of type string. Received type number (5)',
  },
  {
    title: 'empty host',
    options: { port: 80, host: '' },
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_VALUE',
    message: "The property 'options.host' must be a non-empty string. Received ''",
  },
  {
    title: 'host with a NUL byte',
    options: { port: 80, host: 'a\0b' },
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_VALUE',
    message: /^The property 'options.host' must not contain null bytes\. Received/,
  },
  {
    title: 'host name of 254 bytes',
    options: { port: 80, host: `${LONG_NAME}x` },
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_VALUE',
    message: /^The property 'options.host' must be at most 253 bytes\. Received/,
  },
  {
    title: 'unknown multipath service',
    options: { port: 80, multipath: 'fast' },
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_VALUE',
    message:
      "The property 'options.multipath' must be one of: 'handover', 'interactive', " +
      "'aggregate', 'disabled'. Received 'fast'",
  },
  {
    title: 'family 5',
    options: { port: 80, family: 5 },
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_VALUE',
    message: "The property 'options.family' must be one of: 0, 4, 6. Received 5",
  },
  {
    title: 'string local port',
    options: { port: 80, localPort: 'x' },
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_TYPE',
    message:
      'The "options.localPort" property must be of type number. Received type string (\'x\')',
  },
  {
    title: 'local address that is no IP',
    options: { port: 80, localAddress: 'abc' },
    name: 'TypeError',
    code: 'ERR_INVALID_IP_ADDRESS',
    message: 'Invalid IP address: abc',
  },
  {
    title: 'string timeout',
    options: { port: 80, timeout: 'x' },
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'The "options.timeout" property must be of type number. Received type string (\'x\')',
  },
  {
    title: 'negative connect timeout',
    options: { port: 80, connectTimeout: -1 },
    name: 'RangeError',
    code: 'ERR_OUT_OF_RANGE',
    message:
      'The value of "options.connectTimeout" is out of range. It must be a non-negative ' +
      'finite number. Received -1',
  },
  {
    title: 'non-function lookup',
    options: { port: 80, lookup: 1 },
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'The "options.lookup" property must be of type function. Received type number (1)',
  },
  {
    title: 'signal that is no AbortSignal',
    options: { port: 80, signal: 'stop' },
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_TYPE',
    message:
      'The "options.signal" property must be of type AbortSignal. Received type string (\'stop\')',
  },
  {
    title: 'string keepAlive',
    options: { port: 80, keepAlive: 'yes' },
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_TYPE',
    message:
      'The "options.keepAlive" property must be of type boolean. Received type string (\'yes\')',
  },
  {
    title: 'numeric tls',
    options: { port: 80, tls: 1 },
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_TYPE',
    message:
      'The "options.tls" property must be one of type boolean or object. Received type number (1)',
  },
];

describe('validation', () => {
  let constructed = 0;
  let original: typeof binding.Connection;

  // Counts native connections, so each case can prove it opened none.
  beforeEach(() => {
    constructed = 0;
    original = binding.Connection;
    const Counted = new Proxy(original, {
      construct(target, args) {
        constructed += 1;
        return new target(...(args as [never]));
      },
    });
    binding.Connection = Counted;
  });

  afterEach(() => {
    binding.Connection = original;
  });

  for (const testCase of cases) {
    it(`rejects ${testCase.title}`, () => {
      assert.throws(() => connect(testCase.options as never), {
        name: testCase.name,
        code: testCase.code,
        message: testCase.message,
      });
      assert.equal(constructed, 0);
    });
  }

  it('accepts a numeric port string', async () => {
    const socket = connect({ port: ' 80 ', host: '127.0.0.1' });
    socket.destroy();
    await new Promise((resolve) => socket.once('close', resolve));
    assert.equal(constructed, 0);
  });

  it('takes a null host as localhost, as net does', async () => {
    const lookups: string[] = [];
    const lookup = (hostname: string, _options: unknown, callback: (error: Error) => void) => {
      lookups.push(hostname);
      callback(new Error('stopped here'));
    };
    const opens = [
      () => connect(80, null as never),
      () => connect({ port: 80, host: null as never, lookup: lookup as never }),
    ];
    for (const open of opens) {
      const socket = open();
      socket.on('error', () => {});
      await new Promise((resolve) => socket.once('close', resolve));
    }
    assert.deepEqual(lookups, ['localhost']);
  });

  it('accepts a host name of 253 bytes', () => {
    const socket = connect({ port: 80, host: LONG_NAME, lookup: () => {} });
    socket.destroy();
    assert.equal(Buffer.byteLength(LONG_NAME), 253);
  });

  it('matches the port messages of net.connect', () => {
    for (const port of [65536, -1, 'abc']) {
      let expected: Error | undefined;
      try {
        net.connect({ port: port as number }).destroy();
      } catch (error) {
        expected = error as Error;
      }
      assert.throws(() => connect({ port: port as number }), {
        name: expected?.name,
        message: expected?.message,
      });
    }
  });

  it('rejects a non-object MptcpSocket option bag', () => {
    assert.throws(() => new MptcpSocket('x' as never), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE',
    });
  });

  it('rejects bad setTimeout arguments', () => {
    const socket = new MptcpSocket();
    assert.throws(() => socket.setTimeout(-1), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => socket.setTimeout('1' as never), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE',
    });
    assert.throws(() => socket.setTimeout(1, 'cb' as never), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE',
    });
    socket.destroy();
  });

  it('prints the code in the stack header', () => {
    try {
      connect({ port: 70000 });
      assert.fail('connect did not throw');
    } catch (error) {
      assert.match((error as Error).stack ?? '', /^RangeError \[ERR_SOCKET_BAD_PORT\]: Port/);
      assert.equal((error as Error).name, 'RangeError');
    }
  });

  describe('write() chunks', () => {
    for (const [title, chunk, expected] of [
      ['a string with an encoding', ['aGk=', 'base64'], 'hi'],
      ['a Buffer', [Buffer.from('hi')], 'hi'],
      ['a Uint8Array', [new Uint8Array([104, 105])], 'hi'],
      ['a Uint16Array', [new Uint16Array([0x6968])], 'hi'],
      ['a DataView', [new DataView(new Uint8Array([104, 105]).buffer)], 'hi'],
    ] as Array<[string, unknown[], string]>) {
      it(`accepts ${title}`, () => {
        const socket = new MptcpSocket();
        socket.cork();
        (socket.write as (...args: unknown[]) => boolean)(...chunk);
        const buffered = (
          socket as unknown as {
            writableBuffer: Array<{ chunk: Buffer | string; encoding: BufferEncoding }>;
          }
        ).writableBuffer;
        const bytes = buffered.map((entry) =>
          typeof entry.chunk === 'string' ? Buffer.from(entry.chunk, entry.encoding) : entry.chunk,
        );
        assert.equal(Buffer.concat(bytes).toString(), expected);
        socket.destroy();
      });
    }

    for (const [title, chunk] of [
      ['a number', 5],
      ['a plain object', {}],
    ] as Array<[string, unknown]>) {
      it(`rejects ${title}`, () => {
        const socket = new MptcpSocket();
        assert.throws(() => socket.write(chunk as never), {
          name: 'TypeError',
          code: 'ERR_INVALID_ARG_TYPE',
        });
        socket.destroy();
      });
    }

    it('rejects null', () => {
      const socket = new MptcpSocket();
      assert.throws(() => socket.write(null as never), {
        name: 'TypeError',
        code: 'ERR_STREAM_NULL_VALUES',
      });
      socket.destroy();
    });
  });
});
