// p2p-obj: the p2p-obj fixture (test/mpi-ts/fixtures/p2p-obj.ts) passes at every rank count, 1 to 8.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { atEverySize } from './helpers.js';

atEverySize(test, assert, 'p2p-obj');

test.run();
