/**
 * A host's ranks, as its dom0 runs them: it starts the host's first rank (the origin on rank
 * 0's host, a seed elsewhere: the program re-runs up to its fork point and there forks the
 * host's other ranks), gives it its part of the job (dom0/join.ts), forwards every rank's
 * output whole lines at a time and the control lines they and their parents write, and ends
 * them all when asked or when dom0 itself goes (the first rank is tied to dom0's life, its
 * ranks to the first rank's).
 *
 * The first rank's environment (docs/launcher-protocol.md): SFMPI_SIZE, SFMPI_CONTROL_FD,
 * SFMPI_STDIO_FDS (a pair per rank of this host, by local rank), SFMPI_DOM0_FD (the join
 * socket), SFMPI_LAUNCHER_PID (this process: the rank dies with it).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import os from 'node:os';
import readline from 'node:readline';
import { Writable, type Readable } from 'node:stream';
import { decodeControl, type ControlMessage } from '../guest-daemon/control.js';
import { forwardLines } from '../mpi-compat/launcher/output.js';
import { native } from '../native/addon.js';
import { sendGo, sendJoin, type JoinLink } from './join.js';

/** What to run on this host. */
export interface HostJob {
  /** World size. */
  size: number;
  /** This host's world ranks, ascending (the first is the host's first rank). */
  ranks: readonly number[];
  /** argv[0] and the rest. */
  command: string;
  args: readonly string[];
  cwd: string;
  /** The ranks' environment (without the SFMPI_ variables this module sets). */
  env: NodeJS.ProcessEnv;
  /** stdin: 'inherit' (rank 0's host, the launcher's own), 'pipe' (forwarded to rank 0), 'ignore'. */
  stdin: 'inherit' | 'pipe' | 'ignore';
}

/** Where a host's ranks report. */
export interface RankEvents {
  /** A control line of one of the host's ranks. */
  event(e: ControlMessage): void;
  /** Whole lines of a rank's stdout (1) or stderr (2). */
  output(rank: number, stream: 1 | 2, data: Buffer): void;
  /** A line this module could not read (named for the launcher to print). */
  warn(message: string): void;
  /** Every rank of the host has ended and its output is drained: the first rank's exit code. */
  done(code: number): void;
}

/** The host's ranks: the first one started, and the join it is waiting for. */
export class HostRanks {
  readonly #job: HostJob;
  readonly #events: RankEvents;
  #child: ChildProcess | null = null;
  #joinFd = -1;
  #shareFd = -1;
  #killed = false;
  /** Ranks whose failure a control line reported already (claim-once, as in native/control). */
  readonly #reported = new Set<number>();
  #finished = false;

  constructor(job: HostJob, events: RankEvents) {
    this.#job = job;
    this.#events = events;
  }

  /** dom0's end of the first rank's share channel (-1 before start); dom0/share.ts owns it. */
  get shareFd(): number {
    return this.#shareFd;
  }

  /** The first rank's pid (0 before start). */
  get pid(): number {
    return this.#child?.pid ?? 0;
  }

