/**
 * Lazy memory across hosts (DESIGN.md, "A remote clone"; docs/lazy-memory.md): the domain
 * layer's memory server, which serves an origin's regions as of its fork point, and lazy
 * regions, which a seed on another host maps empty and fills on first touch. A typed facade
 * over `native.lazy` (native/addon/lazy.cc, native/lazy/*.c, native/include/sf_lazy.h).
 *
 * Origin (at the fork point):
 *
 *     const server = startMemoryServer([{ id: 1, view: big }]);   // frozen from here on
 *     const zmap = server.zeroMap(1);                               // for the descriptor
 *     // for each TCP connection: handshakeSocket(socket, {...}) first, then
 *     server.addConnection(socket);
 *
 * Seed (with the descriptor's region table):
 *
 *     const socket = await connectAuthenticated({ host, port, secret, role: 'rank', accept: ['dom0'] });
 *     const r = mapLazyRegion({ id: 1, length, pageSize, zeroMap: zmap, socket, server: `${host}:${port}` });
 *     const big = new Float64Array(r.buffer);                       // pages arrive on first touch
 *
 * Caveats: a structured clone or postMessage of any view of a lazy region copies (so fetches)
 * the WHOLE region, and a "transfer" of its ArrayBuffer is a copy too (external buffers cannot
 * move); hand views' bytes or v8.serialize of a view instead. A fault blocks the thread that
 * touched the page (the event loop, for JavaScript) for the fetch, up to the fetch deadline.
 */
import net from 'node:net';
import { native } from '../native/addon.js';
import type { McastReceiverStats } from './mcast.js';

/** Counters of one region at the memory server (what it did, in its child process). */
export interface ServerRegionCounters {
  /** The region's id. */
  id: number;
  /** Its length in bytes. */
  length: number;
  /** Page requests answered. */
  requests: number;
  /** Pages asked for. */
  pages: number;
  /** Of those, pages sent: their bytes crossed the network. */
  sent: number;
  /** The others: all-zero pages, answered by one bit each. */
  zeroPages: number;
  /** Bytes written for this region, headers included. */
  bytes: number;
  /** Pages sent to the job's multicast group after a reply carried them (0 without multicast). */
  multicast: number;
  /** Pages answered "on its way": multicast within the lockstep window, so not sent again. */
  deferred: number;
}

/** The memory server's multicast (configured by dom0: {@link encodeServerMulticast}). */
export interface ServerMulticastCounters {
  /** `off`: never configured (unicast only); `on`; `failed`: unicast from then on, `error` says why. */
  state: 'off' | 'on' | 'failed';
  /** Datagrams sent. */
  datagrams: number;
  /** Bytes on the wire, IP and UDP headers included. */
  wireBytes: number;
  /** Pages sent. */
  pages: number;
  /** Pages not sent again because they went out within the lockstep window. */
  suppressed: number;
  /** Times flow control lowered the rate. */
  cuts: number;
  /** Loss reports from receivers. */
  reports: number;
  /** The pace now, bytes/s. */
  rate: number;
  /** Why multicast failed, or "". */
  error: string;
}

/** Counters of a memory server. */
export interface ServerCounters {
  /** Connections handed in. */
  connections: number;
  /** Still open. */
  open: number;
  /** Requests refused as malformed (each ended its connection; the server went on). */
  malformed: number;
  /** Connections that ended on a socket error. */
  failed: number;
  /** Requests answered, all regions. */
  requests: number;
  /** Per region, in the order they were given. */
  regions: ServerRegionCounters[];
  /** Its multicast. */
  multicast: ServerMulticastCounters;
}

/** How a process ended: an exit code or a signal number. */
export interface ProcessEnd {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal number, or null. */
  signal: number | null;
}

