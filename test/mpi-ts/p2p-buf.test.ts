// p2p-buf: the p2p-buf fixture (test/mpi-ts/fixtures/p2p-buf.ts) passes at every rank count, 1 to 8.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { atEverySize } from './helpers.js';

atEverySize(test, assert, 'p2p-buf');

test.run();
