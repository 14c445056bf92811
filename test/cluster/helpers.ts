/**
 * What the cluster tests share: sfmpirun typed inside the first test host (where a user would
 * type it), a job's output shown on failure, "nothing of the job is left on any host", and the
 * placement the ranks report.
 */
import * as assert from 'uvu/assert';
import { sfmpirun, until, type Ran } from '../helpers.js';
import type { TestHosts } from '../hosts/testhosts.js';

/** Options of {@link mpirun}. */
export interface MpirunOptions {
  input?: string;
  timeoutMs?: number;
  /** 'slurm': inside `salloc -N <hosts>` with as many tasks as -n. */
  via?: 'ssh' | 'slurm';
  env?: Record<string, string>;
  onSpawn?: (pid: number) => void;
}

/** sfmpirun with `args`, run inside the first host. */
export function mpirun(h: TestHosts, args: string[], opts: MpirunOptions = {}): Promise<Ran> {
  const run = { input: opts.input ?? '', timeoutMs: opts.timeoutMs ?? 60_000, onSpawn: opts.onSpawn, env: opts.env };
  if (opts.via === 'slurm') {
    const n = Number(args[args.indexOf('-n') + 1]);
    return h.exec(h.hosts[0], 'salloc', ['-N', String(h.hosts.length), '-n', String(n), '--quiet', process.execPath, sfmpirun, ...args], run);
  }
  return h.exec(h.hosts[0], process.execPath, [sfmpirun, ...args], run);
}

/** A job's status and the tail of its output, for assertion messages. */
export function show(j: Ran): string {
  return `code ${j.code} signal ${j.signal}\n--- stdout\n${j.stdout.slice(-3000)}\n--- stderr\n${j.stderr.slice(-3000)}`;
}

/** Nothing of a job on any host (after a moment for the last exits); `keep` spares long-lived services. */
export async function nothingLeft(h: TestHosts, keep: (cmdline: string) => boolean = () => false): Promise<void> {
  const left = () => h.hosts.flatMap((x) => h.processes(x).filter((p) => !keep(p.cmdline)).map((p) => `${x}: ${p.cmdline}`));
  await until(() => left().length === 0, 3000);
  assert.equal(left(), [], 'processes left behind on the hosts');
}

/** The hosts each rank said it ran on ("rank R of N on HOST ..."). */
export function placement(stdout: string): Map<number, string> {
  return new Map([...stdout.matchAll(/^rank (\d+) of \d+ on (\S+)/gm)].map((m) => [Number(m[1]), m[2]]));
}
