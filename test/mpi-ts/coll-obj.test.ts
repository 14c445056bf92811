// coll-obj: the coll-obj fixture (test/mpi-ts/fixtures/coll-obj.ts) passes at every rank count, 1 to 8.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { atEverySize } from './helpers.js';

atEverySize(test, assert, 'coll-obj');

test.run();
