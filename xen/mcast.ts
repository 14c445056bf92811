/**
 * Multicast distribution of region pages (SnowFlock's fourth technique; docs/multicast.md).
 * Pages the memory server sends to one seed go by UDP multicast to every seed of the cluster,
 * which installs them where still missing: N seeds cost about what one costs. The C core is
 * native/lazy/multicast.c (sf_mcast.h), reached through the sfmcast addon; this module adds the
 * key derivation (HKDF over the job secret, Node's crypto), the group of a job, argument checks
 * that name the option, and the per-job choice between multicast and unicast.
 *
 *   const key = deriveMcastKey(secret, job);
 *   const rx = new McastReceiver({ ...groupOfJob(job), iface: '10.77.0.2', key, job,
 *                                  regions: [{ id: 0, buffer }] });
 *   const tx = new McastSender({ ...groupOfJob(job), iface: '10.77.0.1', key, job });
 *   tx.addRegion(0, pages);  await tx.send(0, 0, data);  tx.end(0, 0, pages);
 *   await rx.waitEnd(0);  for (const [first, count] of rx.missing(0)) rx.install(0, first, fetched);
 */
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { packageRoot } from '../native/addon.js';

/** Bytes of a multicast key (HMAC-SHA256). */
export const MCAST_KEY_BYTES = 32;
/** Bytes of a datagram's header, before the payload (native/lazy/multicast.c draws it). */
export const MCAST_HEADER_BYTES = 80;
/** Datagram types, as the header's type byte carries them. */
export const McastType = { pages: 1, end: 2, report: 3 } as const;

interface NativeSender {
  addRegion(id: number, pages: number, pageSize: number): void;
  send(region: number, first: number, data: ArrayBufferView | ArrayBuffer, force: boolean): Promise<McastSendResult>;
  end(region: number, first: number, count: number): void;
  recent(region: number, page: number): boolean;
  stats(): McastSenderStats;
  close(): void;
}

interface NativeReceiver {
  stats(): McastReceiverStats;
  missing(region: number): Uint32Array;
  install(region: number, first: number, data: ArrayBufferView | ArrayBuffer): number;
  lastEnd(region: number): { first: number; count: number } | null;
  present(region: number, page: number): boolean;
  close(): void;
}

interface NativeMcast {
  Sender: new (opts: object) => NativeSender;
  Receiver: new (opts: object) => NativeReceiver;
  pack(fields: object, payload: ArrayBufferView | ArrayBuffer, key: Buffer): Buffer;
  headerBytes: number;
  version: number;
}

let loaded: NativeMcast | undefined;

function addon(): NativeMcast {
  if (loaded) return loaded;
  const file = path.join(packageRoot, 'build', 'Release', 'sfmcast.node');
  try {
    loaded = createRequire(import.meta.url)(file) as NativeMcast;
  } catch (cause) {
    throw new Error(`sfmpi: cannot load the multicast addon ${file}; was it built ("npm run install" in ${packageRoot})? Cause: ${(cause as Error).message}`);
  }
  return loaded;
}

/**
 * The multicast key of one job and session: HKDF-SHA256 over the 32-byte job secret, salt
 * "sfmpi multicast v1", info = job (u64 LE) | session (u32 LE). Each fork point (session) has
 * its own key, so a datagram of one snapshot can never pass for another's.
 */
export function deriveMcastKey(secret: Buffer, job: bigint, session = 0): Buffer {
  if (!Buffer.isBuffer(secret)) throw new TypeError('secret must be a Buffer');
  if (secret.length !== 32) throw new RangeError(`secret must be 32 bytes (the job secret), got ${secret.length}`);
  checkJob(job, 'job');
  checkUint(session, 'session', 0xffffffff);
  const info = Buffer.alloc(12);
  info.writeBigUInt64LE(job, 0);
  info.writeUInt32LE(session, 8);
  return Buffer.from(crypto.hkdfSync('sha256', secret, Buffer.from('sfmpi multicast v1'), info, MCAST_KEY_BYTES));
}

