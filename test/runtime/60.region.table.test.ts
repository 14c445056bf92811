// Property: the runtime knows its regions (the table a descriptor for a remote clone is built
// from), and clone(ticket, state) refuses, before forking anything, state that could not travel
// to a clone on another host, naming the part that cannot.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clone, region, regionOf, regionTable, requestTicket } from '../../runtime/index.js';

test('region() entries are in the region table with their geometry', () => {
  const before = regionTable().length;
  const big = region(Float64Array, 1 << 19); // 4 MiB: huge pages
  const small = region(Uint8Array, 100, { hugePages: false });
  const t = regionTable();
  assert.is(t.length, before + 2);
  const b = regionOf(big)!, s = regionOf(small.subarray(10))!;
  assert.equal([b.length, b.hugePages, b.zeroKnown], [4 << 20, true, true]);
  assert.equal([s.length, s.hugePages], [100, false]);
  assert.ok(b.id < s.id, 'ids in allocation order');
  assert.is(b.pageSize, 4096);
  assert.is(Number(b.base % 2097152n), 0, 'a huge-page region is 2 MiB aligned');
  assert.is(regionOf(new Float64Array(10)), undefined, 'ordinary memory is no region');
  assert.ok(t.some((e) => e.id === b.id) && t.some((e) => e.id === s.id));
});

test('clone(ticket, state) names state that cannot travel, and forks nothing', () => {
  const ticket = requestTicket(1);
  const cases: [unknown, RegExp][] = [
    [{ onData: () => 1 }, /state\.onData is a function/],
    [{ list: [1, Symbol('x')] }, /state\.list\[1\] is a symbol/],
    [new Map([['k', new WeakMap()]]), /state\.get\(0\) is a WeakMap/],
    [{ p: Promise.resolve(1) }, /state\.p is a Promise/],
  ];
  for (const [state, msg] of cases) {
    assert.throws(() => clone(ticket, state), (e: Error) => e instanceof TypeError && msg.test(e.message), String(msg));
  }
  ticket.release(); // never used: the failed calls forked nothing and left the ticket granted
});

test.run();
