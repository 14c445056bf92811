/**
 * A job across hosts, as sfmpirun runs it: one dom0 per host of the plan (started over ssh, or
 * by one srun step inside a Slurm allocation; on the launcher's own host, started directly),
 * each connecting back to the launcher on the cluster network and proving the job's secret.
 *
 *   1. listen on the cluster's address (--iface, else this host's address in the plan, else the
 *      address that routes to the first host), never on every interface;
 *   2. start every dom0 at once; each starts its host's first rank at once (on `start`), so the
 *      ranks of every host run their code up to the fork point together;
 *   3. once every dom0 said hello: tell them every host's data endpoint (`hosts`); they link
 *      every pair of ranks on different hosts and hand the sockets to their first rank;
 *   4. once every host is `linked`: `go`, and the ranks' fork points proceed;
 *   5. forward output and standard input (to rank 0), collect control lines (outcome.ts);
 *   6. the end: every host `done`; or a failure (a rank's, or a host lost: its connection closed
 *      or fell silent), after which the others get a grace period and are then killed.
 * Killing sfmpirun closes every connection and ssh session: each dom0 kills its host's ranks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import { defaultKeyFile, jobSecret, readClusterKey } from '../../dom0/cluster-key.js';
import { connectAuthenticated, handshakeSocket, newSecret, encodeSecret } from '../../dom0/handshake.js';
import { FrameChannel, encodeMessage, type Message } from '../../dom0/wire.js';
import { Outcome, type JobResult } from './outcome.js';
import type { Plan } from './placement.js';
import type { Prepared } from './program.js';
import { defaultDom0Main, srunCommand, sshCommand, type Dom0Command } from './remote.js';

/** Options of a job across hosts. */
export interface ClusterOptions {
  /** The launcher's name: the first word of its lines on stderr (default "sfmpirun"). */
  name?: string;
  /** Seconds; 0 for none. */
  timeout: number;
  verbose: boolean;
  /**
   * How each host's dom0 comes: one started over ssh per host, one srun step inside a Slurm
   * allocation, or a long-lived dom0 service on every host (dom0/service.ts) that the launcher
   * connects to, proving the cluster key.
   */
  launch: 'ssh' | 'slurm' | 'service';
  /** The dom0 services' port (launch 'service'). */
  servicePort?: number;
  /** The cluster key file (launch 'service'; default dom0/cluster-key.ts's). */
  keyFile?: string;
  /** The cluster network's interface (its IPv4 address is where the launcher listens). */
  iface?: string;
  /** Grace after the first failure before every host's ranks are killed (ms). */
  graceMs?: number;
  /** ssh options placed before the host (tests: a config file). */
  sshOptions?: string[];
  /** More variables for the program's environment on every host (sfnode: its hosts and slots). */
  programEnv?: Record<string, string>;
  /**
   * When the first host's process (the origin) ends, the others get this long (ms) to end too,
   * and are then killed (sfnode: the origin owns the job). Default: they run to their own end.
   */
  originEndsJobMs?: number;
}

/** The dom0 services' port when none is given (dom0/service.ts's DEFAULT_PORT). */
export const DEFAULT_SERVICE_PORT = 7519;
const PING_MS = 1000;
const SILENCE_MS = 5000;

/** The address to listen on: the interface's, this host's in the plan, or the one routing to the first host. */
async function listenAddress(plan: Plan, iface?: string): Promise<string> {
  if (iface) {
    const list = os.networkInterfaces()[iface];
    const a = list?.find((x) => x.family === 'IPv4');
    if (!a) throw new Error(`--iface ${iface}: no such interface with an IPv4 address (have: ${Object.keys(os.networkInterfaces()).join(', ')})`);
    return a.address;
  }
  const local = plan.hosts.find((h) => h.local);
  if (local && net.isIPv4(local.address) && !local.address.startsWith('127.')) return local.address;
  const target = plan.hosts.find((h) => !h.local) ?? plan.hosts[0];
  return new Promise((resolve, reject) => {
    // A connected UDP socket sends nothing: the kernel only picks the route and its source.
    const s = dgram.createSocket('udp4');
    s.once('error', (e) => reject(new Error(`no route to ${target.name} (${target.address}): ${e.message}`)));
    s.connect(9, target.address, () => {
      const a = s.address().address;
      s.close();
      resolve(a);
    });
  });
}

