/**
 * Inside a Slurm allocation (`SLURM_JOB_ID` set) the hosts and slots come from Slurm itself, as
 * Open MPI's ras_slurm takes them: the nodes from `SLURM_JOB_NODELIST` and the slots per node
 * from `SLURM_TASKS_PER_NODE` (or, when that is absent, `SLURM_JOB_CPUS_PER_NODE`).
 *
 * Slurm writes both compressed. Host lists (`scontrol show hostnames` is the reference; every
 * form below was checked against Slurm 22.05's):
 *
 *     th[1-3,5]          th1 th2 th3 th5
 *     node[01-10]        node01 ... node10    (a range is as wide as its first bound: zero padding)
 *     a[1-2],b3          a1 a2 b3
 *     rack[1-2]-n[1-2]   rack1-n1 rack1-n2 rack2-n1 rack2-n2   (several brackets: the first varies slowest)
 *
 * Text after a bracket is refused unless another bracket follows (`h[1-2]a` is invalid to Slurm
 * too), as are backward ranges, empty brackets and ranges of more than 65536 hosts (Slurm's
 * limit). Counts: `2(x3),1` = 2, 2, 2, 1.
 */
import { execFile } from 'node:child_process';
import { badHostName, mergeHosts, PlacementError, type HostSpec } from './hostfile.js';

/** Most hosts one range or one list may expand to (Slurm refuses `n[0-99999]` the same way). */
export const MAX_HOSTLIST = 65536;

function fail(variable: string, text: string, why: string): never {
  throw new PlacementError('ERR_SLURM_ENV', `${variable}="${text}": ${why}`);
}

/** Splits at commas and white space outside brackets. */
function splitTop(text: string, variable: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '[') {
      if (depth > 0) fail(variable, text, 'nested "["');
      depth = 1;
    } else if (ch === ']') {
      if (depth === 0) fail(variable, text, '"]" without "["');
      depth = 0;
    }
    if (depth === 0 && (ch === ',' || /\s/.test(ch))) {
      if (cur !== '') items.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth > 0) fail(variable, text, 'unclosed "["');
  if (cur !== '') items.push(cur);
  return items;
}

/** The numbers of one bracket's body, formatted with the width of each range's first bound. */
function expandRanges(body: string, variable: string, text: string): string[] {
  if (body === '') fail(variable, text, 'empty "[]"');
  const out: string[] = [];
  for (const part of body.split(',')) {
    const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(part);
    if (!m) fail(variable, text, `"${part}" is not a number or a range N-M`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) fail(variable, text, `range ${part} runs backwards`);
    if (hi - lo + 1 > MAX_HOSTLIST) fail(variable, text, `range ${part} has more than ${MAX_HOSTLIST} hosts`);
    const width = m[1].length;
    for (let n = lo; n <= hi; n++) out.push(String(n).padStart(width, '0'));
  }
  return out;
}

/**
 * Expands a Slurm host list (`th[1-3,5]`, `node[01-10]`, `a[1-2],b3`, `rack[1-2]-n[1-2]`) into
 * host names, in Slurm's order. Errors name `variable` and the text (code ERR_SLURM_ENV).
 */
export function expandHostlist(text: string, variable = 'SLURM_JOB_NODELIST'): string[] {
  const hosts: string[] = [];
  for (const item of splitTop(text, variable)) {
    // item = literal ( "[" body "]" literal )*, where a literal after a "]" must be followed
    // by another bracket.
    const parts = item.split(/\[([^\]]*)\]/);
    const last = parts[parts.length - 1];
    if (parts.length > 1 && last !== '') fail(variable, text, `"${last}" after "]" (only another [..] may follow a bracket)`);
    let names = [''];
    for (let i = 0; i < parts.length; i++) {
      if (i % 2 === 0) {
        names = names.map((n) => n + parts[i]);
        continue;
      }
      const numbers = expandRanges(parts[i], variable, text);
      if (names.length * numbers.length > MAX_HOSTLIST) fail(variable, text, `more than ${MAX_HOSTLIST} hosts`);
      names = names.flatMap((n) => numbers.map((k) => n + k));
    }
    for (const name of names) {
      const bad = badHostName(name);
      if (bad) fail(variable, text, bad);
    }
    hosts.push(...names);
    if (hosts.length > MAX_HOSTLIST) fail(variable, text, `more than ${MAX_HOSTLIST} hosts`);
  }
  if (hosts.length === 0) fail(variable, text, 'no hosts in it');
  return hosts;
}

