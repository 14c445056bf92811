#!/usr/bin/env node
/**
 * sfnode: run a TypeScript or JavaScript program ready to be cloned (the runtime API, without
 * MPI): the Node flags a forked Node needs, and TypeScript without a build step.
 *
 *   sfnode [options] <program> [args...]
 *     --hostfile FILE | --host a:2,b:2 | (inside a Slurm allocation)   clones on those hosts
 *     --launch ssh|slurm   how each host's dom0 comes (default: ssh; slurm inside an allocation)
 *     --iface NAME         the cluster network's interface
 *     --timeout S          kill the whole run after S seconds (exit 124)
 *     -v, --verbose        dom0s' messages and timings
 *
 * On one host the program runs here, as a child of sfnode. Across hosts it is a job of one
 * process per host (cluster.ts: a dom0 per host over ssh or srun): the origin here, a seed on
 * every other host that re-runs the program up to its first requestTicket; the runtime there
 * places the ticket's clones on the hosts' slots (runtime/hosts.ts).
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { runCluster } from './cluster.js';
import { hostsFor, place, PlacementError, resolveAddresses, type Plan } from './placement.js';
import { prepare, ProgramError, removeAll, type Prepared } from './program.js';

const USAGE = `Usage: sfnode [--hostfile FILE | --host a:N,b:M] [--launch ssh|slurm] [--iface NAME] [--timeout S] [-v] <program.ts|program.js> [args...]

Runs a program that calls requestTicket()/clone() with the flags a cloned Node.js needs. With
--hostfile, --host, or inside a Slurm allocation, its clones are placed on those hosts' slots.
`;

/** What the command line says. */
interface Options {
  hostfile?: string;
  host?: string;
  launch?: string;
  iface?: string;
  timeout: number;
  verbose: boolean;
  program: string;
  args: string[];
}

class UsageError extends Error {}

function parse(argv: string[]): Options {
  const o: Partial<Options> & { timeout: number; verbose: boolean } = { timeout: 0, verbose: false };
  let i = 0;
  const value = (flag: string) => {
    const v = argv[++i];
    if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (; i < argv.length && argv[i].startsWith('-'); i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (a === '--hostfile') o.hostfile = value(a);
    else if (a === '--host') o.host = value(a);
    else if (a === '--launch') o.launch = value(a);
    else if (a === '--iface') o.iface = value(a);
    else if (a === '--timeout') {
      const t = Number(value(a));
      if (!Number.isFinite(t) || t <= 0) throw new UsageError(`--timeout ${argv[i]}: a positive number of seconds`);
      o.timeout = t;
    } else if (a === '-v' || a === '--verbose') o.verbose = true;
    else throw new UsageError(`unknown option ${a}`);
  }
  if (i >= argv.length) throw new UsageError('no program given');
  if (o.launch !== undefined && o.launch !== 'ssh' && o.launch !== 'slurm') throw new UsageError(`--launch ${o.launch}: ssh or slurm`);
  return { ...o, program: argv[i], args: argv.slice(i + 1) };
}

/** One process per host (the origin on this one), each host keeping its slots for clones. */
async function planFor(o: Options): Promise<{ plan: Plan; slurm: boolean } | null> {
  const source = hostsFor({ hostfile: o.hostfile, host: o.host });
  if (!source) return null;
  const plan = place(source.hosts, { np: source.hosts.length, mapBy: 'node' });
  if (plan.hosts.length === 1 && plan.hosts[0].local) return null;
  return { plan: await resolveAddresses(plan), slurm: source.source === 'slurm' };
}

async function runHere(prepared: Prepared, timeout: number): Promise<number> {
  const child = spawn(prepared.command, prepared.args, {
    stdio: 'inherit',
    env: { ...process.env, SFMPI_LAUNCHER_PID: String(process.pid) },
  });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  let timedOut = false;
  const timer = timeout > 0 ? setTimeout(() => ((timedOut = true), child.kill('SIGKILL')), timeout * 1000) : undefined;
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once('exit', (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  if (timedOut) {
    process.stderr.write(`sfnode: timed out after ${timeout} s\n`);
    return 124;
  }
  if (signal) {
    process.stderr.write(`sfnode: program killed by signal ${signal}\n`);
    return 128 + (os.constants.signals[signal] ?? 0);
  }
  return code ?? 1;
}

async function runAcross(prepared: Prepared, plan: Plan, slurm: boolean, o: Options): Promise<number> {
  const result = await runCluster(prepared, plan, {
    name: 'sfnode',
    timeout: o.timeout,
    verbose: o.verbose,
    launch: (o.launch ?? (slurm ? 'slurm' : 'ssh')) as 'ssh' | 'slurm',
    iface: o.iface,
    programEnv: { SFMPI_NODE_HOSTS: plan.hosts.map((h) => h.name).join(','), SFMPI_NODE_SLOTS: plan.hosts.map((h) => String(h.slots)).join(',') },
    // The origin owns the run: a lost host is an outcome of its join(), not the end of the job;
    // once the origin ends, the seeds get 3 s to follow.
    graceMs: 2 ** 31 - 1,
    originEndsJobMs: 3000,
  });
  // The launcher numbers processes as ranks: rank 0 is the origin, rank h the seed of host h.
  // (No MPI here: the process module's "before MPI_Finalize" says nothing to an sfnode user.)
  const line = result.failure
    ?.replace(/^rank 0 /, 'the origin ')
    .replace(/^host (\S+) \(rank \d+\) /, 'host $1 ')
    .replace(/ before MPI_Finalize$/, '');
  if (line) process.stderr.write(`sfnode: ${line}\n`);
  return result.status;
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(USAGE);
    return argv.length === 0 ? 2 : 0;
  }
  let o: Options;
  let where: { plan: Plan; slurm: boolean } | null;
  let prepared;
  try {
    o = parse(argv);
    where = await planFor(o);
    prepared = await prepare(o.program, o.args);
  } catch (e) {
    if (e instanceof ProgramError || e instanceof PlacementError || e instanceof UsageError) {
      process.stderr.write(`sfnode: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (prepared.kind === 'executable') {
    removeAll(prepared.cleanup);
    process.stderr.write(`sfnode: ${o.program} is not a JavaScript or TypeScript program\n`);
    return 2;
  }
  try {
    return where ? await runAcross(prepared, where.plan, where.slurm, o) : await runHere(prepared, o.timeout);
  } finally {
    removeAll(prepared.cleanup);
  }
}

process.exitCode = await main(process.argv.slice(2));
