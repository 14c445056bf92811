// serialization: object messages round-trip (v8 structured clone plus mathjs types).
import { inspect } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as math from 'mathjs';
import { decode, encode, setMathjs } from '../../mpi-compat/ts/serialization.js';

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

test('plain data goes as JSON only where JSON carries it exactly', () => {
  const plain = { a: 1, b: [1.5, 'x', null, true, { c: [] }], s: 'é' };
  assert.is(encode(plain)[0], 8, 'plain data: the JSON path');
  assert.equal(rt(plain), plain);
  const sparse = [1, , 3]; // eslint-disable-line no-sparse-arrays
  const extra = Object.assign([1, 2], { tag: 'x' });
  const proto = JSON.parse('{"__proto__": {"x": 1}}');
  for (const v of [{ z: -0 }, { n: NaN }, { i: Infinity }, { u: undefined }, [undefined], sparse, extra, { d: new Date(1) }, { big: 1n }, proto, Object.create({ inherited: 1 })]) {
    assert.is.not(encode(v)[0], 8, `not JSON: ${inspect(v)}`);
    const got = rt(v) as Record<string, unknown>;
    assert.equal(got, v);
    if ('z' in (v as object)) assert.ok(Object.is(got.z, -0), '-0 survives');
  }
  const cyc: Record<string, unknown> = { a: 1 };
  cyc.self = cyc;
  const back = rt(cyc) as Record<string, unknown>;
  assert.is(back.self, back, 'cycles go through v8');
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
