// win: the one-sided windows fixture (test/mpi-ts/fixtures/win.ts) passes at every rank count,
// 1 to 8: every synchronisation mode on every flavor and both paths; a lock held too long
// makes its waiter time out naming the holder.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { atEverySize, mpirun, show } from './helpers.js';

atEverySize(test, assert, 'win', { timeoutMs: 90_000 });

test('a lock held too long: the waiter times out naming the holder, and the job still ends cleanly', async () => {
  const j = await mpirun(3, 'win', ['lock-timeout'], { timeoutMs: 30_000, env: { SFMPI_TIMEOUT_MS: '1500' } });
  assert.equal(j.code, 0, show(j));
  for (let r = 0; r < 3; r++) assert.ok(new RegExp(`^rank ${r}/3 ok`, 'm').test(j.stdout), show(j));
  assert.equal(j.orphans, []);
});

test.run();
