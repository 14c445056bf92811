// op: reduction operations applied locally (no ranks): typed arrays, scalars, arrays, mathjs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as math from 'mathjs';
import { MPI, Op } from '../../mpi-compat/ts/index.js';
import { setMathjs } from '../../mpi-compat/ts/serialization.js';

setMathjs(math as never);

test('element-wise on typed arrays', () => {
  assert.equal(MPI.SUM.apply(new Float64Array([1, 2]), new Float64Array([3, 4])), new Float64Array([4, 6]));
  assert.equal(MPI.MAX.apply(new Int32Array([1, 9]), new Int32Array([3, 4])), new Int32Array([3, 9]));
  assert.equal(MPI.BXOR.apply(new Uint8Array([0b1100]), new Uint8Array([0b1010])), new Uint8Array([0b0110]));
  assert.equal(MPI.LAND.apply(new Int32Array([1, 2]), new Int32Array([0, 3])), new Int32Array([0, 1]));
  assert.equal(MPI.MAXLOC.apply(new Float64Array([1, 5, 2, 0]), new Float64Array([1, 3, 1, 1])), new Float64Array([1, 3, 2, 0]));
  assert.equal(MPI.SUM.apply(new BigInt64Array([1n]), new BigInt64Array([2n])), new BigInt64Array([3n]));
});

test('errors name the op and the operands', () => {
  assert.throws(() => MPI.BAND.apply(new Float64Array(1), new Float64Array(1)), /BAND is not defined for float64 arrays/);
  assert.throws(() => MPI.SUM.apply(new Float64Array(1), new Int32Array(1)), /SUM: operands differ in type \(float64 and int32\)/);
  assert.throws(() => MPI.SUM.apply(new Float64Array(1), new Float64Array(2)), /SUM: operands differ in length \(1 and 2\)/);
  assert.throws(() => MPI.SUM.apply(1, 'a'), /SUM: operands differ in type \(number and string\)/);
  assert.throws(() => MPI.BOR.apply(1.5, 2), /BOR needs integers, got 1.5 and 2/);
  assert.throws(() => Op.create((a: number, b: number) => a + b).applyInto(new Float64Array(2), new Float64Array(2), new Float64Array(2)),
    /user op on float64 arrays must return an array of 2 elements \(it gets the two whole arrays\), got string/);
  assert.throws(() => Op.create(3 as never), (e: Error) => e instanceof TypeError && e.message === 'Op.create: fn must be a function (a, b) => result, got number 3');
});

test('scalars, arrays, objects, pairs', () => {
  assert.is(MPI.PROD.apply(3, 4), 12);
  assert.is(MPI.LXOR.apply(true, true), false);
  assert.equal(MPI.SUM.apply([1, [2]], [3, [4]]), [4, [6]]);
  assert.equal(MPI.MIN.apply({ a: 1, b: 5 }, { a: 2, b: 0 }), { a: 1, b: 0 });
  assert.equal(MPI.MINLOC.apply([3, 1], [3, 0]), [3, 0]);
});

test('mathjs values go through mathjs', () => {
  const c = MPI.SUM.apply(math.complex(1, 2), math.complex(3, -1)) as math.Complex;
  assert.ok(math.isComplex(c) && c.re === 4 && c.im === 1);
  const f = MPI.SUM.apply(math.fraction(1, 3), math.fraction(1, 6)) as math.Fraction;
  assert.ok(math.isFraction(f) && math.equal(f, math.fraction(1, 2)));
  const m = MPI.PROD.apply(math.matrix([2, 3]), math.matrix([4, 5])) as math.Matrix;
  assert.equal(m.toArray(), [8, 15]);
  const mx = MPI.MAX.apply(math.matrix([1, 7]), math.matrix([4, 5])) as math.Matrix;
  assert.equal(mx.toArray(), [4, 7]);
  assert.throws(() => MPI.LAND.apply(math.complex(1, 1), math.complex(1, 1)), /LAND is not defined for mathjs values/);
});

test.run();
