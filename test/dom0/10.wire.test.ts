// Property: the control frames decode the same however the byte stream is split, every bad
// stream (garbage, wrong version, oversized, truncated, malformed payload) is refused with an
// error that says what and where, and over real loopback sockets a bad peer only ever closes
// its own connection: nothing throws, the process and the other connections carry on.
import net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  decodeMessage,
  encodeFrame,
  encodeMessage,
  FLAG_END,
  FrameChannel,
  FrameDecoder,
  FrameError,
  FrameType,
  HEADER_SIZE,
  MAX_PAYLOAD,
  type Frame,
  type Message,
} from '../../dom0/wire.js';
import { deadline } from '../helpers.js';

const messages: Message[] = [
  {
    type: 'start',
    job: 'j-1',
    size: 8,
    ranks: [4, 5, 6, 7],
    command: '/usr/bin/node',
    args: ['--single-threaded', 'prog.js', 'a b', 'ü'],
    cwd: '/work/x',
    env: { SFMPI_SIZE: '8', WEIRD: '$(x) `y` \'z\'\n' },
  },
  { type: 'event', event: { ev: 'fork', host: 'th2', rank: 5, pid: 1234, ms: 1.5 } },
  { type: 'event', event: { ev: 'fail', host: 'th2', rank: 6, code: 137, signal: 9, cause: 'was killed by signal 9 (SIGKILL)' } },
  { type: 'output', rank: 7, stream: 1, data: Buffer.from('hello\n'), end: false },
  { type: 'output', rank: 7, stream: 2, data: Buffer.from([0xff, 0xfe, 0x00, 0x0a]), end: true },
  { type: 'stdin', data: Buffer.from('line 1\n'), end: false },
  { type: 'stdin', data: Buffer.alloc(0), end: true },
  { type: 'signal', signal: 'SIGTERM' },
  { type: 'endpoint', rank: 3, address: '10.77.0.2', port: 40123 },
  { type: 'error', message: 'admission refused: 9 clones beyond the limit of 8' },
  { type: 'ping' },
  { type: 'pong' },
];

function decodeAll(chunks: Buffer[]): { frames: Frame[]; error: FrameError | null } {
  const d = new FrameDecoder();
  const frames: Frame[] = [];
  for (const c of chunks) frames.push(...d.push(c));
  return { frames, error: d.error ?? d.end() };
}

function expectError(chunks: Buffer[], code: string, message: string, framesBefore = 0, decoder = new FrameDecoder()): void {
  const frames: Frame[] = [];
  for (const c of chunks) frames.push(...decoder.push(c));
  const e = decoder.error ?? decoder.end();
  assert.ok(e, `no error; expected ${message}`);
  assert.instance(e, FrameError);
  assert.is(e!.code, code);
  assert.is(e!.message, message);
  assert.is(frames.length, framesBefore, 'frames before the bad bytes are delivered');
}

function payloadError(frame: Buffer, message: string, code = 'ERR_FRAME_PAYLOAD'): void {
  const { frames, error } = decodeAll([frame]);
  assert.is(error, null);
  try {
    decodeMessage(frames[0]);
  } catch (e) {
    assert.instance(e, FrameError);
    assert.is((e as FrameError).code, code);
    assert.is((e as FrameError).message, message);
    return;
  }
  assert.unreachable(`decoded; expected: ${message}`);
}

const json = (type: number, body: unknown) => encodeFrame(type, Buffer.from(JSON.stringify(body)));

test('the header is laid out as drawn: magic, version, type, flags, reserved, length (big-endian)', () => {
  const f = encodeFrame(0x03, Buffer.from('abc'), FLAG_END);
  assert.is(f.length, HEADER_SIZE + 3);
  assert.equal([...f.subarray(0, HEADER_SIZE)], [0x53, 0x46, 0x43, 0x4e, 1, 0x03, 0x01, 0, 0, 0, 0, 3]);
  assert.is(f.subarray(HEADER_SIZE).toString(), 'abc');
  assert.is(encodeMessage({ type: 'ping' }).length, HEADER_SIZE);
  assert.is(encodeMessage({ type: 'output', rank: 258, stream: 2, data: Buffer.from('x'), end: false }).subarray(HEADER_SIZE).toString('hex'), '00000102' + '02' + '78');
});

test('every message survives encode and decode', () => {
  for (const m of messages) {
    const { frames, error } = decodeAll([encodeMessage(m)]);
    assert.is(error, null);
    assert.is(frames.length, 1);
    assert.is(frames[0].type, FrameType[m.type]);
    assert.equal(decodeMessage(frames[0]), m);
  }
});

