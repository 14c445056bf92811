/**
 * Test helpers: every program under test runs in its own process group with a deadline (scaled
 * by SF_TEST_TIMEOUT_MULTIPLIER for slow machines) and is killed, group and all, when it passes.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/test */
export const testDir = here;
/** The repository root. */
export const root = path.resolve(here, '..', '..');
export const fixtures = path.join(here, 'fixtures');
export const sfmpirun = path.join(root, 'dist', 'mpi-compat', 'launcher', 'sfmpirun.js');
export const sfnode = path.join(root, 'dist', 'mpi-compat', 'launcher', 'sfnode.js');

export function deadline(ms: number): number {
  return ms * (Number(process.env.SF_TEST_TIMEOUT_MULTIPLIER) || 1);
}

export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  pid: number;
  ms: number;
}

export interface RunOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  input?: string;
  cwd?: string;
  /** Called once the process is running (e.g. to kill it). */
  onSpawn?: (pid: number, stdout: () => string) => void;
}

export function run(command: string, args: string[], opts: RunOptions = {}): Promise<Ran> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        /* gone */
      }
    }, deadline(opts.timeoutMs ?? 60_000));
    opts.onSpawn?.(child.pid as number, () => stdout);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      try {
        process.kill(-(child.pid as number), 'SIGKILL'); // anything left in the group
      } catch {
        /* none: as it should be */
      }
      resolve({ code, signal, stdout, stderr, timedOut, pid: child.pid as number, ms: performance.now() - t0 });
    });
  });
}

/** Runs a clone scenario (test/fixtures/clone-scenario.ts) in a fresh origin. */
export async function scenario(name: string, args: string[] = [], opts: RunOptions = {}): Promise<Ran & { result: any }> {
  const ran = await run(process.execPath, ['--single-threaded', path.join(fixtures, 'clone-scenario.js'), name, ...args], opts);
  const line = ran.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  return { ...ran, result: line ? JSON.parse(line.slice(7)) : undefined };
}

/** Is this pid a live (non-zombie) process? */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Waits until `cond` holds, up to `ms`; returns whether it did. */
export async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + deadline(ms);
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

/** Processes whose command line mentions `needle` (to prove no orphans are left). */
export function processesMatching(needle: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes(needle) && alive(Number(p))) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}
