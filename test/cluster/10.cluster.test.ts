// Property: a job spans hosts the way MPI users launch one, with hostfile + ssh or inside a Slurm
// allocation: every rank runs on the host its placement says, standard input reaches rank 0,
// every rank's output arrives, exit codes come back, point-to-point and every collective give
// MPI's answers across hosts (TypeScript and C ranks alike); a failure anywhere (a rank killed
// on another host, a dom0 killed, a host's link cut) ends the job within seconds naming its
// rank or host; strangers on the cluster network (a wrong secret, garbage) are refused without
// harm; and after every job nothing of it runs on any host. Real sshd, real Slurm, real TCP,
// on test hosts made of network namespaces (test/hosts).
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { root, testDir, until } from '../helpers.js';
import { hostsAvailable, upHosts, type TestHosts } from '../hosts/testhosts.js';
import { buildLib, compile, csrc, tempDir } from '../mpi-c/helpers.js';
import { mpirun as run, nothingLeft as left, placement, show, type MpirunOptions } from './helpers.js';

const avail = hostsAvailable({ ssh: true, slurm: true });
const tsHello = path.join(testDir, 'cluster', 'fixtures', 'hello.js');
const fixture = (f: string) => path.join(testDir, 'mpi-ts', 'fixtures', `${f}.js`);
let c: TestHosts | undefined;
let dir = '';
let bins: Record<string, string> = {};

function hosts(): TestHosts {
  if (!c) throw new Error('the test hosts are not up');
  return c;
}

const mpirun = (args: string[], opts: MpirunOptions = {}) => run(hosts(), args, opts);
const nothingLeft = () => left(hosts());