  /** Starts the host's first rank; it runs up to its fork point and waits there for the join. */
  start(): void {
    const { ranks, size } = this.#job;
    const [ours, theirs] = native.socketPair();
    this.#joinFd = ours;
    const [shareOurs, shareTheirs] = native.socketPair();
    this.#shareFd = shareOurs;
    // fd 0 stdin, 1/2 the first rank's out/err, 3 control, 4 the join socket, 5 the share
    // channel (guest-daemon/share.ts), then a pair per further rank.
    const stdio: StdioOptions = [this.#job.stdin, 'pipe', 'pipe', 'pipe', theirs, shareTheirs];
    const fds = ['1', '2'];
    const outFd = [1], errFd = [2];
    for (let l = 1; l < ranks.length; l++) {
      outFd.push(stdio.length);
      errFd.push(stdio.length + 1);
      fds.push(String(stdio.length), String(stdio.length + 1));
      stdio.push('pipe', 'pipe');
    }
    const child = spawn(this.#job.command, [...this.#job.args], {
      cwd: this.#job.cwd,
      stdio,
      detached: true, // its own process group: killing it takes the host's ranks
      env: {
        ...this.#job.env,
        SFMPI_SIZE: String(size),
        SFMPI_CONTROL_FD: '3',
        SFMPI_STDIO_FDS: fds.join(','),
        SFMPI_DOM0_FD: '4',
        SFMPI_SHARE_FD: '5',
        // The origin (rank 0) loads state once; a seed gets it from the origin (runtime/share.ts).
        SFMPI_SHARE_ROLE: ranks[0] === 0 ? 'origin' : 'seed',
        SFMPI_LAUNCHER_PID: String(process.pid),
      },
    });
    native.closeFd(theirs);
    native.closeFd(shareTheirs);
    this.#child = child;
    const streams = child.stdio as (Readable | null)[];
    const outputs: Promise<void>[] = [];
    const sink = (rank: number, stream: 1 | 2) =>
      new Writable({
        write: (chunk: Buffer, _enc, cb) => {
          this.#events.output(rank, stream, chunk);
          cb();
        },
      });
    ranks.forEach((rank, l) => {
      const out = streams[outFd[l]] as Readable;
      const err = streams[errFd[l]] as Readable;
      outputs.push(forwardLines(out, sink(rank, 1)), forwardLines(err, sink(rank, 2)));
    });
    const control = readline.createInterface({ input: streams[3] as Readable, crlfDelay: Infinity });
    const controlClosed = new Promise<void>((resolve) => control.once('close', resolve));
    control.on('line', (line) => {
      const msg = decodeControl(line);
      if (msg) {
        if (msg.ev === 'fail') this.#reported.add(msg.rank);
        if (msg.ev === 'exit' && msg.rank === this.#job.ranks[0]) this.#finished = true;
        this.#events.event(msg);
      } else this.#events.warn(`ignored a malformed control line of the ranks: ${JSON.stringify(line.slice(0, 200))}`);
    });
    const exited = new Promise<number>((resolve) => {
      child.once('error', (e) => {
        this.#events.warn(`cannot start ${this.#job.command}: ${e.message}`);
        resolve(127);
      });
      child.once('exit', (code, signal) => {
        // dom0 is the first rank's parent: its end is dom0's to report, unless it reported a
        // failure itself or dom0 killed it.
        const sig = signal ? signalNumber(signal) : 0;
        const failed = sig !== 0 || (code ?? 1) !== 0;
        const first = this.#job.ranks[0];
        if (failed && !this.#killed && !this.#reported.has(first)) {
          this.#reported.add(first);
          this.#events.event({ ev: 'fail', host: os.hostname(), rank: first, code: sig ? 128 + sig : code ?? 1, signal: sig, cause: native.describeExit(code, sig, this.#finished) });
        }
        resolve(sig ? 128 + sig : code ?? 1);
      });
    });
    void exited.then(async (code) => {
      // Whatever the first rank left behind (a rank that outlived it would be a bug) goes too.
      this.kill('SIGKILL');
      await Promise.all(outputs);
      await controlClosed;
      this.#closeJoin();
      this.#events.done(code);
    });
  }

  /** Gives the first rank its part of the job (it waits at its fork point); closes our copies. */
  join(host: number, hostOf: readonly number[], links: readonly JoinLink[]): void {
    if (this.#joinFd < 0) throw new Error('dom0: no first rank to join');
    try {
      sendJoin(this.#joinFd, host, hostOf, links);
    } finally {
      for (const l of links) native.closeFd(l.fd);
    }
  }

  /** Lets the first rank's fork point proceed (every link of the job is in its ranks' hands). */
  go(): void {
    if (this.#joinFd >= 0) sendGo(this.#joinFd);
  }

  /** Bytes for rank 0's standard input (stdin 'pipe'); `end` closes it. */
  stdin(data: Buffer, end: boolean): void {
    const s = this.#child?.stdin;
    if (!s || s.destroyed) return;
    if (data.length) s.write(data);
    if (end) s.end();
  }

  /** Signals every rank of the host (its process group). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    const pid = this.#child?.pid;
    if (!pid) return;
    if (signal === 'SIGKILL') this.#killed = true;
    try {
      process.kill(-pid, signal);
    } catch {
      /* gone already */
    }
  }

  /** True once kill('SIGKILL') was asked. */
  get killed(): boolean {
    return this.#killed;
  }

  #closeJoin(): void {
    if (this.#joinFd >= 0) native.closeFd(this.#joinFd);
    this.#joinFd = -1;
  }
}

function signalNumber(sig: NodeJS.Signals): number {
  return os.constants.signals[sig] ?? 0;
}