/** Expands Slurm's per-node counts (`2(x3),1` = [2, 2, 2, 1]); every count must be positive. */
export function expandCounts(text: string, variable = 'SLURM_TASKS_PER_NODE'): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*([0-9]+)\s*(?:\(x([0-9]+)\))?\s*$/.exec(part);
    if (!m) fail(variable, text, `"${part}" is not a count N or N(xR)`);
    const n = Number(m[1]);
    const repeat = m[2] === undefined ? 1 : Number(m[2]);
    if (n < 1) fail(variable, text, `count ${m[1]} must be positive`);
    if (repeat < 1) fail(variable, text, `repeat x${m[2]} must be positive`);
    if (out.length + repeat > MAX_HOSTLIST) fail(variable, text, `more than ${MAX_HOSTLIST} counts`);
    for (let i = 0; i < repeat; i++) out.push(n);
  }
  return out;
}

/** True inside a Slurm allocation (salloc, sbatch, or a step): `SLURM_JOB_ID` is set. */
export function inSlurmAllocation(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.SLURM_JOB_ID ?? '') !== '';
}

/** The hosts of the allocation this process runs in. */
export interface SlurmAllocation {
  /** `SLURM_JOB_ID`. */
  jobId: string;
  /** One per node, in Slurm's order, slots = tasks (or CPUs) per node. */
  hosts: HostSpec[];
  /** Which variable gave the slots. */
  slotsFrom: 'SLURM_TASKS_PER_NODE' | 'SLURM_JOB_CPUS_PER_NODE';
}

/**
 * Reads the allocation from the environment Slurm gives (pure: no Slurm command runs).
 * Throws a PlacementError (ERR_SLURM_ENV) naming the variable and its text when one is missing
 * or malformed, or when the counts do not match the nodes.
 */
export function slurmAllocation(env: NodeJS.ProcessEnv = process.env): SlurmAllocation {
  const jobId = env.SLURM_JOB_ID ?? '';
  if (jobId === '') throw new PlacementError('ERR_SLURM_ENV', 'not inside a Slurm allocation: SLURM_JOB_ID is not set');
  const listVar = env.SLURM_JOB_NODELIST ? 'SLURM_JOB_NODELIST' : env.SLURM_NODELIST ? 'SLURM_NODELIST' : null;
  if (!listVar)
    throw new PlacementError('ERR_SLURM_ENV', `SLURM_JOB_ID is set (job ${jobId}) but SLURM_JOB_NODELIST is not`);
  const listText = env[listVar] as string;
  const names = expandHostlist(listText, listVar);
  const countVar = env.SLURM_TASKS_PER_NODE ? 'SLURM_TASKS_PER_NODE' : env.SLURM_JOB_CPUS_PER_NODE ? 'SLURM_JOB_CPUS_PER_NODE' : null;
  if (!countVar)
    throw new PlacementError(
      'ERR_SLURM_ENV',
      `SLURM_JOB_ID is set (job ${jobId}) but neither SLURM_TASKS_PER_NODE nor SLURM_JOB_CPUS_PER_NODE is`,
    );
  const countText = env[countVar] as string;
  const counts = expandCounts(countText, countVar);
  if (counts.length !== names.length)
    throw new PlacementError(
      'ERR_SLURM_ENV',
      `${countVar}="${countText}" gives ${counts.length} count${counts.length === 1 ? '' : 's'} for the ${names.length} node${names.length === 1 ? '' : 's'} of ${listVar}="${listText}"`,
    );
  const hosts = mergeHosts(names.map((name, i) => ({ name, slots: counts[i], maxSlots: null, origin: listVar })));
  return { jobId, hosts, slotsFrom: countVar };
}

/**
 * Expands a host list with Slurm's own `scontrol show hostnames` (for forms beyond the parser
 * above, or to cross-check it). Resolves null when scontrol is not installed; rejects with a
 * PlacementError carrying scontrol's message when it refuses the list or takes longer than
 * `timeoutMs`. Run it only where a slurm.conf exists: without one, Slurm tries DNS SRV lookups.
 */
export function scontrolHostnames(list: string, timeoutMs = 5000): Promise<string[] | null> {
  return new Promise((resolve, reject) => {
    execFile('scontrol', ['show', 'hostnames', list], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return resolve(null);
      // Slurm 22.05's scontrol exits 0 after "Invalid hostlist: ..." on stderr.
      if (err || stderr.trim() !== '') {
        const why = (stderr || stdout || err?.message || '').trim().split('\n').pop();
        return reject(new PlacementError('ERR_SLURM_ENV', `scontrol show hostnames "${list}": ${why}`));
      }
      resolve(stdout.split('\n').filter((l) => l !== ''));
    });
  });
}
