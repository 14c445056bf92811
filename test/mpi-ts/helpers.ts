/**
 * Helpers of the MPI-for-TypeScript tests: run a fixture under sfmpirun with a deadline, and find
 * the processes it left behind (every process of a run carries SFMPI_TEST_TAG in its environment,
 * so a scan of /proc finds clones even when they escaped the process group).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/test/mpi-ts */
export const root = path.resolve(here, '..', '..', '..');
export const fixtures = path.join(here, 'fixtures');
export const sfmpirun = path.join(root, 'dist', 'mpi-compat', 'launcher', 'sfmpirun.js');

/** A deadline scaled by SF_TEST_TIMEOUT_MULTIPLIER (2-core CI runs oversubscribed). */
export function deadline(ms: number): number {
  return ms * (Number(process.env.SF_TEST_TIMEOUT_MULTIPLIER) || 1);
}

/** Rank counts every fixture runs at; SFMPI_TEST_SIZES="1,2" narrows them. */
export const SIZES: number[] = (process.env.SFMPI_TEST_SIZES ?? '1,2,3,4,8').split(',').map(Number);

export interface Job {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
  /** pids still alive after sfmpirun exited (killed by the helper, then reported here). */
  orphans: number[];
}

function tagged(tag: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const env = fs.readFileSync(`/proc/${d}/environ`, 'latin1');
      if (env.includes(`SFMPI_TEST_TAG=${tag}`)) out.push(Number(d));
    } catch {
      /* gone or not ours */
    }
  }
  return out;
}

/**
 * Runs `sfmpirun -n <n> <fixture> ...args`. `fixture` is a file name in fixtures/ (the compiled
 * .js by default; pass a path ending in .ts to go through the launcher's TypeScript path).
 */
export function mpirun(n: number, fixture: string, args: string[] = [], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; launcherArgs?: string[] } = {}): Promise<Job> {
  const tag = randomUUID();
  const file = path.isAbsolute(fixture) ? fixture : path.join(fixtures, fixture.endsWith('.ts') ? fixture : `${fixture}.js`);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [sfmpirun, '-n', String(n), ...(opts.launcherArgs ?? []), file, ...args], {
      env: { ...process.env, SFMPI_TEST_TAG: tag, ...opts.env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '', stderr = '', timedOut = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    const timer = setTimeout(() => {
      timedOut = true;
      for (const pid of tagged(tag)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }, deadline(opts.timeoutMs ?? 30_000));
    child.on('close', async (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      // Exiting processes may take a moment to disappear; what is still there after that is an orphan.
      let orphans = tagged(tag);
      for (let i = 0; i < 20 && orphans.length > 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        orphans = tagged(tag);
      }
      for (const pid of orphans) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      resolve({ code, signal, stdout, stderr, timedOut, ms, orphans });
    });
  });
}

/** A one-line summary of a job for assertion messages. */
export function show(j: Job): string {
  return `code ${j.code} signal ${j.signal} timedOut ${j.timedOut} in ${j.ms.toFixed(0)} ms\n--- stdout\n${j.stdout}\n--- stderr\n${j.stderr}`;
}

/**
 * Registers one uvu test per rank count: the fixture must exit 0 with one "rank R/N ok" line per
 * rank, within its deadline, leaving no process behind.
 */
export function atEverySize(test: (name: string, fn: () => Promise<void>) => void, assert: { ok(v: unknown, msg?: string): void; equal(a: unknown, b: unknown, msg?: string): void }, fixture: string, opts: { sizes?: number[]; timeoutMs?: number; args?: string[] } = {}): void {
  for (const n of opts.sizes ?? SIZES) {
    test(`${fixture} at -n ${n}`, async () => {
      const j = await mpirun(n, fixture, opts.args ?? [], { timeoutMs: opts.timeoutMs ?? 30_000, env: { SFMPI_TIMEOUT_MS: String(deadline(20_000)) } });
      assert.equal(j.code, 0, show(j));
      for (let r = 0; r < n; r++) assert.ok(new RegExp(`^rank ${r}/${n} ok \\(\\d+ checks\\)$`, 'm').test(j.stdout), `rank ${r} did not report ok\n${show(j)}`);
      assert.equal(j.orphans, [], `orphans left: ${j.orphans.join(', ')}`);
    });
  }
}