/** A fresh random job id (64 bits, never 0). */
export function newJobId(): bigint {
  for (;;) {
    const j = crypto.randomBytes(8).readBigUInt64LE(0);
    if (j !== 0n) return j;
  }
}

/**
 * The group and port of a job: 239.192.x.y (the organisation-local scope, RFC 2365) and a port
 * in 17000..17999, both from a hash of the job id. Two jobs that hash alike still never mix:
 * a datagram of another job is dropped (and counted) before its MAC is even computed.
 */
export function groupOfJob(job: bigint): { group: string; port: number } {
  checkJob(job, 'job');
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(job, 0);
  const h = crypto.createHash('sha256').update('sfmpi multicast group').update(b).digest();
  return { group: `239.192.${h[0]}.${1 + (h[1] % 254)}`, port: 17000 + (h.readUInt16LE(2) % 1000) };
}

/**
 * The 64-bit multicast job id of a cluster job, from its job id string (dom0's `jobId`): the
 * first 8 bytes (LE) of SHA-256("sfmpi multicast job\0" | jobId), never 0. Every dom0 of the job
 * computes the same, so no extra field travels.
 */
export function jobOfId(jobId: string): bigint {
  if (typeof jobId !== 'string' || jobId.length === 0) throw new TypeError('jobId must be a non-empty string');
  const j = crypto.createHash('sha256').update('sfmpi multicast job\0').update(jobId).digest().readBigUInt64LE(0);
  return j === 0n ? 1n : j;
}

/**
 * The report port (flow control) of one state's memory server: beside the group's port, one
 * per session, so two memory servers of one job on one host do not share it.
 */
export function reportPortOf(port: number, session: number): number {
  checkUint(port, 'port', 65535);
  checkUint(session, 'session', 0xffffffff);
  return 18000 + ((port - 17000 + session) % 1000 + 1000) % 1000;
}

/** How a job's pages reach its seeds: the setting (SFMPI_DISTRIBUTION) and what it means. */
export type DistributionSetting = 'unicast' | 'multicast' | 'auto';

/**
 * Reads SFMPI_DISTRIBUTION: `unicast` (the default), `multicast` (forced, for tests and
 * benchmarks) or `auto` ({@link chooseDistribution} decides per job). Anything else is an error
 * naming the variable and the value.
 */
export function distributionSetting(value: string | undefined): DistributionSetting {
  if (value === undefined || value === '') return 'unicast';
  if (value === 'unicast' || value === 'multicast' || value === 'auto') return value;
  throw new RangeError(`SFMPI_DISTRIBUTION must be unicast, multicast or auto, got "${value}"`);
}

/**
 * The distribution of one job under a setting: forced, or {@link chooseDistribution}'s choice
 * for `auto`. A forced multicast with one seed or no data is still multicast: it is what the
 * setting asks.
 */
export function jobDistribution(setting: DistributionSetting, input: DistributionInput): DistributionChoice {
  if (setting === 'auto') return chooseDistribution(input);
  const c = chooseDistribution(input);
  return { ...c, method: setting, reason: `SFMPI_DISTRIBUTION=${setting}` };
}

/** Options of {@link McastSender}. */
export interface McastSenderOptions {
  /** IPv4 multicast group, e.g. from {@link groupOfJob}. */
  group: string;
  /** UDP port of the group. */
  port: number;
  /** This host's address on the cluster network: datagrams leave by that interface only. */
  iface: string;
  /** 32-byte key from {@link deriveMcastKey}. */
  key: Buffer;
  /** The job's id. */
  job: bigint;
  /** The fork point within the job. Default 0. */
  session?: number;
  /** Also deliver to receivers on this host (IP_MULTICAST_LOOP). Default false. */
  loopback?: boolean;
  /** Override the interface's MTU (bytes). */
  mtu?: number;
  /** Payload bytes per datagram. Default: the most that fits the MTU (whole pages if one fits). */
  chunk?: number;
  /** Pace ceiling in bytes/s on the wire. Default 400 MB/s (measured loss-free here). */
  rate?: number;
  /** Flow control never paces below this, bytes/s. Default rate / 16. */
  minRate?: number;
  /** A page sent this recently is not sent again (lockstep), ms; 0 turns it off. Default 20. */
  lockstepMs?: number;
  /** UDP GSO: true, false, or undefined for "where the kernel takes it". */
  gso?: boolean;
  /** UDP port on `iface` where receivers report loss (flow control). Default: none. */
  reportPort?: number;
  /** Socket send buffer, bytes. Default 4 MiB. */
  sndbuf?: number;
  /** A send that makes no progress this long fails, ms. Default 5000. */
  timeoutMs?: number;
}

