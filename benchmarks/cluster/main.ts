/**
 * Jobs across hosts, on test hosts made on this machine (test/hosts: network namespaces on a
 * bridge, a real sshd and a real Slurm in each), sfmpi beside the MPI implementations users run:
 *
 *   pingpong   8 B half round trip and 1 MiB bandwidth between ranks on two hosts (one rank
 *              each), over TCP on the same veth pair: sfmpi TypeScript ranks (Send/Recv of
 *              Uint8Arrays), sfmpi C (pingpong.c built with sfmpicc), Open MPI (ob1 + the tcp
 *              BTL, mpicc.openmpi) and MPICH (ch4:ucx over TCP, under a timeout: Debian's can
 *              hang in MPI_Finalize, and the figures it printed before still count).
 *   start-up   whole-job wall time of hello world at -n 8 on 2 and 4 hosts, launched from the
 *              first host: with hostfile + ssh, sfmpirun (C and TypeScript) beside
 *              `mpirun.openmpi --hostfile` over the same ssh; inside a Slurm allocation,
 *              sfmpirun beside `srun --mpi=pmix` of the Open MPI build and a bare
 *              `srun hostname` (the floor: one Slurm step).
 *
 * Drivers interleave (A B C A B C ...) for BENCH_ROUNDS rounds (5 by default); cells are
 * "median (minimum)", ratios compare medians of this run. Needs root (namespaces) and Debian's
 * openssh-server, slurmd, slurmctld, munge, openmpi-bin and mpich (installed by .ci/run; the
 * MPI packages also here, with apt-get, when missing).
 *
 * Run: npm run bench:cluster
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hostsAvailable, scriptsDir, upHosts, type TestHosts } from '../../test/hosts/testhosts.js';
import { cell, ensureMpich, interleave, jsonLines, machine, ratio, root, ROUNDS, table, type Row, type Stat } from '../mpi-peers.js';

const avail = hostsAvailable({ ssh: true, slurm: true });
if (!avail.ok) {
  console.error(`bench:cluster: test hosts unavailable here: ${avail.reason}`);
  process.exit(1);
}
ensureMpich();
if (!fs.existsSync('/usr/bin/mpicc.openmpi')) {
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'openmpi-bin', 'libopenmpi-dev'], { stdio: 'inherit' });
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sfmpi-bench-cluster-'));
const sfmpirun = path.join(root, 'dist', 'mpi-compat', 'launcher', 'sfmpirun.js');
const walltime = path.join(root, 'dist', 'benchmarks', 'cluster', 'walltime.js');
const tsPingpong = path.join(root, 'dist', 'benchmarks', 'pingpong', 'ranks.js');
const tsHello = path.join(root, 'dist', 'benchmarks', 'cluster', 'hello.js');

/** Builds benchmarks/<src> with each compiler; the executables by implementation. */
function build(src: string): Record<'sf' | 'ompi' | 'mpich', string> {
  const name = path.basename(src, '.c');
  const cc = { sf: path.join(root, 'mpi-compat', 'c', 'sfmpicc'), ompi: 'mpicc.openmpi', mpich: 'mpicc.mpich' };
  const out = {} as Record<'sf' | 'ompi' | 'mpich', string>;
  for (const [impl, compiler] of Object.entries(cc) as ['sf' | 'ompi' | 'mpich', string][]) {
    out[impl] = path.join(work, `${name}_${impl}`);
    execFileSync(compiler, ['-O2', '-w', path.join(root, 'benchmarks', src), '-o', out[impl]], { stdio: 'inherit' });
  }
  return out;
}

