#!/usr/bin/env node
/**
 * sfmpi-dom0: dom0 as a long-lived service, one per host (a systemd unit runs it: see
 * docs/dom0-service.md), so that a job across hosts starts without an ssh session or a Node
 * start-up per host: `sfmpirun --launch service --hostfile hosts -n 16 prog`.
 *
 *   sfmpi-dom0 serve --listen ADDR [--port 7519] [--key FILE]
 *   sfmpi-dom0 keygen [--key FILE] [--force]
 *
 * A launcher connects to ADDR:PORT (the cluster address only, never every interface) and proves
 * the cluster key (dom0/cluster-key.ts) in the handshake (dom0/handshake.ts, role launcher); its
 * first frame is a `job` (dom0/wire.ts): the job id, its hosts, their addresses, this host's
 * index. The service derives the job's secret from the key and the id and runs this host's part
 * of the job (dom0/host.ts) on that connection, exactly as a dom0 started for the job does;
 * several jobs may run at once. A connection that fails the handshake or sends anything but a
 * well-formed `job` is closed and logged; the service goes on. Ranks run as the service's user:
 * run one service per user (a systemd user unit), never as root for others.
 */
import { Command, InvalidArgumentError } from 'commander';
import net from 'node:net';
import os from 'node:os';
import { defaultKeyFile, jobSecret, makeClusterKey, readClusterKey } from './cluster-key.js';
import { handshakeSocket } from './handshake.js';
import { HostPart } from './host.js';
import { FrameDecoder, decodeMessage, encodeMessage, type Message } from './wire.js';

/** The service's port when none is given (launchers use the same default). */
export const DEFAULT_PORT = 7519;
/** How long a launcher has, after the handshake, to say which job. */
const JOB_TIMEOUT_MS = 5000;

function log(line: string): void {
  process.stderr.write(`sfmpi-dom0 on ${os.hostname()}: ${line}\n`);
}

/** The first frame of an authenticated connection, which must be a `job` and come alone. */
function readJob(socket: net.Socket): Promise<Extract<Message, { type: 'job' }>> {
  return new Promise((resolve, reject) => {
    const decoder = new FrameDecoder();
    const done = (e: Error | null, m?: Extract<Message, { type: 'job' }>) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (e) reject(e);
      else resolve(m!);
    };
    const onData = (chunk: Buffer) => {
      const frames = decoder.push(chunk);
      if (decoder.error) return done(decoder.error);
      if (frames.length === 0) return;
      // The launcher waits for hello before it sends more: anything after the job is a protocol error.
      if (frames.length > 1 || decoder.buffered > 0) return done(new Error('sent more than its job before the hello'));
      try {
        const m = decodeMessage(frames[0]);
        if (m.type !== 'job') return done(new Error(`sent a ${m.type} frame where a job was expected`));
        done(null, m);
      } catch (e) {
        done(e as Error);
      }
    };
    const onClose = () => done(new Error('closed before saying which job'));
    const timer = setTimeout(() => done(new Error(`did not say which job within ${JOB_TIMEOUT_MS} ms`)), JOB_TIMEOUT_MS);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.resume();
  });
}

/** Serves jobs until killed; resolves once listening. */
export async function serve(opts: { listen: string; port: number; key: string }): Promise<net.Server> {
  const key = readClusterKey(opts.key);
  const server = net.createServer({ noDelay: true }, (s) => {
    const peer = `${s.remoteAddress}:${s.remotePort}`;
    handshakeSocket(s, { secret: key, role: 'dom0', side: 'server', accept: ['launcher'] })
      .then(async (auth) => {
        const job = await readJob(auth).catch((e: Error) => {
          auth.destroy();
          throw new Error(`launcher ${peer}: ${e.message}`);
        });
        const part = new HostPart(jobSecret(key, job.job), job.index, (line) => log(`job ${job.job}: ${line}`));
        await part.listen(job.binds[job.index]).catch((e: Error) => {
          const why = `cannot listen on ${job.binds[job.index]} (this host's address in the job?): ${e.message}`;
          auth.end(encodeMessage({ type: 'error', message: why }));
          throw new Error(`job ${job.job}: ${why}`);
        });
        const end = await part.run(auth);
        if (end.code !== 0) log(`job ${job.job} ended early: ${end.why}`);
      })
      .catch((e: Error) => log(`refused a connection from ${peer}: ${e.message}`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${opts.listen}:${opts.port}: ${e.message}`)));
    server.listen(opts.port, opts.listen, () => resolve());
  });
  return server;
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new InvalidArgumentError(`--port must be 1..65535, got "${value}"`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('sfmpi-dom0').description('dom0, the per-host manager of jobs across hosts, as a long-lived service').exitOverride();
  let status = 0;
  program
    .command('serve')
    .description('serve jobs on this host (ranks run as this user)')
    .requiredOption('--listen <address>', "this host's IPv4 address on the cluster network (never 0.0.0.0)")
    .option('--port <port>', 'TCP port', port, DEFAULT_PORT)
    .option('--key <file>', 'the cluster key', defaultKeyFile())
    .action(async (o: { listen: string; port: number; key: string }) => {
      if (!net.isIPv4(o.listen) || o.listen === '0.0.0.0') throw new InvalidArgumentError(`--listen must be this host's IPv4 address on the cluster network, got "${o.listen}"`);
      const server = await serve(o);
      log(`serving jobs on ${o.listen}:${o.port}`);
      const stop = (sig: string) => {
        log(`${sig}: stopping (running jobs are killed with their ranks)`);
        server.close();
        process.exit(0);
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      await new Promise(() => {}); // until a signal
    });
  program
    .command('keygen')
    .description('make a cluster key (mode 0600) for the launchers and services of this user')
    .option('--key <file>', 'where', defaultKeyFile())
    .option('--force', 'replace an existing key', false)
    .action((o: { key: string; force: boolean }) => {
      makeClusterKey(o.key, o.force);
      console.log(`cluster key written to ${o.key}: the same file must be on every host (mode 0600)`);
    });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode;
    if (code !== undefined) return code;
    log((e as Error).message);
    status = 1;
  }
  return status;
}

process.exitCode = await main(process.argv.slice(2));
