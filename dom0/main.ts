#!/usr/bin/env node
/**
 * dom0: the per-host manager of one job that spans hosts. sfmpirun starts one on every host of
 * the job, over ssh (the job secret on its standard input, which then stays open as the
 * launcher's lifeline) or with one srun step (the secret in the environment):
 *
 *   node dom0/main.js --launcher ADDR:PORT --job ID --hosts a,b,c --binds A,B,C [--index I]
 *
 * --hosts names the job's hosts and --binds their cluster addresses, in host order; this dom0
 * is --index, or (under srun, where every dom0 gets the same words) the host whose name is
 * Slurm's for this node.
 *
 * Flow: connect to the launcher and prove the job's secret (dom0/handshake.ts); listen for data
 * connections on --bind only (the cluster network's address, never every interface); say hello;
 * on `start`, start this host's first rank (dom0/ranks.ts); on `hosts`, make this host's links
 * to every rank of the other hosts (dom0/links.ts) and hand them to the first rank; on `go`, let
 * its fork point proceed; forward output and control lines; report `done` when every rank of
 * the host has ended. When the launcher goes (its connection closes or falls silent, or ssh's
 * stdin ends), every rank of the host is killed and dom0 exits: nothing of a job outlives it.
 */
import net from 'node:net';
import os from 'node:os';
import { connectAuthenticated, readSecretLine, SECRET_ENV, secretFromEnv } from './handshake.js';
import { DataLinks } from './links.js';
import { HostRanks } from './ranks.js';
import { FrameChannel, encodeMessage, type Message } from './wire.js';

/** How often each end pings, and how long a silence means the other end is gone. */
export const PING_MS = 1000;
export const SILENCE_MS = 5000;

function die(message: string, code = 1): never {
  process.stderr.write(`sfmpi dom0 on ${os.hostname()}: ${message}\n`);
  process.exit(code);
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const launcher = arg('--launcher'), job = arg('--job'), names = (arg('--hosts') ?? '').split(','), binds = (arg('--binds') ?? '').split(',');
  if (!launcher || !job || names.length !== binds.length || names[0] === '')
    die('usage: dom0 --launcher ADDR:PORT --job ID --hosts a,b,... --binds A,B,... [--index I]', 2);
  const [lhost, lport] = [launcher.slice(0, launcher.lastIndexOf(':')), Number(launcher.slice(launcher.lastIndexOf(':') + 1))];
  if (!net.isIP(lhost) || !Number.isInteger(lport)) die(`--launcher ${launcher}: expected IPv4:port`, 2);
  let index = Number(arg('--index') ?? NaN);
  if (!Number.isInteger(index)) {
    // Under srun: find this host among the job's by the name Slurm gave it.
    const me = process.env.SLURMD_NODENAME ?? os.hostname();
    index = names.indexOf(me);
    if (index < 0) die(`this host (${me}) is not among --hosts ${names.join(',')}`, 2);
  }
  if (index < 0 || index >= names.length) die(`--index ${index} out of range for ${names.length} hosts`, 2);
  const bind = binds[index];
  const fromSsh = process.env[SECRET_ENV] === undefined;
  const secret = fromSsh ? await readSecretLine(process.stdin) : secretFromEnv();

  // Refusals are the launcher's to report; those before its channel opens wait for it.
  const refused: string[] = [];
  let report: (m: string) => void = (m) => void refused.push(m);
  const links = new DataLinks(secret, { onRefused: (m) => report(m) });
  const port = await links.listen(bind);
  const socket = await connectAuthenticated({ host: lhost, port: lport, secret, role: 'dom0', accept: ['launcher'] });
  let ranks: HostRanks | null = null;
  let lastHeard = Date.now();
  let finished = false;

  const send = (m: Message) => {
    if (channel.open) socket.write(encodeMessage(m));
  };
  // The launcher is gone: end this host's part of the job.
  const orphaned = (why: string) => {
    if (finished) return;
    finished = true;
    links.close();
    if (!ranks || !ranks.pid) die(`the launcher is gone (${why})`);
    ranks.kill('SIGKILL');
    process.stderr.write(`sfmpi dom0 on ${os.hostname()}: the launcher is gone (${why}); this host's ranks were killed\n`);
    setTimeout(() => process.exit(1), 2000).unref();
  };

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
                finished = true;
                links.close();
                send({ type: 'done', code });
                socket.end(() => process.exit(0));
                setTimeout(() => process.exit(0), 2000).unref();
              },
            },
          );
          ranks.start();
          break;
        case 'hosts': {
          const r = ranks;
          if (!r) throw new Error('hosts before start');
          const ranksOf = msg.endpoints.map((_, h) => msg.hostOf.flatMap((hh, rank) => (hh === h ? [rank] : [])));
          links
            .expect({ me: index, ranksOf, endpoints: msg.endpoints })
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
  send({ type: 'hello', index, port, pid: process.pid, hostname: os.hostname() });
  report = (m) => send({ type: 'error', message: m });
  for (const m of refused.splice(0)) report(m);
  setInterval(() => {
    if (Date.now() - lastHeard > SILENCE_MS) orphaned(`silent for over ${SILENCE_MS / 1000} s`);
    else send({ type: 'ping' });
  }, PING_MS).unref();
  // Over ssh, standard input is the launcher's lifeline.
  if (fromSsh) {
    process.stdin.on('end', () => orphaned('its ssh session ended'));
    process.stdin.resume();
  }
}

process.on('uncaughtException', (e) => die(`internal error: ${e.stack ?? e.message}`));
main().catch((e: Error) => die(e.message));
