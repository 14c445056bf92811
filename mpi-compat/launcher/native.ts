/**
 * The native launcher (mpi-compat/launcher/native/, built as build/c/sfmpirun) as the Node
 * launcher uses it. The native launcher owns the command line and every job on one host; the
 * Node launcher bundles TypeScript and runs jobs across hosts (sfmpirun.c draws the hand-over):
 *
 *   - `node sfmpirun.js <args>` first asks the native launcher (`front`): it parses the
 *     arguments, prints usage or the error, runs an executable's job itself, or hands the job
 *     back here as a LaunchSpec;
 *   - a job on this host that Node prepared (a bundle) is run by the native launcher
 *     (`prepared`), so a TypeScript job's processes, output, control lines and outcome are
 *     handled by the same code as a C job's.
 *
 * The native launcher dies with this process (SFMPI_DIE_WITH: PR_SET_PDEATHSIG), and SIGINT and
 * SIGTERM sent here are passed on to it.
 */
import { execFileSync, spawn, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The job as the native launcher parsed it (sfl_spec in mpi-compat/launcher/native/cli.c). */
export interface LaunchSpec {
  /** -n */
  np: number;
  /** --timeout in seconds; 0 for none. */
  timeout: number;
  verbose: boolean;
  oversubscribe: boolean;
  hostfile: string | null;
  host: string | null;
  mapBy: string | null;
  iface: string | null;
  launch: string | null;
  /** --dom0-port (absent: the services' default). */
  dom0Port?: number;
  /** Index of the program among the user's arguments; its own arguments follow it. */
  program: number;
}

/** The package root (this file is dist/mpi-compat/launcher/native.js). */
const home = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Where the native launcher is; built here if missing (`node-gyp rebuild` deletes build/). */
export function nativeLauncher(): string {
  const bin = path.join(home, 'build', 'c', 'sfmpirun');
  if (fs.existsSync(bin)) return bin;
  const lib = path.dirname(bin);
  try {
    fs.mkdirSync(lib, { recursive: true });
    // Under the lock sfmpicc takes: several launchers (or a make -j of sfmpicc) may race.
    execFileSync('flock', [path.join(lib, '.build-lock'), 'make', '-s', '-C', path.join(home, 'mpi-compat', 'c'), 'launcher'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  } catch {
    /* said below */
  }
  if (!fs.existsSync(bin)) throw new Error(`the native launcher is not built (${bin}) and building it failed; run: make -C ${path.join(home, 'mpi-compat', 'c')}`);
  return bin;
}

/** What a run of the native launcher came to. */
export interface NativeRun {
  /** Its exit status (128+N when killed by signal N). */
  status: number;
  /** The job, when the native launcher handed it back (front door only). */
  spec: LaunchSpec | null;
}

/**
 * Runs the native launcher with `args`, its stdio ours. `front`: the user's arguments, and a
 * job that is Node's comes back as a spec. `prepared`: `-n N [--timeout S] [-v] -- command
 * args`, run as it is.
 */
export async function runNative(args: string[], mode: 'front' | 'prepared'): Promise<NativeRun> {
  const bin = nativeLauncher();
  const stdio: StdioOptions = mode === 'front' ? ['inherit', 'inherit', 'inherit', 'pipe'] : 'inherit';
  const env: NodeJS.ProcessEnv = { ...process.env, SFMPI_DIE_WITH: String(process.pid) };
  if (mode === 'front') env.SFMPI_LAUNCH_SPEC_FD = '3';
  else env.SFMPI_LAUNCH_PREPARED = '1';
  const child = spawn(bin, args, { stdio, env });
  let spec = '';
  const specDone =
    mode === 'front'
      ? new Promise<void>((resolve) => {
          const s = child.stdio[3] as NodeJS.ReadableStream;
          s.setEncoding('utf8');
          s.on('data', (d: string) => (spec += d));
          s.on('end', resolve);
          s.on('error', () => resolve());
        })
      : Promise.resolve();
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  const onInt = () => forward('SIGINT');
  const onTerm = () => forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c, s) => resolve([c, s]));
    });
    await specDone;
    const status = signal ? 128 + (os.constants.signals[signal] ?? 0) : (code ?? 1);
    return { status, spec: spec.trim() ? (JSON.parse(spec) as LaunchSpec) : null };
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

/** The native launcher's arguments for a job Node prepared. */
export function preparedArgs(spec: Pick<LaunchSpec, 'np' | 'timeout' | 'verbose'>, command: string, args: string[]): string[] {
  return ['-n', String(spec.np), ...(spec.timeout > 0 ? ['--timeout', String(spec.timeout)] : []), ...(spec.verbose ? ['-v'] : []), '--', command, ...args];
}