/** What {@link McastSender.send} did. */
export interface McastSendResult {
  /** Pages multicast now. */
  sent: number;
  /** Pages skipped because they went out within the lockstep window. */
  skipped: number;
}

/** Counters of a {@link McastSender}. */
export interface McastSenderStats {
  /** Datagrams sent (pages and END marks). */
  datagrams: number;
  /** Page bytes sent. */
  bytes: number;
  /** Bytes on the wire, with IP, UDP and our headers. */
  wireBytes: number;
  /** Pages sent. */
  pages: number;
  /** Pages not sent again within the lockstep window. */
  suppressed: number;
  /** Send system calls. */
  calls: number;
  /** Sends retried after ENOBUFS/EAGAIN. */
  retries: number;
  /** Loss reports accepted from receivers. */
  reports: number;
  /** Report datagrams refused (forged, malformed, another job). */
  badReports: number;
  /** Times flow control lowered the rate. */
  cuts: number;
  /** The pace now, bytes/s. */
  rate: number;
  /** Payload bytes per datagram. */
  chunk: number;
  /** The MTU in use. */
  mtu: number;
  /** Whether UDP GSO is in use. */
  gso: boolean;
}

/**
 * The multicast sender of one job and session (in the memory server). Thread-safe in C; here
 * each send runs on libuv's thread pool and resolves when every datagram is with the kernel.
 */
export class McastSender {
  readonly #n: NativeSender;
  readonly #pageSizes = new Map<number, number>();

  /** Opens the socket on `iface` towards the group. Throws naming the option or the system call. */
  constructor(opts: McastSenderOptions) {
    checkEndpoint(opts);
    if (opts.rate !== undefined) checkUint(opts.rate, 'options.rate', 1e12);
    if (opts.minRate !== undefined) checkUint(opts.minRate, 'options.minRate', 1e12);
    if (opts.lockstepMs !== undefined) checkUint(opts.lockstepMs, 'options.lockstepMs', 3_600_000);
    if (opts.reportPort !== undefined) checkUint(opts.reportPort, 'options.reportPort', 65535);
    // The C side reads 0 as "default"; an explicit lockstepMs of 0 means off (its -1).
    this.#n = new (addon().Sender)({ ...opts, session: opts.session ?? 0, lockstepMs: opts.lockstepMs === 0 ? 0xffffffff : opts.lockstepMs });
  }

  /** Declares region `id` of `pages` pages of `pageSize` bytes (default 4096) before it is sent. */
  addRegion(id: number, pages: number, pageSize = 4096): void {
    checkUint(id, 'region id', 0xffffffff);
    checkUint(pages, 'pages', 0xffffffff);
    this.#n.addRegion(id, pages, pageSize);
    this.#pageSizes.set(id, pageSize);
  }

