/**
 * dom0's end of the share channel (guest-daemon/share.ts): how state loaded once in the origin
 * reaches the seeds of other hosts, as SnowFlock's descriptors and memory-on-demand do.
 *
 * On the origin's host: for each state the origin publishes, dom0 gives the origin a socket on
 * which its memory server (xen/lazy.ts, a fork of the origin frozen at that instant) takes
 * connections; it listens on its cluster address for seeds' connections to that server, proves
 * the job's secret on each (dom0/handshake.ts) and hands it over; and it turns the published
 * blob and region table into one descriptor per other host (xen/descriptor.ts, MAC'd with the
 * job's secret), which the launcher carries there.
 *
 * On a seed's host: dom0 checks each descriptor (its MAC, the job, the clone ids, and the
 * program: the same path, content hash, arguments and directory as this host's seed) and, once
 * the seed asks for that state, connects to the memory server, proves the secret, and gives
 * the seed the state with the connection. A descriptor that does not check out reaches the seed
 * as an error naming why; the seed fails with it.
 *
 * Working-set prefetch (REAP): at its end a seed sends the order in which it faulted pages;
 * dom0 keeps it in a file per program, state and clone ids, and gives it with the same state
 * next time, so the seed fetches those pages ahead of its faults (SFMPI_PREFETCH=0: neither
 * kept nor given; SFMPI_WORKING_SETS: where, default ~/.cache/sfmpi/working-sets).
 *
 * Multicast (docs/multicast.md): per job, SFMPI_DISTRIBUTION (unicast by default, multicast, or
 * auto: xen/mcast.ts chooseDistribution) decides on the origin's host, when a state is
 * published, whether its pages also go to the job's multicast group. If so, dom0 sends the
 * memory server the group and the key (derived from the job secret, per state) on the server's
 * channel before any connection, and puts the group in the descriptors; each seed's dom0 derives
 * the same key and gives the seed the group with its state, and the seed opens a receiver that
 * installs what arrives (xen/lazy.ts receiveMulticast). The datagrams stay on the cluster
 * interface: both ends bind the host's cluster address.
 *
 * After the handshake, a connection to the memory server starts with the state's seq, 4 bytes
 * little-endian, which says which server takes it; the origin's host answers one byte, 0x4b,
 * once the connection is out of its hands and in the server's; the page protocol follows
 * (native/lazy), the seed speaking first.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ShareDecoder, ShareError, encodeShare, type ShareBodies, type ShareMessage, type ShareRegion } from '../guest-daemon/share.js';
import { native } from '../native/addon.js';
import { decodeDescriptor, encodeDescriptor, pageCountOf, programIdentity, ZeroMap, type Descriptor, type MulticastGroup, type ProgramIdentity } from '../xen/descriptor.js';
import { encodeServerMulticast, type MulticastReceiverConfig } from '../xen/lazy.js';
import { deriveMcastKey, distributionSetting, groupOfJob, jobDistribution, jobOfId, reportPortOf } from '../xen/mcast.js';
import { connectAuthenticated, handshakeSocket } from './handshake.js';
import { detach, readExactly } from './links.js';

/** The largest working set kept (a few bytes per run of pages: far below this). */
const MAX_WORKING_SET = 16 << 20;

/** Where working sets live: $SFMPI_WORKING_SETS, else the user's cache folder. */
function workingSetDir(): string {
  return process.env.SFMPI_WORKING_SETS || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'sfmpi', 'working-sets');
}

function readWorkingSet(file: string): Uint8Array {
  try {
    const st = fs.statSync(file);
    if (!st.isFile() || st.size > MAX_WORKING_SET) return new Uint8Array(0);
    return fs.readFileSync(file);
  } catch {
    return new Uint8Array(0); // none yet: the first run records one
  }
}

/**
 * How long a seed's fault waits for a page the server answered "on its way" by multicast before
 * it asks for the data: far above a multicast's usual delay (under a ms) and far below the
 * fetch deadline (3 s), so a lost datagram costs this once and never fails a fault.
 */
const MCAST_WAIT_MS = 100;

/** The origin's host's answer once a memory connection is its server's. */
const ACK = Buffer.from([0x4b]);

