/**
 * Shared driver code of the MPI benchmarks (pingpong, allreduce). One run measures our
 * TypeScript ranks (sfmpirun) beside their peers in their best idiom: C programs built against
 * Debian's MPICH, mpi4py (Debian's python3-mpi4py, on Open MPI) for the object calls, and
 * worker_threads. The drivers run interleaved, A B C A B C ..., for BENCH_ROUNDS rounds (5 by
 * default), because these machines are noisy: every figure is the median of its rounds, with
 * the minimum beside it, and a ratio compares medians of the same run.
 *
 * Missing peers are installed with apt-get (root, Debian). The C peer is built with
 * mpicc.mpich -O2 into a temporary directory and run with mpirun.mpich (never the
 * alternatives-managed `mpicc`/`mpirun`, which may point at Open MPI), under a timeout: a run
 * that hangs in MPI_Finalize still gives the figures it printed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (this file is dist/benchmarks/mpi-peers.js once compiled). */
export const root = path.resolve(here, '..', '..');
const sfmpirun = path.join(root, 'dist', 'mpi-compat', 'launcher', 'sfmpirun.js');
/** Debian's python3, which has python3-mpi4py (a pyenv shim on PATH may not). */
const python = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function aptInstall(pkgs: string[], why: string): void {
  process.stderr.write(`bench: ${why}; installing Debian packages ${pkgs.join(' ')} (apt-get)\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env });
}

/** Makes sure mpicc.mpich and mpirun.mpich exist, installing Debian's mpich if needed. */
export function ensureMpich(): void {
  if (!have('mpicc.mpich') || !have('mpirun.mpich')) aptInstall(['mpich', 'libmpich-dev'], 'mpicc.mpich not found');
}

/** Makes sure mpi4py on Open MPI can run, installing python3-mpi4py if needed. */
export function ensureMpi4py(): void {
  const ok = spawnSync(python, ['-c', 'import mpi4py'], { stdio: 'ignore' }).status === 0;
  if (!ok || !have('mpirun.openmpi')) aptInstall(['python3-mpi4py', 'openmpi-bin'], 'mpi4py not found');
}

/** Builds benchmarks/<dir>/<name>.c with `cc` (default mpicc.mpich) -O2; returns the
 * executable, whose temporary directory goes when this process exits. */
export function buildC(dir: string, name: string, cc = 'mpicc.mpich'): string {
  const src = path.join(root, 'benchmarks', dir, `${name}.c`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sfmpi-bench-'));
  process.once('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
  const out = path.join(tmp, name);
  execFileSync(cc, ['-O2', src, '-o', out], { stdio: 'inherit' });
  return out;
}

/** One measurement: a key (size, count or operation) and microseconds. */
export type Row = { key: string; us: number };

/** Runs a command under a timeout and parses every JSON line {key, us} of its stdout. */
export function jsonLines(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 300_000): Row[] {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: timeoutMs, killSignal: 'SIGKILL' });
  const rows = (r.stdout ?? '').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Row);
  if (r.status !== 0 && rows.length === 0)
    throw new Error(`bench: ${cmd} ${args.join(' ')} failed (status ${r.status}, signal ${r.signal}):\n${r.stderr}`);
  return rows;
}

/** A C MPI program on n ranks with mpirun.mpich. */
export function runMpich(exe: string, n: number, args: string[]): Row[] {
  return jsonLines('mpirun.mpich', ['-n', String(n), exe, ...args], {}, 120_000);
}

/** A Python mpi4py script on n ranks with Open MPI's mpirun (Debian's mpi4py is built on it). */
export function runMpi4py(script: string, n: number, args: string[]): Row[] {
  const env = { OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_btl: 'self,vader' };
  return jsonLines('mpirun.openmpi', ['-n', String(n), '--bind-to', 'none', python, path.join(root, 'benchmarks', script), ...args], env);
}

/** One of our compiled TypeScript rank programs (dist/benchmarks/...) under sfmpirun. */
export function runSfmpi(rel: string, n: number, args: string[]): Row[] {
  return jsonLines(process.execPath, [sfmpirun, '-n', String(n), path.join(root, 'dist', 'benchmarks', rel), ...args]);
}

/** A compiled worker_threads peer in a fresh node. */
export function runNode(rel: string, args: string[]): Row[] {
  return jsonLines(process.execPath, [path.join(root, 'dist', 'benchmarks', rel), ...args]);
}

/** Rounds of every driver (BENCH_ROUNDS, default 5). */
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

/** Median and minimum of one driver's samples for one key. */
export interface Stat {
  median: number;
  min: number;
  n: number;
}

/** Runs every driver once per round, in turn (A B C A B C ...), and summarises per key. */
export function interleave(drivers: Record<string, () => Row[]>, rounds = ROUNDS): Record<string, Map<string, Stat>> {
  const samples: Record<string, Map<string, number[]>> = {};
  for (const name of Object.keys(drivers)) samples[name] = new Map();
  for (let i = 0; i < rounds; i++) {
    for (const [name, run] of Object.entries(drivers)) {
      for (const r of run()) {
        const list = samples[name].get(String(r.key)) ?? [];
        list.push(r.us);
        samples[name].set(String(r.key), list);
      }
    }
    process.stderr.write(`bench: round ${i + 1}/${rounds} done\n`);
  }
  const out: Record<string, Map<string, Stat>> = {};
  for (const [name, m] of Object.entries(samples)) {
    out[name] = new Map();
    for (const [k, v] of m) {
      const s = [...v].sort((a, b) => a - b);
      const mid = s.length >> 1;
      out[name].set(k, { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], n: s.length });
    }
  }
  return out;
}

/** "0.54 (0.51)": median and, in parentheses, minimum. */
export function cell(s: Stat | undefined, digits = 2): string {
  if (!s) return '-';
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)})`;
}

/** Prints a table: a header row and rows of cells, columns padded. */
export function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ') + ' |';
  return [line(header), '|' + w.map((x, i) => (i === 0 ? ':' : '') + '-'.repeat(x + 1) + (i === 0 ? '' : ':')).join('|') + '|', ...rows.map(line)].join('\n');
}

/** "1 KiB", "64 KiB", "1 MiB". */
export function human(bytes: number): string {
  if (bytes >= 1 << 20) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1024) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

/** The ratio of two medians with two significant digits and an x. */
export function ratio(a: Stat | number | undefined, b: Stat | number | undefined): string {
  const x = typeof a === 'number' ? a : a?.median, y = typeof b === 'number' ? b : b?.median;
  if (x === undefined || y === undefined) return '-';
  const r = x / y;
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}x`;
}

/** Machine line for the table's caption. */
export function machine(): string {
  return `${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), Linux ${os.release()}, Node ${process.version}`;
}