  /**
   * Multicasts the pages [first, first + data.byteLength / pageSize) of `region` from `data`.
   * Pages sent within the lockstep window are skipped unless `force` (a whole push, the end).
   * `data` must stay unchanged until the promise settles.
   */
  send(region: number, first: number, data: ArrayBufferView | ArrayBuffer, opts: { force?: boolean } = {}): Promise<McastSendResult> {
    checkUint(first, 'first', 0xffffffff);
    if (!this.#pageSizes.has(region)) throw new RangeError(`region ${region} was not added (addRegion)`);
    return this.#n.send(region, first, data, opts.force === true);
  }

  /** Multicasts END for pages [first, first + count) of `region`: a pass is over (sent thrice over 10 ms; blocks that long). */
  end(region: number, first: number, count: number): void {
    this.#n.end(region, first, count);
  }

  /** Whether `page` of `region` went out within the lockstep window. */
  recent(region: number, page: number): boolean {
    return this.#n.recent(region, page);
  }

  /** The counters now (reads pending loss reports first). */
  stats(): McastSenderStats {
    return this.#n.stats();
  }

  /** Aborts running sends (they reject), closes the socket. Idempotent. */
  close(): void {
    this.#n.close();
  }
}

/** A region a {@link McastReceiver} installs into. */
export interface McastRegion {
  /** Region id, as the sender declared it. */
  id: number;
  /** The memory, a whole number of pages; written by the receiver thread until close(). */
  buffer: ArrayBuffer;
  /** Page size, bytes. Default 4096. */
  pageSize?: number;
}

/** Options of {@link McastReceiver}. */
export interface McastReceiverOptions {
  /** IPv4 multicast group. */
  group: string;
  /** UDP port of the group. */
  port: number;
  /** This host's address on the cluster network: the group is joined on that interface only. */
  iface: string;
  /** 32-byte key from {@link deriveMcastKey}. */
  key: Buffer;
  /** The job's id. */
  job: bigint;
  /** The fork point within the job. Default 0. */
  session?: number;
  /** The regions, each with the memory it is installed into. */
  regions: McastRegion[];
  /** Receive buffer asked for, bytes. Default 16 MiB (granted in full to root). */
  rcvbuf?: number;
  /** The sender's address for loss reports (flow control). Default: no reports. */
  reportAddr?: string;
  /** The sender's report port. */
  reportPort?: number;
}

/** Counters of a {@link McastReceiver}. */
export interface McastReceiverStats {
  /** Datagrams read from the socket. */
  datagrams: number;
  /** Datagrams that passed every check. */
  accepted: number;
  /** Page bytes in accepted datagrams. */
  bytes: number;
  /** Pages installed from multicast. */
  installed: number;
  /** Pages that arrived when already present. */
  duplicates: number;
  /** Datagrams refused, all causes (malformed + otherJob + forged + otherInterface). */
  dropped: number;
  /** Too short, truncated, oversized, bad magic/version/type/flags, out of range. */
  malformed: number;
  /** Another job or session. */
  otherJob: number;
  /** HMAC mismatch. */
  forged: number;
  /** Arrived on another interface than the cluster one. */
  otherInterface: number;
  /** Datagrams the kernel dropped for a full receive buffer. */
  overflow: number;
  /** Datagrams missing from the sender's sequence (lost anywhere on the way). */
  gaps: number;
  /** Partly received pages given up. */
  incomplete: number;
  /** END marks accepted. */
  ends: number;
  /** Loss reports sent to the sender. */
  reports: number;
  /** Pages installed through install() (the end game). */
  endInstalled: number;
  /** Receive buffer the kernel granted, bytes. */
  rcvbuf: number;
  /** Why the receiver thread stopped, or "" while it runs. */
  error: string;
}

/**
 * The multicast receiver of one seed: a thread that joins the group on the cluster interface,
 * checks every datagram and installs pages into the given buffers where still missing.
 */
export class McastReceiver {
  readonly #n: NativeReceiver;
  readonly #pages = new Map<number, number>();

