/**
 * Helpers of the lazy-memory tests: an origin process (fixtures/origin.ts) driven over its
 * stdin, and seeds (fixtures/seed.ts) run to their RESULT line. Every process runs in its own
 * group with a deadline and is killed, group and all, at the end.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { encodeSecret, newSecret } from '../../dom0/handshake.js';
import { deadline, run, testDir, type Ran, type RunOptions } from '../helpers.js';

export const fixtures = path.join(testDir, 'lazy', 'fixtures');
/** The job secret the tests' origins and seeds share. */
export const secret = newSecret();
export const secretEnv = { SFMPI_JOB_SECRET: encodeSecret(secret) };

/** One region as the origin reports it. */
export interface OriginRegion {
  id: number;
  length: number;
  sha: string;
  liveSha: string;
  zeroPages: number;
  zeroMap: string;
}

/** What the origin prints once it serves. */
export interface OriginInfo {
  port: number;
  serverPid: number;
  regions: OriginRegion[];
}

/** A running origin. */
export class Origin {
  readonly info: OriginInfo;
  readonly pid: number;
  readonly #child: ChildProcessWithoutNullStreams;
  #out = '';
  #err = '';
  #waiters: (() => void)[] = [];
  #exit: Promise<number | null>;

  private constructor(child: ChildProcessWithoutNullStreams, info: OriginInfo, out: string) {
    this.#child = child;
    this.pid = child.pid as number;
    this.info = info;
    this.#out = out;
    child.stdout.on('data', (d) => {
      this.#out += d;
      for (const w of this.#waiters.splice(0)) w();
    });
    this.#exit = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  }

  /** Starts an origin with `mib` MiB in region 1 and waits until it serves. */
  static start(mib = 128): Promise<Origin> {
    const child = spawn(process.execPath, [path.join(fixtures, 'origin.js'), String(mib)], {
      env: { ...process.env, ...secretEnv },
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new Promise((resolve, reject) => {
      let out = '';
      let err = '';
      const timer = setTimeout(() => {
        Origin.#killGroup(child.pid as number);
        reject(new Error(`origin did not start within 30 s; stderr: ${err}`));
      }, deadline(30_000));
      child.stderr.on('data', (d) => (err += d));
      const onData = (d: Buffer) => {
        out += d;
        const line = out.split('\n').find((l) => l.startsWith('READY '));
        if (!line) return;
        clearTimeout(timer);
        child.stdout.off('data', onData);
        const o = new Origin(child, JSON.parse(line.slice(6)) as OriginInfo, out);
        o.#err = err;
        child.stderr.on('data', (e) => (o.#err += e));
        resolve(o);
      };
      child.stdout.on('data', onData);
      child.on('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`origin exited (${code}) before serving; stderr: ${err}`));
      });
    });
  }

  static #killGroup(pid: number): void {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }

  /** The seed configuration for this origin's regions. */
  config(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { port: this.info.port, regions: this.info.regions.map((r) => ({ id: r.id, length: r.length, zeroMap: r.zeroMap })), ...extra };
  }

  /** Region `id` as reported. */
  region(id: number): OriginRegion {
    return this.info.regions.find((r) => r.id === id)!;
  }

  /** Sends a command and resolves with the next line starting with `expect`. */
  async command(cmd: string, expect: string): Promise<string> {
    const from = this.#out.length;
    this.#child.stdin.write(`${cmd}\n`);
    const end = Date.now() + deadline(10_000);
    for (;;) {
      const line = this.#out.slice(from).split('\n').find((l) => l.startsWith(expect));
      if (line !== undefined && this.#out.slice(from).includes(`${line}\n`)) return line;
      if (Date.now() > end) throw new Error(`origin: no "${expect}" answer to "${cmd}"; stderr: ${this.#err}`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  /** The memory server's counters (and whether it is alive). */
  async counters(): Promise<{ malformed: number; connections: number; open: number; failed: number; alive: boolean; regions: { id: number; sent: number; pages: number; zeroPages: number; requests: number; bytes: number }[] }> {
    return JSON.parse((await this.command('counters', 'COUNTERS ')).slice(9));
  }

  /** Ends stdin (the origin closes its server and exits); resolves with its exit code. */
  async close(): Promise<number | null> {
    this.#child.stdin.end();
    const timer = setTimeout(() => Origin.#killGroup(this.pid), deadline(15_000));
    const code = await this.#exit;
    clearTimeout(timer);
    Origin.#killGroup(this.pid); // anything left in the group
    return code;
  }

  /** What it wrote on stderr. */
  get stderr(): string {
    return this.#err;
  }
}

/** Runs a seed to its end: its exit, output and parsed RESULT. */
export async function seed(mode: string, cfg: Record<string, unknown>, opts: RunOptions = {}): Promise<Ran & { result: any }> {
  const ran = await run(process.execPath, ['--single-threaded', '--expose-gc', path.join(fixtures, 'seed.js'), mode, JSON.stringify(cfg)], {
    ...opts,
    env: { ...secretEnv, ...opts.env },
  });
  const line = ran.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  return { ...ran, result: line ? JSON.parse(line.slice(7)) : undefined };
}
