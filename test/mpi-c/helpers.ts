/**
 * Helpers of the MPI C tests: build libsfmpi and the C programs (with sfmpicc, into a temp dir),
 * run them under sfmpirun with a deadline, and find processes a run left behind. Every run
 * carries a fresh SFMPI_TEST_TAG in its environment, so a scan of /proc/<pid>/environ finds
 * clones even if they escaped the process group.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { alive, root, run, sfmpirun, type Ran } from '../helpers.js';

export { root, sfmpirun };
const exec = promisify(execFile);

export const sfmpicc = path.join(root, 'mpi-compat', 'c', 'sfmpicc');
export const csrc = path.join(root, 'test', 'c');

/** Rank counts every verdict program runs at; SFMPI_TEST_SIZES="1,2" narrows them. */
export const SIZES: number[] = (process.env.SFMPI_TEST_SIZES ?? '1,2,3,4,8').split(',').map(Number);

/** Builds libsfmpi (make is incremental; `node-gyp rebuild` wipes build/, so always ask). */
export async function buildLib(): Promise<void> {
  await exec('make', ['-s', '-C', path.join(root, 'mpi-compat', 'c')], { maxBuffer: 1 << 24 });
}

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `sfmpi-${tag}-`));
}

/** Compiles C sources with sfmpicc, two at a time (2-core CI). Returns name -> binary path. */
export async function compile(sources: string[], outDir: string, flags: string[] = ['-O2', '-Wall', '-Werror']) {
  const out: Record<string, string> = {};
  const queue = [...sources];
  const worker = async () => {
    for (let src = queue.shift(); src; src = queue.shift()) {
      const name = path.basename(src, '.c');
      const bin = path.join(outDir, name);
      try {
        await exec(sfmpicc, [...flags, src, '-o', bin, '-lm'], { maxBuffer: 1 << 24 });
      } catch (e: any) {
        throw new Error(`sfmpicc ${src} failed:\n${e.stderr ?? e}`);
      }
      out[name] = bin;
    }
  };
  await Promise.all([worker(), worker()]);
  return out;
}

export interface Job extends Ran {
  /** pids of processes still alive (not zombies) that carry this run's tag */
  leftovers: number[];
}

function tagged(tag: string): number[] {
  const found: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/environ`, 'latin1').includes(`SFMPI_TEST_TAG=${tag}`) && alive(Number(p)))
        found.push(Number(p));
    } catch {
      /* gone, or not ours */
    }
  }
  return found;
}

/** Runs `sfmpirun -n N binary args` (or the binary alone with SFMPI_SIZE when launcher=false). */
export async function mpirun(
  n: number,
  binary: string,
  args: string[] = [],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; launcher?: boolean; cwd?: string } = {},
): Promise<Job> {
  const tag = randomUUID();
  const env = { SFMPI_WAIT_TIMEOUT_MS: '30000', ...opts.env, SFMPI_TEST_TAG: tag };
  const ran =
    opts.launcher === false
      ? await run(binary, args, { env: { ...env, SFMPI_SIZE: String(n) }, timeoutMs: opts.timeoutMs ?? 60_000, cwd: opts.cwd })
      : await run(process.execPath, [sfmpirun, '-n', String(n), binary, ...args], {
          env,
          timeoutMs: opts.timeoutMs ?? 60_000,
          cwd: opts.cwd,
        });
  // The launcher has exited; give the kernel a moment to finish reaping, then look.
  let leftovers = tagged(tag);
  for (let i = 0; i < 20 && leftovers.length; i++) {
    await new Promise((r) => setTimeout(r, 50));
    leftovers = tagged(tag);
  }
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  return { ...ran, leftovers };
}

/** A one-line summary for assertion messages. */
export function describe(j: Job): string {
  return `code ${j.code} signal ${j.signal} timedOut ${j.timedOut}\n--- stdout\n${j.stdout.slice(-2000)}\n--- stderr\n${j.stderr.slice(-2000)}`;
}
