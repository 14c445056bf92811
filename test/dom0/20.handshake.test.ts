// Property: over real loopback TCP, a connection is authenticated only when both ends hold the
// job secret; a wrong secret, a replayed or reflected proof, a wrong role, a silent peer, a
// peer that hangs up half-way and a peer speaking garbage each end that one connection with an
// error naming what happened, never crash the server, and leave no socket or timer open.
// The adversaries speak the handshake from its description (docs/cluster-network.md), with
// node:crypto directly, not through the code under test.
import { createHmac, randomBytes } from 'node:crypto';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  connectAuthenticated,
  decodeSecret,
  encodeSecret,
  handshakeSocket,
  HandshakeError,
  newSecret,
  peerRole,
  readSecretLine,
  SECRET_ENV,
  secretFromEnv,
  type HandshakeOptions,
  type RoleName,
} from '../../dom0/handshake.js';
import { encodeMessage, FrameChannel, type Message } from '../../dom0/wire.js';
import { deadline } from '../helpers.js';

const SECRET = newSecret();
const ROLE = { launcher: 1, dom0: 2, rank: 3 };

// ---- the handshake as its description says, for adversaries and a second implementation
const hello = (role: number, nonce: Buffer, version = 1) => Buffer.concat([Buffer.from('SFHS'), Buffer.from([version, role, 0, 0]), nonce]);
const proof = (secret: Buffer, who: 'C' | 'S', roleC: number, roleS: number, nonceC: Buffer, nonceS: Buffer) =>
  createHmac('sha256', secret)
    .update(Buffer.concat([Buffer.from('sfmpi cluster handshake v1\0', 'latin1'), Buffer.from([who.charCodeAt(0), roleC, roleS]), nonceC, nonceS]))
    .digest();

let uncaught = 0;
process.on('uncaughtException', (e) => {
  uncaught++;
  console.error('uncaught in the handshake tests:', e);
});

/** Reads exactly n bytes from a raw socket (or fails on a deadline or a close). */
function readN(sock: net.Socket, n: number, ms = 3000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err: Error | null) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      // Paused, so that what comes before the next read waits in the socket.
      sock.pause();
      if (err) reject(err);
      else {
        const out = buf.subarray(0, n);
        if (buf.length > n) sock.unshift(buf.subarray(n));
        resolve(out);
      }
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= n) done(null);
    };
    const onClose = () => done(new Error(`closed after ${buf.length} of ${n} bytes`));
    const timer = setTimeout(() => done(new Error(`timed out after ${buf.length} of ${n} bytes`)), deadline(ms));
    sock.on('data', onData);
    sock.once('close', onClose);
    sock.resume();
  });
}

/** A raw server whose per-connection script may fail (the peer hung up): then it just closes. */
function rawServer(script: (s: net.Socket) => Promise<unknown> | void): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    // Read (and drop) whatever the script does not, so that the peer's close is seen.
    s.resume();
    Promise.resolve()
      .then(() => script(s))
      .catch(() => s.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port })));
}

type Outcome = { ok: true; socket: net.Socket } | { ok: false; error: HandshakeError };