test('a stream decodes the same under every split into two and three pieces, and byte by byte', () => {
  const stream = Buffer.concat(messages.map(encodeMessage));
  const want = messages;
  const check = (chunks: Buffer[], what: string) => {
    const { frames, error } = decodeAll(chunks);
    assert.is(error, null, what);
    assert.equal(frames.map(decodeMessage), want, what);
  };
  for (let i = 0; i <= stream.length; i++) check([stream.subarray(0, i), stream.subarray(i)], `split at ${i}`);
  check([...stream].map((b) => Buffer.from([b])), 'byte by byte');
  // Three pieces over a shorter stream (every i < j).
  const short = Buffer.concat([messages[1], messages[3], messages[10], messages[8]].map(encodeMessage));
  const shortWant = [messages[1], messages[3], messages[10], messages[8]];
  for (let i = 0; i <= short.length; i++)
    for (let j = i; j <= short.length; j++) {
      const { frames, error } = decodeAll([short.subarray(0, i), short.subarray(i, j), short.subarray(j)]);
      assert.is(error, null);
      assert.equal(frames.map(decodeMessage), shortWant, `split at ${i}, ${j}`);
    }
});

test('garbage is refused at its first wrong byte, after the good frames before it', () => {
  expectError([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], 'ERR_FRAME_MAGIC', 'bad frame magic at byte 0: 47 45 54 20 2f 20 48 54 "GET / HT" is not an sfmpi frame');
  // One byte is enough to know.
  expectError([Buffer.from('G')], 'ERR_FRAME_MAGIC', 'bad frame magic at byte 0: 47 "G" is not an sfmpi frame');
  expectError([Buffer.from([0x53, 0x46, 0x00])], 'ERR_FRAME_MAGIC', 'bad frame magic at byte 0: 53 46 00 "SF." is not an sfmpi frame');
  const ping = encodeMessage({ type: 'ping' });
  expectError([Buffer.concat([ping, ping, Buffer.from([0xde, 0xad, 0xbe, 0xef])])], 'ERR_FRAME_MAGIC', 'bad frame magic at byte 24: de ad be ef "...." is not an sfmpi frame', 2);
  // Split garbage: caught as soon as its first bad byte comes.
  const d = new FrameDecoder();
  d.push(ping.subarray(0, 2));
  assert.is(d.error, null);
  d.push(Buffer.from('X'));
  assert.is(d.error?.code, 'ERR_FRAME_MAGIC');
  assert.is(d.error?.offset, 0);
  assert.equal(d.push(ping), [], 'a failed decoder takes nothing more');
  for (let seed = 1; seed <= 200; seed++) {
    const junk = Buffer.from(Array.from({ length: 64 }, (_, i) => (seed * 7919 + i * 104729) % 251));
    const { error } = decodeAll([junk]);
    assert.ok(error, `junk ${seed} accepted`);
  }
});

test('a wrong version, unknown flags or a non-zero reserved byte are refused', () => {
  const f = encodeMessage({ type: 'ping' });
  const v2 = Buffer.from(f);
  v2[4] = 2;
  expectError([v2], 'ERR_FRAME_VERSION', 'frame version 2 at byte 0, this end speaks version 1');
  const flags = Buffer.from(f);
  flags[6] = 0x82;
  expectError([flags], 'ERR_FRAME_FLAGS', 'unknown frame flags 0x82 at byte 0');
  const reserved = Buffer.from(f);
  reserved[7] = 9;
  expectError([Buffer.concat([f, reserved])], 'ERR_FRAME_RESERVED', 'reserved frame byte is 9, not 0, at byte 12', 1);
});

