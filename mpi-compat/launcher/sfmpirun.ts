#!/usr/bin/env node
/**
 * sfmpirun: run an MPI job. One process is started (the origin); at MPI.init() / MPI_Init it is
 * cloned into the ranks, which continue with everything it had loaded.
 */
import { Command, InvalidArgumentError } from 'commander';
import { hostLimit } from '../../dom0/admission.js';
import { ClusterKeyError } from '../../dom0/cluster-key.js';
import { runCluster } from './cluster.js';
import { runJob } from './job.js';
import { hostsFor, parseMapBy, place, PlacementError, resolveAddresses, type Plan } from './placement.js';
import { prepare, ProgramError, removeAll } from './program.js';

function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1)
      throw new InvalidArgumentError(`${flag} must be a positive integer, got "${value}"`);
    return n;
  };
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`--timeout must be a positive number of seconds, got "${value}"`);
  return n;
}

const examples = `
Examples:
  $ sfmpirun -n 4 examples/pi.ts              TypeScript ranks (no build step)
  $ sfmpirun --hostfile hosts -n 16 ./cpi     across hosts (host:slots or "host slots=N" lines)
  $ salloc -N 4 sfmpirun -n 8 ./cpi           inside a Slurm allocation: its nodes, started by srun
  $ sfmpirun --launch service --hostfile hosts -n 16 ./cpi   dom0 services already running (sfmpi-dom0)
  $ sfmpirun -n 8 --timeout 60 job.mjs data.csv
  $ sfmpicc -O2 cpi.c -o cpi && sfmpirun -n 8 ./cpi    an unmodified MPI C program
  $ sfmpirun -n 2 --verbose ./cpi             clone timings per rank

Exit status: 0 when every rank exits 0; otherwise the first failure's code (128+N for signal N,
124 for --timeout), with a line on stderr naming the rank and the cause.`;

export async function main(argv: string[]): Promise<number> {
  // MPI users type -np 4; commander would read that as -n p.
  const args = argv.map((a) => (a === '-np' ? '--np' : a));
  const program = new Command('sfmpirun')
    .description('Run an MPI job: start the program once and clone it into N ranks at MPI.init()/MPI_Init.')
    .usage('-n <ranks> [options] <program> [args...]')
    .option('-n, --np <ranks>', 'number of ranks', positiveInt('-n'), 1)
    .option('--timeout <seconds>', 'kill the job and fail after this long', seconds)
    .option('-v, --verbose', 'report clone timings per rank and the job time on stderr', false)
    .option('--hostfile <file>', 'hosts to run on: "host:slots" (MPICH) or "host slots=N" (Open MPI) lines')
    .option('--host <list>', 'hosts to run on: a:4,b:4 (or a,a,b: one slot per mention)')
    .option('--map-by <how>', 'slot (fill each host in turn, the default) or node (round robin)')
    .option('--oversubscribe', 'allow more ranks than slots', false)
    .option('--iface <name>', 'the cluster network interface (where the launcher listens)')
    .option('--launch <how>', 'how each host\'s dom0 comes: ssh, slurm (the default inside an allocation), or service (a running sfmpi-dom0 on every host)')
    .option('--dom0-port <port>', 'the dom0 services\' port (--launch service)', positiveInt('--dom0-port'))
    .argument('<program>', 'a .ts, .mts, .js or .mjs file, or an executable built with sfmpicc')
    .argument('[args...]', 'arguments for the program')
    .passThroughOptions()
    .showHelpAfterError('(run sfmpirun --help for usage)')
    .addHelpText('after', examples)
    .exitOverride();
  try {
    program.parse(args, { from: 'user' });
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode;
    return code ?? 2;
  }
  const opts = program.opts<{ np: number; timeout?: number; verbose: boolean; hostfile?: string; host?: string; mapBy?: string; oversubscribe: boolean; iface?: string; launch?: string; dom0Port?: number }>();
  const [file, rest] = program.processedArgs as [string, string[]];
  let plan: Plan | null = null;
  try {
    const source = hostsFor({ hostfile: opts.hostfile, host: opts.host });
    if (source) {
      const mapping = opts.mapBy ? parseMapBy(opts.mapBy) : { mapBy: 'slot' as const };
      plan = place(source.hosts, { np: opts.np, mapBy: mapping.mapBy, oversubscribe: opts.oversubscribe || mapping.oversubscribe });
      // A plan of this host alone is a single-host job: no dom0, no network.
      plan = plan.hosts.length === 1 && plan.hosts[0].local ? null : await resolveAddresses(plan);
      if (plan && opts.launch !== undefined && !['ssh', 'slurm', 'service'].includes(opts.launch))
        throw new PlacementError('ERR_PLACEMENT_OPTION', `--launch ${opts.launch}: ssh, slurm or service`);
      if (plan && source.source === 'slurm' && opts.launch === undefined) opts.launch = 'slurm';
    }
  } catch (e) {
    if (e instanceof PlacementError) {
      process.stderr.write(`sfmpirun: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const limit = hostLimit();
  if (!plan && opts.np - 1 > limit) {
    process.stderr.write(
      `sfmpirun: -n ${opts.np} needs ${opts.np - 1} clones, beyond this host's admission limit of ${limit} (set SFMPI_MAX_CLONES to change it)\n`,
    );
    return 2;
  }
  let prepared;
  try {
    prepared = await prepare(file, rest ?? []);
  } catch (e) {
    if (e instanceof ProgramError) {
      process.stderr.write(`sfmpirun: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (opts.verbose) process.stderr.write(`sfmpirun: ${prepared.kind} program ready in ${prepared.ms.toFixed(1)} ms\n`);
  try {
    const result = plan
      ? await runCluster(prepared, plan, { timeout: opts.timeout ?? 0, verbose: opts.verbose, launch: (opts.launch ?? 'ssh') as 'ssh' | 'slurm' | 'service', iface: opts.iface, servicePort: opts.dom0Port })
      : await runJob(prepared, { size: opts.np, timeout: opts.timeout ?? 0, verbose: opts.verbose });
    if (result.failure) process.stderr.write(`sfmpirun: ${result.failure}\n`);
    return result.status;
  } catch (e) {
    if (e instanceof ClusterKeyError) {
      process.stderr.write(`sfmpirun: --launch service: ${e.message}\n`);
      return 2;
    }
    throw e;
  } finally {
    removeAll(prepared.cleanup);
  }
}

// `sfmpirun --help | head`: a closed stdout is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
});

process.exitCode = await main(process.argv.slice(2));
