/**
 * State loaded once per cluster. In a job across hosts every host's first rank runs the program
 * up to its fork point; what it loads before (a data set, a mesh, a model) would be loaded once
 * per host. `loadOnce` runs the loader in the origin only: on other hosts the call returns the
 * origin's value, small values from the descriptor's state blob and large typed arrays as lazy
 * regions whose pages come from the origin's memory server on first touch (SnowFlock's
 * descriptors and memory-on-demand: xen/descriptor.ts, xen/state.ts, xen/lazy.ts,
 * dom0/share.ts). On one host, and outside sfmpirun, it simply calls the loader: clones inherit
 * the value by fork.
 *
 * The value is the origin's as of the loader's return: the origin's later writes are never
 * seen on other hosts (its memory server serves a frozen copy).
 */
import os from 'node:os';
import { RankShareChannel, type ShareRegion } from '../guest-daemon/share.js';
import { native } from '../native/addon.js';
import { describeRegions, splitState, joinState } from '../xen/state.js';
import { ZeroMap, pageCountOf } from '../xen/descriptor.js';
import { mapLazyRegion, prefetch, receiveMulticast, startMemoryServer, workingSet, type LazyRegion, type MemoryServer } from '../xen/lazy.js';

/** Options of {@link loadOnce}. */
export interface LoadOnceOptions {
  /** Names the state in messages ("mesh", "training set"); default "state N". */
  label?: string;
  /**
   * How long a seed waits for the origin's value, in ms (default: SFMPI_SHARE_TIMEOUT_MS, else
   * 600000): as long as the origin may take to load it.
   */
  timeoutMs?: number;
}

let channel: RankShareChannel | null = null;
let seq = 0;
/** The last region id given out: ids are unique over every state of the run, because a seed maps
 * the regions of all of them in one process (loadOnce's, then clone(ticket, state)'s). */
let lastRegionId = 0;
let sealed = false;
/** The memory servers this origin started (they live as long as the job). */
const servers: MemoryServer[] = [];
/** The lazy regions of this seed, by buffer (for hints and counters). */
const lazyBuffers = new WeakMap<ArrayBuffer, LazyRegion>();
const lazyRegions: LazyRegion[] = [];
/** True once this process maps a lazy region: the MPI layer's receives check for hints only then. */
export let lazyInUse = false;

let reporting = false;
/** With --verbose, the first process of a host reports what its lazy memory did, at exit. */
function reportAtExit(): void {
  if (reporting || process.env.SFMPI_VERBOSE !== '1') return;
  reporting = true;
  const pid = process.pid;
  process.on('exit', () => {
    if (process.pid !== pid) return; // a clone: its host's first process reports for the host
    const host = os.hostname();
    for (const r of lazyRegions) {
      if (r.closed) continue;
      const c = r.counters();
      process.stderr.write(
        `sfmpi: lazy memory on ${host}, region ${r.id} (${c.pages} pages): ${c.faults} touched while missing, ${c.fetched} fetched, ` +
          `${c.zeroFilled} zero-filled, ${c.avoided} avoided, ${c.multicast} by multicast, ${c.prefetched} prefetched\n`,
      );
    }
    for (const s of servers) {
      if (!s.alive()) continue;
      const c = s.counters();
      for (const r of c.regions)
        process.stderr.write(`sfmpi: memory server on ${host}, region ${r.id}: ${r.sent} pages sent in ${r.requests} requests over ${c.connections} connections, ${r.multicast} multicast, ${r.deferred} answered as on their way by multicast\n`);
    }
  });
}

function role(): 'origin' | 'seed' | null {
  const r = process.env.SFMPI_SHARE_ROLE;
  return process.env.SFMPI_SHARE_FD && (r === 'origin' || r === 'seed') ? r : null;
}

/**
 * Runs `loader` once per cluster and returns its value on every host: in the origin (and on a
 * single host) the loader runs; in a seed on another host it does not, and the origin's value
 * comes back, large typed arrays as lazy regions. Call it before the fork point (`MPI.init()`),
 * in the same order on every host (the n-th call of a seed gets the origin's n-th value).
 *
 * @example
 * const grid = loadOnce(() => readGrid('big.dat'), { label: 'grid' });
 * const world = MPI.init();
 */
export function loadOnce<T>(loader: () => T, options: LoadOnceOptions = {}): T {
  if (typeof loader !== 'function') throw new TypeError('loadOnce(loader): loader must be a function');
  if (sealed) throw new Error('loadOnce: called after the fork point (MPI.init); state is handed over before it');
  const r = role();
  if (!r) return loader();
  const n = ++seq;
  const label = options.label ?? `state ${n}`;
  channel ??= new RankShareChannel(Number(process.env.SFMPI_SHARE_FD));
  reportAtExit();
  return r === 'origin' ? publish(channel, n, label, loader()) : fetch(channel, n, label, options.timeoutMs);
}

/**
 * The origin's half of `clone(ticket, state)` across hosts (runtime/hosts.ts): publishes `value`
 * as the next state of the share channel, as loadOnce does, and returns its number for the seeds.
 */
export function publishState(value: unknown, label: string): number {
  if (role() !== 'origin') throw new Error(`${label}: this process is not the origin of a job across hosts`);
  const n = ++seq;
  channel ??= new RankShareChannel(Number(process.env.SFMPI_SHARE_FD));
  reportAtExit();
  publish(channel, n, label, value);
  return n;
}

