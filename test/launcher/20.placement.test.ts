// Property: host lists (MPICH and Open MPI hostfiles, --host, the Slurm allocation) are read as
// those tools read them, every bad input is an error naming its file and line, option or
// variable, and ranks land where Open MPI's own mapper puts them (checked against
// `mpirun.openmpi --do-not-launch --display-map` and `scontrol show hostnames` when installed).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseHostfile, parseHostOption, readHostfile, type HostSpec } from '../../mpi-compat/launcher/hostfile.js';
import {
  hostsFor,
  isLocalHost,
  localIdentity,
  parseMapBy,
  place,
  PlacementError,
  resolveAddresses,
  type LocalIdentity,
  type PlacementOptions,
} from '../../mpi-compat/launcher/placement.js';
import { expandCounts, expandHostlist, scontrolHostnames, slurmAllocation } from '../../mpi-compat/launcher/slurm.js';
import { deadline } from '../helpers.js';

/** A host that is none of the names used below, so tests do not depend on the machine. */
const elsewhere: LocalIdentity = { names: ['launchhost'], addresses: ['127.0.0.1', '10.9.9.9'] };

function throwsPlacement(fn: () => unknown, code: string, message: string): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, PlacementError);
    assert.is((e as PlacementError).message, message);
    assert.is((e as PlacementError).code, code);
    return;
  }
  assert.unreachable(`no error; expected: ${message}`);
}

/** host name -> its ranks, the shape Open MPI's --display-map shows. */
function layout(hosts: HostSpec[], opts: PlacementOptions): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const h of place(hosts, { local: elsewhere, ...opts }).hosts) out[h.name] = h.ranks;
  return out;
}

const hf = (text: string) => parseHostfile(text, 'hosts');

// ---------------------------------------------------------------- hostfiles

test('hostfile: both syntaxes, comments, blank lines, IPv4, CRLF', () => {
  const hosts = hf(
    [
      '# a comment line',
      'th1',
      '',
      '   th2:4   # MPICH',
      'th3 slots=4',
      'th4 slots=2 max_slots=4',
      'th5 max-slots=3',
      'th6 slots = 2',
      '10.77.0.7 slots=2\r',
      '\t',
    ].join('\n'),
  );
  assert.equal(
    hosts.map((h) => [h.name, h.slots, h.maxSlots, h.origin]),
    [
      ['th1', 1, null, 'hosts:2'],
      ['th2', 4, null, 'hosts:4'],
      ['th3', 4, null, 'hosts:5'],
      ['th4', 2, 4, 'hosts:6'],
      ['th5', 3, 3, 'hosts:7'],
      ['th6', 2, null, 'hosts:8'],
      ['10.77.0.7', 2, null, 'hosts:9'],
    ],
  );
});

test('hostfile: a repeated host sums its slots at its first place (Open MPI merges, hydra keeps apart)', () => {
  const hosts = hf('a\nb slots=2\nA\na:3\nb slots=1 max_slots=5\n');
  assert.equal(
    hosts.map((h) => [h.name, h.slots, h.maxSlots]),
    [
      ['a', 5, null],
      ['b', 3, null],
    ],
  );
  assert.equal(hf('a slots=1 max_slots=2\na slots=2 max_slots=2\n')[0], { name: 'a', slots: 3, maxSlots: 4, origin: 'hosts:1' });
});

test('hostfile: every bad line is named by file, line and problem', () => {
  const cases: [string, string][] = [
    ['th2 slots=x', 'slots must be a positive integer'],
    ['th2 slots=0', 'slots must be a positive integer'],
    ['th2 slots=-1', 'slots must be a positive integer'],
    ['th2 slots=2.5', 'slots must be a positive integer'],
    ['th2 slots=2000000', 'slots 2000000 is more than 1048576, the most one host may have'],
    ['th2:x', 'slots must be a positive integer'],
    ['th2:0', 'slots must be a positive integer'],
    ['th2:', 'slots must be a positive integer'],
    ['th2 slots', 'slots needs a value: slots=N'],
    ['th2 slots=', 'slots needs a value: slots=N'],
    ['th2 slots=2 slots=3', 'slots is given twice'],
    ['th2:2 slots=3', 'the slot count is given twice (th2:2 and slots=3)'],
    ['th2 max_slots=y', 'max_slots must be a positive integer'],
    ['th2 max-slots=0', 'max-slots must be a positive integer'],
    ['th2 max_slots', 'max_slots needs a value: max_slots=N'],
    ['th2 max_slots=2 max_slots=3', 'max_slots is given twice'],
    ['th2 slots=3 max_slots=2', 'max_slots (2) is less than slots (3)'],
    ['th2 4', 'unexpected "4" after the host name (expected slots=N or max_slots=N)'],
    ['th2 user=me', 'unexpected "user=me" after the host name (expected slots=N or max_slots=N)'],
    ['th2 count=2', 'unexpected "count=2" after the host name (expected slots=N or max_slots=N)'],
    ['th_2!', '"th_2!" is not a host name or an IPv4 address'],
    ['-th2', '"-th2" is not a host name or an IPv4 address'],
    ['a..b', '"a..b" is not a host name or an IPv4 address'],
    ['10.0.0.256', '"10.0.0.256" is not a valid IPv4 address'],
    ['10.0.0', '"10.0.0" is not a valid IPv4 address'],
    ['me@th2', '"me@th2": user@host is not supported (set User in ~/.ssh/config)'],
    ['fe80::1 slots=2', '"fe80::1": IPv6 addresses are not supported'],
    ['^th2', '"^th2" is not a host name or an IPv4 address'],
    [`${'a'.repeat(64)}`, `"${'a'.repeat(64)}" is not a host name or an IPv4 address`],
  ];
  for (const [line, why] of cases)
    throwsPlacement(() => hf(`th1\n# comment\n${line}   # trailing comment\nth3\n`), 'ERR_HOSTFILE', `hosts:3: "${line}": ${why}`);
});

