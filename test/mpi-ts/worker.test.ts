// worker: a worker thread that imports sfmpi/mpi and ends leaves the job alone; its MPI calls
// are refused with ERR_NOT_MAIN_THREAD (fixtures/worker-import.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { atEverySize } from './helpers.js';

atEverySize(test, assert, 'worker-import', { sizes: [1, 2, 4] });

test.run();
