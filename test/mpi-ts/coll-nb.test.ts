// coll-nb: the non-blocking collectives fixture (test/mpi-ts/fixtures/coll-nb.ts) passes at
// every rank count, 1 to 8; a member that never starts a collective makes the others time out
// with an error naming what they waited for, and the job still ends cleanly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { atEverySize, mpirun, show } from './helpers.js';

atEverySize(test, assert, 'coll-nb', { timeoutMs: 60_000 });

test('a member that skips an Iallreduce: the others time out naming the round and the rank', async () => {
  const j = await mpirun(4, 'coll-nb', ['timeout'], { timeoutMs: 30_000, env: { SFMPI_TIMEOUT_MS: '1500' } });
  assert.equal(j.code, 0, show(j));
  for (let r = 0; r < 4; r++) assert.ok(new RegExp(`^rank ${r}/4 ok`, 'm').test(j.stdout), show(j));
  assert.equal(j.orphans, []);
});

test.run();
