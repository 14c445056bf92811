// Property: two dom0s make exactly the links their plan asks for, over real loopback TCP, each
// proving the job's secret; strangers at a data port (garbage, a wrong secret, an authenticated
// pair the plan does not hold) are refused and reported while the mesh still completes; the
// links are bare connected sockets (bytes written on one end arrive at the other); once handed
// over the data port is closed; a peer that never comes is an error naming the missing pair.
import fs from 'node:fs';
import net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectAuthenticated, newSecret } from '../../dom0/handshake.js';
import { DataLinks, type LinkPlan } from '../../dom0/links.js';
import type { JoinLink } from '../../dom0/join.js';
import { native } from '../../native/addon.js';
import { until } from '../helpers.js';

const ranksOf = [[0, 1], [2]];

/** Reads what arrives on a (possibly non-blocking) socket fd within a deadline. */
async function readFd(fd: number, n: number): Promise<Buffer> {
  const buf = Buffer.alloc(n);
  let got = 0;
  const end = Date.now() + 5000;
  while (got < n) {
    try {
      got += fs.readSync(fd, buf, got, n - got, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      if (Date.now() > end) throw new Error(`fd ${fd}: ${got} of ${n} bytes after 5 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  return buf;
}

/** A connection that sends `bytes` and reports whether the far end closed it. */
function junk(port: number, bytes: Buffer): Promise<'closed' | 'open'> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    s.resume();
    s.on('error', () => {});
    s.on('close', () => resolve('closed'));
    setTimeout(() => {
      s.destroy();
      resolve('open');
    }, 3000);
  });
}

test('the plan\'s links, and only those, after strangers were refused', async () => {
  const secret = newSecret();
  const refused: string[][] = [[], []];
  const dl = [0, 1].map((h) => new DataLinks(secret, { timeoutMs: 3000, onRefused: (m) => refused[h].push(m) }));
  try {
    const ports = await Promise.all(dl.map((d) => d.listen('127.0.0.1')));
    const endpoints = ports.map((port) => ({ address: '127.0.0.1', port }));
    // Before the plan is known: garbage, a wrong secret, and the right secret with a pair not in the plan.
    const garbage = junk(ports[1], Buffer.alloc(2048, 0x41));
    const wrong = connectAuthenticated({ host: '127.0.0.1', port: ports[1], secret: newSecret(), role: 'dom0', timeoutMs: 2000 }).then(
      () => 'accepted',
      (e: { code?: string }) => e.code,
    );
    const stray = await connectAuthenticated({ host: '127.0.0.1', port: ports[1], secret, role: 'dom0', timeoutMs: 2000 });
    const strayPair = Buffer.alloc(8);
    strayPair.writeUInt32LE(7, 0);
    strayPair.writeUInt32LE(2, 4);
    stray.write(strayPair);
    stray.resume();
    const strayClosed = new Promise<void>((r) => stray.on('close', () => r()));
    stray.on('error', () => {});

    const plan = (me: number): LinkPlan => ({ me, ranksOf, endpoints });
    const [l0, l1] = await Promise.all([dl[0].expect(plan(0)), dl[1].expect(plan(1))]);
    assert.is(await garbage, 'closed');
    assert.match(String(await wrong), /^ERR_HANDSHAKE_/);
    await strayClosed;
    const key = (l: JoinLink) => `${l.local}->${l.peer}`;
    assert.equal(l0.map(key).sort(), ['0->2', '1->2']);
    assert.equal(l1.map(key).sort(), ['0->0', '0->1']);
    await until(() => refused[1].length >= 3, 3000);
    assert.equal(refused[0], []);
    assert.is(refused[1].length, 3, refused[1].join('\n'));
    assert.ok(refused[1].some((m) => /does not speak the sfmpi handshake/.test(m)), refused[1].join('\n'));
    assert.ok(refused[1].some((m) => /pair 7 -> 2 is not one this host expects/.test(m)), refused[1].join('\n'));

    // Bare connected sockets: rank 1's link to rank 2 carries bytes both ways.
    const a = l0.find((l) => l.local === 1)!, b = l1.find((l) => l.peer === 1)!;
    fs.writeSync(a.fd, Buffer.from('ping from 1'));
    assert.is((await readFd(b.fd, 11)).toString(), 'ping from 1');
    fs.writeSync(b.fd, Buffer.from('pong'));
    assert.is((await readFd(a.fd, 4)).toString(), 'pong');

    for (const l of [...l0, ...l1]) native.closeFd(l.fd);
    dl.forEach((d) => d.handedOver());
    // No data connection comes after the mesh: the port is closed.
    const late = await new Promise<string>((resolve) => {
      const s = net.connect(ports[1], '127.0.0.1');
      s.on('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    assert.is(late, 'ECONNREFUSED');
  } finally {
    dl.forEach((d) => d.close());
  }
});

test('a peer that never comes: expect() rejects naming the missing pair', async () => {
  const secret = newSecret();
  const d = new DataLinks(secret, { timeoutMs: 500, onRefused: () => {} });
  try {
    const port = await d.listen('127.0.0.1');
    const t0 = Date.now();
    const err = await d.expect({ me: 1, ranksOf, endpoints: [{ address: '127.0.0.1', port: 1 }, { address: '127.0.0.1', port }] }).then(
      () => null,
      (e: Error) => e,
    );
    assert.ok(err, 'expect() resolved without its peers');
    assert.match(err!.message, '2 data connection(s) from other hosts never came (first: ranks 0 -> 2)');
    assert.ok(Date.now() - t0 < 3000);
  } finally {
    d.close();
  }
});

test.run();
