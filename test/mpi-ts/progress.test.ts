// progress: the progress fixture (test/mpi-ts/fixtures/progress.ts) passes at 2 and 4 ranks
// (and alone): Irecv(big); barrier() against Send(big); barrier() completes, and an awaited
// request resolves while the loop is idle.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { atEverySize } from './helpers.js';

atEverySize(test, assert, 'progress', { sizes: [1, 2, 4] });

test.run();
