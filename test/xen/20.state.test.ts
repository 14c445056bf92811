// Property: a state value split into a blob and regions, and joined again from the blob and one
// buffer per region, is the same value: shared references stay shared, views stay views of the
// same buffer at the same offsets, large buffers travel as regions (never in the blob), and
// what cannot travel is refused naming its place; a damaged blob is a DescriptorError.
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { region } from '../../runtime/region.js';
import { decodeDescriptor, DescriptorError, encodeDescriptor, LIMITS, scanZeroPages, type Descriptor } from '../../xen/descriptor.js';
import { describeRegions, joinState, splitState, STATE_REGION_THRESHOLD } from '../../xen/state.js';

/** A seed's region buffers: copies of the origin's, standing in for lazily mapped memory. */
const copies = (split: ReturnType<typeof splitState>) => split.regions.map((r) => r.buffer.slice(0));

function roundTrip<T>(value: T): { out: T; split: ReturnType<typeof splitState>; views: ArrayBuffer[] } {
  const split = splitState(value);
  const views = copies(split);
  return { out: joinState(split.blob, views) as T, split, views };
}

test('shared references, cycles and every kind of plain value come back as they were', () => {
  const shared = { name: 'shared', list: [1, 2, 3] };
  const value: Record<string, unknown> = {
    n: -0,
    big: 2n ** 100n,
    s: 'ünïcödé',
    nothing: null,
    undef: undefined,
    nan: NaN,
    date: new Date(86400000),
    re: /a+b/gi,
    map: new Map<unknown, unknown>([[shared, 'key is shared'], ['k', shared]]),
    set: new Set([shared, 7]),
    err: new Error('boom', { cause: shared }),
    a: shared,
    b: [shared, shared],
    sparse: [1, , 3], // eslint-disable-line no-sparse-arrays
  };
  value.self = value;
  const { out } = roundTrip(value);
  assert.equal(Object.keys(out), Object.keys(value));
  assert.ok(Object.is(out.n, -0));
  assert.is(out.big, 2n ** 100n);
  assert.ok(Number.isNaN(out.nan));
  assert.equal(out.date, value.date);
  assert.equal(String(out.re), '/a+b/gi');
  assert.equal(out.a, shared);
  assert.ok(out.a === (out.b as unknown[])[0] && out.a === (out.b as unknown[])[1], 'one object reached three times is one object');
  assert.ok(out.self === out, 'a cycle stays a cycle');
  const map = out.map as Map<unknown, unknown>;
  assert.ok(map.has(out.a) && map.get('k') === out.a, 'a shared object as a Map key and value');
  assert.ok((out.set as Set<unknown>).has(out.a));
  assert.is((out.err as Error).message, 'boom');
  assert.ok((out.err as Error).cause === out.a);
  assert.ok(!(1 in (out.sparse as unknown[])), 'a hole stays a hole');
});

test('views stay views of one buffer at their offsets; large buffers become regions, not blob bytes', () => {
  const big = new Float64Array(1 << 17); // 1 MiB
  for (let i = 0; i < big.length; i++) big[i] = i * 0.5;
  const bytes = new Uint8Array(big.buffer, 8 * 1000 + 3, 4096); // unaligned view of the same buffer
  const small = new ArrayBuffer(64);
  new Uint32Array(small).set([1, 2, 3, 4]);
  const value = {
    big,
    rows: [big.subarray(0, 1000), big.subarray(1000, 2000)],
    again: big,
    bytes,
    small,
    words: new Uint32Array(small, 4, 2),
    dv: new DataView(small, 8, 8),
    ints: new BigInt64Array([1n, -2n]),
  };
  const { out, split, views } = roundTrip(value);
  assert.is(split.regions.length, 1);
  const [r] = split.regions;
  assert.equal([r.slot, r.path, r.elementType, r.byteLength, r.region], [0, 'state.big', 'Float64Array', 1 << 20, undefined]);
  assert.ok(r.buffer === big.buffer, 'the region is the value\'s own buffer');
  assert.ok(split.blob.length < 2048, `blob of ${split.blob.length} bytes holds no region bytes`);

  assert.ok(out.big.buffer === views[0], 'a region\'s arrays are views of the buffer given to joinState');
  assert.ok(out.again === out.big);
  assert.equal([out.rows[1].byteOffset, out.rows[1].length, out.rows[1][5]], [8000, 1000, 1005 * 0.5]);
  assert.ok(out.rows[0].buffer === views[0] && out.bytes.buffer === views[0]);
  assert.equal([out.bytes.byteOffset, out.bytes.length, out.bytes[0]], [8003, 4096, bytes[0]]);
  out.big[1000] = 42;
  assert.is(out.rows[1][0], 42, 'writes through one view are seen through another');

  assert.ok(out.words.buffer === out.small && out.dv.buffer === out.small, 'a small buffer is shared by its views and itself');
  assert.equal([...out.words], [2, 3]);
  assert.is(out.dv.getUint32(0, true), 3);
  assert.equal(out.ints, value.ints);
});