  /** Joins the group and starts the thread. Throws naming the option or the system call. */
  constructor(opts: McastReceiverOptions) {
    checkEndpoint(opts);
    if (!Array.isArray(opts.regions) || opts.regions.length === 0) throw new TypeError('options.regions must be a non-empty array');
    const regions = opts.regions.map((r, i) => {
      if (!(r?.buffer instanceof ArrayBuffer)) throw new TypeError(`options.regions[${i}].buffer must be an ArrayBuffer`);
      const pageSize = r.pageSize ?? 4096;
      checkUint(r.id, `options.regions[${i}].id`, 0xffffffff);
      if (r.buffer.byteLength === 0 || r.buffer.byteLength % pageSize !== 0) {
        throw new RangeError(`options.regions[${i}].buffer must be a whole, non-zero number of ${pageSize}-byte pages, got ${r.buffer.byteLength} bytes`);
      }
      this.#pages.set(r.id, r.buffer.byteLength / pageSize);
      return { id: r.id, buffer: r.buffer, pageSize };
    });
    if ((opts.reportAddr === undefined) !== (opts.reportPort === undefined)) {
      throw new TypeError('options.reportAddr and options.reportPort go together');
    }
    this.#n = new (addon().Receiver)({ ...opts, session: opts.session ?? 0, regions });
  }

  /** The counters now. */
  stats(): McastReceiverStats {
    return this.#n.stats();
  }

  /** The still-missing pages of `region` as [first, count] runs: what the end game fetches. */
  missing(region: number): Array<[number, number]> {
    const runs = this.#n.missing(region);
    const out: Array<[number, number]> = [];
    for (let i = 0; i < runs.length; i += 2) out.push([runs[i], runs[i + 1]]);
    return out;
  }

  /** Installs pages fetched by unicast (whole pages from `first`) where still missing; how many. */
  install(region: number, first: number, data: ArrayBufferView | ArrayBuffer): number {
    return this.#n.install(region, first, data);
  }

  /** Whether `page` of `region` is installed. */
  present(region: number, page: number): boolean {
    return this.#n.present(region, page);
  }

  /** The last END seen for `region`, or null. */
  lastEnd(region: number): { first: number; count: number } | null {
    return this.#n.lastEnd(region);
  }

