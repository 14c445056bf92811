// serialization: object messages round-trip (v8 structured clone plus mathjs types).
import { inspect } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as math from 'mathjs';
import { decode, encode, encodeTemp, setMathjs } from '../../mpi-compat/ts/serialization.js';

setMathjs(math as never);
const rt = <T>(v: T): T => decode(encode(v)) as T;

test('structured-clone values', () => {
  const v = { a: [1, 'x', null, true], m: new Map([[1, new Set([2])]]), d: new Date(5), t: new Int16Array([1, -1]), b: 10n ** 20n };
  assert.equal(rt(v), v);
  assert.is(encode(v)[0], 0, 'no mathjs values: flag 0, no revive walk');
});

test('scalars take the short path and round-trip exactly', () => {
  for (const v of [0, -0, 1.5, NaN, -Infinity, 2 ** 53 + 2, '', 'héllo ∑', true, false, null, undefined]) {
    assert.ok(Object.is(rt(v), v), `round trip of ${String(v)}`);
  }
  assert.is(encode(3.5).length, 9);
  assert.is(encode(true).length, 1);
});

test('plain data takes the compact form and round-trips exactly', () => {
  const plain = { a: 1, b: [1.5, 'x', null, true, { c: [] }], s: 'é', z: -0, n: NaN, i: -Infinity, u: undefined, big: 2 ** 40, neg: -7 };
  assert.is(encode(plain)[0], 9, 'plain data: the compact form');
  const got = rt(plain);
  assert.equal(got, plain);
  assert.ok(Object.is(got.z, -0), '-0 survives');
  assert.ok('u' in got, 'an undefined member stays a member');
  assert.equal(Object.keys(rt({ b: 1, 2: 'two', a: 2, 1: 'one' })), ['1', '2', 'b', 'a'], 'key order as JavaScript keeps it');
  assert.equal(rt([undefined, [[[]]]]), [undefined, [[[]]]]);
  // Strings of every kind of length and content: short and long ASCII, non-ASCII, lone surrogates.
  for (const str of ['', 'k', 'a'.repeat(24), 'b'.repeat(25), 'c'.repeat(253), 'd'.repeat(254), 'e'.repeat(70000), 'héllo ∑', '\ud800x', 'x\udc00', '🙂'.repeat(300)]) {
    const back = rt({ [str]: str, list: [str] });
    assert.ok(back[str] === str && back.list[0] === str, `string of length ${str.length} (${JSON.stringify(str.slice(0, 8))}) as key and value`);
  }
  // Counts past one byte, and a large object (megabytes: the reused buffer grows, then is handed over).
  const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i % 2 ? i : `v${i}`]));
  assert.equal(rt(many), many);
  const large = { rows: Array.from({ length: 200000 }, (_, i) => ({ i, x: i / 7, name: `row ${i}` })) };
  const enc = encode(large);
  assert.is(enc[0], 9);
  assert.ok(enc.length > 4 << 20, `a large object: ${enc.length} bytes`);
  assert.equal(decode(enc), large);
});

test('values plain data cannot carry exactly go through v8', () => {
  const sparse = [1, , 3]; // eslint-disable-line no-sparse-arrays
  const extra = Object.assign([1, 2], { tag: 'x' });
  const proto = JSON.parse('{"__proto__": {"x": 1}}');
  let deep: unknown = 'leaf';
  for (let i = 0; i < 40; i++) deep = [deep];
  for (const v of [sparse, extra, { d: new Date(1) }, { big: 1n }, proto, Object.create({ inherited: 1 }), { t: new Uint8Array([1]) }, deep]) {
    assert.is(encode(v)[0], 0, `v8: ${inspect(v, { depth: 2 })}`);
    assert.equal(rt(v), v);
  }
  const cyc: Record<string, unknown> = { a: 1 };
  cyc.self = cyc;
  const back = rt(cyc) as Record<string, unknown>;
  assert.is(back.self, back, 'cycles go through v8');
});

test('encodeTemp reuses its buffer; encode gives bytes of their own; decode reads at an offset', () => {
  const a = encode({ v: 'first' });
  const t = encodeTemp({ v: 'temp' });
  assert.equal(decode(a), { v: 'first' }, 'encode: unchanged by later encodes');
  assert.equal(decode(t), { v: 'temp' });
  encodeTemp({ v: 'tmp2' });
  assert.equal(decode(t), { v: 'tmp2' }, 'encodeTemp: a view of the reused buffer, valid until the next encode');
  const parts = [encode(1.5), encode({ x: [1] }), encode('s'), encode(new Map([[1, 2]]))];
  const packed = Buffer.concat(parts);
  let off = 0;
  const got = parts.map((p) => { const v = decode(packed, p.length, off); off += p.length; return v; });
  assert.equal(got, [1.5, { x: [1] }, 's', new Map([[1, 2]])]);
});

test('typed arrays decoded from shared memory are their own', () => {
  const msg = encode({ t: new Uint8Array([1, 2, 3]) });
  const shared = Buffer.alloc(msg.length + 100);
  shared.set(msg, 10);
  const v = decode(shared, msg.length, 10) as { t: Uint8Array };
  shared.fill(9);
  assert.equal([...v.t], [1, 2, 3], 'not overwritten with the buffer it came from');
});

test('mathjs values keep their types, nested anywhere', () => {
  const v = { list: [math.complex(1, 2)], map: new Map([['k', math.fraction(1, 3)]]), M: math.matrix([[1, 2]]), b: math.bignumber('1e-40') };
  const enc = encode(v);
  assert.is(enc[0], 1);
  const got = decode(enc) as typeof v;
  assert.ok(math.isComplex(got.list[0]));
  assert.ok(math.isFraction(got.map.get('k')));
  assert.ok(math.isMatrix(got.M));
  assert.ok(math.isBigNumber(got.b) && got.b.toString() === '1e-40');
  assert.ok(math.isComplex(v.list[0]), 'the sent value is not modified');
});

test('unserializable values give ERR_SERIALIZE naming the call', () => {
  assert.throws(() => encode({ f: () => 1 }, 'comm.send'), (e: Error & { code?: string }) => e.code === 'ERR_SERIALIZE' && /^comm.send: value cannot be serialized: /.test(e.message));
  assert.throws(() => decode(new Uint8Array([0, 1, 2])), (e: Error & { code?: string }) => e.code === 'ERR_SERIALIZE');
});

test.run();