test('an oversized frame is refused from its header, before any payload', () => {
  const header = encodeFrame(FrameType.stdin).subarray(0, HEADER_SIZE);
  const big = Buffer.from(header);
  big.writeUInt32BE(MAX_PAYLOAD + 1, 8);
  expectError([big], 'ERR_FRAME_TOO_LARGE', `frame of ${MAX_PAYLOAD + 1} bytes at byte 0 is over the limit of ${MAX_PAYLOAD}`);
  const huge = Buffer.from(header);
  huge.writeUInt32BE(0xffffffff, 8);
  expectError([huge], 'ERR_FRAME_TOO_LARGE', `frame of 4294967295 bytes at byte 0 is over the limit of ${MAX_PAYLOAD}`);
  expectError([encodeFrame(FrameType.stdin, Buffer.alloc(101))], 'ERR_FRAME_TOO_LARGE', 'frame of 101 bytes at byte 0 is over the limit of 100', 0, new FrameDecoder(100));
  const atLimit = decodeAll([encodeFrame(FrameType.stdin, Buffer.alloc(MAX_PAYLOAD))]);
  assert.is(atLimit.error, null);
  assert.is(atLimit.frames[0].payload.length, MAX_PAYLOAD);
  assert.throws(() => encodeFrame(FrameType.stdin, Buffer.alloc(MAX_PAYLOAD + 1)), (e: Error) => e instanceof RangeError && e.message === `frame payload of ${MAX_PAYLOAD + 1} bytes is over the limit of ${MAX_PAYLOAD}`);
  assert.throws(() => encodeFrame(256), (e: Error) => e instanceof RangeError && e.message === 'frame type must be 0..255, got 256');
  assert.throws(() => encodeFrame(1, Buffer.alloc(0), 4), (e: Error) => e instanceof RangeError && e.message === 'unknown frame flags 0x4');
});

test('a stream that stops inside a frame is truncated, wherever it stops', () => {
  const f = encodeMessage({ type: 'error', message: 'bye' });
  const ping = encodeMessage({ type: 'ping' });
  expectError([f.subarray(0, 5)], 'ERR_FRAME_TRUNCATED', 'stream ended 5 bytes into a 12-byte frame header at byte 0');
  expectError([f.subarray(0, 1)], 'ERR_FRAME_TRUNCATED', 'stream ended 1 byte into a 12-byte frame header at byte 0');
  const len = f.length - HEADER_SIZE;
  expectError([Buffer.concat([ping, f.subarray(0, f.length - 1)])], 'ERR_FRAME_TRUNCATED', `stream ended ${len - 1} bytes into a ${len}-byte frame payload at byte 12`, 1);
  expectError([f.subarray(0, HEADER_SIZE)], 'ERR_FRAME_TRUNCATED', `stream ended 0 bytes into a ${len}-byte frame payload at byte 0`);
  for (let i = 1; i < f.length; i++) assert.is(decodeAll([f.subarray(0, i)]).error?.code, 'ERR_FRAME_TRUNCATED', `cut at ${i}`);
  assert.is(decodeAll([f]).error, null);
  assert.is(decodeAll([]).error, null);
});

test('malformed payloads are named by type and field', () => {
  payloadError(encodeFrame(0x7f), 'unknown frame type 0x7f', 'ERR_FRAME_TYPE');
  payloadError(encodeFrame(0x00), 'unknown frame type 0x00', 'ERR_FRAME_TYPE');
  payloadError(encodeFrame(FrameType.start, Buffer.from('{"job":')), 'start frame: payload is not valid JSON');
  payloadError(encodeFrame(FrameType.start, Buffer.from('[1]')), 'start frame: payload is not a JSON object');
  payloadError(encodeFrame(FrameType.signal, Buffer.from('null')), 'signal frame: payload is not a JSON object');
  const start = { job: 'j', size: 2, ranks: [1], command: 'node', args: [], cwd: '/', env: {} };
  payloadError(json(FrameType.start, { ...start, job: 3 }), 'start frame: "job" must be a string');
  payloadError(json(FrameType.start, { ...start, size: 0 }), 'start frame: "size" must be a positive integer');
  payloadError(json(FrameType.start, { ...start, ranks: [] }), 'start frame: "ranks" must be a non-empty array of ranks');
  payloadError(json(FrameType.start, { ...start, ranks: [-1] }), 'start frame: "ranks" must be a non-empty array of ranks');
  payloadError(json(FrameType.start, { ...start, command: '' }), 'start frame: "command" must be a non-empty string');
  payloadError(json(FrameType.start, { ...start, args: [1] }), 'start frame: "args" must be an array of strings');
  payloadError(json(FrameType.start, { ...start, cwd: null }), 'start frame: "cwd" must be a string');
  payloadError(json(FrameType.start, { ...start, env: { A: 1 } }), 'start frame: "env" must be an object of strings');
  payloadError(json(FrameType.signal, { signal: 'kill' }), 'signal frame: "signal" must be a signal name like "SIGTERM"');
  payloadError(json(FrameType.endpoint, { rank: 1, address: 'h', port: 70000 }), 'endpoint frame: "port" must be a port 1..65535');
  payloadError(json(FrameType.endpoint, { rank: 1.5, address: 'h', port: 7 }), 'endpoint frame: "rank" must be a rank (a non-negative integer)');
  payloadError(json(FrameType.endpoint, { rank: 1, address: '', port: 7 }), 'endpoint frame: "address" must be a non-empty string');
  payloadError(json(FrameType.error, { message: 5 }), 'error frame: "message" must be a string');
  payloadError(json(FrameType.event, { ev: 'nope', rank: 1 }), 'event frame: payload is not a control event (fork, fail or exit with a rank)');
  payloadError(encodeFrame(FrameType.event, Buffer.from('not json')), 'event frame: payload is not a control event (fork, fail or exit with a rank)');
  payloadError(encodeFrame(FrameType.output, Buffer.from([0, 0, 0])), 'output frame: payload of 3 bytes is shorter than its 5-byte rank and stream');
  payloadError(encodeFrame(FrameType.output, Buffer.from([0, 0, 0, 1, 3])), 'output frame: stream 3 is neither 1 (stdout) nor 2 (stderr)');
  payloadError(encodeFrame(FrameType.ping, Buffer.from('x')), 'ping frame: payload must be empty, got 1 bytes');
});