test('region() arrays are regions whatever their size, with their region table entry', () => {
  const tiny = region(Int32Array, 10);
  tiny[3] = 7;
  const big = region(Float32Array, 1 << 20); // 4 MiB, huge pages
  const { out, split } = roundTrip({ tiny, view: tiny.subarray(2), big });
  assert.equal(split.regions.map((r) => [r.slot, r.path, r.elementType, r.region?.length]), [
    [0, 'state.tiny', 'Int32Array', 40],
    [1, 'state.big', 'Float32Array', 4 << 20],
  ]);
  assert.is(out.view[1], 7);
  assert.ok(out.view.buffer === out.tiny.buffer);
  const regions = describeRegions(split, { ids: [40, 41] });
  assert.equal(regions.map((r) => [r.id, r.slot, r.pageSize, r.hugePages, r.zeroMap.pageCount]), [
    [40, 0, 4096, false, 1],
    [41, 1, 4096, true, 1024],
  ]);
});

test('the threshold decides which ordinary buffers become regions', () => {
  const value = { a: new Uint8Array(100), b: new Uint8Array(STATE_REGION_THRESHOLD - 1), c: new Uint8Array(STATE_REGION_THRESHOLD) };
  assert.equal(splitState(value).regions.map((r) => r.path), ['state.c']);
  assert.equal(splitState(value, { threshold: 100 }).regions.map((r) => r.path), ['state.a', 'state.b', 'state.c']);
  assert.throws(() => splitState(value, { threshold: 0 }), /options.threshold must be a positive integer number of bytes, got 0/);
});

test('Buffers from Node\'s pool carry their own bytes only; other Buffers keep sharing', () => {
  const a = Buffer.from('alpha');
  const b = Buffer.from('beta');
  assert.ok(a.buffer === b.buffer && a.buffer.byteLength === Buffer.poolSize, 'this Node pools small Buffers');
  const whole = Buffer.alloc(100, 1);
  const value = { a, b, again: a, whole, part: whole.subarray(10, 20) };
  const { out, split } = roundTrip(value);
  assert.ok(split.blob.length < 1024, `blob of ${split.blob.length} bytes: the 8 KiB pool stays home`);
  assert.ok(Buffer.isBuffer(out.a) && out.a.toString() === 'alpha' && out.b.toString() === 'beta');
  assert.ok(out.again === out.a);
  assert.is(out.a.buffer.byteLength, 5);
  assert.ok(out.part.buffer === out.whole.buffer && out.part.byteOffset === 10);
});

test('a view that a getter makes anew is still carried', () => {
  const value = {};
  Object.defineProperty(value, 'v', { enumerable: true, get: () => new Uint16Array(40000).fill(9) });
  const { out } = roundTrip(value as { v: Uint16Array });
  assert.equal([out.v.length, out.v[39999]], [40000, 9]);
});

test('what cannot travel is refused, naming its place', () => {
  const detached = new ArrayBuffer(8);
  const stale = new Uint8Array(detached);
  structuredClone(detached, { transfer: [detached] });
  const sab = new SharedArrayBuffer(16);
  const cases: [unknown, string][] = [
    [{ f: () => 1 }, 'state.f is a function'],
    [{ list: [0, Symbol('s')] }, 'state.list[1] is a symbol'],
    [new Map([['k', new WeakMap()]]), 'state.get(0) is a WeakMap'],
    [{ p: Promise.resolve() }, 'state.p is a Promise'],
    [{ 'odd key': { sab } }, 'state["odd key"].sab is a SharedArrayBuffer (memory shared between threads of one process cannot be shared with another host: copy it into an ArrayBuffer or a region())'],
    [{ v: new Int32Array(sab) }, 'state.v is a view of a SharedArrayBuffer (memory shared between threads of one process cannot be shared with another host: copy it into an ArrayBuffer or a region())'],
    [{ gone: detached }, 'state.gone is a detached ArrayBuffer (its memory was transferred away)'],
    [{ gone: stale }, 'state.gone is a view of a detached ArrayBuffer (its memory was transferred away)'],
    [{ grow: new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer)(8, { maxByteLength: 64 }) }, 'state.grow is a resizable ArrayBuffer (a region has a fixed length: copy it into a fixed-length one)'],
  ];
  for (const [value, what] of cases) {
    assert.throws(
      () => splitState(value),
      (e: Error) => e instanceof TypeError && e.message === `splitState(value): ${what}, which cannot be sent to a clone on another host`,
      what,
    );
  }
  assert.throws(() => splitState({ s: Symbol('x') }, { where: 'MPI.init({ share })' }), (e: Error) => e instanceof TypeError && e.message.startsWith('MPI.init({ share }): state.s is a symbol'));
});