const pingpong = build('pingpong/pingpong.c');
const hello = build('c/hello.c');
const c: TestHosts = await upHosts({ count: 4, ssh: true, slurm: true, cpus: 4 });
try {
  const [h1, h2] = c.hosts;
  const subnet = `${c.net}.0/24`;
  // Open MPI in its best idiom here: ob1 with shared memory on a host and TCP between hosts, on
  // the test network only; allowed to run as root (CI is root), also in its remote orteds.
  const ompiEnv = {
    OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_pml: 'ob1', OMPI_MCA_btl: 'self,vader,tcp',
    OMPI_MCA_btl_tcp_if_include: subnet, OMPI_MCA_oob_tcp_if_include: subnet, OMPI_MCA_plm_rsh_agent: 'ssh',
  };
  const ompiFlags = ['--bind-to', 'none', ...Object.entries(ompiEnv).filter(([k]) => !k.startsWith('OMPI_ALLOW')).flatMap(([k]) => ['-x', k])];
  /** `cmd args` inside the first host, its JSON lines (bash th-exec.sh: the host's namespaces). */
  const inHost = (argv: string[], env: Record<string, string> = {}, timeoutMs = 300_000): Row[] =>
    jsonLines('bash', [path.join(scriptsDir, 'th-exec.sh'), h1, ...argv], { ...c.env, ...env }, timeoutMs);
  const sizes = ['8', String(1 << 20)];

  // --- pingpong between two hosts ---
  const pp = interleave({
    ts: () => inHost([process.execPath, sfmpirun, '--host', `${h1},${h2}`, '-n', '2', tsPingpong, ...sizes]),
    c: () => inHost([process.execPath, sfmpirun, '--host', `${h1},${h2}`, '-n', '2', pingpong.sf, ...sizes]),
    ompi: () => inHost(['mpirun.openmpi', '--host', `${h1},${h2}`, '-n', '2', ...ompiFlags, pingpong.ompi, ...sizes], ompiEnv),
    mpich: () => inHost(['mpirun.mpich', '-launcher', 'ssh', '-hosts', `${h1},${h2}`, '-n', '2', pingpong.mpich, ...sizes], { UCX_TLS: 'tcp,self' }, 60_000),
  });

  // --- start-up of hello world at -n 8 ---
  const hostfile = (k: number) => {
    const f = path.join(work, `hosts${k}`);
    fs.writeFileSync(f, c.hosts.slice(0, k).map((h) => `${h} slots=${8 / k}\n`).join(''));
    return f;
  };
  const spec = (list: { key: string; argv: string[]; env?: Record<string, string> }[]) => JSON.stringify(list);
  const startup: Record<string, Map<string, Stat>> = {};
  for (const k of [2, 4]) {
    const hf = hostfile(k);
    const ssh = interleave({
      run: () => inHost([process.execPath, walltime, '1', spec([
        { key: 'c', argv: [process.execPath, sfmpirun, '--hostfile', hf, '-n', '8', hello.sf] },
        { key: 'ts', argv: [process.execPath, sfmpirun, '--hostfile', hf, '-n', '8', tsHello] },
        { key: 'ompi', argv: ['mpirun.openmpi', '--hostfile', hf, '-n', '8', ...ompiFlags, hello.ompi], env: ompiEnv },
      ])]),
    });
    const slurm = interleave({
      run: () => inHost(['salloc', '-N', String(k), '-n', '8', '--quiet', process.execPath, walltime, '1', spec([
        { key: 'c', argv: [process.execPath, sfmpirun, '-n', '8', hello.sf] },
        { key: 'ts', argv: [process.execPath, sfmpirun, '-n', '8', tsHello] },
        { key: 'ompi', argv: ['srun', '--mpi=pmix', '-n', '8', hello.ompi], env: ompiEnv },
        { key: 'hostname', argv: ['srun', '-N', String(k), '-n', String(k), 'hostname'] },
      ])]),
    });
    for (const [key, s] of ssh.run) startup[`ssh${k}:${key}`] = new Map([['ms', { median: s.median / 1000, min: s.min / 1000, n: s.n }]]);
    for (const [key, s] of slurm.run) startup[`slurm${k}:${key}`] = new Map([['ms', { median: s.median / 1000, min: s.min / 1000, n: s.n }]]);
  }

  // --- state handed to 8 ranks on 2 and 4 hosts (issue 11) ---
  const mib = Number(process.env.STATE_MIB ?? 1024);
  const stateFile = path.join(work, 'state.bin');
  {
    // The file peer's data: the same bytes the origin builds, on the (shared) file system.
    const chunk = new Float64Array(1 << 17), n = (mib << 20) / 8, fd = fs.openSync(stateFile, 'w');
    for (let off = 0; off < n; off += chunk.length) {
      for (let i = 0; i < chunk.length; i++) chunk[i] = off + i < n / 2 ? off + i + 1 : 0;
      fs.writeSync(fd, chunk);
    }
    fs.closeSync(fd);
  }
  const stateC = build('cluster/state_peer.c').ompi;
  const stateTs = path.join(root, 'dist', 'benchmarks', 'cluster', 'state-ranks.js');
  const ws = path.join(work, 'working-sets');
  const state: Record<string, Record<string, Map<string, Stat>>> = {};
  for (const k of [2, 4]) {
    const hf = hostfile(k);
    const sf = (pattern: string, env: Record<string, string>) => () =>
      inHost([process.execPath, sfmpirun, '--hostfile', hf, '-n', '8', stateTs, String(mib), pattern], { SFMPI_PREFETCH: '0', SFMPI_WORKING_SETS: ws, ...env });
    state[k] = interleave({
      eighth: sf('eighth', {}),
      all: sf('all', {}),
      noZeroMap: sf('all', { SFMPI_LAZY_ZEROMAP: '0' }),
      // Replays the working set the previous round of this driver recorded (the first round records).
      prefetch: sf('all', { SFMPI_PREFETCH: '1' }),
      fileEighth: () => inHost(['mpirun.openmpi', '--hostfile', hf, '-n', '8', ...ompiFlags, stateC, String(mib), 'eighth', 'file', stateFile], ompiEnv),
      fileAll: () => inHost(['mpirun.openmpi', '--hostfile', hf, '-n', '8', ...ompiFlags, stateC, String(mib), 'all', 'file', stateFile], ompiEnv),
      bcast: () => inHost(['mpirun.openmpi', '--hostfile', hf, '-n', '8', ...ompiFlags, stateC, String(mib), 'all', 'bcast'], ompiEnv),
    });
  }

  // --- tables ---
  const mbs = (t: Stat | undefined): Stat | undefined => (t ? { median: (1 << 20) / t.median, min: (1 << 20) / t.min, n: t.n } : undefined);
  const l = (d: Map<string, Stat>) => d.get('8');
  const b = (d: Map<string, Stat>) => mbs(d.get(String(1 << 20)));
  console.log(`jobs across hosts: test hosts ${c.hosts.join(', ')} (network namespaces on one machine), ${machine()}, ${ROUNDS} rounds interleaved\n`);
  console.log(table(['pingpong, 2 hosts', 'sfmpi TS', 'sfmpi C', 'Open MPI (tcp)', 'MPICH (ucx tcp)', 'sfmpi C / Open MPI', 'sfmpi TS / Open MPI'], [
    ['latency 8 B (us)', cell(l(pp.ts)), cell(l(pp.c)), cell(l(pp.ompi)), cell(l(pp.mpich)), ratio(l(pp.c), l(pp.ompi)), ratio(l(pp.ts), l(pp.ompi))],
    ['bandwidth 1 MiB (MB/s)', cell(b(pp.ts), 0), cell(b(pp.c), 0), cell(b(pp.ompi), 0), cell(b(pp.mpich), 0), ratio(b(pp.c), b(pp.ompi)), ratio(b(pp.ts), b(pp.ompi))],
  ]));
  console.log('latency: lower is better (a ratio under 1 beats Open MPI); bandwidth: higher is better.\n');
  const s = (k: string) => startup[k]?.get('ms');
  console.log(table(['hello world -n 8 (ms)', 'sfmpi C', 'sfmpi TS', 'peer', 'peer', 'sfmpi C / peer', 'sfmpi TS / peer'], [
    ...[2, 4].map((k) => [`${k} hosts, hostfile + ssh`, cell(s(`ssh${k}:c`), 0), cell(s(`ssh${k}:ts`), 0), 'mpirun.openmpi --hostfile', cell(s(`ssh${k}:ompi`), 0), ratio(s(`ssh${k}:c`), s(`ssh${k}:ompi`)), ratio(s(`ssh${k}:ts`), s(`ssh${k}:ompi`))]),
    ...[2, 4].map((k) => [`${k} hosts, inside salloc`, cell(s(`slurm${k}:c`), 0), cell(s(`slurm${k}:ts`), 0), 'srun --mpi=pmix (Open MPI)', cell(s(`slurm${k}:ompi`), 0), ratio(s(`slurm${k}:c`), s(`slurm${k}:ompi`)), ratio(s(`slurm${k}:ts`), s(`slurm${k}:ompi`))]),
    ...[2, 4].map((k) => [`${k} hosts, inside salloc`, '', '', `srun -N ${k} hostname`, cell(s(`slurm${k}:hostname`), 0), ratio(s(`slurm${k}:c`), s(`slurm${k}:hostname`)), ratio(s(`slurm${k}:ts`), s(`slurm${k}:hostname`))]),
  ]));
  console.log('wall time from the launcher\'s start to its exit, run on the first host; lower is better.\n');
  const ms = (d: Map<string, Stat>, key: string) => {
    const x = d.get(key);
    return x ? { median: x.median / 1000, min: x.min / 1000, n: x.n } : undefined;
  };
  const frac = (d: Map<string, Stat>) => {
    const f = d.get('fetchedMB'), t = d.get('touchedMB');
    return f && t && t.median > 0 ? `${(f.median / t.median).toFixed(2)}x` : '-';
  };
  const srow = (name: string, key: string, peer = false) =>
    [name, ...[2, 4].flatMap((k) => [peer ? '-' : cell(ms(state[k][key], 'past'), 1), cell(ms(state[k][key], peer ? 'past' : 'handover'), 0), cell(ms(state[k][key], 'done'), 0), peer ? '-' : frac(state[k][key])])];
  console.log(table([`state of ${mib} MiB, 8 ranks (ms)`, '2 hosts: past fork', 'hand-over', 'done', 'fetched/touched', '4 hosts: past fork', 'hand-over', 'done', 'fetched/touched'], [
    srow('sfmpi loadOnce, each rank its eighth', 'eighth'),
    srow('sfmpi loadOnce, every rank all', 'all'),
    srow('  the same, zero map off', 'noZeroMap'),
    srow('  the same, prefetching the last run\'s working set', 'prefetch'),
    srow('Open MPI, each rank reads its eighth from a file', 'fileEighth', true),
    srow('Open MPI, each rank reads all from a file', 'fileAll', true),
    srow('Open MPI, MPI_Bcast of all from rank 0 (TCP)', 'bcast', true),
  ]));
  console.log(
    'past fork: from the origin reaching its fork point (MPI.init) to every rank past it; hand-over: from the origin\'s loader returning to every rank past its\n' +
      'fork point (sfmpi: the memory server\'s fork, the descriptors, the seeds\' mappings), or to every rank holding its data (Open MPI: the file read, the broadcast);\n' +
      'done: from the same start to every rank through its pattern (one read per page); fetched/touched: pages that crossed the network over distinct data pages touched, per host\n' +
      '(the second half of the state is zero: its pages are never fetched unless the zero map is off). The file peer reads a file that every test host sees\n' +
      'through one page cache: a real cluster reads a disk or a parallel file system.',
  );
} finally {
  await c.down();
  fs.rmSync(work, { recursive: true, force: true });
}