// ---------------------------------------------------------------- over real sockets

interface Outcome {
  messages: Message[];
  error: Error | null;
  channel: FrameChannel;
}

/** A server that wraps each connection in a FrameChannel; `next()` is the outcome of the next
 * connection to close (in order of closing). */
function listen(onMessage: (m: Message, ch: FrameChannel) => void = () => {}): Promise<{ server: net.Server; port: number; next: () => Promise<Outcome> }> {
  const waiting: ((o: Outcome) => void)[] = [];
  const outcomes: Outcome[] = [];
  const server = net.createServer((sock) => {
    const got: Message[] = [];
    const channel: FrameChannel = new FrameChannel(sock, {
      onMessage: (m) => {
        got.push(m);
        onMessage(m, channel);
      },
      onClose: (error) => {
        const o = { messages: got, error, channel };
        const w = waiting.shift();
        if (w) w(o);
        else outcomes.push(o);
      },
    });
  });
  const next = () =>
    new Promise<Outcome>((resolve) => {
      const o = outcomes.shift();
      if (o) resolve(o);
      else waiting.push(resolve);
    });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port, next })));
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

function closed(sock: net.Socket): Promise<void> {
  return new Promise((resolve) => (sock.destroyed && sock.closed ? resolve() : sock.once('close', () => resolve())));
}

/** TCP handles still open once closed ones have had a turn of the loop to go. */
async function openHandles(): Promise<string[]> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap');
}

async function withTimeout<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), deadline(ms))));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

test('FrameChannel: messages both ways over loopback TCP, a clean close reports no error', async () => {
  const pair = await listen((m, ch) => {
    if (m.type === 'ping') ch.send({ type: 'pong' });
    if (m.type === 'signal') ch.close();
  });
  const sock = await connect(pair.port);
  const got: Message[] = [];
  const clientClosed = new Promise<Error | null>((resolve) => {
    const ch = new FrameChannel(sock, { onMessage: (m) => got.push(m), onClose: resolve });
    for (const m of messages.slice(0, 7)) assert.ok(ch.send(m) !== undefined);
    ch.send({ type: 'ping' });
    ch.send({ type: 'signal', signal: 'SIGTERM' });
  });
  const server = await withTimeout(pair.next(), 'server side closes');
  assert.is(server.error, null);
  assert.equal(server.messages, [...messages.slice(0, 7), { type: 'ping' }, { type: 'signal', signal: 'SIGTERM' }]);
  assert.is(await withTimeout(clientClosed, 'client side closes'), null);
  assert.equal(got, [{ type: 'pong' }]);
  assert.is(server.channel.send({ type: 'ping' }), false, 'a closed channel drops what is sent');
  await new Promise<void>((r) => pair.server.close(() => r()));
  assert.equal(await openHandles(), []);
});

