// group: the group fixture (test/mpi-ts/fixtures/group.ts) passes at every rank count, 1 to 8.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { atEverySize } from './helpers.js';

atEverySize(test, assert, 'group');

test.run();
