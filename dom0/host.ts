/**
 * One host's part of one job that spans hosts: what a dom0 does between the launcher's `start`
 * and this host's `done`, whether the dom0 is a process started for the job (dom0/main.ts, over
 * ssh or srun) or a long-lived service that runs many jobs (dom0/service.ts).
 *
 * Flow: listen for data connections on the cluster address only; say hello on the launcher's
 * connection; on `start`, start this host's first rank (dom0/ranks.ts); on `hosts`, make this
 * host's links to every rank of the other hosts (dom0/links.ts) and hand them to the first rank;
 * on `go`, let its fork point proceed; forward output and control lines; report `done` when
 * every rank of the host has ended. When the launcher goes (its connection closes or falls
 * silent, or the owner calls abort()), every rank of the host is killed: nothing of a job
 * outlives its part.
 */
import type net from 'node:net';
import os from 'node:os';
import { DataLinks } from './links.js';
import { HostRanks } from './ranks.js';
import { ShareRelay } from './share.js';
import { FrameChannel, encodeMessage, type Message } from './wire.js';

/** How often each end pings, and how long a silence means the other end is gone. */
export const PING_MS = 1000;
export const SILENCE_MS = 5000;

/** How this host's part of a job ended. */
export interface HostPartEnd {
  /** 0 when every rank of the host ended and the launcher heard it; 1 when the launcher went first. */
  code: number;
  /** Why, when code is 1. */
  why?: string;
}

/** One host's part of one job; listen() first (the hello carries the port), then run(). */
export class HostPart {
  readonly #secret: Buffer;
  readonly #index: number;
  #bind = '';
  readonly #links: DataLinks;
  readonly #log: (line: string) => void;
  #port = 0;
  #abort: ((why: string) => void) | null = null;
  // Refusals are the launcher's to report; those before its channel opens wait for it.
  readonly #refused: string[] = [];
  #report: (m: string) => void = (m) => void this.#refused.push(m);

  /**
   * @param secret the job's (the data links prove it)
   * @param index this host's among the job's hosts
   * @param log where this part's own lines go (dom0's stderr, a service's journal)
   */
  constructor(secret: Buffer, index: number, log: (line: string) => void) {
    this.#secret = secret;
    this.#index = index;
    this.#log = log;
    this.#links = new DataLinks(secret, { onRefused: (m) => this.#report(m) });
  }

  /** Listens for data connections on `bind` only (the cluster network's address); the port. */
  async listen(bind: string): Promise<number> {
    this.#bind = bind;
    this.#port = await this.#links.listen(bind);
    return this.#port;
  }

  /** Ends the part as if the launcher had gone (e.g. ssh's standard input ended). */
  abort(why: string): void {
    this.#abort?.(why);
  }

  /** Runs the part over `socket`, an authenticated connection to the launcher; resolves at its end. */
  run(socket: net.Socket): Promise<HostPartEnd> {
    const links = this.#links, index = this.#index, secret = this.#secret, bind = this.#bind;
    return new Promise((resolve) => {
      let ranks: HostRanks | null = null;
      let relay: ShareRelay | null = null;
      let knowRanks!: (of: number[][]) => void;
      const ranksOf = new Promise<number[][]>((r) => (knowRanks = r));
      let lastHeard = Date.now();
      let finished = false;
      let ranksEnded!: () => void;
      const ranksGone = new Promise<void>((r) => (ranksEnded = r));
      const end = (e: HostPartEnd) => {
        clearInterval(beat);
        relay?.close();
        resolve(e);
      };
      const send = (m: Message) => {
        if (channel.open) socket.write(encodeMessage(m));
      };
      // The launcher is gone: end this host's part of the job.
      const orphaned = (why: string) => {
        if (finished) return;
        finished = true;
        links.close();
        channel.destroy();
        const r = ranks;
        if (!r || !r.pid) {
          this.#log(`the launcher is gone (${why})`);
          return end({ code: 1, why });
        }
        r.kill('SIGKILL');
        this.#log(`the launcher is gone (${why}); this host's ranks were killed`);
        // The first rank's exit (reaped by HostRanks) is the end; a bound in case it hangs in D state.
        const t = setTimeout(() => end({ code: 1, why }), 2000);
        void ranksGone.then(() => {
          clearTimeout(t);
          end({ code: 1, why });
        });
      };
      this.#abort = orphaned;

      const channel = new FrameChannel(socket, {
        onMessage(msg) {
          lastHeard = Date.now();
          switch (msg.type) {
            case 'start':
              if (ranks) throw new Error('a second start');
              ranks = new HostRanks(
                { size: msg.size, ranks: msg.ranks, command: msg.command, args: msg.args, cwd: msg.cwd, env: msg.env, stdin: msg.ranks[0] === 0 ? 'pipe' : 'ignore' },
                {
                  event: (e) => send({ type: 'event', event: e }),
                  output: (rank, stream, data) => send({ type: 'output', rank, stream, data, end: false }),
                  warn: (m) => send({ type: 'error', message: m }),
                  done: (code) => {
                    ranksEnded();
                    if (finished) return;
                    finished = true;
                    links.close();
                    send({ type: 'done', code });
                    const t = setTimeout(() => end({ code: 0 }), 2000);
                    socket.end(() => {
                      clearTimeout(t);
                      end({ code: 0 });
                    });
                  },
                },
              );
              ranks.start();
              relay = new ShareRelay(
                ranks.shareFd,
                { jobId: msg.job, size: msg.size, index, hostname: os.hostname(), bind, ranksOf, command: msg.command, args: msg.args, cwd: msg.cwd },
                secret,
                { descriptor: (seq, host, bytes) => send({ type: 'descriptor', seq, host, bytes }), warn: (m) => send({ type: 'error', message: m }) },
              );
              break;
            case 'descriptor':
              relay?.descriptor(msg.seq, msg.bytes);
              break;
            case 'hosts': {
              const r = ranks;
              if (!r) throw new Error('hosts before start');
              const of = msg.endpoints.map((_, h) => msg.hostOf.flatMap((hh, rank) => (hh === h ? [rank] : [])));
              knowRanks(of);
              links
                .expect({ me: index, ranksOf: of, endpoints: msg.endpoints })
                .then((list) => {
                  r.join(index, msg.hostOf, list);
                  links.handedOver();
                  send({ type: 'linked' });
                })
                .catch((e: Error) => {
                  send({ type: 'error', message: `cannot link this host's ranks: ${e.message}` });
                  r.kill('SIGKILL');
                });
              break;
            }
            case 'go':
              ranks?.go();
              break;
            case 'stdin':
              ranks?.stdin(msg.data, msg.end);
              break;
            case 'signal':
              ranks?.kill(msg.signal as NodeJS.Signals);
              break;
            case 'ping':
              send({ type: 'pong' });
              break;
            default:
              break; // pong
          }
        },
        onClose(error) {
          orphaned(error ? error.message : 'its connection closed');
        },
      });
      send({ type: 'hello', index, port: this.#port, pid: process.pid, hostname: os.hostname() });
      this.#report = (m) => send({ type: 'error', message: m });
      for (const m of this.#refused.splice(0)) this.#report(m);
      const beat = setInterval(() => {
        if (Date.now() - lastHeard > SILENCE_MS) orphaned(`silent for over ${SILENCE_MS / 1000} s`);
        else send({ type: 'ping' });
      }, PING_MS);
      beat.unref();
    });
  }
}