  /**
   * Resolves once an END for `region` has come ({ end: true }), or once datagrams have come
   * and then stopped for `idleMs` (every copy of END lost: { end: false }). Rejects after
   * `timeoutMs` naming the region and what arrived. Polls: 5 ms sleeps, no spinning.
   */
  async waitEnd(region: number, opts: { timeoutMs?: number; idleMs?: number } = {}): Promise<{ end: boolean }> {
    const { timeoutMs = 30_000, idleMs = 500 } = opts;
    if (!this.#pages.has(region)) throw new RangeError(`region ${region} is not one of this receiver's`);
    const t0 = Date.now();
    let seen = -1;
    let since = Date.now();
    for (;;) {
      if (this.lastEnd(region)) return { end: true };
      const st = this.stats();
      if (st.error) throw new Error(`multicast receiver stopped: ${st.error}`);
      if (st.datagrams !== seen) {
        seen = st.datagrams;
        since = Date.now();
      } else if (seen > 0 && Date.now() - since >= idleMs) {
        return { end: false };
      }
      if (Date.now() - t0 >= timeoutMs) {
        throw new Error(`multicast receiver: no END for region ${region} within ${timeoutMs} ms (${st.datagrams} datagrams read, ${st.accepted} accepted)`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Stops the thread and leaves the group; the buffers are the caller's again. Idempotent. */
  close(): void {
    this.#n.close();
  }
}

/** Header fields of a datagram for {@link packDatagram}. */
export interface McastDatagramFields {
  /** {@link McastType}: 1 pages, 2 end, 3 report (any byte, to make malformed ones). */
  type: number;
  /** log2 of the page size. */
  pageShift: number;
  /** The job id. */
  job: bigint;
  /** The session. Default 0. */
  session?: number;
  /** Region id. Default 0. */
  region?: number;
  /** Datagram counter. Default 0. */
  seq?: bigint;
  /** First page. Default 0. */
  page?: number;
  /** Byte offset into the first page. Default 0. */
  offset?: number;
  /** END: pages of the pass. Default 0. */
  count?: number;
}

/**
 * One datagram, header + HMAC + payload, exactly as a sender makes it: for hostile-peer tests
 * (forge with another key, truncate, alter a field after packing) and tools.
 */
export function packDatagram(fields: McastDatagramFields, payload: ArrayBufferView | ArrayBuffer, key: Buffer): Buffer {
  checkJob(fields.job, 'fields.job');
  return addon().pack(fields, payload, key);
}

// ---------------------------------------------------------------- choice per job

/** What {@link chooseDistribution} weighs for one job. */
export interface DistributionInput {
  /** Seeds that receive the job's regions: one per remote host (its local clones fork from it). */
  seeds: number;
  /** Bytes each seed is expected to fetch (the state it will touch). */
  bytesPerSeed: number;
  /**
   * Fraction of a seed's pages that the other seeds fetch too: 1 when every rank touches all
   * the data, about 0 when each touches its own part. Default 1.
   */
  shared?: number;
  /** Page size, bytes. Default 4096. */
  pageSize?: number;
  /** MTU of the cluster interface. Default 1500. */
  mtu?: number;
  /** Datagram loss measured after pacing on this cluster (a previous job's receivers). Default 0. */
  loss?: number;
  /**
   * The hosts share one kernel (network namespaces, containers on one machine): no wire, every
   * datagram costs the same CPUs, and TCP over veth moves 64 KiB segments. Default false.
   */
  oneMachine?: boolean;
  /** Aggregate unicast TCP rate from the origin's host, bytes/s (measured). */
  unicastRate?: number;
  /** Multicast rate that stays loss-free, bytes/s (measured). */
  multicastRate?: number;
  /** The group could be joined on the cluster interface (a multicast route exists). Default true. */
  multicastWorks?: boolean;
}

/** The decision of {@link chooseDistribution}, with its grounds. */
export interface DistributionChoice {
  /** How the job's pages go to its seeds. */
  method: 'multicast' | 'unicast';
  /** Why, in one sentence. */
  reason: string;
  /** Estimated seconds until every seed has its pages, by unicast. */
  unicastSeconds: number;
  /** Estimated seconds by multicast, its end game included. */
  multicastSeconds: number;
}

/**
 * Rates that the estimates use when none were measured. One machine: unicast 1.8 GB/s in all
 * (N TCP streams over veth, lazy-memory.md Q4), multicast 400 MB/s (paced UDP GSO, 0 % loss).
 * Real hosts: the origin's link is the limit for both; multicast then moves 0.96 of TCP's
 * payload per byte at MTU 1500 (80 header bytes beside TCP's 52), and 10 GbE is assumed.
 */
export const distributionDefaults = {
  oneMachine: { unicastRate: 1.8e9, multicastRate: 0.4e9 },
  network: { unicastRate: 1.17e9, multicastRate: 1.12e9 },
} as const;

/**
 * Unicast or multicast for one job. Multicast pays when the bytes it saves (N streams of the
 * same pages become one) outweigh its handicaps: a slower loss-free rate (pacing, per-datagram
 * cost), loss amplified by pages split over several datagrams, and the unicast end game for
 * what was lost. Rules first (no multicast, one seed, too little data), then the estimate:
 *
 *   unicast   = seeds x bytesPerSeed / unicastRate
 *   multicast = union / multicastRate + seeds x pageLoss x bytesPerSeed / unicastRate
 *   union     = bytesPerSeed x (shared + (1 - shared) x seeds)
 *   pageLoss  = 1 - (1 - loss)^(datagrams per page)
 *
 * Multicast is chosen when it is estimated at least 10 % faster.
 */
export function chooseDistribution(input: DistributionInput): DistributionChoice {
  const { seeds, bytesPerSeed, shared = 1, pageSize = 4096, mtu = 1500, loss = 0, oneMachine = false, multicastWorks = true } = input;
  checkUint(seeds, 'seeds', 1 << 20);
  if (!(bytesPerSeed >= 0) || !Number.isFinite(bytesPerSeed)) throw new RangeError(`bytesPerSeed must be a finite number >= 0, got ${bytesPerSeed}`);
  if (!(shared >= 0 && shared <= 1)) throw new RangeError(`shared must be 0..1, got ${shared}`);
  if (!(loss >= 0 && loss < 1)) throw new RangeError(`loss must be 0..1 (a fraction), got ${loss}`);
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65536) throw new RangeError(`mtu must be an integer 576..65536, got ${mtu}`);
  const d = oneMachine ? distributionDefaults.oneMachine : distributionDefaults.network;
  const bu = input.unicastRate ?? d.unicastRate;
  const bm = input.multicastRate ?? d.multicastRate;
  if (!(bu > 0) || !(bm > 0)) throw new RangeError('unicastRate and multicastRate must be > 0');
  const room = mtu - 28 - MCAST_HEADER_BYTES;
  const perPage = room >= pageSize ? 1 : Math.ceil(pageSize / (Math.floor(room / 16) * 16));
  const pageLoss = 1 - (1 - loss) ** perPage;
  const union = bytesPerSeed * (shared + (1 - shared) * seeds);
  const unicastSeconds = (seeds * bytesPerSeed) / bu;
  const multicastSeconds = union / bm + (seeds * pageLoss * bytesPerSeed) / bu;
  const est = { unicastSeconds, multicastSeconds };
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
  if (!multicastWorks) return { method: 'unicast', reason: 'the group cannot be joined on the cluster interface (no multicast route)', ...est };
  if (seeds < 2) return { method: 'unicast', reason: `${seeds} seed: nothing to share`, ...est };
  if (bytesPerSeed < 4 << 20) return { method: 'unicast', reason: `${mb(bytesPerSeed)} per seed: too little to pay for a group and an end game`, ...est };
  const ms = (s: number) => `${(s * 1e3).toFixed(0)} ms`;
  if (multicastSeconds <= 0.9 * unicastSeconds) {
    return { method: 'multicast', reason: `${seeds} seeds sharing ${Math.round(shared * 100)} % of ${mb(bytesPerSeed)}: multicast ~${ms(multicastSeconds)} against unicast ~${ms(unicastSeconds)}`, ...est };
  }
  const why = oneMachine ? 'on one machine TCP over veth outruns paced multicast' : pageLoss > 0.05 ? `page loss ${(pageLoss * 100).toFixed(1)} % sends much of it twice` : 'too few shared pages';
  return { method: 'unicast', reason: `${why}: unicast ~${ms(unicastSeconds)} against multicast ~${ms(multicastSeconds)} for ${seeds} seeds`, ...est };
}

// ---------------------------------------------------------------- checks

function checkUint(v: unknown, what: string, max: number): void {
  if (typeof v !== 'number') throw new TypeError(`${what} must be a number`);
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${what} must be an integer 0..${max}, got ${v}`);
}

function checkJob(v: unknown, what: string): void {
  if (typeof v !== 'bigint') throw new TypeError(`${what} must be a bigint`);
  if (v < 0n || v >= 1n << 64n) throw new RangeError(`${what} must fit 64 unsigned bits, got ${v}`);
}

function checkEndpoint(o: { group: unknown; port: unknown; iface: unknown; key: unknown; job: unknown; session?: unknown }): void {
  if (typeof o !== 'object' || o === null) throw new TypeError('options must be an object');
  if (typeof o.group !== 'string') throw new TypeError('options.group must be a string');
  if (typeof o.iface !== 'string') throw new TypeError('options.iface must be a string');
  checkUint(o.port, 'options.port', 65535);
  if (o.port === 0) throw new RangeError('options.port must be 1..65535, got 0');
  if (!Buffer.isBuffer(o.key)) throw new TypeError('options.key must be a Buffer');
  if (o.key.length !== MCAST_KEY_BYTES) throw new RangeError(`options.key must be ${MCAST_KEY_BYTES} bytes, got ${o.key.length}`);
  checkJob(o.job, 'options.job');
  if (o.session !== undefined) checkUint(o.session, 'options.session', 0xffffffff);
}