test('FrameChannel: a garbage-speaking, truncating or oversizing peer closes only its own connection', async () => {
  const pair = await listen();
  const cases: [Buffer, string, string][] = [
    [Buffer.from('GET / HTTP/1.1\r\n\r\n'), 'ERR_FRAME_MAGIC', 'bad frame magic at byte 0: 47 45 54 20 2f 20 48 54 "GET / HT" is not an sfmpi frame'],
    [Buffer.concat([encodeMessage({ type: 'ping' }), Buffer.from([0x53, 0x46, 0x43, 0x4e, 7])]), 'ERR_FRAME_VERSION', 'frame version 7 at byte 12, this end speaks version 1'],
    [encodeFrame(FrameType.error, Buffer.from('{oops')), 'ERR_FRAME_PAYLOAD', 'error frame: payload is not valid JSON'],
    [encodeFrame(0x42), 'ERR_FRAME_TYPE', 'unknown frame type 0x42'],
  ];
  const big = Buffer.from(encodeFrame(FrameType.stdin).subarray(0, HEADER_SIZE));
  big.writeUInt32BE(MAX_PAYLOAD + 1, 8);
  cases.push([big, 'ERR_FRAME_TOO_LARGE', `frame of ${MAX_PAYLOAD + 1} bytes at byte 0 is over the limit of ${MAX_PAYLOAD}`]);
  for (const [bytes, code, message] of cases) {
    const sock = await connect(pair.port);
    sock.on('error', () => {});
    sock.write(bytes);
    const out = await withTimeout(pair.next(), code);
    assert.instance(out.error, FrameError, code);
    assert.is((out.error as FrameError).code, code);
    assert.is(out.error?.message, message);
    await withTimeout(closed(sock), `${code}: the server closes the connection`);
  }
  // Truncated: the peer closes its end mid-frame.
  {
    const sock = await connect(pair.port);
    const f = encodeMessage({ type: 'error', message: 'half' });
    sock.end(f.subarray(0, f.length - 2));
    const out = await withTimeout(pair.next(), 'truncated');
    assert.is((out.error as FrameError).code, 'ERR_FRAME_TRUNCATED');
    assert.is(out.error?.message, `stream ended ${f.length - HEADER_SIZE - 2} bytes into a ${f.length - HEADER_SIZE}-byte frame payload at byte 0`);
    await closed(sock);
  }
  // The good frames a peer sent before its garbage still arrive.
  {
    const sock = await connect(pair.port);
    sock.on('error', () => {});
    sock.write(Buffer.concat([encodeMessage({ type: 'ping' }), Buffer.from('junk')]));
    const out = await withTimeout(pair.next(), 'ping then junk');
    assert.equal(out.messages, [{ type: 'ping' }]);
    assert.is((out.error as FrameError).code, 'ERR_FRAME_MAGIC');
    await closed(sock);
  }
  // And the server still serves a good peer.
  {
    const sock = await connect(pair.port);
    sock.end(encodeMessage({ type: 'error', message: 'fine' }));
    const out = await withTimeout(pair.next(), 'good peer');
    assert.is(out.error, null);
    assert.equal(out.messages, [{ type: 'error', message: 'fine' }]);
    await closed(sock);
  }
  await new Promise<void>((r) => pair.server.close(() => r()));
  assert.equal(await openHandles(), []);
});

test('FrameChannel: a throwing handler closes the connection with ERR_FRAME_HANDLER, not the process', async () => {
  const pair = await listen((m) => {
    if (m.type === 'ping') throw new Error('handler bug');
  });
  const sock = await connect(pair.port);
  sock.on('error', () => {});
  sock.write(Buffer.concat([encodeMessage({ type: 'pong' }), encodeMessage({ type: 'ping' }), encodeMessage({ type: 'pong' })]));
  const out = await withTimeout(pair.next(), 'handler error');
  assert.is((out.error as FrameError).code, 'ERR_FRAME_HANDLER');
  assert.is(out.error?.message, 'message handler threw on a ping frame: handler bug');
  assert.equal(out.messages, [{ type: 'pong' }, { type: 'ping' }], 'nothing after the throw is handled');
  await closed(sock);
  await new Promise<void>((r) => pair.server.close(() => r()));
  assert.equal(await openHandles(), []);
});

test('FrameChannel: a peer that resets the connection is reported as a socket error', async () => {
  const pair = await listen();
  const sock = await connect(pair.port);
  sock.write(encodeMessage({ type: 'ping' }).subarray(0, 3));
  await new Promise((r) => setTimeout(r, 20));
  sock.resetAndDestroy();
  const out = await withTimeout(pair.next(), 'reset');
  assert.instance(out.error, FrameError);
  assert.is((out.error as FrameError).code, 'ERR_FRAME_SOCKET');
  assert.is(out.error?.message, 'connection error: ECONNRESET');
  await new Promise<void>((r) => pair.server.close(() => r()));
  assert.equal(await openHandles(), []);
});

test.run();
