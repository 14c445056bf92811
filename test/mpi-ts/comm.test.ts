// comm: the comm fixture (test/mpi-ts/fixtures/comm.ts) passes at every rank count, 1 to 8.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { atEverySize } from './helpers.js';

atEverySize(test, assert, 'comm');

test.run();