/** What a relay needs to know of its job and host. */
export interface ShareJob {
  jobId: string;
  size: number;
  /** This host's index, name and cluster address. */
  index: number;
  hostname: string;
  bind: string;
  /** World ranks of each host (from the launcher's `hosts`): resolves once they are known. */
  ranksOf: Promise<readonly (readonly number[])[]>;
  /** The command that started this host's first rank. */
  command: string;
  args: readonly string[];
  cwd: string;
}

/** What the relay sends and tells. */
export interface ShareEvents {
  /** A descriptor for host `host` (the launcher carries it). */
  descriptor(seq: number, host: number, bytes: Buffer): void;
  /** Something went wrong that the launcher should show. */
  warn(message: string): void;
}

/** The program a rank runs: the script for Node (after its options), else the executable. */
export function programOf(command: string, args: readonly string[]): { file: string; args: string[] } {
  if (command !== process.execPath) return { file: command, args: [...args] };
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--import' || args[i] === '--require' || args[i] === '-r') i++;
    else if (!args[i].startsWith('-')) return { file: args[i], args: args.slice(i + 1) };
  }
  return { file: command, args: [...args] };
}

/** One host's end of the share channel of one job. */
export class ShareRelay {
  readonly #fd: number;
  readonly #socket: net.Socket;
  readonly #job: ShareJob;
  readonly #secret: Buffer;
  readonly #events: ShareEvents;
  readonly #decoder = new ShareDecoder();
  #program: ProgramIdentity | null = null;
  // The origin's host: the memory listener and each state's server channel.
  #listener: net.Server | null = null;
  #port = 0;
  readonly #servers = new Map<number, number>();
  // A seed's host: descriptors (or why not) and what the seed waits for.
  readonly #states = new Map<number, Descriptor | Error>();
  readonly #wanted = new Set<number>();
  /** Descriptors delivered to the seed, for its working set at the end. */
  readonly #delivered: Descriptor[] = [];
  #closed = false;