/** A server that runs the handshake on every connection; `next()` is the next outcome. */
async function authServer(opts: Omit<HandshakeOptions, 'side'>): Promise<{ server: net.Server; port: number; next: () => Promise<Outcome> }> {
  const outcomes: Outcome[] = [];
  const waiting: ((o: Outcome) => void)[] = [];
  const push = (o: Outcome) => {
    const w = waiting.shift();
    if (w) w(o);
    else outcomes.push(o);
  };
  const server = net.createServer((sock) => {
    handshakeSocket(sock, { ...opts, side: 'server' }).then(
      (socket) => push({ ok: true, socket }),
      (error: HandshakeError) => push({ ok: false, error }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const next = () =>
    new Promise<Outcome>((resolve) => {
      const o = outcomes.shift();
      if (o) resolve(o);
      else waiting.push(resolve);
    });
  return { server, port: (server.address() as net.AddressInfo).port, next };
}

function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

async function failure(o: Promise<Outcome>, code: string, message: string | RegExp): Promise<void> {
  const out = await o;
  assert.is(out.ok, false, 'the handshake passed');
  const e = (out as { error: HandshakeError }).error;
  assert.instance(e, HandshakeError);
  assert.is(e.code, code, e.message);
  if (typeof message === 'string') assert.is(e.message, message);
  else assert.match(e.message, message);
}

async function rejected(p: Promise<unknown>, code: string, message: string | RegExp): Promise<void> {
  await failure(
    p.then(
      (socket) => ({ ok: true, socket }) as Outcome,
      (error: HandshakeError) => ({ ok: false, error }) as Outcome,
    ),
    code,
    message,
  );
}

/** Resolves once the peer has closed `sock` (whatever it sent before is drained unread). */
function closed(sock: net.Socket): Promise<void> {
  sock.on('error', () => {});
  sock.resume();
  return new Promise((resolve) => (sock.closed ? resolve() : sock.once('close', () => resolve())));
}

async function openHandles(): Promise<string[]> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap' || r === 'Timeout');
}

async function shut(server: net.Server, ...sockets: net.Socket[]): Promise<void> {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  assert.equal(await openHandles(), [], 'something was left open');
}

const peerOf = (s: net.Socket) => `127.0.0.1:${s.localPort}`;

// ---------------------------------------------------------------- the good path

test('two ends with the same secret authenticate each other, then frames flow both ways', async () => {
  const srv = await authServer({ secret: SECRET, role: 'dom0', accept: ['launcher'] });
  const client = await connectAuthenticated({ host: '127.0.0.1', port: srv.port, secret: SECRET, role: 'launcher', accept: ['dom0'] });
  const out = await srv.next();
  assert.ok(out.ok);
  const server = (out as { socket: net.Socket }).socket;
  assert.is(peerRole(client), 'dom0');
  assert.is(peerRole(server), 'launcher');
  assert.is(server.readableLength, 0, 'nothing of the client sits in the server\'s buffer: its fd could be handed on');
  const got: Message[] = [];
  const serverDone = new Promise<Error | null>((resolve) => {
    const ch = new FrameChannel(server, {
      onMessage: (m) => {
        got.push(m);
        if (m.type === 'ping') ch.send({ type: 'pong' });
      },
      onClose: resolve,
    });
  });
  const clientGot: Message[] = [];
  const clientDone = new Promise<Error | null>((resolve) => {
    const ch = new FrameChannel(client, {
      onMessage: (m) => {
        clientGot.push(m);
        ch.close();
      },
      onClose: resolve,
    });
    ch.send({ type: 'ping' });
  });
  assert.is(await clientDone, null);
  assert.is(await serverDone, null);
  assert.equal(got, [{ type: 'ping' }]);
  assert.equal(clientGot, [{ type: 'pong' }]);
  await shut(srv.server);
});

test('the description in the docs is the protocol: a second implementation authenticates', async () => {
  // As a client against the code under test...
  const srv = await authServer({ secret: SECRET, role: 'dom0' });
  const sock = await rawConnect(srv.port);
  const nonceC = randomBytes(32);
  sock.write(hello(ROLE.rank, nonceC));
  const h = await readN(sock, 40);
  assert.equal([...h.subarray(0, 8)], [0x53, 0x46, 0x48, 0x53, 1, ROLE.dom0, 0, 0]);
  const nonceS = h.subarray(8);
  sock.write(proof(SECRET, 'C', ROLE.rank, ROLE.dom0, nonceC, nonceS));
  assert.equal(await readN(sock, 32), proof(SECRET, 'S', ROLE.rank, ROLE.dom0, nonceC, nonceS));
  const out = await srv.next();
  assert.ok(out.ok);
  assert.is(peerRole((out as { socket: net.Socket }).socket), 'rank');
  // ...and as a server whose proof arrives in one write with the first frame after it: the
  // frame must not be lost (it is put back into the socket).
  let fakeSaw: Buffer | null = null;
  const { server: fake, port: fakePort } = await rawServer(async (s) => {
    s.write(hello(ROLE.dom0, nonceS));
    const hc = await readN(s, 40);
    fakeSaw = await readN(s, 32);
    s.end(Buffer.concat([proof(SECRET, 'S', ROLE.launcher, ROLE.dom0, hc.subarray(8), nonceS), encodeMessage({ type: 'error', message: 'right after' })]));
    assert.equal(fakeSaw, proof(SECRET, 'C', ROLE.launcher, ROLE.dom0, hc.subarray(8), nonceS));
  });
  const client = await connectAuthenticated({ host: '127.0.0.1', port: fakePort, secret: SECRET, role: 'launcher' });
  const got = await new Promise<Message[]>((resolve) => {
    const msgs: Message[] = [];
    new FrameChannel(client, { onMessage: (m) => msgs.push(m), onClose: () => resolve(msgs) });
  });
  assert.equal(got, [{ type: 'error', message: 'right after' }]);
  sock.destroy();
  (out as { socket: net.Socket }).socket.destroy();
  await new Promise<void>((r) => fake.close(() => r()));
  await shut(srv.server);
});

test('an authenticated socket\'s fd carries raw bytes (for data connections handed to C ranks)', async () => {
  const srv = await authServer({ secret: SECRET, role: 'rank', accept: ['rank'] });
  const client = await connectAuthenticated({ host: '127.0.0.1', port: srv.port, secret: SECRET, role: 'rank', accept: ['rank'] });
  const out = await srv.next();
  assert.ok(out.ok);
  const server = (out as { socket: net.Socket }).socket;
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  assert.ok(fd > 2, `no fd: ${fd}`);
  fs.writeSync(fd, 'raw bytes on the fd');
  client.resume();
  assert.is((await readN(client, 19)).toString(), 'raw bytes on the fd');
  await shut(srv.server, client, server);
});

// ---------------------------------------------------------------- refused

test('a wrong secret is refused on both ends', async () => {
  const srv = await authServer({ secret: SECRET, role: 'dom0' });
  const other = newSecret();
  const client = connectAuthenticated({ host: '127.0.0.1', port: srv.port, secret: other, role: 'launcher' });
  await rejected(
    client,
    'ERR_HANDSHAKE_CLOSED',
    `127.0.0.1:${srv.port} closed the connection instead of proving the job secret: it refused this end's proof (do both ends have the same job secret?)`,
  );
  await failure(srv.next(), 'ERR_HANDSHAKE_AUTH', /^127\.0\.0\.1:\d+ failed to prove the job secret \(a different job's secret, or not an sfmpi peer\)$/);
  // The other way round: a server that does not know the secret, but has the client's proof to
  // check... it cannot make one of its own.
  const { server: fake, port: fport } = await rawServer(async (s) => {
    s.write(hello(ROLE.dom0, randomBytes(32)));
    await readN(s, 72);
    s.write(randomBytes(32));
  });
  await rejected(
    connectAuthenticated({ host: '127.0.0.1', port: fport, secret: SECRET, role: 'launcher' }),
    'ERR_HANDSHAKE_AUTH',
    `127.0.0.1:${fport} failed to prove the job secret (a different job's secret, or not an sfmpi peer)`,
  );
  await new Promise<void>((r) => fake.close(() => r()));
  await shut(srv.server);
});

test('a replayed proof is refused: it was bound to another connection\'s nonce', async () => {
  const srv = await authServer({ secret: SECRET, role: 'dom0' });
  // A legitimate session, recorded by an eavesdropper.
  const nonceC = randomBytes(32);
  const a = await rawConnect(srv.port);
  a.write(hello(ROLE.launcher, nonceC));
  const ha = await readN(a, 40);
  const recorded = proof(SECRET, 'C', ROLE.launcher, ROLE.dom0, nonceC, ha.subarray(8));
  a.write(recorded);
  await readN(a, 32);
  assert.ok((await srv.next()).ok);
  a.destroy();
  // The eavesdropper replays the client's bytes on a new connection: same hello, same proof.
  const b = await rawConnect(srv.port);
  b.write(hello(ROLE.launcher, nonceC));
  await readN(b, 40);
  b.write(recorded);
  await failure(srv.next(), 'ERR_HANDSHAKE_AUTH', `${peerOf(b)} failed to prove the job secret (a different job's secret, or not an sfmpi peer)`);
  await closed(b);
  await shut(srv.server);
});

test('a reflected hello or proof is refused, against a server and against a client', async () => {
  const srv = await authServer({ secret: SECRET, role: 'dom0' });
  // Against the server: its own hello sent back.
  const a = await rawConnect(srv.port);
  a.write(await readN(a, 40));
  await failure(srv.next(), 'ERR_HANDSHAKE_REFLECTED', `${peerOf(a)} sent back this end's own nonce (a reflected hello)`);
  await closed(a);
  // The same nonce under another role.
  const b = await rawConnect(srv.port);
  const hb = await readN(b, 40);
  b.write(hello(ROLE.launcher, hb.subarray(8)));
  await failure(srv.next(), 'ERR_HANDSHAKE_REFLECTED', `${peerOf(b)} sent back this end's own nonce (a reflected hello)`);
  await closed(b);

  // Against a client: a server that mirrors everything the client says.
  const { server: mirror, port: mport } = await rawServer((s) => void s.on('data', (d) => s.write(d)));
  await rejected(
    connectAuthenticated({ host: '127.0.0.1', port: mport, secret: SECRET, role: 'dom0' }),
    'ERR_HANDSHAKE_REFLECTED',
    `127.0.0.1:${mport} sent back this end's own nonce (a reflected hello)`,
  );
  // A server with a nonce of its own that hands the client's proof back as its proof.
  const { server: reflector, port: rport } = await rawServer(async (s) => {
    s.write(hello(ROLE.dom0, randomBytes(32)));
    await readN(s, 40);
    s.write(await readN(s, 32));
  });
  await rejected(
    connectAuthenticated({ host: '127.0.0.1', port: rport, secret: SECRET, role: 'dom0' }),
    'ERR_HANDSHAKE_AUTH',
    `127.0.0.1:${rport} failed to prove the job secret (a different job's secret, or not an sfmpi peer)`,
  );
  await new Promise<void>((r) => mirror.close(() => r()));
  await new Promise<void>((r) => reflector.close(() => r()));
  await shut(srv.server);
});

test('a peer of a role this end does not accept gets no proof', async () => {
  const srv = await authServer({ secret: SECRET, role: 'dom0', accept: ['launcher'] });
  const client = connectAuthenticated({ host: '127.0.0.1', port: srv.port, secret: SECRET, role: 'rank' });
  await failure(srv.next(), 'ERR_HANDSHAKE_ROLE', /^127\.0\.0\.1:\d+ says it is a rank, this dom0 accepts only launcher$/);
  await rejected(client, 'ERR_HANDSHAKE_CLOSED', `127.0.0.1:${srv.port} closed the connection instead of proving the job secret: it refused this end's proof (do both ends have the same job secret?)`);
  // A client that accepts only a launcher refuses a dom0 before proving anything.
  await rejected(
    connectAuthenticated({ host: '127.0.0.1', port: srv.port, secret: SECRET, role: 'launcher', accept: ['launcher', 'rank'] }),
    'ERR_HANDSHAKE_ROLE',
    `127.0.0.1:${srv.port} says it is a dom0, this launcher accepts only launcher or rank`,
  );
  await failure(srv.next(), 'ERR_HANDSHAKE_CLOSED', /^127\.0\.0\.1:\d+ closed the connection during the handshake, while this end waited for its proof of the job secret \(0 of 32 bytes\)$/);
  await shut(srv.server);
});

test('a silent peer is dropped at the deadline, on either side and at either stage', async () => {
  const srv = await authServer({ secret: SECRET, role: 'dom0', timeoutMs: 150 });
  const a = await rawConnect(srv.port);
  await failure(srv.next(), 'ERR_HANDSHAKE_TIMEOUT', `handshake with ${peerOf(a)} timed out after 150 ms, waiting for its hello (0 of 40 bytes)`);
  await closed(a);
  const b = await rawConnect(srv.port);
  b.write(hello(ROLE.launcher, randomBytes(32)).subarray(0, 17));
  await failure(srv.next(), 'ERR_HANDSHAKE_TIMEOUT', `handshake with ${peerOf(b)} timed out after 150 ms, waiting for its hello (17 of 40 bytes)`);
  await closed(b);
  const c = await rawConnect(srv.port);
  c.write(hello(ROLE.launcher, randomBytes(32)));
  c.write(Buffer.alloc(5));
  await failure(srv.next(), 'ERR_HANDSHAKE_TIMEOUT', `handshake with ${peerOf(c)} timed out after 150 ms, waiting for its proof of the job secret (5 of 32 bytes)`);
  await closed(c);
  // A server that accepts and says nothing.
  const { server: silent, port: sport } = await rawServer(() => {});
  await rejected(
    connectAuthenticated({ host: '127.0.0.1', port: sport, secret: SECRET, role: 'launcher', timeoutMs: 150 }),
    'ERR_HANDSHAKE_TIMEOUT',
    `handshake with 127.0.0.1:${sport} timed out after 150 ms, waiting for its hello (0 of 40 bytes)`,
  );
  await new Promise<void>((r) => silent.close(() => r()));
  await shut(srv.server);
});

test('a peer that closes or resets mid-handshake is reported, on either side', async () => {
  const srv = await authServer({ secret: SECRET, role: 'dom0' });
  const a = await rawConnect(srv.port);
  a.end(hello(ROLE.launcher, randomBytes(32)).subarray(0, 20));
  await failure(srv.next(), 'ERR_HANDSHAKE_CLOSED', `${peerOf(a)} closed the connection during the handshake, while this end waited for its hello (20 of 40 bytes)`);
  await closed(a);
  const b = await rawConnect(srv.port);
  b.write(hello(ROLE.launcher, randomBytes(32)));
  await readN(b, 40);
  b.end(Buffer.alloc(10));
  await failure(srv.next(), 'ERR_HANDSHAKE_CLOSED', `${peerOf(b)} closed the connection during the handshake, while this end waited for its proof of the job secret (10 of 32 bytes)`);
  await closed(b);
  const c = await rawConnect(srv.port);
  const port = peerOf(c);
  await readN(c, 40);
  c.resetAndDestroy();
  await failure(srv.next(), 'ERR_HANDSHAKE_CLOSED', `connection to ${port} failed during the handshake: ECONNRESET`);
  // A server that hangs up after half a hello.
  const { server: quitter, port: qport } = await rawServer((s) => void s.end(hello(ROLE.dom0, randomBytes(32)).subarray(0, 9)));
  await rejected(
    connectAuthenticated({ host: '127.0.0.1', port: qport, secret: SECRET, role: 'launcher' }),
    'ERR_HANDSHAKE_CLOSED',
    `127.0.0.1:${qport} closed the connection during the handshake, while this end waited for its hello (9 of 40 bytes)`,
  );
  await new Promise<void>((r) => quitter.close(() => r()));
  // Nobody listening at all: its own code, so that a caller can say "nothing listens there".
  await rejected(
    connectAuthenticated({ host: '127.0.0.1', port: qport, secret: SECRET, role: 'launcher' }),
    'ERR_HANDSHAKE_REFUSED',
    `connection to 127.0.0.1:${qport} failed during the handshake: ECONNREFUSED`,
  );
  await shut(srv.server);
});

test('garbage, another version, an unknown role or reserved bits are refused at once', async () => {
  const srv = await authServer({ secret: SECRET, role: 'dom0', timeoutMs: 2000 });
  const cases: [Buffer, string, (p: string) => string][] = [
    [Buffer.from('GET / HTTP/1.1\r\n\r\n'), 'ERR_HANDSHAKE_PROTOCOL', (p) => `${p} does not speak the sfmpi handshake: it sent 47 45 54 20 2f 20 48 54 "GET / HT"`],
    [Buffer.from([0x16, 0x03, 0x01]), 'ERR_HANDSHAKE_PROTOCOL', (p) => `${p} does not speak the sfmpi handshake: it sent 16 03 01 "..."`],
    [encodeMessage({ type: 'ping' }), 'ERR_HANDSHAKE_PROTOCOL', (p) => `${p} does not speak the sfmpi handshake: it sent 53 46 43 4e 01 08 00 00 "SFCN...."`],
    [hello(ROLE.launcher, randomBytes(32), 2), 'ERR_HANDSHAKE_VERSION', (p) => `${p} speaks handshake version 2, this end version 1`],
    [hello(9, randomBytes(32)), 'ERR_HANDSHAKE_PROTOCOL', (p) => `${p} sent an unknown role 9 in its hello`],
    [Buffer.concat([Buffer.from('SFHS'), Buffer.from([1, 1, 0, 1])]), 'ERR_HANDSHAKE_PROTOCOL', (p) => `${p} sent non-zero reserved bytes in its hello`],
  ];
  for (const [bytes, code, message] of cases) {
    const s = await rawConnect(srv.port);
    s.on('error', () => {});
    s.write(bytes);
    await failure(srv.next(), code, message(peerOf(s)));
    await closed(s);
  }
  for (let i = 0; i < 50; i++) {
    const s = await rawConnect(srv.port);
    s.on('error', () => {});
    s.write(randomBytes(1 + (i % 60)));
    const out = await srv.next();
    assert.is(out.ok, false, 'random bytes authenticated');
    s.destroy();
  }
  // After all that, a good client still gets in.
  const good = await connectAuthenticated({ host: '127.0.0.1', port: srv.port, secret: SECRET, role: 'launcher' });
  const out = await srv.next();
  assert.ok(out.ok);
  await shut(srv.server, good, (out as { socket: net.Socket }).socket);
  assert.is(uncaught, 0, 'an exception escaped');
});

test('bad arguments are refused before anything is sent', () => {
  const sock = new net.Socket();
  assert.throws(() => handshakeSocket(sock, { secret: Buffer.alloc(16), role: 'dom0', side: 'server' }), /the job secret must be 32 bytes, got 16/);
  assert.throws(() => handshakeSocket(sock, { secret: SECRET, role: 'boss' as RoleName, side: 'server' }), /unknown role "boss" \(launcher, dom0 or rank\)/);
  assert.throws(() => handshakeSocket(sock, { secret: SECRET, role: 'dom0', side: 'middle' as 'client' }), /side must be "client" or "server", got "middle"/);
  assert.throws(() => handshakeSocket(sock, { secret: SECRET, role: 'dom0', side: 'server', accept: ['x' as RoleName] }), /unknown role "x" in accept/);
  assert.throws(() => handshakeSocket(sock, { secret: SECRET, role: 'dom0', side: 'server', timeoutMs: 0 }), /timeoutMs must be a positive number of ms, got 0/);
  sock.destroy();
});

// ---------------------------------------------------------------- the secret

test('the secret: 32 random bytes, 43 base64url characters, never echoed in errors', () => {
  const a = newSecret();
  assert.is(a.length, 32);
  assert.is.not(a.toString('hex'), newSecret().toString('hex'));
  const text = encodeSecret(a);
  assert.match(text, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(decodeSecret(text), a);
  assert.equal(decodeSecret(`  ${text}\n`), a);
  const bad = text.slice(0, 40);
  assert.throws(() => decodeSecret(bad), (e: Error) => e.message === `${SECRET_ENV}: the job secret must be 43 base64url characters (32 bytes), got 40 characters` && !e.message.includes(bad));
  assert.throws(() => decodeSecret(text.slice(0, 42) + '+', 'stdin'), (e: Error) => e.message === 'stdin: the job secret must be 43 base64url characters (32 bytes), got 43 characters');
  assert.throws(() => encodeSecret(Buffer.alloc(31)), /the job secret must be 32 bytes, got 31/);
  const env: NodeJS.ProcessEnv = { [SECRET_ENV]: text, OTHER: 'x' };
  assert.equal(secretFromEnv(env), a);
  assert.equal(env, { OTHER: 'x' }, 'the secret is removed from the environment once loaded');
  assert.throws(() => secretFromEnv(env), new RegExp(`^${SECRET_ENV} is not set: the job secret is missing$`));
  const kept: NodeJS.ProcessEnv = { MY_SECRET: text };
  assert.equal(secretFromEnv(kept, 'MY_SECRET', false), a);
  assert.is(kept.MY_SECRET, text);
});

test('the secret line on stdin: read, the rest left for the lifeline; a missing line is named', async () => {
  const text = encodeSecret(SECRET);
  const s = new PassThrough();
  s.write(text.slice(0, 10));
  setTimeout(() => s.write(`${text.slice(10)}\nafter the line`), 10);
  assert.equal(await readSecretLine(s, 1000), SECRET);
  const rest = await new Promise<string>((resolve) => {
    s.once('data', (d) => resolve(d.toString()));
    s.resume();
  });
  assert.is(rest, 'after the line');
  const ended = new PassThrough();
  ended.end(text);
  await readSecretLine(ended, 1000).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, 'standard input ended before the job secret line'),
  );
  const silent = new PassThrough();
  await readSecretLine(silent, 50).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, 'standard input: no job secret line within 50 ms'),
  );
  const long = new PassThrough();
  long.write('x'.repeat(100));
  await readSecretLine(long, 1000).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, 'standard input: no job secret line in the first 100 bytes'),
  );
  const wrong = new PassThrough();
  wrong.write('not a secret\n');
  await readSecretLine(wrong, 1000, 'ssh stdin').then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, 'ssh stdin: the job secret must be 43 base64url characters (32 bytes), got 12 characters'),
  );
  assert.equal(await openHandles(), []);
});

test.run();
