/**
 * One job: start the origin, forward every rank's output, listen on the control socket, decide
 * the exit status, and make sure nothing of the job outlives it (docs/launcher-protocol.md).
 */
import { spawn, type StdioOptions } from 'node:child_process';
import os from 'node:os';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { decodeControl } from '../../guest-daemon/control.js';
import { Outcome, type JobResult } from './outcome.js';
import { forwardLines } from './output.js';
import type { Prepared } from './program.js';

export type { JobResult } from './outcome.js';

export interface JobOptions {
  size: number;
  /** Seconds; 0 for none. */
  timeout: number;
  verbose: boolean;
  /** Grace after the first failure before the rest of the job is killed (ms). */
  graceMs?: number;
  /** Extra environment for the origin. */
  env?: NodeJS.ProcessEnv;
}

function say(line: string): void {
  process.stderr.write(`sfmpirun: ${line}\n`);
}

export async function runJob(program: Prepared, opts: JobOptions): Promise<JobResult> {
  const n = opts.size;
  // fd 0 stdin, 1/2 rank 0's output, 3 control, then 4.. = out/err of ranks 1..n-1.
  const stdio: StdioOptions = ['inherit', 'pipe', 'pipe', 'pipe'];
  const fds = ['1', '2'];
  for (let r = 1; r < n; r++) {
    fds.push(String(stdio.length), String(stdio.length + 1));
    stdio.push('pipe', 'pipe');
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...opts.env,
    SFMPI_SIZE: String(n),
    SFMPI_CONTROL_FD: '3',
    SFMPI_STDIO_FDS: fds.join(','),
    SFMPI_LAUNCHER_PID: String(process.pid),
  };
  if (opts.timeout > 0) env.SFMPI_TIMEOUT_MS = String(Math.round(opts.timeout * 1000));
  if (opts.verbose) env.SFMPI_VERBOSE = '1';

  const t0 = performance.now();
  const child = spawn(program.command, program.args, { stdio, env, detached: true });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

  const outputs: Promise<void>[] = [];
  const streams = child.stdio as (Readable | null)[];
  outputs.push(forwardLines(streams[1] as Readable, process.stdout));
  outputs.push(forwardLines(streams[2] as Readable, process.stderr));
  for (let r = 1; r < n; r++) {
    outputs.push(forwardLines(streams[4 + 2 * (r - 1)] as Readable, process.stdout));
    outputs.push(forwardLines(streams[5 + 2 * (r - 1)] as Readable, process.stderr));
  }

  const outcome = new Outcome(n);
  let killTimer: NodeJS.Timeout | undefined;
  const killGroup = () => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  // The others should notice through the data plane and stop; if not, we stop them.
  outcome.onFirstFailure = () => (killTimer = setTimeout(killGroup, opts.graceMs ?? 3000));

  const control = readline.createInterface({ input: streams[3] as Readable, crlfDelay: Infinity });
  const controlClosed = new Promise<void>((resolve) => control.once('close', resolve));
  control.on('line', (line) => {
    const msg = decodeControl(line);
    if (!msg) {
      say(`ignored a malformed control message: ${JSON.stringify(line.slice(0, 200))}`);
      return;
    }
    if (msg.ev === 'fork' && opts.verbose)
      say(`rank ${msg.rank} pid ${msg.pid} running ${msg.ms.toFixed(2)} ms after the fork request`);
    outcome.event(msg);
  });

  const timer =
    opts.timeout > 0
      ? setTimeout(() => {
          outcome.timeout(opts.timeout);
          killGroup();
        }, opts.timeout * 1000)
      : undefined;
  const forwardSignal = (sig: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, sig);
    } catch {
      /* gone */
    }
    setTimeout(killGroup, 2000).unref();
  };
  const onInt = () => forwardSignal('SIGINT');
  const onTerm = () => forwardSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const first = await Promise.race([exited, spawnError]);
  if (first instanceof Error) {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    clearTimeout(timer);
    return { status: 127, failure: `cannot start ${program.command}: ${first.message}` };
  }
  const origin = first;
  // Whatever the origin left behind (a clone that outlived it would be a bug) goes too.
  killGroup();
  await Promise.all(outputs);
  await controlClosed;
  clearTimeout(timer);
  clearTimeout(killTimer);
  process.off('SIGINT', onInt);
  process.off('SIGTERM', onTerm);
  if (opts.verbose) say(`job of ${n} rank${n === 1 ? '' : 's'} ended after ${(performance.now() - t0).toFixed(1)} ms`);

  return outcome.result({ ...origin, signalNumber: origin.signal ? os.constants.signals[origin.signal] ?? 0 : 0 });
}