  /** @param fd dom0's end of the share socket pair (the rank has the other) */
  constructor(fd: number, job: ShareJob, secret: Buffer, events: ShareEvents) {
    this.#fd = fd;
    this.#job = job;
    this.#secret = secret;
    this.#events = events;
    this.#socket = new net.Socket({ fd: native.dupFd(fd), readable: true, writable: false });
    this.#socket.on('data', (d: Buffer) => {
      let msgs: ShareMessage[];
      try {
        msgs = this.#decoder.push(d);
      } catch (e) {
        this.#events.warn(`the first rank's share channel: ${(e as Error).message}`);
        return this.close();
      }
      for (const m of msgs) void this.#onMessage(m);
    });
    this.#socket.on('error', () => {});
  }

  /** Stops listening and closes every channel (the job's part on this host ended). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
    this.#listener?.close();
    for (const fd of this.#servers.values()) native.closeFd(fd);
    this.#servers.clear();
    native.closeFd(this.#fd);
  }

  /** A descriptor from the origin's host, for this host's seed. */
  descriptor(seq: number, bytes: Buffer): void {
    // The origin's host sends descriptors only once it knows every host's ranks; so do we by then.
    void this.#job.ranksOf.then((ranksOf) => {
      let d: Descriptor | Error;
      try {
        d = decodeDescriptor(bytes, this.#secret, { jobId: this.#job.jobId, cloneIds: [...ranksOf[this.#job.index]], program: this.#ownProgram() });
      } catch (e) {
        d = e as Error;
      }
      this.#states.set(seq, d);
      if (this.#wanted.has(seq)) this.#deliverOrTell(seq);
    });
  }

  #ownProgram(): ProgramIdentity {
    if (!this.#program) {
      const p = programOf(this.#job.command, this.#job.args);
      this.#program = programIdentity(p.file, p.args, this.#job.cwd);
    }
    return this.#program;
  }

  #send<K extends keyof ShareBodies>(type: K, body: ShareBodies[K], fds: number[] = []): void {
    if (this.#closed) return;
    native.sendFds(this.#fd, encodeShare(type, body), fds);
  }

  async #onMessage(m: ShareMessage): Promise<void> {
    try {
      switch (m.type) {
        case 'open':
          return await this.#open(m.body.seq);
        case 'publish':
          return await this.#publish(m.body);
        case 'record':
          return this.#record(m.body.list);
        case 'want':
          this.#wanted.add(m.body.seq);
          if (this.#states.has(m.body.seq)) this.#deliverOrTell(m.body.seq);
          return;
        default:
          throw new ShareError(`a ${m.type} message is not the rank's to send`);
      }
    } catch (e) {
      const seq = (m.body as { seq?: number }).seq ?? 0;
      this.#send('error', { seq, message: (e as Error).message });
    }
  }

  // ---- the origin's host

  async #open(seq: number): Promise<void> {
    if (this.#servers.has(seq)) throw new ShareError(`state ${seq} was opened twice`);
    if (!this.#listener) {
      const l = net.createServer({ noDelay: true }, (s) => this.#memoryConnection(s));
      await new Promise<void>((resolve, reject) => {
        l.once('error', reject);
        l.listen(0, this.#job.bind, () => resolve());
      });
      this.#listener = l;
      this.#port = (l.address() as net.AddressInfo).port;
    }
    const [ours, theirs] = native.socketPair();
    this.#servers.set(seq, ours);
    try {
      this.#send('opened', { seq }, [theirs]);
    } finally {
      native.closeFd(theirs);
    }
  }

  #memoryConnection(s: net.Socket): void {
    const peer = `${s.remoteAddress}:${s.remotePort}`;
    handshakeSocket(s, { secret: this.#secret, role: 'dom0', side: 'server', accept: ['dom0'] })
      .then(async (auth) => {
        // The client sends the seq and waits for the ack: nothing more is in flight here.
        const seq = (await readExactly(auth, 4, 5000, `memory connection from ${peer}`)).readUInt32LE(0);
        const server = this.#servers.get(seq);
        if (server === undefined) throw new Error(`asked for state ${seq}, which this host has not published`);
        // Out of Node's hands before the ack, so no page request can land in Node's buffer.
        const fd = detach(auth);
        try {
          fs.writeSync(fd, ACK);
          native.sendFds(server, Buffer.from([0]), [fd]);
        } finally {
          native.closeFd(fd);
        }
      })
      .catch((e: Error) => {
        s.destroy();
        this.#events.warn(`refused a connection to the memory server from ${peer}: ${e.message}`);
      });
  }

  async #publish(p: ShareBodies['publish']): Promise<void> {
    if (!this.#servers.has(p.seq)) throw new ShareError(`state ${p.seq} was published before it was opened`);
    // The origin may get here before the launcher said where every rank lives.
    const ranksOf = await this.#job.ranksOf;
    const program = this.#ownProgram();
    const regions = p.regions.map((r) => ({
      id: r.id, slot: r.slot, path: r.path, byteLength: r.byteLength, pageSize: r.pageSize, hugePages: r.hugePages,
      elementType: r.elementType, zeroMap: ZeroMap.fromBitmap(r.zeroBitmap, pageCountOf(r.byteLength, r.pageSize)),
    }));
    const multicast = this.#multicast(p, ranksOf, regions);
    for (let h = 0; h < ranksOf.length; h++) {
      if (h === this.#job.index) continue;
      const bytes = encodeDescriptor({
        jobId: this.#job.jobId, program, forkPoint: { sequence: p.seq, label: p.label }, worldSize: this.#job.size,
        cloneIds: [...ranksOf[h]], state: p.blob, regions,
        memoryServer: { host: this.#job.hostname, address: this.#job.bind, port: this.#port },
        ...(multicast ? { multicast } : {}),
      }, this.#secret);
      this.#events.descriptor(p.seq, h, bytes);
    }
    this.#send('published', { seq: p.seq });
  }

  /**
   * Whether state p's pages also go by multicast (SFMPI_DISTRIBUTION; the seeds are the other
   * hosts with ranks, what each fetches is the regions' data pages); if so, the memory server
   * is told its group and key (before any connection reaches it) and the group is returned for
   * the descriptors.
   */
  #multicast(p: ShareBodies['publish'], ranksOf: readonly (readonly number[])[], regions: { byteLength: number; pageSize: number; zeroMap: ZeroMap }[]): MulticastGroup | undefined {
    const seeds = ranksOf.filter((r, h) => h !== this.#job.index && r.length > 0).length;
    if (seeds === 0 || regions.length === 0) return undefined;
    const dataBytes = regions.reduce((n, r) => n + (pageCountOf(r.byteLength, r.pageSize) - r.zeroMap.zeroCount) * r.pageSize, 0);
    const choice = jobDistribution(distributionSetting(process.env.SFMPI_DISTRIBUTION), { seeds, bytesPerSeed: dataBytes, pageSize: regions[0].pageSize });
    if (choice.method !== 'multicast') return undefined;
    const job = jobOfId(this.#job.jobId);
    const { group, port } = groupOfJob(job);
    const key = deriveMcastKey(this.#secret, job, p.seq);
    const config = encodeServerMulticast({ group, port, iface: this.#job.bind, key, job, session: p.seq, reportPort: reportPortOf(port, p.seq) });
    native.sendFds(this.#servers.get(p.seq)!, config, []);
    return { group, port };
  }

  // ---- a seed's host

  /** Delivers state seq to the seed, or tells it why not. */
  #deliverOrTell(seq: number): void {
    this.#deliver(seq).catch((e: Error) => this.#send('error', { seq, message: e.message }));
  }

  async #deliver(seq: number): Promise<void> {
    this.#wanted.delete(seq);
    const d = this.#states.get(seq)!;
    if (d instanceof Error) throw new ShareError(`state ${seq} from the origin's host was refused: ${d.message}`);
    const { address, port, host } = d.memoryServer;
    const s = await connectAuthenticated({ host: address, port, secret: this.#secret, role: 'dom0', accept: ['dom0'] }).catch((e: Error) => {
      throw new ShareError(`cannot reach the memory server of state ${seq} on ${host} (${address}:${port}): ${e.message}`);
    });
    const head = Buffer.alloc(4);
    head.writeUInt32LE(seq, 0);
    await new Promise<void>((resolve, reject) => s.write(head, (e) => (e ? reject(e) : resolve())));
    // The server's ack: the connection is its memory server's now; nothing follows until we ask.
    const ack = await readExactly(s, 1, 5000, `the memory server of state ${seq} on ${host}`);
    if (ack[0] !== ACK[0]) throw new ShareError(`the memory server of state ${seq} on ${host} answered ${ack[0]} instead of its ack`);
    const fd = detach(s);
    const regions: ShareRegion[] = d.regions.map((r) => ({
      id: r.id, slot: r.slot, path: r.path, byteLength: r.byteLength, pageSize: r.pageSize, hugePages: r.hugePages,
      elementType: r.elementType, zeroBitmap: r.zeroMap.toBitmap(),
    }));
    const prefetch = process.env.SFMPI_PREFETCH === '0' ? new Uint8Array(0) : readWorkingSet(this.#workingSetFile(d));
    let multicast: MulticastReceiverConfig | undefined;
    if (d.multicast) {
      const job = jobOfId(this.#job.jobId), session = d.forkPoint.sequence;
      multicast = {
        group: d.multicast.group, port: d.multicast.port, iface: this.#job.bind, key: deriveMcastKey(this.#secret, job, session), job, session,
        reportAddr: address, reportPort: reportPortOf(d.multicast.port, session), waitMs: MCAST_WAIT_MS,
      };
    }
    this.#delivered.push(d);
    try {
      this.#send('state', { seq, blob: d.state, regions, server: `${host}:${port}`, prefetch, ...(multicast ? { multicast } : {}) }, [fd]);
    } finally {
      native.closeFd(fd);
    }
  }

  /**
   * Where this host keeps the working set of a state: one file per program, state, region table
   * and clone ids (REAP's record of one run, replayed by the next run of the same job shape).
   */
  #workingSetFile(d: Descriptor): string {
    const h = createHash('sha256').update(d.program.sha256).update(JSON.stringify(d.program.args)).update(String(d.forkPoint.sequence));
    h.update(createHash('sha256').update(d.state).digest());
    for (const r of d.regions) h.update(`${r.id}:${r.byteLength}:${r.pageSize};`);
    h.update(d.cloneIds.join(','));
    return path.join(workingSetDir(), `${h.digest('hex').slice(0, 32)}.ws`);
  }

  /** The seed's fault order at its end: kept for the next run of the same states. */
  #record(list: Uint8Array): void {
    if (process.env.SFMPI_PREFETCH === '0' || list.length === 0 || list.length > MAX_WORKING_SET || this.#delivered.length === 0) return;
    for (const d of this.#delivered) {
      const file = this.#workingSetFile(d);
      try {
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
        const tmp = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, list, { mode: 0o600 });
        fs.renameSync(tmp, file);
      } catch (e) {
        this.#events.warn(`cannot keep the working set in ${file}: ${(e as Error).message}`);
      }
    }
  }
}
