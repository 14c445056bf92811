// Property: the test hosts are what the multi-host tests take them for: separate hosts (own
// hostname, processes, address) that reach each other by TCP and multicast and nothing else,
// with a working ssh and a real Slurm between them; a crashed or unplugged host is seen as such;
// and down() leaves nothing behind (namespace, bridge, veth, state dir or process).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testDir, until } from '../helpers.js';
import { hostsAvailable, upHosts, type TestHosts } from './testhosts.js';

const netCheck = path.join(testDir, 'hosts', 'fixtures', 'net-check.js');
const avail = hostsAvailable({ ssh: true, slurm: true });
let c: TestHosts | undefined;

/** The cluster, or a failure saying that bring-up did not happen. */
function hosts(): TestHosts {
  if (!c) throw new Error('the test hosts are not up (see the first test)');
  return c;
}

async function ok(host: string, cmd: string, args: string[] = [], timeoutMs?: number) {
  const r = await hosts().exec(host, cmd, args, { timeoutMs });
  assert.is(r.code, 0, `${host}: ${cmd} ${args.join(' ')}: exit ${r.code} ${r.signal ?? ''}\n${r.stderr}`);
  return r.stdout;
}

/** The error `f` rejects with (a failure if it resolves). */
async function rejection(f: () => Promise<unknown>): Promise<Error> {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  assert.unreachable('it resolved');
  throw new Error('unreachable');
}