interface Host {
  index: number;
  name: string;
  address: string;
  ranks: number[];
  channel: FrameChannel | null;
  socket: net.Socket | null;
  port: number;
  linked: boolean;
  done: boolean;
  lastHeard: number;
}

export async function runCluster(program: Prepared, plan: Plan, opts: ClusterOptions): Promise<JobResult> {
  const t0 = performance.now();
  const say = (line: string) => process.stderr.write(`${opts.name ?? 'sfmpirun'}: ${line}\n`);
  const jobId = randomUUID();
  // Under services the job's secret is derived from the cluster key, on both ends: it never travels.
  const clusterKey = opts.launch === 'service' ? readClusterKey(opts.keyFile ?? defaultKeyFile()) : null;
  const secret = clusterKey ? jobSecret(clusterKey, jobId) : newSecret();
  const outcome = new Outcome(plan.size);
  const hosts: Host[] = plan.hosts.map((h, index) => ({
    index, name: h.name, address: h.address, ranks: h.ranks, channel: null, socket: null, port: 0, linked: false, done: false, lastHeard: Date.now(),
  }));
  // dom0s started for the job connect back here; services are connected to, so nothing listens.
  const address = clusterKey ? '' : await listenAddress(plan, opts.iface);
  const server = net.createServer({ noDelay: true });
  if (!clusterKey)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, address, () => resolve());
    });
  const port = clusterKey ? 0 : (server.address() as net.AddressInfo).port;
  const starters: ChildProcess[] = [];
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let ended = false;

  const send = (h: Host, m: Message) => {
    if (h.channel?.open && h.socket) h.socket.write(encodeMessage(m));
  };
  const killAll = () => {
    for (const h of hosts) send(h, { type: 'signal', signal: 'SIGKILL' });
  };
  let killTimer: NodeJS.Timeout | undefined;
  outcome.onFirstFailure = () => (killTimer = setTimeout(killAll, opts.graceMs ?? 3000));
  const checkEnd = () => {
    if (!ended && hosts.every((h) => h.done)) {
      ended = true;
      finish();
    }
  };
  const lose = (h: Host, why: string) => {
    if (h.done) return;
    h.done = true;
    outcome.lost(h.name, h.ranks, why);
    checkEnd();
  };

  // --- dom0s ---
  // Under srun every dom0 gets the same words and finds itself among --hosts by its node name.
  const dom0Args = (h: Host | null) => ['--launcher', `${address}:${port}`, '--job', jobId,
    '--hosts', hosts.map((x) => x.name).join(','), '--binds', hosts.map((x) => x.address).join(','), ...(h ? ['--index', String(h.index)] : [])];
  const startDom0 = (cmd: Dom0Command, what: string, forHosts: Host[]) => {
    const child = spawn(cmd.command, cmd.args, { env: { ...process.env, ...cmd.env }, stdio: ['pipe', 'ignore', 'pipe'] });
    starters.push(child);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d;
      if (opts.verbose) process.stderr.write(d);
    });
    child.on('error', (e) => forHosts.forEach((h) => lose(h, `could not be reached: ${what}: ${e.message}`)));
    child.on('exit', (code, signal) => {
      // Before hello: it never came up. After: its connection says how it ended.
      for (const h of forHosts)
        if (!h.channel) lose(h, `could not start its dom0 (${what} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}${err.trim() ? `: ${err.trim().split('\n').pop()}` : ''})`);
    });
    child.stdin!.on('error', () => {});
    if (cmd.stdin) child.stdin!.write(cmd.stdin); // the secret; stdin then stays open: dom0's lifeline
  };
  // dom0's own settings that a user may set for the job (the ranks' environment goes in `start`).
  const dom0Env: Record<string, string> = {};
  for (const k of ['SFMPI_PREFETCH', 'SFMPI_WORKING_SETS', 'SFMPI_DISTRIBUTION']) if (process.env[k] !== undefined) dom0Env[k] = process.env[k]!;
  const base = { secret, cwd: process.cwd(), env: dom0Env };
  if (opts.launch === 'service') {
    // Started below, once the handlers exist.
  } else if (opts.launch === 'slurm') {
    startDom0(srunCommand({ ...base, hosts: hosts.map((h) => h.name), args: dom0Args(null) }), 'srun', hosts);
  } else {
    for (const h of hosts) {
      if (plan.hosts[h.index].local) {
        // This host: no ssh hop, the same dom0 with the secret on its stdin.
        startDom0({ command: process.execPath, args: [defaultDom0Main(), ...dom0Args(h)], env: {}, stdin: `${encodeSecret(secret)}\n` }, 'dom0', [h]);
      } else {
        startDom0(sshCommand({ ...base, host: h.name, args: dom0Args(h), sshOptions: opts.sshOptions }), `ssh ${h.name}`, [h]);
      }
    }
  }

  // --- their connections ---
  const env = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !k.startsWith('SFMPI_') && k !== '_')) as Record<string, string>;
  for (const k of ['SFMPI_TIMEOUT_MS', 'SFMPI_WAIT_TIMEOUT_MS', 'SFMPI_VERBOSE', 'SFMPI_MAX_CLONES', 'SFMPI_SPIN_US', 'SFMPI_CMA', 'SFMPI_TEST_TAG', 'SFMPI_LAZY_ZEROMAP', 'SFMPI_SHARE_TIMEOUT_MS'])
    if (process.env[k] !== undefined) env[k] = process.env[k]!;
  if (opts.timeout > 0) env.SFMPI_TIMEOUT_MS = String(Math.round(opts.timeout * 1000));
  if (opts.verbose) env.SFMPI_VERBOSE = '1';
  Object.assign(env, opts.programEnv);
  let hellos = 0, linked = 0;
  // Standard input goes to rank 0's host only (rank 0 reads it, as under mpirun).
  const onStdin = (d: Buffer) => send(hosts[0], { type: 'stdin', data: d, end: false });
  const onStdinEnd = () => send(hosts[0], { type: 'stdin', data: Buffer.alloc(0), end: true });
  /** Takes an authenticated connection from (or to) a dom0 and speaks the job's protocol on it. */
  const adopt = (auth: net.Socket, expected: Host | null) => {
    let host: Host | null = null;
    const channel = new FrameChannel(auth, {
      onMessage(msg) {
        if (!host) {
          if (msg.type === 'error' && expected) return lose(expected, `refused the job: ${msg.message}`);
          if (msg.type !== 'hello' || !hosts[msg.index] || hosts[msg.index].channel || (expected && expected.index !== msg.index))
            throw new Error('expected a hello from a dom0 of this job');
          host = hosts[msg.index];
          host.channel = channel;
          host.socket = auth;
          host.port = msg.port;
          host.lastHeard = Date.now();
          send(host, { type: 'start', job: jobId, size: plan.size, ranks: host.ranks, command: program.command, args: program.args, cwd: process.cwd(), env });
          // Standard input is read only once rank 0's dom0 can take it: nothing is dropped.
          if (host.index === 0) {
            process.stdin.on('data', onStdin);
            process.stdin.on('end', onStdinEnd);
          }
          if (++hellos === hosts.length) {
            const hostOf = plan.hostOfRank;
            const endpoints = hosts.map((x) => ({ address: x.address, port: x.port }));
            for (const x of hosts) send(x, { type: 'hosts', endpoints, hostOf });
          }
          return;
        }
        host.lastHeard = Date.now();
        switch (msg.type) {
          case 'linked':
            if (!host.linked) {
              host.linked = true;
              if (++linked === hosts.length) for (const x of hosts) send(x, { type: 'go' });
            }
            break;
          case 'event':
            if (msg.event.ev === 'fork' && opts.verbose)
              say(`rank ${msg.event.rank} on ${msg.event.host} pid ${msg.event.pid} running ${msg.event.ms.toFixed(2)} ms after the fork request`);
            outcome.event(msg.event);
            break;
          case 'output':
            (msg.stream === 1 ? process.stdout : process.stderr).write(msg.data);
            break;
          case 'error':
            say(`dom0 on ${host.name}: ${msg.message}`);
            break;
          case 'done':
            host.done = true;
            if (host.index === 0 && opts.originEndsJobMs !== undefined)
              setTimeout(() => hosts.forEach((x) => !x.done && send(x, { type: 'signal', signal: 'SIGKILL' })), opts.originEndsJobMs).unref();
            if (msg.code !== 0 && !outcome.failed) outcome.event({ ev: 'exit', host: host.name, rank: host.ranks[0], code: msg.code });
            checkEnd();
            break;
          case 'descriptor': {
            // From the origin's host to a seed's: the launcher only carries it.
            const to = hosts[msg.host];
            if (to && to !== host) send(to, msg);
            break;
          }
          case 'ping':
            send(host, { type: 'pong' });
            break;
          default:
            break;
        }
      },
      onClose(error) {
        const h = host ?? expected;
        if (h) lose(h, error ? `lost its connection to the launcher (${error.message})` : 'closed its connection before its ranks ended (its dom0 died?)');
      },
    });
  };
  server.on('connection', (s) => {
    handshakeSocket(s, { secret, role: 'launcher', side: 'server', accept: ['dom0'] })
      .then((auth) => adopt(auth, null))
      .catch((e: Error) => say(`refused a connection on the cluster network: ${e.message}`));
  });
  if (clusterKey) {
    const servicePort = opts.servicePort ?? DEFAULT_SERVICE_PORT;
    for (const h of hosts) {
      connectAuthenticated({ host: h.address, port: servicePort, secret: clusterKey, role: 'launcher', accept: ['dom0'] })
        .then((auth) => {
          auth.write(encodeMessage({ type: 'job', job: jobId, hosts: hosts.map((x) => x.name), binds: hosts.map((x) => x.address), index: h.index }));
          adopt(auth, h);
        })
        .catch((e: Error & { code?: string }) => {
          const why =
            e.code === 'ERR_HANDSHAKE_REFUSED' ? 'no dom0 service listens there (start one: docs/dom0-service.md)'
            : e.code?.startsWith('ERR_HANDSHAKE_') ? `${e.message} (is the same cluster key on that host?)`
            : e.message;
          lose(h, `could not be reached: dom0 service at ${h.address}:${servicePort}: ${why}`);
        });
    }
  }

  // --- heartbeats, timeout, signals ---
  const beat = setInterval(() => {
    for (const h of hosts) {
      if (h.done || !h.channel) continue;
      if (Date.now() - h.lastHeard > SILENCE_MS) {
        lose(h, `fell silent for over ${SILENCE_MS / 1000} s (host down or unreachable)`);
        h.socket?.destroy();
      } else send(h, { type: 'ping' });
    }
  }, PING_MS);
  const timer = opts.timeout > 0 ? setTimeout(() => { outcome.timeout(opts.timeout); killAll(); setTimeout(() => hosts.forEach((h) => lose(h, 'did not end after the timeout')), 3000); }, opts.timeout * 1000) : undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    for (const h of hosts) send(h, { type: 'signal', signal: sig });
    setTimeout(killAll, 2000).unref();
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);

  await finished;
  clearInterval(beat);
  clearTimeout(timer);
  clearTimeout(killTimer);
  process.off('SIGINT', onInt);
  process.off('SIGTERM', onTerm);
  process.stdin.off('data', onStdin);
  process.stdin.off('end', onStdinEnd);
  process.stdin.pause();
  if (outcome.failed) killAll();
  for (const h of hosts) h.socket?.end();
  server.close();
  // The ssh/srun/dom0 processes end with their dom0; make sure nothing stays.
  await Promise.all(starters.map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    const t = setTimeout(() => { c.kill('SIGKILL'); }, 3000);
    c.once('exit', () => { clearTimeout(t); resolve(); });
    c.stdin?.end();
  })));
  if (opts.verbose) say(`job of ${plan.size} ranks on ${hosts.length} hosts ended after ${(performance.now() - t0).toFixed(1)} ms`);
  return outcome.result();
}