test('a state whose blob would not fit a descriptor is refused before it is sent', () => {
  const value = Array.from({ length: 40 }, () => new Uint8Array(60 * 1024));
  assert.throws(
    () => splitState(value),
    (e: DescriptorError) =>
      e instanceof DescriptorError &&
      e.code === 'ERR_DESCRIPTOR_TOO_LARGE' &&
      /^splitState\(value\): the state blob is \d+ bytes, over the descriptor's limit of 2097152: hand large data as typed arrays of at least 65536 bytes/.test(e.message),
  );
  assert.is(splitState(value, { threshold: 60 * 1024 }).regions.length, 40);
});

test('joinState refuses region buffers that do not match the state', () => {
  const split = splitState({ a: new Float64Array(10000), b: new Uint8Array(70000) });
  const views = copies(split);
  assert.throws(() => joinState(split.blob, [views[0]]), (e: DescriptorError) => e.code === 'ERR_DESCRIPTOR_STATE' && /a region in slot 1, but joinState was given 1 region buffers/.test(e.message));
  assert.throws(() => joinState(split.blob, [...views, new ArrayBuffer(1)]), /state blob buffers at offset 4: 2 regions, but joinState was given 3 region buffers/);
  assert.throws(() => joinState(split.blob, [views[1], views[0]]), /the region in slot 0 is 80000 bytes, but joinState's views\[0\] is 70000/);
  assert.throws(() => joinState(split.blob, [views[0], new Uint8Array(70000) as never]), (e: Error) => e instanceof TypeError && e.message === 'joinState(blob, views): views[1] must be an ArrayBuffer');
});

test('a truncated or damaged blob is a DescriptorError, never anything else', () => {
  const shared = { x: 1 };
  const split = splitState({ shared, again: shared, big: new Float64Array(10000), small: new Int16Array([1, 2, 3]), m: new Map([[1, 'a']]), s: 'text' });
  const views = copies(split);
  for (let n = 0; n < split.blob.length; n++) {
    assert.throws(() => joinState(split.blob.subarray(0, n), views), (e: Error) => e instanceof DescriptorError && e.code === 'ERR_DESCRIPTOR_STATE', `truncated to ${n}`);
  }
  let seed = 99;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let joined = 0;
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(split.blob);
    for (let k = 0; k < 1 + Math.floor(next() * 3); k++) b[Math.floor(next() * b.length)] = Math.floor(next() * 256);
    try {
      joinState(b, views);
      joined++;
    } catch (e) {
      if (!(e instanceof DescriptorError)) throw new Error(`mutation ${i} threw ${(e as Error).name}: ${(e as Error).message}`);
    }
  }
  assert.ok(joined > 0 && joined < 2000, `${joined} of 2000 damaged blobs still joined (bytes of values change, not the format)`);
});

test('origin to seed: split, describe, encode, decode, join', () => {
  const secret = randomBytes(32);
  const grid = region(Float64Array, 1 << 20); // 8 MiB, mostly zero
  for (let i = 0; i < 100000; i++) grid[i] = Math.sin(i);
  grid[(1 << 20) - 1] = 1;
  const state = { grid, meta: { n: grid.length, name: 'heat' }, edge: grid.subarray(0, 512) };
  const split = splitState(state);
  const zeroMaps = split.regions.map((r) => scanZeroPages(new Uint8Array(r.buffer), 4096));
  assert.is(zeroMaps[0].zeroCount, 2048 - Math.ceil((100000 * 8) / 4096) - 1);
  const d: Descriptor = {
    jobId: 'j-1',
    program: { path: '/p/heat.js', sha256: 'ab'.repeat(32), args: [], cwd: '/p' },
    forkPoint: { sequence: 0, label: 'clone' },
    worldSize: 3,
    cloneIds: [1, 2],
    state: split.blob,
    regions: describeRegions(split, { zeroMaps }),
    memoryServer: { host: 'th1', address: '10.0.0.1', port: 5000 },
  };
  const bytes = encodeDescriptor(d, secret);
  assert.ok(bytes.length < 1024, `${bytes.length} bytes for 8 MiB of state`);
  const got = decodeDescriptor(bytes, secret);
  // The seed maps each region and installs zero pages locally; here, a copy stands in.
  const views = got.regions.map((r) => {
    const buffer = new ArrayBuffer(r.byteLength);
    const src = new Uint8Array(split.regions[r.slot].buffer);
    const dst = new Uint8Array(buffer);
    for (let p = 0; p < r.zeroMap.pageCount; p++) if (!r.zeroMap.isZero(p)) dst.set(src.subarray(p * r.pageSize, (p + 1) * r.pageSize), p * r.pageSize);
    return buffer;
  });
  const out = joinState(got.state, views) as typeof state;
  assert.equal(out.meta, state.meta);
  assert.equal(out.grid, state.grid);
  assert.ok(out.edge.buffer === out.grid.buffer);
  assert.is(LIMITS.regions, 1024);
});

test.run();
