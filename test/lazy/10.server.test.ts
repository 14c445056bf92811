// Property: the memory server serves its ranges exactly as they were when it started (the
// origin's later writes never reach it), answers page requests in the format drawn in
// native/lazy/memsrv.c, refuses and counts every malformed request by ending only that
// connection, keeps no fd but its control socket, and leaves no process behind. The requests
// here are built from that drawing with Buffer, not through the code under test.
import fs from 'node:fs';
import net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectAuthenticated, handshakeSocket } from '../../dom0/handshake.js';
import { region } from '../../runtime/index.js';
import { startMemoryServer, zeroMap, zeroPages, type MemoryServer } from '../../xen/lazy.js';
import { alive, until } from '../helpers.js';
import { secret } from './helpers.js';

const PAGE = 4096;

/** A page request as memsrv.c draws it. */
function request(o: { magic?: string; version?: number; type?: number; flags?: number; region: number; count: number; first: number; tag?: number }): Buffer {
  const b = Buffer.alloc(32);
  b.write(o.magic ?? 'SFMQ', 0, 'latin1');
  b[4] = o.version ?? 1;
  b[5] = o.type ?? 1;
  b.writeUInt16LE(o.flags ?? 0, 6);
  b.writeUInt32LE(o.region, 8);
  b.writeUInt32LE(o.count, 12);
  b.writeBigUInt64LE(BigInt(o.first), 16);
  b.writeBigUInt64LE(BigInt(o.tag ?? 77), 24);
  return b;
}

/** Reads exactly n bytes, or what came before the end (then `ended`). */
function readN(sock: net.Socket, n: number, ms = 5000): Promise<{ data: Buffer; ended: boolean }> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = (ended: boolean) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('close', onEnd);
      sock.pause();
      if (buf.length > n) sock.unshift(buf.subarray(n));
      resolve({ data: buf.subarray(0, n), ended });
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= n) done(false);
    };
    const onEnd = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    sock.on('data', onData);
    sock.once('end', onEnd);
    sock.once('close', onEnd);
    sock.resume();
  });
}

interface Reply {
  magic: string;
  version: number;
  type: number;
  status: number;
  region: number;
  count: number;
  first: number;
  tag: number;
  pageSize: number;
  sent: number;
}
const reply = (b: Buffer): Reply => ({
  magic: b.subarray(0, 4).toString('latin1'),
  version: b[4],
  type: b[5],
  status: b.readUInt16LE(6),
  region: b.readUInt32LE(8),
  count: b.readUInt32LE(12),
  first: Number(b.readBigUInt64LE(16)),
  tag: Number(b.readBigUInt64LE(24)),
  pageSize: b.readUInt32LE(32),
  sent: b.readUInt32LE(36),
});