if (!avail.ok) {
  console.log(`  skipped: test hosts unavailable: ${avail.reason}`);
  test.skip('test hosts');
} else {
  test.after(async () => {
    await c?.down(); // also when a test failed
  });

  test('bad options are named', async () => {
    const count = await rejection(() => upHosts({ count: 0 }));
    assert.instance(count, RangeError);
    assert.is(count.message, 'count must be an integer 1..64, got 0');
    const prefix = await rejection(() => upHosts({ count: 1, prefix: 'th1' }));
    assert.instance(prefix, TypeError);
    assert.is(prefix.message, 'prefix must be 1-8 lower-case letters or digits, starting and ending with a letter, got "th1"');
    assert.is((await rejection(() => upHosts({ count: 1, net: '10.77' }))).message, 'net must be three octets such as 10.77.0, got "10.77"');
  });

  test('3 hosts come up with ssh and Slurm', async () => {
    c = await upHosts({ count: 3, ssh: true, slurm: true });
    assert.equal(c.hosts, [`${c.prefix}1`, `${c.prefix}2`, `${c.prefix}3`]);
    assert.equal(c.addrs, [1, 2, 3].map((i) => `${c!.net}.${i}`));
    assert.is(fs.readFileSync(c.hostfile, 'utf8'), c.hosts.map((h) => `${h} slots=2\n`).join(''));
    assert.is(fs.readFileSync(c.hostfiles.names, 'utf8'), c.hosts.map((h) => `${h}\n`).join(''));
    assert.is(fs.readFileSync(c.hostfiles.colon, 'utf8'), c.hosts.map((h) => `${h}:2\n`).join(''));
    const t = c.timings;
    console.log(`  up: hosts ${t.hosts.toFixed(0)} ms, sshd ${t.ssh.toFixed(0)} ms, slurm ${t.slurm.toFixed(0)} ms`);
  });

  test('each host has its own hostname, /etc/hosts and process table', async () => {
    const { hosts: names, addrs } = hosts();
    for (const [i, h] of names.entries()) {
      assert.is(await ok(h, 'hostname'), `${h}\n`);
      const next = (i + 1) % names.length;
      assert.equal((await ok(h, 'getent', ['hosts', names[next]])).trim().split(/\s+/), [addrs[next], names[next]]);
      // In its own pid namespace the host's init is pid 1 and `ps` sees only the host's processes.
      const ps = (await ok(h, 'ps', ['-e', '-o', 'pid=,comm='])).trim().split('\n').map((l) => l.trim().split(/\s+/));
      assert.equal(ps[0], ['1', 'th-init.sh']);
      assert.ok(ps.some(([, comm]) => comm === 'slurmd'), `no slurmd in ${h}: ${JSON.stringify(ps)}`);
      assert.ok(ps.length < 12, `${h} sees foreign processes: ${JSON.stringify(ps)}`);
    }
  });

  test('exec keeps cwd, environment, exit status, signal and stdin', async () => {
    const c = hosts();
    const h = c.hosts[1];
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'sfmpi-th-'));
    try {
      const r = await c.exec(h, 'sh', ['-c', 'pwd; echo "$TH_TEST_VAR"; cat; exit 3'], { cwd, env: { TH_TEST_VAR: 'v 1' }, input: 'from stdin' });
      assert.is(r.code, 3);
      assert.is(r.stdout, `${cwd}\nv 1\nfrom stdin`);
    } finally {
      fs.rmSync(cwd, { recursive: true });
    }
    const killed = await c.exec(h, 'sh', ['-c', 'kill -9 $$']);
    assert.is(killed.signal, 'SIGKILL');
    assert.is(killed.code, null);
  });

  test('a timed-out or killed exec leaves nothing in the host', async () => {
    const c = hosts();
    const h = c.hosts[0];
    const timedOut = await c.exec(h, 'sleep', ['100'], { timeoutMs: 300 });
    assert.ok(timedOut.timedOut);
    // onSpawn gets the root-namespace nsenter: killing it kills the command (pdeathsig).
    const killed = await c.exec(h, 'sh', ['-c', 'echo started; exec sleep 100'], {
      onSpawn: (pid, stdout) => {
        void until(() => stdout().includes('started'), 5000).then(() => process.kill(pid, 'SIGTERM'));
      },
    });
    assert.is(killed.signal, 'SIGTERM');
    assert.not.ok(killed.timedOut, 'the command outlived its nsenter');
    assert.ok(await until(() => c.processes(h).length === 0, 3000), JSON.stringify(c.processes(h)));
    assert.ok(c.processes(h, { all: true }).some((p) => p.nspid === 1), 'processes({all}) shows the init');
  });

  test('TCP between all hosts and multicast from each to all', async () => {
    const c = hosts();
    const rs = await Promise.all(c.hosts.map((h) => c.exec(h, process.execPath, [netCheck, c.hosts.join(','), '239.77.0.1', '7000'], { timeoutMs: 15_000 })));
    for (const [i, r] of rs.entries()) {
      assert.is(r.code, 0, r.stderr);
      const others = c.hosts.filter((h) => h !== c.hosts[i]);
      assert.equal(JSON.parse(r.stdout), { me: c.hosts[i], tcp: others, heard: others });
    }
  });

  test('no route out of the hosts, and no address on the root side', async () => {
    const c = hosts();
    // The machine's own addresses and the outside world are unreachable; `ip route get` only
    // asks the kernel, it sends nothing.
    const targets = ['1.1.1.1', ...Object.values(os.networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4' && !a.internal).map((a) => a!.address)];
    for (const h of c.hosts) {
      assert.is((await ok(h, 'ip', ['-4', 'route', 'show'])).split('\n').filter(Boolean).length, 2, 'only the /24 and multicast routes');
      for (const dst of targets) {
        const r = await c.exec(h, 'ip', ['route', 'get', dst]);
        assert.is.not(r.code, 0, `${h} has a route to ${dst}: ${r.stdout}`);
        assert.match(r.stderr, 'Network is unreachable');
      }
      const r6 = await c.exec(h, 'ip', ['-6', 'route', 'get', '2001:db8::1']);
      assert.is.not(r6.code, 0, `${h} has an IPv6 route out: ${r6.stdout}`);
    }
    const bridge = JSON.parse(execFileSync('ip', ['-j', 'addr', 'show', 'dev', `${c.prefix}br0`], { encoding: 'utf8' }));
    assert.equal(bridge[0].addr_info, [], 'the bridge has an address in the root namespace');
  });

  test('a second cluster coexists, on its own bridge, even with the same addresses', async () => {
    const c = hosts();
    assert.is((await rejection(() => upHosts({ count: 1, prefix: c.prefix }))).message, `test hosts "${c.prefix}" are already up in this process: down() them first`);
    const c2 = await upHosts({ count: 1, net: c.net });
    try {
      assert.is.not(c2.prefix, c.prefix);
      assert.is(c2.addrs[0], c.addrs[0]);
      assert.throws(() => c2.exec(c.hosts[0], 'true'), (e: Error) => e instanceof RangeError && e.message === `unknown test host "${c.hosts[0]}"; the hosts are ${c2.hosts[0]}`);
      const members = (JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'master', `${c2.prefix}br0`], { encoding: 'utf8' })) as { ifname: string }[]).map((l) => l.ifname);
      assert.equal(members, [`${c2.prefix}v1`]);
      // Multicast floods a bridge: c's listener hears c's sender (the control) and not c2's.
      const listen = `const s=require('dgram').createSocket({type:'udp4',reuseAddr:true}),h=new Set();
        s.on('message',m=>h.add(String(m)));s.bind(7002,()=>s.addMembership('239.77.0.2'));
        setTimeout(()=>{console.log(JSON.stringify([...h]));process.exit(0)},1500)`;
      const send = `const s=require('dgram').createSocket('udp4'),me=require('os').hostname();
        const t=setInterval(()=>s.send(me,7002,'239.77.0.2'),50);setTimeout(()=>process.exit(0),1000)`;
      const [heard] = await Promise.all([
        c.exec(c.hosts[0], process.execPath, ['-e', listen]),
        c.exec(c.hosts[1], process.execPath, ['-e', send]),
        c2.exec(c2.hosts[0], process.execPath, ['-e', send]),
      ]);
      assert.equal(JSON.parse(heard.stdout), [c.hosts[1]], heard.stderr);
    } finally {
      await c2.down();
    }
    assert.not.ok(fs.existsSync(c2.state));
  });

  test('ssh between hosts: BatchMode, environment on the command line, exit status', async () => {
    const c = hosts();
    const [a, b, d] = c.hosts;
    assert.is(await ok(a, 'ssh', ['-o', 'BatchMode=yes', b, 'hostname']), `${b}\n`);
    assert.is(await ok(a, 'ssh', ['-o', 'BatchMode=yes', c.addrs[2], 'hostname']), `${d}\n`);
    assert.is(await ok(b, 'ssh', [d, 'FOO="a b"', 'sh', '-c', "'echo \"$FOO\"'"]), 'a b\n');
    const sent = await c.exec(d, 'ssh', ['-o', 'SendEnv=SFMPI_X', a, 'echo $SFMPI_X'], { env: { SFMPI_X: 'sent' } });
    assert.is(sent.stdout, 'sent\n', sent.stderr);
    const st = await c.exec(a, 'ssh', [b, 'exit 7']);
    assert.is(st.code, 7, st.stderr);
  });

  test('srun -N 3 runs on every host, with the step environment', async () => {
    const c = hosts();
    const names = (await ok(c.hosts[0], 'srun', ['-N', '3', 'hostname'])).trim().split('\n').sort();
    assert.equal(names, [...c.hosts]);
    const out = await ok(c.hosts[1], 'srun', ['-N', '3', '-n', '3', 'sh', '-c', 'echo "$(hostname) $SLURMD_NODENAME $SLURM_NODEID $SLURM_JOB_NODELIST $SLURM_TASKS_PER_NODE $SLURM_NNODES"']);
    const rows = out.trim().split('\n').map((l) => l.split(' ')).sort((x, y) => x[0].localeCompare(y[0]));
    assert.equal(rows, c.hosts.map((h, i) => [h, h, String(i), `${c.prefix}[1-3]`, '1(x3)', '3']));
  });

  test('an unplugged link is silence, replugged it works again', async () => {
    const c = hosts();
    const [a, b] = c.hosts;
    await c.link(b, 'down');
    const cut = await c.exec(a, 'ssh', ['-o', 'ConnectTimeout=1', b, 'true']);
    assert.is(cut.code, 255);
    assert.match(cut.stderr, 'timed out');
    await c.link(b, 'up');
    assert.is(await ok(a, 'ssh', [b, 'hostname']), `${b}\n`);
  });

  test('a killed host is seen: its processes are gone, ssh is refused, srun on it fails', async () => {
    const c = hosts();
    const [a, b, d] = c.hosts;
    await c.kill(d);
    assert.equal(c.processes(d, { all: true }), []);
    const enter = await c.exec(d, 'true');
    assert.is(enter.code, 127);
    assert.match(enter.stderr, `test host ${d} is down`);
    // Slurm still lists the dead node; launching on it fails after its connect retries (~6 s).
    const dead = c.exec(a, 'srun', ['-w', d, 'true'], { timeoutMs: 60_000 });
    const [ssh, onLive] = await Promise.all([c.exec(a, 'ssh', [d, 'true']), c.exec(a, 'srun', ['-N', '2', '-w', `${a},${b}`, 'hostname'])]);
    assert.is(ssh.code, 255);
    assert.match(ssh.stderr, 'Connection refused');
    assert.is(onLive.code, 0, onLive.stderr);
    // A host killed --silent: no refusal, only a timeout.
    await c.kill(b, { silent: true });
    const silent = await c.exec(a, 'ssh', ['-o', 'ConnectTimeout=1', b, 'true']);
    assert.is(silent.code, 255);
    assert.match(silent.stderr, 'timed out');
    const onDead = await dead;
    assert.is.not(onDead.code, 0, 'srun on the dead host succeeded');
    assert.match(onDead.stderr, `failed on node ${d}`);
  });

  test('down() leaves no namespace, bridge, veth, state dir or process', async () => {
    const c = hosts();
    const nsIds = new Set(c.hosts.map((h) => fs.statSync(`/run/netns/${h}`).ino));
    const pidNs = new Set(c.processes(c.hosts[0], { all: true }).map((p) => fs.statSync(`/proc/${p.pid}/ns/pid`).ino));
    assert.is(pidNs.size, 1);
    await c.down();
    const ours = new RegExp(`^${c.prefix}(\\d+|br0|v\\d+)$`);
    const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]);
    assert.equal(netns.filter((n) => ours.test(n)), []);
    const links = (JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[]).map((l) => l.ifname);
    assert.equal(links.filter((n) => ours.test(n)), []);
    assert.not.ok(fs.existsSync(c.state), `${c.state} is left`);
    const left: string[] = [];
    for (const p of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
      try {
        if (nsIds.has(fs.statSync(`/proc/${p}/ns/net`).ino) || pidNs.has(fs.statSync(`/proc/${p}/ns/pid`).ino)) left.push(p);
      } catch {
        /* ended */
      }
    }
    assert.equal(left, [], 'processes left in the hosts');
    assert.throws(() => c.processes(c.hosts[0]), /are down/);
  });
}

test.run();
