// topo: the topology fixture (test/mpi-ts/fixtures/topo.ts) passes at every rank count, 1 to 8.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { atEverySize } from './helpers.js';

atEverySize(test, assert, 'topo');

test.run();