/** A seed's half: the origin's state number `n` (small values from its blob, typed arrays as lazy regions). */
export function fetchState(n: number, label: string, timeoutMs?: number): unknown {
  if (role() !== 'seed') throw new Error(`${label}: this process is not a seed of a job across hosts`);
  seq = Math.max(seq, n);
  channel ??= new RankShareChannel(Number(process.env.SFMPI_SHARE_FD));
  reportAtExit();
  return fetch(channel, n, label, timeoutMs);
}

function publish<T>(ch: RankShareChannel, n: number, label: string, value: T): T {
  const split = splitState(value, { where: `loadOnce (${label})` });
  ch.send('open', { seq: n });
  const opened = ch.receive(30_000, `loadOnce (${label}): dom0's answer`);
  if (opened.type === 'error') throw new Error(`loadOnce (${label}): ${opened.body.message}`);
  if (opened.type !== 'opened' || opened.fds.length !== 1) throw new Error(`loadOnce (${label}): dom0 answered ${opened.type} without a channel`);
  const from = opened.fds[0];
  let zeroMaps: (ZeroMap | undefined)[] = [];
  const ids = split.regions.map(() => ++lastRegionId);
  try {
    if (split.regions.length > 0) {
      const server = startMemoryServer(split.regions.map((x) => ({ id: ids[x.slot], view: x.buffer })), { connectionsFrom: from });
      servers.push(server);
      // SFMPI_LAZY_ZEROMAP=0 turns the zero-page heuristic off (benchmarks measure what it saves).
      if (process.env.SFMPI_LAZY_ZEROMAP !== '0')
        zeroMaps = split.regions.map((x) => ZeroMap.fromBitmap(server.zeroMap(ids[x.slot]), pageCountOf(x.byteLength, native.pageSize())));
    }
  } finally {
    native.closeFd(from);
  }
  const regions: ShareRegion[] = describeRegions(split, { ids, zeroMaps }).map(({ zeroMap, ...x }) => ({ ...x, zeroBitmap: zeroMap.toBitmap() }));
  ch.send('publish', { seq: n, label, blob: split.blob, regions });
  const done = ch.receive(30_000, `loadOnce (${label}): dom0's answer`);
  if (done.type === 'error') throw new Error(`loadOnce (${label}): ${done.body.message}`);
  return value;
}

function fetch<T>(ch: RankShareChannel, n: number, label: string, timeoutMs?: number): T {
  const wait = timeoutMs ?? Number(process.env.SFMPI_SHARE_TIMEOUT_MS ?? 600_000);
  ch.send('want', { seq: n, label });
  const m = ch.receive(wait, `loadOnce (${label}): the origin's value`);
  if (m.type === 'error') throw new Error(`loadOnce (${label}): ${m.body.message}`);
  if (m.type !== 'state') throw new Error(`loadOnce (${label}): dom0 answered ${m.type}`);
  const fd = m.fds[0];
  if (m.body.regions.length > 0 && fd === undefined) throw new Error(`loadOnce (${label}): no connection to the memory server came with the state`);
  const views: ArrayBuffer[] = [];
  for (const x of m.body.regions) {
    const region = mapLazyRegion({ id: x.id, length: x.byteLength, pageSize: x.pageSize, zeroMap: x.zeroBitmap, connection: fd, server: m.body.server });
    lazyBuffers.set(region.buffer, region);
    lazyRegions.push(region);
    lazyInUse = true;
    views[x.slot] = region.buffer;
  }
  if (fd !== undefined && m.body.regions.length === 0) native.closeFd(fd);
  const noMulticast = m.body.multicast && m.body.regions.length > 0 ? receiveMulticast(m.body.multicast, m.body.regions) : null;
  if (noMulticast) process.stderr.write(`sfmpi: loadOnce (${label}): ${noMulticast}; its pages come by unicast only\n`);
  if (m.body.prefetch.length > 0 && m.body.regions.length > 0) {
    try {
      prefetch(m.body.prefetch);
    } catch {
      /* a working set of another shape (regions changed): faults fetch as usual */
    }
  }
  recordAtExit(ch);
  return joinState(m.body.blob, views) as T;
}

let recording = false;
/** At its end, a seed's first process hands its fault order to dom0 for the next run. */
function recordAtExit(ch: RankShareChannel): void {
  if (recording) return;
  recording = true;
  const pid = process.pid;
  process.on('exit', () => {
    if (process.pid !== pid) return;
    try {
      ch.send('record', { list: workingSet() });
    } catch {
      /* dom0 gone: nothing to keep */
    }
  });
}

/** Called at the fork point: loadOnce is for the code before it. */
export function sealShares(): void {
  sealed = true;
}

/** Whether `view` lies in a lazy region of this process. */
export function isLazy(view: ArrayBufferView): boolean {
  return lazyInUse && lazyBuffers.has(view.buffer as ArrayBuffer);
}

/**
 * Declares that the first `byteLength` bytes of `view` (default all), if it lies in a lazy
 * region, are about to be overwritten whole (a receive, broadcast or scatter into it): the
 * missing pages wholly inside are installed as zero instead of fetched (SnowFlock's avoidance
 * heuristics). A no-op for any other memory.
 */
export function hintOverwrite(view: ArrayBufferView, byteLength = view.byteLength): void {
  if (!lazyInUse) return;
  const region = lazyBuffers.get(view.buffer as ArrayBuffer);
  if (region && !region.closed && byteLength > 0) region.hintOverwrite(view.byteOffset, Math.min(byteLength, view.byteLength));
}

/** The lazy regions of this process (a seed), for counters. */
export function lazyRegionsOfThisProcess(): readonly LazyRegion[] {
  return lazyRegions;
}

/** The memory servers this origin started, for counters. */
export function memoryServersOfThisProcess(): readonly MemoryServer[] {
  return servers;
}