/** Counters of a lazy region, for its host: the seed and every clone forked from it. */
export interface LazyCounters {
  /** Pages of the region. */
  pages: number;
  /** Faults that reached the handler: pages touched while missing. */
  faults: number;
  /** Pages fetched from the memory server for faults (read-ahead included). */
  fetched: number;
  /** Pages fetched ahead from a working-set list. */
  prefetched: number;
  /** Pages installed as zero without a fetch (the zero map, or zero pages of a batch). */
  zeroFilled: number;
  /** Pages installed by an overwrite hint without a fetch. */
  avoided: number;
  /** Pages installed by {@link installPages} (received by multicast). */
  multicast: number;
  /** Requests sent to the memory server. */
  requests: number;
  /** Bytes received from it. */
  bytes: number;
  /** Time from request to last byte, summed, in ms. */
  fetchMs: number;
  /** Of the faults, those of clones forked from the seed. */
  cloneFaults: number;
  /** Clones forked from the seed that registered this region. */
  clones: number;
  /** Pages in the host's page cache of the region now. */
  cached: number;
  /** Faults answered "on its way" whose page then arrived by multicast. */
  awaited: number;
  /** Such faults whose page did not arrive in time, then fetched by unicast. */
  late: number;
}

interface NativeServer {
  readonly __brand: 'memory server';
}

interface NativeLazy {
  available(): { ok: boolean; reason: string };
  useDevice(fd: number): void;
  zeroMap(view: ArrayBufferView | ArrayBuffer): Uint8Array;
  serverStart(ranges: { id: number; view: ArrayBufferView | ArrayBuffer }[], options: { zeroMaps: boolean; connectionsFrom?: number }): NativeServer;
  serverPid(h: NativeServer): number;
  serverGive(h: NativeServer, fd: number): void;
  serverCounters(h: NativeServer): ServerCounters;
  serverZeroMap(h: NativeServer, index: number, timeoutMs: number): Uint8Array;
  serverAlive(h: NativeServer): { alive: boolean } & Partial<ProcessEnd>;
  serverStop(h: NativeServer, timeoutMs: number): ProcessEnd;
  map(spec: {
    id: number;
    length: number;
    pageSize: number;
    zeroMap?: Uint8Array;
    fd: number;
    server: string;
    timeoutMs?: number;
    readAhead?: number;
    check?: boolean;
  }): ArrayBuffer;
  hint(buffer: ArrayBuffer, offset: number, length: number): number;
  counters(buffer: ArrayBuffer): LazyCounters;
  close(buffer: ArrayBuffer): void;
  install(id: number, firstPage: number, data: ArrayBufferView | ArrayBuffer): number;
  workingSet(): Uint8Array;
  prefetch(list: Uint8Array): number;
  prefetchPending(): number;
  receive(opts: object): void;
  receiverStats(index: number): MulticastReceiverStats | null;
}

const lazy = (native as unknown as { lazy: NativeLazy }).lazy;
const fdClose = (fd: number) => native.closeFd(fd);

/**
 * Whether this process can map lazy regions: they need a userfaultfd that serves kernel
 * accesses too (root, CAP_SYS_PTRACE, or a /dev/userfaultfd fd from dom0). `reason` says why
 * not.
 */
export function lazyAvailable(): { ok: boolean; reason: string } {
  return lazy.available();
}

/**
 * Makes this process create its userfaultfds from `fd`, an open /dev/userfaultfd (dom0, as
 * root, opens it and hands it to a seed it starts as another user). Call before the first
 * {@link mapLazyRegion}; the process keeps the fd.
 */
export function useUserfaultfdDevice(fd: number): void {
  lazy.useDevice(fd);
}

/**
 * The zero map of a view's bytes: bit i (byte i/8, least significant bit first) is set when
 * page i of the view is all zero. Never-touched anonymous memory is known zero without being
 * read (from /proc/self/pagemap); the rest is scanned.
 */
export function zeroMap(view: ArrayBufferView | ArrayBuffer): Uint8Array {
  return lazy.zeroMap(view);
}

/** The number of pages a zero map marks. */
export function zeroPages(map: Uint8Array, pages = map.length * 8): number {
  let n = 0;
  for (let i = 0; i < pages; i++) n += (map[i >> 3] >> (i & 7)) & 1;
  return n;
}

