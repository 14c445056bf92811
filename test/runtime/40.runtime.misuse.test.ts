// Property: misuse of the runtime API fails at once with an error that names the problem, and
// forks nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { scenario } from '../helpers.js';

test('misuse errors are clear, typed and coded', async () => {
  const r = await scenario('misuse');
  assert.is(r.code, 0, r.stderr);
  const e = r.result;
  assert.is(e.nonInteger, 'TypeError: : requestTicket(n): n must be an integer, got 1.5');
  assert.is(e.negative, 'RangeError: : requestTicket(n): n must be at least 1, got -2');
  assert.is(e.zero, 'RangeError: : requestTicket(n): n must be at least 1, got 0');
  assert.is(e.string, 'TypeError: : requestTicket(n): n must be an integer, got string');
  assert.match(e.beyondHost, /^RangeError: : admission refused: 5 clones requested, \d+ of this host's 4 slots in use/);
  assert.is(e.exitInOrigin, 'CloneRuntimeError: ERR_NOT_A_CLONE: exit() may only be called in a clone; this process is the origin (clone id 0)');
  assert.is(e.inWorker, 'ERR_NOT_MAIN_THREAD: clone() must be called on the main thread, not in a worker thread');
  assert.is(e.joinBeforeClone, 'CloneRuntimeError: ERR_NOT_CLONED: join(ticket 1): clone() has not been called on this ticket');
  assert.is(e.killBeforeClone, 'CloneRuntimeError: ERR_NOT_CLONED: kill(ticket 1): clone() has not been called on this ticket');
  assert.is(e.cloneTwice, 'CloneRuntimeError: ERR_TICKET_USED: clone(ticket 1): this ticket was already used; request a new ticket');
  assert.is(e.killBadId, 'RangeError: : kill(ticket 1, id): id 2 is not a clone of this ticket (1..1)');
  assert.match(e.unserializable, /^exit\(value\): the value cannot be sent to the origin: .*could not be cloned/);
});

test.run();
