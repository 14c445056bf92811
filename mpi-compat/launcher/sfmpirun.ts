#!/usr/bin/env node
/**
 * sfmpirun, the Node launcher: run an MPI job. One process is started (the origin); at
 * MPI.init() / MPI_Init it is cloned into the ranks, which continue with everything it had
 * loaded.
 *
 * The native launcher (build/c/sfmpirun, which npm's `sfmpirun` runs) owns the command line and
 * every job on this host; this one takes what needs Node (native.ts): it bundles TypeScript
 * (program.ts), places a job across hosts (placement.ts) and runs it there (cluster.ts). Started
 * as `node sfmpirun.js <args>`, it asks the native launcher first, which may run the job itself.
 */
import { ClusterKeyError } from '../../dom0/cluster-key.js';
import { runCluster } from './cluster.js';
import { runNative, preparedArgs, type LaunchSpec } from './native.js';
import { hostsFor, parseMapBy, place, PlacementError, resolveAddresses, type Plan } from './placement.js';
import { prepare, ProgramError, removeAll } from './program.js';

/** Runs the job the native launcher parsed; `argv` are the user's arguments. */
async function runSpec(spec: LaunchSpec, argv: string[]): Promise<number> {
  const file = argv[spec.program];
  const rest = argv.slice(spec.program + 1);
  let plan: Plan | null = null;
  let launch = spec.launch ?? undefined;
  try {
    const source = hostsFor({ hostfile: spec.hostfile ?? undefined, host: spec.host ?? undefined });
    if (source) {
      const mapping = spec.mapBy !== null ? parseMapBy(spec.mapBy) : { mapBy: 'slot' as const };
      plan = place(source.hosts, { np: spec.np, mapBy: mapping.mapBy, oversubscribe: spec.oversubscribe || mapping.oversubscribe });
      // A plan of this host alone is a single-host job: no dom0, no network.
      plan = plan.hosts.length === 1 && plan.hosts[0].local ? null : await resolveAddresses(plan);
      if (plan && launch !== undefined && launch !== 'ssh' && launch !== 'slurm' && launch !== 'service')
        throw new PlacementError('ERR_PLACEMENT_OPTION', `--launch ${launch}: ssh, slurm or service`);
      if (plan && source.source === 'slurm' && launch === undefined) launch = 'slurm';
    }
  } catch (e) {
    if (e instanceof PlacementError) {
      process.stderr.write(`sfmpirun: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  let prepared;
  try {
    prepared = await prepare(file, rest);
  } catch (e) {
    if (e instanceof ProgramError) {
      process.stderr.write(`sfmpirun: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (spec.verbose) process.stderr.write(`sfmpirun: ${prepared.kind} program ready in ${prepared.ms.toFixed(1)} ms\n`);
  try {
    if (!plan) return (await runNative(preparedArgs(spec, prepared.command, prepared.args), 'prepared')).status;
    const result = await runCluster(prepared, plan, {
      timeout: spec.timeout, verbose: spec.verbose, launch: (launch ?? 'ssh') as 'ssh' | 'slurm' | 'service', iface: spec.iface ?? undefined, servicePort: spec.dom0Port ?? undefined,
    });
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

/** sfmpirun with the user's arguments; resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  const given = process.env.SFMPI_LAUNCH_SPEC;
  delete process.env.SFMPI_LAUNCH_SPEC;
  if (given) return runSpec(JSON.parse(given) as LaunchSpec, argv);
  const front = await runNative(argv, 'front');
  return front.spec ? runSpec(front.spec, argv) : front.status;
}

// A closed stdout is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
});

process.exitCode = await main(process.argv.slice(2));