/**
 * Takes the fd out of a net.Socket (Linux: libuv's handle) so that native code owns the
 * connection: a close-on-exec duplicate; Node's own fd is closed and nothing more is read
 * there. The socket must hold no unread bytes (the page protocol lets the client speak first,
 * so after handshakeSocket it holds none).
 */
export function detachSocket(socket: net.Socket): number {
  if (socket.readableLength > 0)
    throw new Error(`detachSocket: the socket holds ${socket.readableLength} unread bytes that would be lost`);
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('detachSocket: the socket has no fd (closed, or not a TCP/IPC socket)');
  socket.pause();
  const dup = native.dupFd(fd);
  socket.removeAllListeners('data');
  socket.on('error', () => {}); // closing Node's copy is all that is left
  socket.destroy();
  return dup;
}

/** One range of this process's memory to serve: `view`'s bytes, as region `id`. */
export interface ServedRange {
  /** The region's id, unique in this server; seeds ask for it by this id. */
  id: number;
  /** A region() array, an ordinary typed array, an ArrayBuffer, any memory of this process. */
  view: ArrayBufferView | ArrayBuffer;
}

/** Options of {@link startMemoryServer}. */
export interface MemoryServerOptions {
  /** Compute each range's zero map on the snapshot, in the server process (default true). */
  zeroMaps?: boolean;
  /**
   * A Unix socket (SOCK_SEQPACKET or stream) on which another process (dom0) hands the server
   * authenticated connections by SCM_RIGHTS, besides {@link MemoryServer.addConnection}; the
   * server keeps its own copy (the caller may close this fd after).
   */
  connectionsFrom?: number;
}

/**
 * The memory server of an origin: a forked child process whose copy-on-write view of this
 * process is the snapshot of its ranges as of {@link startMemoryServer}; it serves their pages
 * to seeds over authenticated connections handed to it, and never sees this process's later
 * writes. It ends with {@link MemoryServer.close}, with this process, or when forgotten and
 * collected.
 */
export class MemoryServer {
  readonly #h: NativeServer;
  readonly #ids: number[];
  #closed: ProcessEnd | null = null;

  /** @internal use {@link startMemoryServer} */
  constructor(h: NativeServer, ids: number[]) {
    this.#h = h;
    this.#ids = ids;
  }

