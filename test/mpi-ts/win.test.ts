// win: the one-sided windows fixture (test/mpi-ts/fixtures/win.ts) passes at every rank count,
// 1 to 8: every synchronisation mode on every flavor and both paths.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { atEverySize } from './helpers.js';

atEverySize(test, assert, 'win', { timeoutMs: 90_000 });

test.run();
