// Property: clones nest, repeat without leaking, and never outlive their origin.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { alive, scenario, until } from '../helpers.js';

test('a clone that clones again (two levels), each with its own pid', async () => {
  const r = await scenario('nested');
  assert.is(r.code, 0, r.stderr);
  const pids = new Set<number>();
  for (const [i, o] of r.result.entries()) {
    assert.is(o.ok, true, JSON.stringify(o));
    assert.is(o.value.id, i + 1);
    for (const [j, c] of o.value.children.entries()) {
      assert.equal(c.path, [i + 1, j + 1]);
      pids.add(c.pid);
    }
  }
  assert.is(pids.size, 4, 'grandchildren must see their own process.pid');
});

test('200 clone/join cycles: no growth in fds, memory or zombies', async () => {
  const r = await scenario('cycles', ['200'], { timeoutMs: 120_000 });
  assert.is(r.code, 0, r.stderr);
  const { before, after, failures } = r.result;
  assert.is(failures, 0);
  assert.is(after.fds, before.fds, `fds ${before.fds} -> ${after.fds}`);
  assert.is(after.zombies, 0);
  assert.ok(after.rss - before.rss < 32, `rss grew ${(after.rss - before.rss).toFixed(1)} MB`);
});

test('SIGKILL of the origin takes every clone down', async () => {
  let pids: number[] = [];
  const r = await scenario('killOrigin', [], {
    timeoutMs: 20_000,
    onSpawn: (pid, stdout) => {
      const poll = setInterval(() => {
        const line = stdout().split('\n').find((l) => l.startsWith('RESULT '));
        if (!line) return;
        clearInterval(poll);
        pids = JSON.parse(line.slice(7)).pids;
        process.kill(pid, 'SIGKILL');
      }, 10);
    },
  });
  assert.is(r.signal, 'SIGKILL');
  assert.is(pids.length, 3);
  assert.ok(await until(() => pids.every((p) => !alive(p)), 2000), `clones still alive: ${pids.filter(alive)}`);
});

test('a domain can be paused and resumed (xen layer)', async () => {
  const r = await scenario('pauseResume');
  assert.is(r.code, 0, r.stderr);
  assert.is(r.result.paused, true);
  assert.is(r.result.whilePaused, 'T', 'a paused clone is stopped');
  assert.is(r.result.resumed, true);
  assert.is(r.result.ok, true);
  // Its 200 ms timer could not fire while it was stopped for ~450 ms.
  assert.ok(r.result.elapsed >= 400, `finished after ${r.result.elapsed} ms`);
  assert.is(r.result.destroyAfter, false, 'a reaped domain cannot be signalled');
});

test.run();
