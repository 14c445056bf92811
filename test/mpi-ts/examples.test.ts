// examples: the three example programs run from their .ts source through sfmpirun (the
// launcher's TypeScript path) and agree with their serial answers at every rank count.
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mpirun, root, show } from './helpers.js';

const ex = (name: string) => path.join(root, 'examples', `${name}.ts`);

let mean1: string | undefined;
for (const n of [1, 2, 4]) {
  test(`heat2d at -n ${n} gives the serial mean temperature`, async () => {
    const j = await mpirun(n, ex('heat2d'), ['64', '200'], { timeoutMs: 60_000 });
    assert.equal(j.code, 0, show(j));
    const m = /mean temperature (\S+)/.exec(j.stdout);
    assert.ok(m, show(j));
    mean1 ??= m![1];
    assert.is(m![1], mean1, `mean at -n ${n} differs from -n 1`);
    assert.equal(j.orphans, []);
  });
}

test('pi at -n 3 is within 1e-2', async () => {
  const j = await mpirun(3, ex('pi'), ['300000'], { timeoutMs: 60_000 });
  assert.equal(j.code, 0, show(j));
  const m = /pi ~ (\S+)/.exec(j.stdout);
  assert.ok(m && Math.abs(Number(m[1]) - Math.PI) < 1e-2, show(j));
});

test('matvec at -n 4 matches the serial product', async () => {
  const j = await mpirun(4, ex('matvec'), ['60'], { timeoutMs: 60_000 });
  assert.equal(j.code, 0, show(j));
  assert.ok(/\|y - A x\| = 0\.00e\+0/.test(j.stdout), show(j));
  assert.ok(/allreduce of matrices: \[\[10, 10\], \[10, 10\]\]/.test(j.stdout), show(j));
});

test.run();