  /** The server process's pid. */
  get pid(): number {
    return lazy.serverPid(this.#check('pid'));
  }

  /**
   * Hands a connection to the server: an authenticated socket (dom0/handshake.ts, run to the
   * end before this call), which is taken out of Node, or a socket fd, of which the server
   * gets a copy (the caller keeps and closes its own).
   */
  addConnection(connection: net.Socket | number): void {
    const h = this.#check('addConnection');
    if (typeof connection === 'number') {
      lazy.serverGive(h, connection);
      return;
    }
    const fd = detachSocket(connection);
    try {
      lazy.serverGive(h, fd);
    } finally {
      fdClose(fd);
    }
  }

  /** What the server has done so far (read from a page it shares with this process). */
  counters(): ServerCounters {
    return lazy.serverCounters(this.#check('counters'));
  }

  /**
   * The zero map of region `id`, computed by the server on its snapshot (it starts at once,
   * while this process goes on): waits for it up to `timeoutMs`. About 5 ms per GiB of data
   * pages, 50 ms per GiB of written zeros, 1-10 ms per GiB never touched.
   */
  zeroMap(id: number, timeoutMs = 30_000): Uint8Array {
    const i = this.#ids.indexOf(id);
    if (i < 0) throw new RangeError(`MemoryServer.zeroMap: no region ${id} here (regions ${this.#ids.join(', ')})`);
    return lazy.serverZeroMap(this.#check('zeroMap'), i, timeoutMs);
  }

  /** True while the server process runs. */
  alive(): boolean {
    if (this.#closed) return false;
    return lazy.serverAlive(this.#h).alive;
  }

  /**
   * Ends the server: closes its control socket, waits up to `timeoutMs` for it to exit, then
   * kills it; reaps it. Returns how it ended. Idempotent.
   */
  close(timeoutMs = 2000): ProcessEnd {
    if (this.#closed) return this.#closed;
    this.#closed = lazy.serverStop(this.#h, timeoutMs);
    return this.#closed;
  }

  #check(what: string): NativeServer {
    if (this.#closed) throw new Error(`MemoryServer.${what}: the memory server was closed`);
    return this.#h;
  }
}

/**
 * Starts the memory server over `ranges` (call at the fork point). Throws naming the range
 * that is empty, unmapped, given twice, or inside a lazy region of this process.
 */
export function startMemoryServer(ranges: readonly ServedRange[], options: MemoryServerOptions = {}): MemoryServer {
  if (!Array.isArray(ranges) || ranges.length === 0) throw new TypeError('startMemoryServer(ranges): at least one { id, view } is needed');
  const h = lazy.serverStart(
    ranges.map((r) => ({ id: r.id, view: r.view })),
    { zeroMaps: options.zeroMaps ?? true, ...(options.connectionsFrom !== undefined ? { connectionsFrom: options.connectionsFrom } : {}) },
  );
  return new MemoryServer(h, ranges.map((r) => r.id));
}

/** What {@link mapLazyRegion} needs: one entry of a descriptor's region table, and a connection. */
export interface LazyRegionSpec {
  /** The region's id at the memory server. */
  id: number;
  /** Bytes. */
  length: number;
  /** The origin's page size; it must be this host's. */
  pageSize: number;
  /** The zero map (one bit a page): those pages are installed as zero, never fetched. */
  zeroMap?: Uint8Array;
  /**
   * The authenticated connection to the memory server: a net.Socket (taken out of Node) or an
   * fd (the region takes it). Several regions may share one fd; give the same number.
   */
  connection: net.Socket | number;
  /** The server as "host:port", for error messages. */
  server: string;
  /** Deadline of one fetch in ms, also the socket's TCP_USER_TIMEOUT (default 3000). */
  timeoutMs?: number;
  /** Read-ahead ceiling in pages (default 64; 1: one page per fault). */
  readAhead?: number;
  /** Ask the server for the region's length first and refuse a mismatch (default false). */
  check?: boolean;
}

/**
 * A region whose pages arrive from the memory server on first touch, for this process and
 * every clone forked from it (each clone registers its copy in the instant after the fork).
 * A page that cannot be fetched ends the process that touched it with exit code 75 and a line
 * on stderr naming the region, the page, the server and the cause.
 */
export class LazyRegion {
  /** The region's id at the memory server. */
  readonly id: number;
  /** Bytes. */
  readonly length: number;
  /** The page size. */
  readonly pageSize: number;
  /** The memory server, "host:port". */
  readonly server: string;
  #buffer: ArrayBuffer | null;

  /** @internal use {@link mapLazyRegion} */
  constructor(buffer: ArrayBuffer, spec: LazyRegionSpec) {
    this.#buffer = buffer;
    this.id = spec.id;
    this.length = spec.length;
    this.pageSize = spec.pageSize;
    this.server = spec.server;
  }

  /** The region's memory (external: unmapped when collected, or by {@link close}). */
  get buffer(): ArrayBuffer {
    if (this.#buffer === null) throw new Error(`lazy region ${this.id} was closed`);
    return this.#buffer;
  }

  /** True once {@link close} ran. */
  get closed(): boolean {
    return this.#buffer === null;
  }

  /**
   * Declares that this process will overwrite a view of the region (or bytes
   * [offset, offset + length)) whole before reading it: a receive, broadcast or scatter into
   * the region. Each page wholly inside that is still missing is installed as zero without a
   * fetch, and read-ahead skips them on this host. Returns the number of pages avoided.
   */
  hintOverwrite(view: ArrayBufferView): number;
  hintOverwrite(offset: number, length: number): number;
  hintOverwrite(a: ArrayBufferView | number, length?: number): number {
    const buffer = this.buffer;
    if (typeof a === 'number') {
      if (typeof length !== 'number') throw new TypeError('hintOverwrite(offset, length): length must be a number');
      return lazy.hint(buffer, a, length);
    }
    if (a.buffer !== buffer) throw new RangeError(`hintOverwrite(view): the view is not over lazy region ${this.id}`);
    return lazy.hint(buffer, a.byteOffset, a.byteLength);
  }

  /** The region's counters for this host. */
  counters(): LazyCounters {
    return lazy.counters(this.buffer);
  }

  /**
   * Unmaps the region in this process and detaches its ArrayBuffer (every view then has
   * length 0). Clones forked before keep theirs. Idempotent.
   */
  close(): void {
    if (this.#buffer === null) return;
    lazy.close(this.#buffer);
    this.#buffer = null;
  }
}

/**
 * Maps a lazy region. Throws naming the region and what failed: a page size other than this
 * host's, a zero map of the wrong size, a connection that is not a socket, a length the server
 * disagrees with (`check`), or no userfaultfd ({@link lazyAvailable}). Only in the seed: a
 * clone forked from it cannot map regions of its own.
 */
export function mapLazyRegion(spec: LazyRegionSpec): LazyRegion {
  const c = spec.connection;
  const fd = typeof c === 'number' ? c : detachSocket(c);
  let buffer: ArrayBuffer;
  try {
    buffer = lazy.map({
      id: spec.id,
      length: spec.length,
      pageSize: spec.pageSize,
      zeroMap: spec.zeroMap,
      fd,
      server: spec.server,
      timeoutMs: spec.timeoutMs,
      readAhead: spec.readAhead,
      check: spec.check,
    });
  } catch (e) {
    if (typeof c !== 'number') fdClose(fd); // ours, not taken
    throw e;
  }
  return new LazyRegion(buffer, spec);
}

/**
 * Installs pages received by another path (multicast distribution) into lazy region `id` of
 * this host: whole pages from `firstPage` on. Pages already present are left alone. Returns
 * how many were still missing (0: all were there).
 */
export function installPages(id: number, firstPage: number, data: ArrayBufferView | ArrayBuffer): number {
  return lazy.install(id, firstPage, data);
}

/**
 * The pages this host needed for faults so far (batches fetched, zero pages installed), in
 * order, as a compact list (a few bytes per run of pages; docs/lazy-memory.md draws it): give
 * it to {@link prefetch} in a later seed of the same program and data.
 */
export function workingSet(): Uint8Array {
  return lazy.workingSet();
}

/**
 * Fetches the pages of a working-set list ahead, in order, whenever no fault waits, and
 * installs its zero pages in this process; pages present already are skipped. Every region the
 * list names must be mapped. Only in the seed. Returns the number of pages queued;
 * {@link prefetchPending} says how many are left.
 */
export function prefetch(list: Uint8Array): number {
  return lazy.prefetch(list);
}

/** Pages of the last {@link prefetch} list not fetched yet (0 when done). */
export function prefetchPending(): number {
  return lazy.prefetchPending();
}

// ---------------------------------------------------------------- multicast (docs/multicast.md)

/** A job's multicast group for one state (session), as dom0 gives it to a memory server or a seed. */
export interface MulticastConfig {
  /** The group, dotted (239.192.x.y). */
  group: string;
  /** Its UDP port. */
  port: number;
  /** This host's cluster address: the group is sent or joined there only. */
  iface: string;
  /** The HMAC key (xen/mcast.ts deriveMcastKey), 32 bytes. */
  key: Uint8Array;
  /** The 64-bit job id of the datagrams (xen/mcast.ts jobOfId). */
  job: bigint;
  /** The session: the state's seq. */
  session: number;
  /** The sender's report port for flow control (0: none). */
  reportPort: number;
}

/** A seed's end: the config, the sender's address, and how long a fault waits for a page on its way. */
export interface MulticastReceiverConfig extends MulticastConfig {
  /** The memory server host's cluster address (where loss reports go). */
  reportAddr: string;
  /** How long a fault waits for a page answered "on its way" before it asks for the data, ms. */
  waitMs: number;
}

/** Counters of a seed's multicast receiver: the module's own (xen/mcast.ts) without those of
 * its end game, which the lazy path does not run (it asks the memory server instead). */
export type MulticastReceiverStats = Omit<McastReceiverStats, 'bytes' | 'ends' | 'endInstalled'>;

/** Bytes of the multicast configuration a memory server reads on its second source (memsrv.c draws it). */
export const SERVER_MULTICAST_BYTES = 97;

/**
 * The message that makes a memory server multicast (send it on the socket given as
 * `connectionsFrom`, before any connection): 'M' and 96 bytes, drawn in native/lazy/memsrv.c.
 * `rateMBs` 0 and `lockstepMs` 0 take the sender's defaults (400 MB/s, 20 ms).
 */
export function encodeServerMulticast(c: MulticastConfig, rateMBs = 0, lockstepMs = 0): Buffer {
  if (c.key.length !== 32) throw new RangeError(`multicast key must be 32 bytes, got ${c.key.length}`);
  for (const [k, v] of [['group', c.group], ['iface', c.iface]] as const)
    if (!net.isIPv4(v)) throw new RangeError(`multicast ${k} must be an IPv4 address, got "${v}"`);
  const b = Buffer.alloc(SERVER_MULTICAST_BYTES);
  b.write('M', 0, 'latin1');
  b.write('SFMM', 1, 'latin1');
  b.writeUInt32LE(1, 5);
  b.writeBigUInt64LE(c.job, 9);
  b.writeUInt32LE(c.session, 17);
  b.writeUInt16LE(c.port, 21);
  b.writeUInt16LE(c.reportPort, 23);
  b.write(c.group, 25, 15, 'latin1');
  b.write(c.iface, 41, 15, 'latin1');
  Buffer.from(c.key).copy(b, 57);
  b.writeUInt32LE(rateMBs, 89);
  b.writeUInt32LE(lockstepMs, 93);
  return b;
}

/**
 * Opens a multicast receiver for a state's lazy regions in this seed (one per state): pages
 * multicast by the memory server are installed into the host's page cache of each region
 * where still missing (sf_lazy_install), so later faults on them are ordinary faults; and the
 * regions' fetches let the server answer "on its way" for pages it multicast a moment ago.
 * Returns null, or why it could not (the regions then fetch everything by unicast, correct as
 * before).
 */
export function receiveMulticast(c: MulticastReceiverConfig, regions: readonly { id: number; byteLength: number; pageSize: number }[]): string | null {
  try {
    lazy.receive({
      group: c.group, port: c.port, iface: c.iface, key: Buffer.from(c.key), job: c.job, session: c.session,
      regions: regions.map((r) => ({ id: r.id, pages: Math.ceil(r.byteLength / r.pageSize) })),
      ...(c.reportPort ? { reportAddr: c.reportAddr, reportPort: c.reportPort } : {}),
      waitMs: c.waitMs,
    });
    receiving.push({ group: c.group, port: c.port, iface: c.iface, job: c.job, session: c.session });
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Where this seed's receiver listens (no key), once {@link receiveMulticast} opened it. */
export type MulticastEndpoint = Pick<MulticastConfig, 'group' | 'port' | 'iface' | 'job' | 'session'>;
const receiving: MulticastEndpoint[] = [];

/** Where the `index`-th receiver of this seed listens, or null (for tests and diagnostics: a forged datagram needs it). */
export function multicastEndpoint(index = 0): MulticastEndpoint | null {
  return receiving[index] ?? null;
}

/** The counters of this seed's `index`-th multicast receiver (in the order of its states), or null when it has none. */
export function multicastReceiverStats(index = 0): MulticastReceiverStats | null {
  return lazy.receiverStats(index);
}
