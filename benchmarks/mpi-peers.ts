/**
 * Shared driver code of the MPI benchmarks (pingpong, allreduce): one run measures our
 * TypeScript ranks (sfmpirun), a C program built against Debian's MPICH, and worker_threads,
 * and prints one table with the figures side by side and their ratios.
 *
 * MPICH is installed with apt-get when mpicc.mpich is missing (root, Debian); the C peer is built
 * with mpicc.mpich -O2 into a temporary directory and run with mpirun.mpich (never the
 * alternatives-managed `mpicc`/`mpirun`, which may point at Open MPI).
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

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Makes sure mpicc.mpich and mpirun.mpich exist, installing Debian's mpich if needed. */
export function ensureMpich(): void {
  if (have('mpicc.mpich') && have('mpirun.mpich')) return;
  process.stderr.write('bench: mpicc.mpich not found; installing Debian package mpich (apt-get)\n');
  execFileSync('apt-get', ['update'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'mpich', 'libmpich-dev'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

/** Builds benchmarks/<dir>/<name>.c with mpicc.mpich -O2; returns the executable. */
export function buildC(dir: string, name: string): string {
  const src = path.join(root, 'benchmarks', dir, `${name}.c`);
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sfmpi-bench-')), name);
  execFileSync('mpicc.mpich', ['-O2', src, '-o', out], { stdio: 'inherit' });
  return out;
}

/** Repetitions of every driver; each figure is the best (lowest time) of them, for every driver alike. */
export const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);

/** Runs `once` REPEAT times and keeps, per key, the row with the lowest `us`. */
export function best(key: string, once: () => Record<string, number>[]): Map<number, number> {
  const out = new Map<number, number>();
  for (let i = 0; i < REPEAT; i++) {
    for (const r of once()) if (!out.has(r[key]) || r.us < out.get(r[key])!) out.set(r[key], r.us);
  }
  return out;
}

/** Runs a command and parses every JSON line of its stdout. */
export function jsonLines(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Record<string, number>[] {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 600_000 });
  if (r.status !== 0) throw new Error(`bench: ${cmd} ${args.join(' ')} failed (status ${r.status}, signal ${r.signal}):\n${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, number>);
}

/** Runs a C MPI program on n ranks with mpirun.mpich. */
export function runMpich(exe: string, n: number, args: string[]): Record<string, number>[] {
  return jsonLines('mpirun.mpich', ['-n', String(n), exe, ...args]);
}

/** Runs one of our compiled TypeScript rank programs (dist/benchmarks/...) under sfmpirun. */
export function runSfmpi(rel: string, n: number, args: string[]): Record<string, number>[] {
  return jsonLines(process.execPath, [sfmpirun, '-n', String(n), path.join(root, 'dist', 'benchmarks', rel), ...args]);
}

/** Runs a compiled worker_threads peer in a fresh node. */
export function runNode(rel: string, args: string[]): Record<string, number>[] {
  return jsonLines(process.execPath, [path.join(root, 'dist', 'benchmarks', rel), ...args]);
}

/** Prints a table: a header row and rows of cells, columns padded. */
export function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ') + ' |';
  return [line(header), '|' + w.map((x, i) => (i === 0 ? ':' : '') + '-'.repeat(x + 2 - (i === 0 ? 1 : 1)) + (i === 0 ? '' : ':')).join('|') + '|', ...rows.map(line)].join('\n');
}

/** "1 KiB", "64 KiB", "1 MiB". */
export function human(bytes: number): string {
  if (bytes >= 1 << 20) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1024) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

/** A ratio with two significant digits and an x. */
export function ratio(a: number, b: number): string {
  const r = a / b;
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}x`;
}

/** Machine line for the table's caption. */
export function machine(): string {
  return `${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), Linux ${os.release()}, Node ${process.version}`;
}
