// Property: a clone of an origin holding plain typed arrays (on transparent huge pages where the
// kernel allows them) or an ordinary heap of small objects sees the origin's values as of the
// fork point and never the origin's later writes; the origin never sees a clone's writes.
//
// This file is also the origin: run with `--sfmpi-origin <scenario>` it plays one scenario and
// prints `RESULT <json>`. Origin and clones take turns through two socket pairs: the clones
// check the fork-point values, the origin overwrites its state and says so, the clones check
// again and write their own marks and say so, the origin checks its state.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clone, exit, join, requestTicket } from '../../index.js';
import { native } from '../../native/addon.js';
import { run } from '../helpers.js';

const MiB = 1024 * 1024;
const self = fileURLToPath(import.meta.url);

// ---- the origin's side -------------------------------------------------------------------------

/** One direction of a socket pair that the origin and every clone hold both ends of: say()
 * writes bytes, hear() takes them, waiting at most `ms` and then saying how many came. */
class Turn {
  private readonly ends: [number, number];
  constructor(private readonly name: string) {
    this.ends = native.socketPair();
  }
  say(count = 1): void {
    fs.writeSync(this.ends[0], Buffer.alloc(count, 1));
  }
  hear(count = 1, ms = 60_000): void {
    const deadline = Date.now() + ms;
    for (let got = 0; got < count; ) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: ${got} of ${count} bytes within ${ms} ms`);
      try {
        got += native.recvMsg(this.ends[1], count - got, left).data.length;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ETIMEDOUT') throw e;
      }
    }
  }
}

/** up.hear(n) in the origin: on a timeout, the clones' outcomes say what became of them. */
async function hearAll(up: Turn, n: number, ticket: Parameters<typeof join>[0]): Promise<void> {
  try {
    up.hear(n);
  } catch (e) {
    const outcomes = await join(ticket);
    throw new Error(`${(e as Error).message}; the clones: ${JSON.stringify(outcomes)}`);
  }
}

/** The element pattern at the fork point: exact in doubles, different on every page. */
const pattern = (i: number) => (i % 4099) + 1;

function sum(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

// Every 512th element is one per 4 KiB page: a write there dirties every page of the array.
const STRIDE = 512;

interface ArrayReport {
  clones: { ok: boolean; reason?: string; atFork?: number; afterOriginWrote?: number; afterOwnWrites?: number; expectedOwn?: number }[];
  expected: number;
  originAfterClonesWrote: number;
  originExpected: number;
  hugeBytes: number;
  bytes: number;
  hugePages: ReturnType<typeof native.hugePages>;
}

/** An origin with one Float64Array of `len` elements (plain, or over a SharedArrayBuffer, which
 * a clone gets a copy of like any other memory) and `n` clones. */
async function arrays(len: number, n: number, shared = false): Promise<ArrayReport> {
  const a = shared ? new Float64Array(new SharedArrayBuffer(len * 8)) : new Float64Array(len);
  for (let i = 0; i < len; i++) a[i] = pattern(i);
  const expected = sum(a);
  const hugeBytes = native.hugePageBytes(a);
  const down = new Turn('down');
  const up = new Turn('up');
  const ticket = requestTicket(n);
  const id = clone(ticket);
  if (id > 0) {
    const atFork = sum(a);
    down.hear();
    const afterOriginWrote = sum(a);
    // Clone k marks the pages k-1, k-1+n, ...: together the clones dirty every page once.
    let expectedOwn = afterOriginWrote;
    for (let i = (id - 1) * STRIDE; i < len; i += n * STRIDE) {
      expectedOwn += -id - a[i];
      a[i] = -id;
    }
    up.say();
    exit({ atFork, afterOriginWrote, afterOwnWrites: sum(a), expectedOwn });
  }
  // The origin's later writes: one per page, so every huge page is split and copied on write.
  let originExpected = expected;
  for (let i = 0; i < len; i += STRIDE) {
    originExpected += 1e6 - a[i];
    a[i] = 1e6;
  }
  down.say(n);
  await hearAll(up, n, ticket);
  const originAfterClonesWrote = sum(a);
  const outcomes = await join(ticket);
  return {
    clones: outcomes.map((o) => (o.ok ? { ok: true, ...(o.value as object) } : { ok: false, reason: o.reason })),
    expected,
    originAfterClonesWrote,
    originExpected,
    hugeBytes,
    bytes: len * 8,
    hugePages: native.hugePages(),
  };
}

interface Node {
  id: number;
  name: string;
  tags: string[];
  next: Node | null;
}

/** A digest of the heap: every object, string and link is read. */
function digest(nodes: Node[], index: Map<string, Node>): number {
  let d = 0;
  for (const o of nodes) d += o.id + o.name.length + o.tags.length + (o.next ? o.next.id : -1);
  for (const [k, v] of index) d += k.length + v.id;
  return d;
}

/** An origin with 300 000 small objects (linked, in an array and a Map) and `n` clones. */
async function heap(n: number) {
  const nodes: Node[] = [];
  for (let i = 0; i < 300_000; i++) nodes.push({ id: i, name: `node-${i}`, tags: i % 3 ? ['a'] : ['a', 'b'], next: null });
  for (let i = 0; i + 1 < nodes.length; i++) nodes[i].next = nodes[i + 1];
  const index = new Map(nodes.map((o) => [o.name, o]));
  const expected = digest(nodes, index);
  const down = new Turn('down');
  const up = new Turn('up');
  const ticket = requestTicket(n);
  const id = clone(ticket);
  if (id > 0) {
    const atFork = digest(nodes, index);
    down.hear();
    const afterOriginWrote = digest(nodes, index);
    for (const o of nodes) o.tags.push(`clone-${id}`);
    index.clear();
    up.say();
    exit({ atFork, afterOriginWrote, afterOwnWrites: digest(nodes, index) });
  }
  for (const o of nodes) o.name += '!';
  nodes.length = 1000;
  index.set('origin', nodes[0]);
  const originExpected = digest(nodes, index);
  down.say(n);
  await hearAll(up, n, ticket);
  const originAfterClonesWrote = digest(nodes, index);
  const outcomes = await join(ticket);
  return {
    clones: outcomes.map((o) => (o.ok ? { ok: true, ...(o.value as object) } : { ok: false, reason: o.reason })),
    expected,
    originExpected,
    originAfterClonesWrote,
  };
}

/** Each kind of large buffer Node hands out, and how much of each is on huge pages. */
function kinds() {
  const bytes = 64 * MiB;
  const views: Record<string, Uint8Array> = {
    'new Float64Array': new Uint8Array(new Float64Array(bytes / 8).buffer),
    'new ArrayBuffer': new Uint8Array(new ArrayBuffer(bytes)),
    'Buffer.allocUnsafe': Buffer.allocUnsafe(bytes),
    'Buffer.alloc': Buffer.alloc(bytes),
    'new SharedArrayBuffer': new Uint8Array(new SharedArrayBuffer(bytes)),
  };
  const share: Record<string, number> = {};
  for (const [k, v] of Object.entries(views)) {
    v.fill(7);
    share[k] = native.hugePageBytes(v) / bytes;
  }
  return { share, hugePages: native.hugePages() };
}

async function origin(scenario: string): Promise<void> {
  let result: unknown;
  if (scenario === 'plain-1') result = await arrays((300 * MiB) / 8 + 12_345, 1);
  else if (scenario === 'plain-8') result = await arrays((256 * MiB) / 8, 8);
  else if (scenario === 'shared-2') result = await arrays((64 * MiB) / 8, 2, true);
  else if (scenario === 'heap-2') result = await heap(2);
  else if (scenario === 'kinds') result = kinds();
  else throw new Error(`unknown scenario ${scenario}`);
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

// ---- the tests ---------------------------------------------------------------------------------

async function play(scenario: string, nodeFlags = ['--single-threaded']) {
  const r = await run(process.execPath, [...nodeFlags, self, '--sfmpi-origin', scenario], { timeoutMs: 120_000 });
  assert.is(r.timedOut, false, `${scenario}: timed out; stderr: ${r.stderr}`);
  assert.is(r.code, 0, `${scenario}: origin exit code; stderr: ${r.stderr}`);
  assert.is(r.signal, null);
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `${scenario}: no RESULT line; stdout: ${r.stdout} stderr: ${r.stderr}`);
  return JSON.parse(line.slice(7));
}

function checkArrays(r: ArrayReport, n: number): void {
  assert.is(r.clones.length, n);
  for (const [k, c] of r.clones.entries()) {
    assert.ok(c.ok, `clone ${k + 1}: ${c.reason}`);
    assert.is(c.atFork, r.expected, `clone ${k + 1} saw other values than the origin's at the fork point`);
    assert.is(c.afterOriginWrote, r.expected, `clone ${k + 1} saw the origin's later writes`);
    assert.is(c.afterOwnWrites, c.expectedOwn, `clone ${k + 1} lost its own writes or saw another clone's`);
  }
  assert.is(r.originAfterClonesWrote, r.originExpected, "the origin saw a clone's writes (or lost its own)");
}