test('hostfile: an empty, missing or unreadable file is named', () => {
  throwsPlacement(() => hf('# nothing\n\n   \n'), 'ERR_HOSTFILE', 'hosts: no hosts in it');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfmpi-hostfile-'));
  try {
    throwsPlacement(() => readHostfile(path.join(dir, 'nope')), 'ERR_HOSTFILE', `${path.join(dir, 'nope')}: cannot read the hostfile: no such file`);
    throwsPlacement(() => readHostfile(dir), 'ERR_HOSTFILE', `${dir}: cannot read the hostfile: a directory, not a file`);
    fs.writeFileSync(path.join(dir, 'h'), 'x1 slots=2\nx2 slots=q\n');
    throwsPlacement(() => readHostfile(path.join(dir, 'h')), 'ERR_HOSTFILE', `${path.join(dir, 'h')}:2: "x2 slots=q": slots must be a positive integer`);
    fs.writeFileSync(path.join(dir, 'h'), 'x1:2\nx2\n');
    assert.equal(readHostfile(path.join(dir, 'h')).map((h) => [h.name, h.slots]), [['x1', 2], ['x2', 1]]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- --host

test('--host: a:4,b:4 gives slots, a,a,b repeats them (Open MPI)', () => {
  assert.equal(parseHostOption('a:4,b:4').map((h) => [h.name, h.slots]), [['a', 4], ['b', 4]]);
  assert.equal(parseHostOption('a,a,b').map((h) => [h.name, h.slots]), [['a', 2], ['b', 1]]);
  assert.equal(parseHostOption('a:2, b ,a:2,10.0.0.1').map((h) => [h.name, h.slots, h.origin]), [
    ['a', 4, '--host'],
    ['b', 1, '--host'],
    ['10.0.0.1', 1, '--host'],
  ]);
});

test('--host: bad items are named', () => {
  throwsPlacement(() => parseHostOption('a:4,b:x'), 'ERR_HOST_OPTION', '--host: "b:x": slots must be a positive integer');
  throwsPlacement(() => parseHostOption('a:0'), 'ERR_HOST_OPTION', '--host: "a:0": slots must be a positive integer');
  throwsPlacement(() => parseHostOption('a,,b'), 'ERR_HOST_OPTION', '--host: "a,,b": empty host name at item 2');
  throwsPlacement(() => parseHostOption(''), 'ERR_HOST_OPTION', '--host: "": empty host name at item 1');
  throwsPlacement(() => parseHostOption('a b'), 'ERR_HOST_OPTION', '--host: "a b" is not a host name or an IPv4 address');
  throwsPlacement(() => parseHostOption(':3'), 'ERR_HOST_OPTION', '--host: empty host name');
  throwsPlacement(() => parseHostOption('::1'), 'ERR_HOST_OPTION', '--host: "::1": IPv6 addresses are not supported');
});

// ---------------------------------------------------------------- Slurm

// Each expansion as `scontrol show hostnames` (Slurm 22.05.8) printed it.
const hostlists: [string, string[]][] = [
  ['th[1-3,5]', ['th1', 'th2', 'th3', 'th5']],
  ['node[01-10]', ['node01', 'node02', 'node03', 'node04', 'node05', 'node06', 'node07', 'node08', 'node09', 'node10']],
  ['a[1-2],b3', ['a1', 'a2', 'b3']],
  ['rack[1-2]-n[1-2]', ['rack1-n1', 'rack1-n2', 'rack2-n1', 'rack2-n2']],
  ['n[1-2]-[5-6]', ['n1-5', 'n1-6', 'n2-5', 'n2-6']],
  ['x[8-11]', ['x8', 'x9', 'x10', 'x11']],
  ['n[009-011]', ['n009', 'n010', 'n011']],
  ['n[1-010]', ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8', 'n9', 'n10']],
  ['n[08-9]', ['n08', 'n09']],
  ['a[01,3]', ['a01', 'a3']],
  ['n[2,1]', ['n2', 'n1']],
  ['a,b,c', ['a', 'b', 'c']],
  ['a,,b', ['a', 'b']],
  ['a b', ['a', 'b']],
  ['th1', ['th1']],
  ['a.b[1-2]', ['a.b1', 'a.b2']],
  ['n[0-0]', ['n0']],
  ['N[00-00]', ['N00']],
];

// Each refused by scontrol too ("Invalid hostlist").
const badHostlists: [string, string][] = [
  ['n[3-1]', 'range 3-1 runs backwards'],
  ['a[]', 'empty "[]"'],
  ['n[a-b]', '"a-b" is not a number or a range N-M'],
  ['n[1-2,]', '"" is not a number or a range N-M'],
  ['n[-2]', '"-2" is not a number or a range N-M'],
  ['n[1--2]', '"1--2" is not a number or a range N-M'],
  ['n[1-2]]', '"]" without "["'],
  ['n[[1-2]]', 'nested "["'],
  ['h[1-2]a', '"a" after "]" (only another [..] may follow a bracket)'],
  ['a[1-2].b', '".b" after "]" (only another [..] may follow a bracket)'],
  ['n[0-99999]', 'range 0-99999 has more than 65536 hosts'],
  ['n[1-3', 'unclosed "["'],
];

test('Slurm host lists expand as scontrol show hostnames does', () => {
  for (const [text, want] of hostlists) assert.equal(expandHostlist(text), want, text);
  for (const [text, why] of badHostlists) throwsPlacement(() => expandHostlist(text), 'ERR_SLURM_ENV', `SLURM_JOB_NODELIST="${text}": ${why}`);
  throwsPlacement(() => expandHostlist('n[1-300]-[1-300]'), 'ERR_SLURM_ENV', 'SLURM_JOB_NODELIST="n[1-300]-[1-300]": more than 65536 hosts');
  throwsPlacement(() => expandHostlist(' , '), 'ERR_SLURM_ENV', 'SLURM_JOB_NODELIST=" , ": no hosts in it');
  throwsPlacement(() => expandHostlist('a_[1-2]!', 'SLURM_NODELIST'), 'ERR_SLURM_ENV', 'SLURM_NODELIST="a_[1-2]!": "!" after "]" (only another [..] may follow a bracket)');
});

test('Slurm host lists agree with the installed scontrol', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfmpi-slurmconf-'));
  // A slurm.conf of our own: without one, Slurm commands fall back to DNS SRV lookups.
  fs.writeFileSync(
    path.join(dir, 'slurm.conf'),
    'ClusterName=sfmpitest\nSlurmctldHost=localhost\nNodeName=localhost CPUs=1 State=UNKNOWN\nPartitionName=p Nodes=ALL Default=YES\n',
  );
  const saved = process.env.SLURM_CONF;
  process.env.SLURM_CONF = path.join(dir, 'slurm.conf');
  try {
    if ((await scontrolHostnames('a1').catch(() => null)) === null) {
      console.log('  skip: scontrol is not installed (apt-get install slurm-client)');
      return;
    }
    for (const [text] of hostlists) assert.equal(expandHostlist(text), await scontrolHostnames(text), text);
    for (const [text] of badHostlists.filter(([t]) => t !== 'n[1-3')) {
      // scontrol reads "n[1-3" as the host "n]"; every other one it refuses.
      const e = await scontrolHostnames(text).then(
        () => null,
        (err: Error) => err,
      );
      assert.ok(e instanceof PlacementError && /Invalid hostlist|Invalid range|Too many/.test(e.message), `scontrol took ${text}`);
    }
  } finally {
    if (saved === undefined) delete process.env.SLURM_CONF;
    else process.env.SLURM_CONF = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('Slurm counts: 2(x3),1', () => {
  assert.equal(expandCounts('2(x3),1'), [2, 2, 2, 1]);
  assert.equal(expandCounts('4'), [4]);
  assert.equal(expandCounts('1(x2),3(x1)'), [1, 1, 3]);
  throwsPlacement(() => expandCounts('2(x3),a'), 'ERR_SLURM_ENV', 'SLURM_TASKS_PER_NODE="2(x3),a": "a" is not a count N or N(xR)');
  throwsPlacement(() => expandCounts('2(3)'), 'ERR_SLURM_ENV', 'SLURM_TASKS_PER_NODE="2(3)": "2(3)" is not a count N or N(xR)');
  throwsPlacement(() => expandCounts('0,1'), 'ERR_SLURM_ENV', 'SLURM_TASKS_PER_NODE="0,1": count 0 must be positive');
  throwsPlacement(() => expandCounts('2(x0)'), 'ERR_SLURM_ENV', 'SLURM_TASKS_PER_NODE="2(x0)": repeat x0 must be positive');
  throwsPlacement(() => expandCounts('', 'SLURM_JOB_CPUS_PER_NODE'), 'ERR_SLURM_ENV', 'SLURM_JOB_CPUS_PER_NODE="": "" is not a count N or N(xR)');
  throwsPlacement(() => expandCounts('1(x70000)'), 'ERR_SLURM_ENV', 'SLURM_TASKS_PER_NODE="1(x70000)": more than 65536 counts');
});

test('Slurm allocation: nodes and slots from the environment Slurm gives', () => {
  // What a step saw on the test hosts (notes/testhosts.md §3).
  const step = { SLURM_JOB_ID: '4', SLURM_JOB_NODELIST: 'th[1-2]', SLURM_TASKS_PER_NODE: '2(x2)', SLURM_JOB_CPUS_PER_NODE: '2(x2)' };
  const a = slurmAllocation(step);
  assert.is(a.jobId, '4');
  assert.is(a.slotsFrom, 'SLURM_TASKS_PER_NODE');
  assert.equal(a.hosts, [
    { name: 'th1', slots: 2, maxSlots: null, origin: 'SLURM_JOB_NODELIST' },
    { name: 'th2', slots: 2, maxSlots: null, origin: 'SLURM_JOB_NODELIST' },
  ]);
  const cpus = slurmAllocation({ SLURM_JOB_ID: '5', SLURM_JOB_NODELIST: 'th[1-3,5]', SLURM_JOB_CPUS_PER_NODE: '4(x3),1' });
  assert.is(cpus.slotsFrom, 'SLURM_JOB_CPUS_PER_NODE');
  assert.equal(cpus.hosts.map((h) => [h.name, h.slots]), [['th1', 4], ['th2', 4], ['th3', 4], ['th5', 1]]);
  assert.equal(slurmAllocation({ SLURM_JOB_ID: '6', SLURM_NODELIST: 'a[1-2]', SLURM_TASKS_PER_NODE: '3,1' }).hosts.map((h) => [h.name, h.slots, h.origin]), [
    ['a1', 3, 'SLURM_NODELIST'],
    ['a2', 1, 'SLURM_NODELIST'],
  ]);
  throwsPlacement(() => slurmAllocation({}), 'ERR_SLURM_ENV', 'not inside a Slurm allocation: SLURM_JOB_ID is not set');
  throwsPlacement(() => slurmAllocation({ SLURM_JOB_ID: '7' }), 'ERR_SLURM_ENV', 'SLURM_JOB_ID is set (job 7) but SLURM_JOB_NODELIST is not');
  throwsPlacement(
    () => slurmAllocation({ SLURM_JOB_ID: '7', SLURM_JOB_NODELIST: 'th1' }),
    'ERR_SLURM_ENV',
    'SLURM_JOB_ID is set (job 7) but neither SLURM_TASKS_PER_NODE nor SLURM_JOB_CPUS_PER_NODE is',
  );
  throwsPlacement(
    () => slurmAllocation({ SLURM_JOB_ID: '7', SLURM_JOB_NODELIST: 'th[1-4]', SLURM_TASKS_PER_NODE: '2(x3)' }),
    'ERR_SLURM_ENV',
    'SLURM_TASKS_PER_NODE="2(x3)" gives 3 counts for the 4 nodes of SLURM_JOB_NODELIST="th[1-4]"',
  );
  throwsPlacement(
    () => slurmAllocation({ SLURM_JOB_ID: '7', SLURM_JOB_NODELIST: 'th[1-', SLURM_TASKS_PER_NODE: '1' }),
    'ERR_SLURM_ENV',
    'SLURM_JOB_NODELIST="th[1-": unclosed "["',
  );
});

// ---------------------------------------------------------------- placement

test('Open MPI\'s documented examples (aa, bb, cc with 4 slots each)', () => {
  const three = hf('aa slots=4\nbb slots=4\ncc slots=4\n');
  assert.equal(layout(three, { np: 6 }), { aa: [0, 1, 2, 3], bb: [4, 5] });
  assert.equal(layout(three, { np: 6, mapBy: 'node' }), { aa: [0, 3], bb: [1, 4], cc: [2, 5] });
  throwsPlacement(
    () => layout(three, { np: 14 }),
    'ERR_OVERSUBSCRIBED',
    '-n 14 is more than the 12 slots of the 3 hosts (aa 4, bb 4, cc 4); add --oversubscribe to run more ranks than slots',
  );
  // Open MPI 4.1.4 and 5's mapper give 5, 5, 4 (their docs still show 6, 4, 4 from older releases).
  assert.equal(layout(three, { np: 14, oversubscribe: true }), {
    aa: [0, 1, 2, 3, 4],
    bb: [5, 6, 7, 8, 9],
    cc: [10, 11, 12, 13],
  });
  assert.equal(layout(parseHostOption('aa:2,bb:6'), { np: 8 }), { aa: [0, 1], bb: [2, 3, 4, 5, 6, 7] });
  throwsPlacement(
    () => layout(parseHostOption('aa,bb'), { np: 8 }),
    'ERR_OVERSUBSCRIBED',
    '-n 8 is more than the 2 slots of the 2 hosts (aa 1, bb 1); add --oversubscribe to run more ranks than slots',
  );
  assert.equal(layout(parseHostOption('aa,bb'), { np: 8, oversubscribe: true }), { aa: [0, 1, 2, 3], bb: [4, 5, 6, 7] });
  assert.equal(layout(parseHostOption('aa,aa,bb'), { np: 3 }), { aa: [0, 1], bb: [2] });
  assert.equal(layout(parseHostOption('aa:5'), { np: 5 }), { aa: [0, 1, 2, 3, 4] });
});

test('max_slots is a hard cap even with oversubscribe (Open MPI 5\'s documented rule)', () => {
  const capped = hf('aa slots=4 max_slots=4\nbb max_slots=8\ncc slots=4\n');
  assert.equal(layout(capped, { np: 14, oversubscribe: true }), {
    aa: [0, 1, 2, 3],
    bb: [4, 5, 6, 7, 8, 9, 10, 11],
    cc: [12, 13],
  });
  assert.equal(layout(capped, { np: 20, oversubscribe: true }), {
    aa: [0, 1, 2, 3],
    bb: [4, 5, 6, 7, 8, 9, 10, 11],
    cc: [12, 13, 14, 15, 16, 17, 18, 19],
  });
  const all = hf('aa slots=2 max_slots=3\nbb max_slots=2\n');
  assert.equal(layout(all, { np: 5, oversubscribe: true }), { aa: [0, 1, 2], bb: [3, 4] });
  assert.equal(layout(all, { np: 5, oversubscribe: true, mapBy: 'node' }), { aa: [0, 2, 4], bb: [1, 3] });
  throwsPlacement(
    () => layout(all, { np: 6, oversubscribe: true }),
    'ERR_OVERSUBSCRIBED',
    '-n 6 is more than max_slots allows: at most 5 ranks on these hosts (aa max 3, bb max 2)',
  );
  throwsPlacement(
    () => layout(all, { np: 6, oversubscribe: true, mapBy: 'node' }),
    'ERR_OVERSUBSCRIBED',
    '-n 6 is more than max_slots allows: at most 5 ranks on these hosts (aa max 3, bb max 2)',
  );
});

test('by node on unequal hosts balances as Open MPI 4.1 does, numbering round robin', () => {
  assert.equal(layout(hf('a\nb slots=4\nc slots=3\nd slots=3\n'), { np: 10, mapBy: 'node' }), {
    a: [0],
    b: [1, 4, 7, 9],
    c: [2, 5, 8],
    d: [3, 6],
  });
  assert.equal(layout(hf('a slots=1\nb slots=3\n'), { np: 4, mapBy: 'node' }), { a: [0], b: [1, 2, 3] });
  assert.equal(layout(hf('a slots=1\nb slots=3\n'), { np: 8, mapBy: 'node', oversubscribe: true }), { a: [0, 2, 4, 6], b: [1, 3, 5, 7] });
  assert.equal(layout(hf('a slots=4\nb slots=4\n'), { np: 3, mapBy: 'node' }), { a: [0, 2], b: [1] });
});

test('the plan: hosts with ranks only, local numbering, rank -> host', () => {
  const plan = place(hf('aa slots=2\nbb slots=2\ncc slots=2\n'), { np: 5, mapBy: 'node', local: elsewhere });
  assert.is(plan.size, 5);
  assert.is(plan.mapBy, 'node');
  assert.is(plan.oversubscribed, false);
  assert.equal(
    plan.hosts.map((h) => [h.name, h.address, h.ranks, h.local, h.origin]),
    [
      ['aa', 'aa', [0, 3], false, 'hosts:1'],
      ['bb', 'bb', [1, 4], false, 'hosts:2'],
      ['cc', 'cc', [2], false, 'hosts:3'],
    ],
  );
  assert.equal(plan.hostOfRank, [0, 1, 2, 0, 1]);
  assert.equal(plan.localRankOf, [0, 0, 0, 1, 1]);
  const small = place(hf('aa slots=4\nbb slots=4\n'), { np: 3, local: elsewhere });
  assert.equal(small.hosts.map((h) => h.name), ['aa'], 'a host without ranks gets no dom0');
  const over = place(parseHostOption('10.1.1.1'), { np: 3, oversubscribe: true, local: elsewhere });
  assert.is(over.oversubscribed, true);
  assert.equal(over.hosts[0].address, '10.1.1.1');
  assert.equal(over.localRankOf, [0, 1, 2]);
});

test('rank 0 runs where sfmpirun runs when that host is listed, under any of its names', () => {
  const me: LocalIdentity = { names: ['th2.cluster'], addresses: ['127.0.0.1', '10.77.0.2'] };
  const hosts = hf('th1 slots=2\nth2 slots=2\nth3 slots=2\n');
  const plan = place(hosts, { np: 6, local: me });
  assert.equal(plan.hosts.map((h) => [h.name, h.ranks, h.local]), [
    ['th2', [0, 1], true],
    ['th1', [2, 3], false],
    ['th3', [4, 5], false],
  ]);
  for (const alias of ['th2', 'TH2', 'th2.cluster', '10.77.0.2', 'localhost', '127.0.0.1', '127.0.1.1'])
    assert.is(place(hf(`th1 slots=2\n${alias} slots=2\n`), { np: 4, local: me }).hosts[0].name, alias, alias);
  assert.is(isLocalHost('th2.other', me), false, 'two different FQDNs are two hosts');
  assert.is(isLocalHost('th20', me), false);
  assert.is(isLocalHost('10.77.0.3', me), false);
  // Several names of this host are one host, at the first one's place (Open MPI does the same).
  const aliases = place(hf('th1\n10.77.0.2 slots=2\nth3\nlocalhost\n'), { np: 5, local: me });
  assert.equal(aliases.hosts.map((h) => [h.name, h.slots, h.ranks]), [
    ['10.77.0.2', 3, [0, 1, 2]],
    ['th1', 1, [3]],
    ['th3', 1, [4]],
  ]);
  // MPICH's rule on request: the list's order, rank 0 on its first host.
  assert.equal(place(hosts, { np: 6, local: me, origin: 'first' }).hosts.map((h) => [h.name, h.ranks, h.local]), [
    ['th1', [0, 1], false],
    ['th2', [2, 3], true],
    ['th3', [4, 5], false],
  ]);
  // Started outside the list (a login node): the hostfile decides, rank 0 on its first host.
  assert.equal(place(hosts, { np: 2, local: elsewhere }).hosts.map((h) => [h.name, h.local]), [['th1', false]]);
});

test('bad placement options are named', () => {
  const hosts = hf('a slots=2\n');
  throwsPlacement(() => place(hosts, { np: 0 }), 'ERR_PLACEMENT_OPTION', '-n must be a positive integer, got 0');
  throwsPlacement(() => place(hosts, { np: 1.5 }), 'ERR_PLACEMENT_OPTION', '-n must be a positive integer, got 1.5');
  throwsPlacement(() => place(hosts, { np: 1, mapBy: 'core' as 'slot' }), 'ERR_PLACEMENT_OPTION', '--map-by must be slot or node, got "core"');
  throwsPlacement(() => place(hosts, { np: 1, origin: 'last' as 'first' }), 'ERR_PLACEMENT_OPTION', 'origin must be "local" or "first", got "last"');
  throwsPlacement(() => place([], { np: 1 }), 'ERR_NO_HOSTS', 'no hosts to run on');
  throwsPlacement(() => place(hosts, { np: 3, local: elsewhere }), 'ERR_OVERSUBSCRIBED', '-n 3 is more than the 2 slots of the host (a 2); add --oversubscribe to run more ranks than slots');
  const many = hf(Array.from({ length: 10 }, (_, i) => `h${i}`).join('\n'));
  throwsPlacement(
    () => place(many, { np: 11, local: elsewhere }),
    'ERR_OVERSUBSCRIBED',
    '-n 11 is more than the 10 slots of the 10 hosts (h0 1, h1 1, h2 1, h3 1, h4 1, h5 1, h6 1, h7 1, and 2 more); add --oversubscribe to run more ranks than slots',
  );
  assert.equal(parseMapBy('slot'), { mapBy: 'slot' });
  assert.equal(parseMapBy('NODE:OVERSUBSCRIBE'), { mapBy: 'node', oversubscribe: true });
  assert.equal(parseMapBy('slot:nooversubscribe'), { mapBy: 'slot', oversubscribe: false });
  throwsPlacement(() => parseMapBy('core'), 'ERR_PLACEMENT_OPTION', '--map-by core: only slot and node are supported');
  throwsPlacement(() => parseMapBy('node:span'), 'ERR_PLACEMENT_OPTION', '--map-by node:span: unknown qualifier "span" (OVERSUBSCRIBE or NOOVERSUBSCRIBE)');
});

test('hostsFor: hostfile, else the Slurm allocation, else --host; --host picks from the others', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfmpi-hostsfor-'));
  const file = path.join(dir, 'hosts');
  fs.writeFileSync(file, 'aa slots=4\nbb slots=4\ncc slots=2\n');
  const slurm = { SLURM_JOB_ID: '9', SLURM_JOB_NODELIST: 'th[1-3]', SLURM_TASKS_PER_NODE: '2(x3)' };
  try {
    assert.is(hostsFor({ env: {} }), null, 'nothing given, not in Slurm: the single-host job');
    assert.is(hostsFor({ hostfile: file, env: slurm })?.source, 'hostfile');
    const s = hostsFor({ env: slurm });
    assert.is(s?.source, 'slurm');
    assert.is(s?.slurm?.jobId, '9');
    assert.equal(s?.hosts.map((h) => h.name), ['th1', 'th2', 'th3']);
    assert.equal(hostsFor({ host: 'x:2,y', env: {} })?.hosts.map((h) => [h.name, h.slots]), [['x', 2], ['y', 1]]);
    assert.equal(hostsFor({ hostfile: file, host: 'cc,aa:1', env: {} })?.hosts.map((h) => [h.name, h.slots]), [['cc', 2], ['aa', 1]]);
    assert.equal(hostsFor({ host: 'th3', env: slurm })?.hosts.map((h) => [h.name, h.slots]), [['th3', 2]]);
    throwsPlacement(() => hostsFor({ hostfile: file, host: 'dd', env: {} }), 'ERR_HOST_OPTION', `--host: "dd" is not in hostfile ${file}`);
    throwsPlacement(() => hostsFor({ host: 'th9', env: slurm }), 'ERR_HOST_OPTION', '--host: "th9" is not in the Slurm allocation');
    throwsPlacement(() => hostsFor({ env: { SLURM_JOB_ID: '9', SLURM_JOB_NODELIST: 'th1' } }), 'ERR_SLURM_ENV', 'SLURM_JOB_ID is set (job 9) but neither SLURM_TASKS_PER_NODE nor SLURM_JOB_CPUS_PER_NODE is');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('resolveAddresses: names become IPv4 addresses; loopback and unknown names are refused', async () => {
  const table: Record<string, string> = { th1: '10.77.0.1', th2: '10.77.0.2', self: '127.0.1.1' };
  const lookup = async (name: string) => {
    if (table[name]) return table[name];
    throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
  };
  const plan = place(hf('th1\nth2\n10.77.0.3\n'), { np: 3, local: elsewhere });
  assert.equal((await resolveAddresses(plan, lookup)).hosts.map((h) => [h.name, h.address]), [
    ['th1', '10.77.0.1'],
    ['th2', '10.77.0.2'],
    ['10.77.0.3', '10.77.0.3'],
  ]);
  const bad = place(hf('th1\nnosuch\n'), { np: 2, local: elsewhere });
  await resolveAddresses(bad, lookup).then(
    () => assert.unreachable('resolved'),
    (e: Error) => assert.is(e.message, 'host nosuch (hosts:2) does not resolve to an IPv4 address (ENOTFOUND)'),
  );
  const loop = place(hf('self\nth1\n'), { np: 2, local: elsewhere });
  await resolveAddresses(loop, lookup).then(
    () => assert.unreachable('resolved'),
    (e: Error) =>
      assert.is(e.message, 'host self (hosts:1) resolves to 127.0.1.1, a loopback address the other hosts cannot reach; list it by its address or fix /etc/hosts'),
  );
  assert.is((await resolveAddresses(place(hf('self\n'), { np: 1, local: elsewhere }), lookup)).hosts[0].address, '127.0.1.1', 'one host alone may be loopback');
});

// ---------------------------------------------------------------- against Open MPI itself

/** Open MPI's mapping of a hostfile, from `mpirun --do-not-launch --display-map` (no daemon is
 * started, nothing is resolved for IPv4 names); 'ERR' when it refuses for lack of slots. */
function openMpiLayout(text: string, np: number, mapBy: string, oversubscribe: boolean): Record<string, number[]> | 'ERR' | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfmpi-ompi-'));
  try {
    fs.writeFileSync(path.join(dir, 'hosts'), text);
    const args = ['--allow-run-as-root', '--do-not-launch', '--display-map', '--bind-to', 'none', '--hostfile', path.join(dir, 'hosts')];
    args.push('-np', String(np), '--map-by', mapBy, ...(oversubscribe ? ['--oversubscribe'] : []), 'true');
    const r = spawnSync('mpirun.openmpi', args, { encoding: 'utf8', timeout: deadline(30_000), env: { ...process.env, OMPI_MCA_plm_rsh_agent: 'false' } });
    if (r.error) return null;
    const out = r.stdout + r.stderr;
    if (/not enough slots available/.test(out)) return 'ERR';
    const map: Record<string, number[]> = {};
    let node = '';
    for (const line of out.split('\n')) {
      const n = /Data for node: (\S+)/.exec(line);
      if (n) map[(node = n[1])] = [];
      const p = /Process rank: (\d+)/.exec(line);
      if (p && node) map[node].push(Number(p[1]));
    }
    assert.ok(Object.keys(map).length > 0, `no map from Open MPI:\n${out}`);
    return map;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function ourLayout(text: string, np: number, mapBy: 'slot' | 'node', oversubscribe: boolean): Record<string, number[]> | 'ERR' {
  try {
    const out: Record<string, number[]> = {};
    // Open MPI names this host by its hostname, whatever alias the hostfile used.
    for (const h of place(hf(text), { np, mapBy, oversubscribe }).hosts) out[h.local ? os.hostname() : h.name] = h.ranks;
    return out;
  } catch (e) {
    if ((e as PlacementError).code === 'ERR_OVERSUBSCRIBED') return 'ERR';
    throw e;
  }
}

test('placement matches Open MPI\'s mapper on many shapes', () => {
  if (spawnSync('mpirun.openmpi', ['--version']).error) {
    console.log('  skip: mpirun.openmpi is not installed (apt-get install openmpi-bin)');
    return;
  }
  // Addresses from TEST-NET-2: never this host's, never resolved.
  const far = (i: number) => `198.51.100.${i + 1}`;
  for (let i = 0; i < 4; i++) assert.is(isLocalHost(far(i), localIdentity()), false, `${far(i)} is an address of this machine`);
  const me = os.hostname();
  const shapes: [string, number, 'slot' | 'node', boolean][] = [
    [`${far(0)} slots=4\n${far(1)} slots=4\n${far(2)} slots=4\n`, 6, 'slot', false],
    [`${far(0)} slots=4\n${far(1)} slots=4\n${far(2)} slots=4\n`, 6, 'node', false],
    [`${far(0)} slots=4\n${far(1)} slots=4\n${far(2)} slots=4\n`, 13, 'slot', false],
    [`${far(0)} slots=4\n${far(1)} slots=4\n${far(2)} slots=4\n`, 14, 'slot', true],
    [`${far(0)} slots=4\n${far(1)} slots=4\n${far(2)} slots=4\n`, 14, 'node', true],
    [`${far(0)}\n${far(1)} slots=4\n${far(2)} slots=3\n${far(3)} slots=3\n`, 10, 'node', false],
    [`${far(0)}\n${far(1)}\n${far(0)}\n`, 3, 'slot', false],
    [`${far(0)} slots=2\n${far(1)}\n${far(0)}\n`, 4, 'node', false],
    [`${far(0)} slots=2\n${far(1)} slots=2\n${me} slots=2\n`, 6, 'slot', false],
    [`${far(0)} slots=2\nlocalhost slots=2\n`, 3, 'node', false],
    [`${far(0)} slots=2\n127.0.0.1 slots=1\n${far(1)}\n`, 4, 'slot', false],
    [`${far(0)} slots=4 max_slots=4\n${far(1)} max_slots=8\n${far(2)} slots=4\n`, 14, 'slot', true],
    [`${far(0)} max_slots=3\n`, 3, 'slot', false],
  ];
  // And a seeded sweep of random ones (no max_slots: Open MPI 4.1.4 ignores it when oversubscribing).
  let seed = 20261201;
  const rnd = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
  for (let s = 0; s < 40; s++) {
    const k = 1 + rnd(4);
    const localAt = rnd(3) === 0 ? rnd(k) : -1;
    const lines = Array.from({ length: k }, (_, i) => {
      const name = i === localAt ? [me, 'localhost', '127.0.0.1'][rnd(3)] : far(i);
      return rnd(3) === 0 ? name : `${name} slots=${1 + rnd(4)}`;
    });
    const text = lines.join('\n') + '\n';
    const total = hf(text).reduce((a, h) => a + h.slots, 0);
    const np = 1 + rnd(total + 4);
    shapes.push([text, np, rnd(2) ? 'node' : 'slot', np > total && rnd(4) !== 0]);
  }
  for (const [text, np, mapBy, over] of shapes) {
    const theirs = openMpiLayout(text, np, mapBy, over);
    assert.ok(theirs !== null, 'mpirun.openmpi did not run');
    assert.equal(ourLayout(text, np, mapBy, over), theirs, `${JSON.stringify(text)} -n ${np} --map-by ${mapBy}${over ? ' --oversubscribe' : ''}`);
  }
});

test.run();