/** A listener that authenticates each connection and hands it to the server. */
async function serve(server: MemoryServer): Promise<{ port: number; close(): void }> {
  const listener = net.createServer((socket) => {
    socket.on('error', () => {});
    handshakeSocket(socket, { secret, role: 'dom0', side: 'server', accept: ['rank'] })
      .then((s) => server.addConnection(s))
      .catch(() => {});
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  return { port: (listener.address() as net.AddressInfo).port, close: () => listener.close() };
}

const client = (port: number) => connectAuthenticated({ host: '127.0.0.1', port, secret, role: 'rank', accept: ['dom0'] });

test('zeroMap: untouched memory is zero without a read, written pages by their contents', () => {
  const small = region(Uint8Array, 64 * PAGE, { hugePages: false });
  assert.is(zeroPages(zeroMap(small), 64), 64, 'a fresh region is all zero');
  small[3 * PAGE + 100] = 1;
  small.fill(0, 10 * PAGE, 11 * PAGE); // written, but zero
  const m = zeroMap(small);
  assert.is(zeroPages(m, 64), 63);
  assert.is((m[0] >> 3) & 1, 0, 'page 3 holds data');
  // An ordinary ArrayBuffer, not page-aligned, with an odd length: pages counted from its start.
  const plain = new Uint8Array(5 * PAGE + 10);
  plain[2 * PAGE] = 9;
  plain[5 * PAGE + 9] = 1; // the short last page
  const p = zeroMap(plain);
  assert.is(p.length, 1);
  assert.is(p[0], 0b011011, 'pages 0, 1, 3, 4 zero; 2 and 5 not');
});

test('startMemoryServer: bad ranges are refused, naming them', () => {
  const v = new Uint8Array(PAGE);
  assert.throws(() => startMemoryServer([]), /at least one/);
  assert.throws(() => startMemoryServer([{ id: 1, view: v }, { id: 1, view: v }]), /region id 1 is given twice/);
  assert.throws(() => startMemoryServer([{ id: 1, view: new Uint8Array(0) }]), /ranges\[0\]\.view is empty/);
  assert.throws(() => startMemoryServer([{ id: -1, view: v }]), /ranges\[0\]\.id must be an integer/);
  assert.throws(() => startMemoryServer([{ id: 1, view: 'x' as unknown as Uint8Array }]), /must be an ArrayBuffer/);
});

test('the server serves its snapshot, answers as drawn, and refuses malformed requests one connection at a time', async () => {
  const pages = 300;
  const a = region(Uint8Array, pages * PAGE, { hugePages: false });
  for (let p = 0; p < pages; p++) if (p % 3 !== 0) a.fill(p & 0xff, p * PAGE, (p + 1) * PAGE); // every third page zero
  const plain = new Uint8Array(PAGE + 5).fill(0xcd);
  const server = startMemoryServer([{ id: 11, view: a }, { id: 12, view: plain }]);
  a.fill(0xee); // after the snapshot: never served
  const pid = server.pid;
  const { port, close } = await serve(server);
  try {
    const good = await client(port);
    good.write(request({ region: 11, count: 6, first: 0, tag: 5 }));
    const head = reply((await readN(good, 40)).data);
    // Once it has answered (not before: the fork may not have run its start-up yet on a loaded
    // machine), the server keeps nothing of ours but its control socket (3) and this client's
    // connection (4); 0-2 are /dev/null.
    const fds = fs.readdirSync(`/proc/${pid}/fd`).map(Number).sort((x, y) => x - y);
    assert.equal(fds, [0, 1, 2, 3, 4]);
    assert.match(fs.readlinkSync(`/proc/${pid}/fd/4`), /^socket:/);
    for (const fd of [0, 1, 2]) assert.is(fs.readlinkSync(`/proc/${pid}/fd/${fd}`), '/dev/null');
    assert.is(fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 'sfmpi-memsrv');
    assert.equal(head, { magic: 'SFMR', version: 1, type: 1, status: 0, region: 11, count: 6, first: 0, tag: 5, pageSize: PAGE, sent: 4 });
    const bits = (await readN(good, 8)).data;
    assert.is(bits[0], 0b001001, 'pages 0 and 3 are zero: a bit each, no bytes');
    const body = (await readN(good, 4 * PAGE)).data;
    for (const [k, p] of [1, 2, 4, 5].entries()) assert.ok(body.subarray(k * PAGE, (k + 1) * PAGE).every((x) => x === p), `page ${p} as of the snapshot`);
    // The short last page of an unaligned range comes zero-padded.
    good.write(request({ region: 12, count: 2, first: 0, tag: 6 }));
    assert.is(reply((await readN(good, 40)).data).sent, 2);
    await readN(good, 8);
    const tail = (await readN(good, 2 * PAGE)).data;
    assert.ok(tail.subarray(0, PAGE + 5).every((x) => x === 0xcd) && tail.subarray(PAGE + 5).every((x) => x === 0));
    // INFO: the region's length.
    good.write(request({ type: 2, region: 12, count: 0, first: 0, tag: 7 }));
    const info = reply((await readN(good, 40)).data);
    assert.is(info.status, 0);
    const ib = (await readN(good, 16)).data;
    assert.is(Number(ib.readBigUInt64LE(0)), PAGE + 5);
    assert.is(Number(ib.readBigUInt64LE(8)), 2);

    const bad: [string, Parameters<typeof request>[0], number][] = [
      ['bad magic', { magic: 'GET ', region: 11, count: 1, first: 0 }, 1],
      ['version 2', { version: 2, region: 11, count: 1, first: 0 }, 2],
      ['type 9', { type: 9, region: 11, count: 1, first: 0 }, 3],
      ['a reserved flag', { flags: 2, region: 11, count: 1, first: 0 }, 4],
      ['the multicast flag on INFO', { type: 2, flags: 1, region: 11, count: 0, first: 0 }, 4],
      ['unknown region', { region: 99, count: 1, first: 0 }, 5],
      ['no pages', { region: 11, count: 0, first: 0 }, 6],
      ['beyond the region', { region: 11, count: 2, first: pages - 1 }, 6],
      ['too many pages', { region: 11, count: 257, first: 0 }, 7],
    ];
    for (const [what, req, status] of bad) {
      const c = await client(port);
      c.write(request(req));
      const r = await readN(c, 41);
      assert.is(r.data.length, 40, `${what}: a header and nothing more`);
      assert.is(reply(r.data).status, status, what);
      assert.ok(r.ended, `${what}: the connection is closed`);
      c.destroy();
    }
    // A stranger (no handshake) never reaches the server: the handshake refuses its bytes.
    const stranger = net.connect(port, '127.0.0.1');
    stranger.on('error', () => {});
    await new Promise((r) => stranger.once('connect', r));
    stranger.write(request({ region: 11, count: 1, first: 0 }));
    const s = await readN(stranger, 4096);
    assert.ok(s.ended && s.data.length === 40 && s.data.subarray(0, 4).toString('latin1') === 'SFHS', 'only a handshake hello, then closed');

    // The good connection still works after all of that.
    good.write(request({ region: 11, count: 1, first: 1, tag: 8 }));
    assert.is(reply((await readN(good, 40)).data).status, 0);
    await readN(good, 8 + PAGE);
    const c = server.counters();
    assert.is(c.malformed, bad.length);
    assert.is(c.connections, bad.length + 1);
    assert.ok(await until(() => server.counters().open === 1, 2000), 'refused connections are closed');
    const r11 = c.regions[0];
    assert.equal([r11.requests, r11.pages, r11.sent, r11.zeroPages], [2, 7, 5, 2]);
    good.destroy();
  } finally {
    close();
  }
  assert.equal(server.close(), { code: 0, signal: null }, 'the server exits when its control socket closes');
  assert.is(alive(pid), false);
  assert.throws(() => server.counters(), /was closed/);
  assert.equal(server.close(), { code: 0, signal: null }, 'close is idempotent');
});

test('the server computes zero maps on its snapshot, while the origin writes on', () => {
  const a = region(Uint8Array, 128 * PAGE, { hugePages: false });
  a.fill(1, 0, 64 * PAGE);
  const server = startMemoryServer([{ id: 1, view: a }]);
  a.fill(1); // after: the snapshot's second half is still zero
  try {
    assert.is(zeroPages(server.zeroMap(1), 128), 64);
    assert.throws(() => server.zeroMap(2), /no region 2 here/);
  } finally {
    server.close();
  }
  const none = startMemoryServer([{ id: 1, view: a }], { zeroMaps: false });
  try {
    assert.throws(() => none.zeroMap(1), /without zero maps/);
  } finally {
    none.close();
  }
});

test.run();