if (!avail.ok) {
  console.log(`  skipped: test hosts unavailable: ${avail.reason}`);
  test.skip('jobs across hosts');
} else {
  test.before(async () => {
    await buildLib();
    dir = tempDir('cluster');
    bins = await compile([path.join(csrc, 'cluster_hello.c'), path.join(csrc, 'failures.c'), path.join(csrc, 'p2p.c'), path.join(csrc, 'coll.c')], dir);
    c = await upHosts({ count: 3, ssh: true, slurm: true, cpus: 3 });
  });
  test.after(async () => {
    await c?.down();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const via of ['ssh', 'slurm'] as const) {
    for (const [kind, prog] of [['C', () => bins.cluster_hello], ['TypeScript', () => tsHello]] as const) {
      test(`${kind} -n 8 on 3 hosts (${via === 'ssh' ? 'hostfile + ssh' : 'inside salloc, srun'}): placement, stdin to rank 0, every rank's output, the exit code`, async () => {
        const h = hosts();
        const args = via === 'ssh' ? ['--hostfile', h.hostfile, '-n', '8', prog(), 'exit', '3'] : ['-n', '8', prog(), 'exit', '3'];
        const j = await mpirun(args, { input: 'hello rank zero\nsecond line\n', via });
        assert.is(j.code, 3, show(j));
        assert.match(j.stderr, 'sfmpirun: rank 7 exited with code 3', show(j));
        const where = placement(j.stdout);
        // 3 slots per host, filled in turn: 0-2, 3-5, 6-7.
        assert.equal([...where.keys()].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7], show(j));
        for (const [r, host] of where) assert.is(host, h.hosts[Math.floor(r / 3)], `rank ${r}`);
        assert.match(j.stdout, /^stdin: hello rank zero$/m);
        assert.match(j.stdout, /^stdin: second line$/m);
        for (let r = 0; r < 8; r++) assert.match(j.stdout, new RegExp(`^check ${r} ok$`, 'm'), show(j));
        await nothingLeft();
      });
    }
  }

  test('--map-by node deals ranks round robin', async () => {
    const h = hosts();
    const j = await mpirun(['--host', h.hosts.map((x) => `${x}:3`).join(','), '--map-by', 'node', '-n', '7', bins.cluster_hello]);
    assert.is(j.code, 0, show(j));
    for (const [r, host] of placement(j.stdout)) assert.is(host, h.hosts[r % 3], `rank ${r}`);
    await nothingLeft();
  });

  for (const f of ['p2p-obj', 'p2p-buf', 'coll-obj', 'coll-buf', 'nb']) {
    test(`TypeScript ${f} at -n 8 across 3 hosts (every communicator)`, async () => {
      const j = await mpirun(['--hostfile', hosts().hostfile, '-n', '8', fixture(f)], { timeoutMs: 120_000 });
      assert.is(j.code, 0, show(j));
      for (let r = 0; r < 8; r++) assert.match(j.stdout, new RegExp(`^rank ${r}/8 ok \\(\\d+ checks\\)$`, 'm'), show(j));
      await nothingLeft();
    });
  }

  for (const prog of ['p2p', 'coll']) {
    test(`C ${prog} verdict at -n 8 across 3 hosts`, async () => {
      const j = await mpirun(['--hostfile', hosts().hostfile, '-n', '8', bins[prog]], { timeoutMs: 120_000 });
      assert.is(j.code, 0, show(j));
      assert.match(j.stdout, new RegExp(`^VERDICT ${prog === 'coll' ? 'collectives' : prog} PASS \\(8 ranks\\)$`, 'm'), show(j));
      await nothingLeft();
    });
  }

  test('a rank killed on another host ends the job: its rank and signal named, status 139', async () => {
    const j = await mpirun(['--hostfile', hosts().hostfile, '-n', '8', bins.failures, 'segv', '7']);
    assert.is(j.code, 139, show(j));
    assert.match(j.stderr, 'sfmpirun: rank 7 was killed by signal 11 (SIGSEGV)', show(j));
    await nothingLeft();
  });

  test('a dom0 killed mid-job ends the job within seconds, naming its host and ranks', async () => {
    const h = hosts();
    const t0 = Date.now();
    let killed = false;
    const run = mpirun(['--hostfile', h.hostfile, '-n', '8', bins.failures, 'hang'], { timeoutMs: 30_000 });
    await until(() => {
      const d = h.processes(h.hosts[1]).find((p) => p.cmdline.includes('dom0/main.js'));
      const ranks = h.processes(h.hosts[1]).filter((p) => p.cmdline.includes('failures'));
      if (d && ranks.length === 3) {
        process.kill(d.pid, 'SIGKILL');
        killed = true;
      }
      return killed;
    }, 20_000);
    assert.ok(killed, 'no dom0 found on the second host');
    const j = await run;
    assert.is(j.code, 255, show(j));
    assert.match(j.stderr, `sfmpirun: host ${h.hosts[1]} (ranks 3-5)`, show(j));
    assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
    await nothingLeft();
  });

  for (const via of ['ssh', 'slurm'] as const) {
    test(`sfmpirun killed with SIGKILL (${via}): every host's ranks go within seconds`, async () => {
      const h = hosts();
      const args = via === 'ssh' ? ['--hostfile', h.hostfile, '-n', '8', bins.failures, 'hang'] : ['-n', '8', bins.failures, 'hang'];
      const run = mpirun(args, { timeoutMs: 40_000, via });
      const ranks = () => h.hosts.flatMap((x) => h.processes(x).filter((p) => p.comm === 'failures'));
      await until(() => ranks().length === 8, 20_000);
      assert.is(ranks().length, 8, 'the job never ran 8 ranks');
      // sfmpirun itself (under Slurm, salloc's command line names it too).
      const launcher = h.processes(h.hosts[0]).find((p) => p.cmdline.startsWith(`${process.execPath} `) && p.cmdline.includes('sfmpirun.js'));
      assert.ok(launcher, 'no sfmpirun on the first host');
      process.kill(launcher.pid, 'SIGKILL');
      const t0 = Date.now();
      await until(() => ranks().length === 0, 15_000);
      assert.equal(ranks().map((p) => p.cmdline), [], `ranks left ${Date.now() - t0} ms after sfmpirun was killed`);
      await run;
      await until(() => h.hosts.every((x) => h.processes(x).length === 0), 10_000);
      await nothingLeft();
    });
  }

  test('a host whose link goes down mid-job ends the job within seconds, naming it', async () => {
    const h = hosts();
    let cut = false;
    const run = mpirun(['--hostfile', h.hostfile, '-n', '8', bins.failures, 'hang'], { timeoutMs: 40_000 });
    await until(() => {
      if (h.processes(h.hosts[2]).filter((p) => p.cmdline.includes('failures')).length === 2) cut = true;
      return cut;
    }, 20_000);
    assert.ok(cut);
    await h.link(h.hosts[2], 'down');
    const t0 = Date.now();
    try {
      const j = await run;
      assert.is.not(j.code, 0, show(j));
      assert.match(j.stderr, `sfmpirun: host ${h.hosts[2]} (ranks 6-7)`, show(j));
      assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
      // The cut-off host ends its part by itself: its dom0 hears nothing from the launcher.
      await until(() => h.processes(h.hosts[2]).length === 0, 10_000);
    } finally {
      await h.link(h.hosts[2], 'up');
    }
    await nothingLeft();
  });

  test('strangers on the cluster network (a wrong secret, garbage) are refused; the job goes on; data ports close once linked', async () => {
    const h = hosts();
    const run = mpirun(['--hostfile', h.hostfile, '-n', '8', bins.cluster_hello, 'sleep', '8000']);
    // Every port a process of the job listens on, on every host.
    const ports = async () => {
      const out: { host: string; addr: string; port: number }[] = [];
      for (const x of h.hosts) {
        const r = await h.exec(x, 'ss', ['-ltnpH']);
        for (const m of r.stdout.matchAll(/(\d+\.\d+\.\d+\.\d+):(\d+)\s.*"node"/g)) out.push({ host: x, addr: m[1], port: Number(m[2]) });
      }
      return out;
    };
    // Once every rank runs, the dom0s' data ports are closed: only the launcher's stays, on the first host.
    let found: Awaited<ReturnType<typeof ports>> = [];
    await until(() => h.hosts.every((x) => h.processes(x).some((p) => p.cmdline.includes('cluster_hello'))), 20_000);
    for (let i = 0; i < 50; i++) {
      found = await ports();
      if (found.length === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.is(found.length, 1, `listening: ${JSON.stringify(found)}`);
    assert.is(found[0].host, h.hosts[0]);
    for (const p of found) {
      for (const from of [h.hosts[0], h.hosts[2]]) {
        // A wrong secret: the handshake fails, nothing is learnt.
        const wrong = await h.exec(from, process.execPath, ['-e', `
          import(${JSON.stringify(path.join(root, 'dist', 'dom0', 'handshake.js'))}).then(async (m) => {
            try { await m.connectAuthenticated({ host: '${p.addr}', port: ${p.port}, secret: m.newSecret(), role: 'dom0', timeoutMs: 2000 }); console.log('ACCEPTED'); }
            catch (e) { console.log('refused: ' + e.code); }
          });`]);
        assert.match(wrong.stdout, /refused: ERR_HANDSHAKE_/, `${p.host}:${p.port} from ${from}: ${wrong.stdout}${wrong.stderr}`);
        // Garbage: the connection is closed.
        const junk = await h.exec(from, process.execPath, ['-e', `
          const s = require('node:net').connect(${p.port}, '${p.addr}', () => s.write(Buffer.alloc(4096, 0x41)));
          s.resume(); s.on('close', () => console.log('closed')); s.on('error', () => {}); setTimeout(() => { console.log('still open'); process.exit(); }, 6000);`]);
        assert.match(junk.stdout, /closed/, `${p.host}:${p.port} from ${from}`);
      }
    }
    const j = await run;
    assert.is(j.code, 0, show(j));
    for (let r = 0; r < 8; r++) assert.match(j.stdout, new RegExp(`^check ${r} ok$`, 'm'), show(j));
    assert.match(j.stderr, 'refused a connection on the cluster network', show(j));
    await nothingLeft();
  });

  test('a bad hostfile line is an error naming the file and line', async () => {
    const bad = path.join(dir, 'bad-hosts');
    fs.writeFileSync(bad, `${hosts().hosts[0]} slots=2\n# fine\nth2 slots=x\n`);
    const j = await mpirun(['--hostfile', bad, '-n', '2', bins.cluster_hello]);
    assert.is(j.code, 2, show(j));
    assert.match(j.stderr, `${bad}:3:`);
    assert.match(j.stderr, 'slots');
  });
}

test.run();