const thp = native.hugePages();
const thpOn = thp.mode === 'madvise' || thp.mode === 'always';

test('1 clone of a 300 MiB plain Float64Array: fork-point values, no later writes either way', async () => {
  checkArrays(await play('plain-1'), 1);
});

test('8 clones of a 256 MiB plain Float64Array: fork-point values, no later writes either way', async () => {
  checkArrays(await play('plain-8'), 8);
});

test('the same under plain node (no --single-threaded)', async () => {
  checkArrays(await play('plain-8', []), 8);
});

test('a SharedArrayBuffer is the clone\'s own copy too: no later writes either way', async () => {
  checkArrays(await play('shared-2'), 2);
});

test('huge pages: large ArrayBuffers are advised, and the kernel backs them so', async () => {
  if (!thpOn) {
    console.log(`  skip: THP is "${thp.mode}" here (/sys/kernel/mm/transparent_hugepage/enabled), so plain arrays stay on 4 KiB pages`);
    return;
  }
  const r = await play('plain-1');
  assert.ok(r.hugePages.hooked, `ArrayBuffer allocations are not advised: ${r.hugePages.reason}`);
  assert.ok(r.hugePages.buffers >= 1 && r.hugePages.bytes >= 290 * MiB, JSON.stringify(r.hugePages));
  // All but the unaligned head and tail (under 2 MiB each) of a 300 MiB array.
  assert.ok(r.hugeBytes >= r.bytes - 4 * MiB, `only ${(r.hugeBytes / MiB).toFixed(0)} of ${(r.bytes / MiB).toFixed(0)} MiB on huge pages`);
  for (const flags of [['--single-threaded'], []]) {
    const k = await play('kinds', flags);
    assert.ok(k.hugePages.hooked, `node ${flags.join(' ')}: ${k.hugePages.reason}`);
    for (const [kind, share] of Object.entries(k.share as Record<string, number>))
      assert.ok(share > 0.9, `node ${flags.join(' ')}: ${kind} of 64 MiB: ${(share * 100).toFixed(0)}% on huge pages`);
  }
});

test('an ordinary heap of 300 000 small objects: fork-point values, no later writes either way', async () => {
  const r = await play('heap-2');
  assert.is(r.clones.length, 2);
  for (const [k, c] of r.clones.entries()) {
    assert.ok(c.ok, `clone ${k + 1}: ${c.reason}`);
    assert.is(c.atFork, r.expected, `clone ${k + 1}: fork-point heap differs`);
    assert.is(c.afterOriginWrote, r.expected, `clone ${k + 1} saw the origin's later writes`);
    assert.ok(c.afterOwnWrites !== r.expected, `clone ${k + 1}: its own writes did not show`);
  }
  assert.is(r.originAfterClonesWrote, r.originExpected, "the origin saw a clone's writes");
});

if (process.argv[2] === '--sfmpi-origin') await origin(process.argv[3]);
else test.run();
