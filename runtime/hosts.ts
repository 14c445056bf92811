/**
 * Tickets across hosts: requestTicket / clone / join / kill when `sfnode --hostfile ...` (or
 * `--host`, or a Slurm allocation; mpi-compat/launcher/sfnode.ts) started the program on several
 * hosts. Each host's dom0 started the host's first process (dom0/ranks.ts): the origin on the
 * first host, a *seed* on every other, which re-runs the program up to its first requestTicket.
 * dom0 linked every pair of hosts with an authenticated TCP socket (dom0/links.ts, handed over by
 * the join, native/include/sf_control.h); this module speaks its own small protocol on the
 * origin's link to each seed:
 *
 *   1. requestTicket(n) in the origin: slots on this host first (admission here, its slots minus
 *      the origin's own), then an `offer` to each seed in host order; each seed reserves what its
 *      host admits (dom0/admission.ts, the same host-wide admission as one host's) and answers
 *      `granted`. The ticket grants m <= n (`ticket.size`, with `ticket.requested` = n).
 *   2. clone(ticket, state) in the origin: the state goes through the share channel
 *      (runtime/share.ts publishState: descriptor, state blob, typed arrays as lazy regions);
 *      each seed gets `clone` with its clone ids and the state's number, fetches the state, forks
 *      its clones (their clone() returns their id) and answers `running`. The origin's clone()
 *      returns once every clone, here and there, is running.
 *   3. A seed then only minds its clones: it sends each one's `outcome` as join() reports it on
 *      one host, passes `kill` on, and exits once they all ended. The origin's join() gets
 *      remote outcomes as they come; a link that closes before names the host that was lost.
 *
 * The seeds serve the origin's first ticket only: a seed holds the program as of that fork
 * point, not of later ones, so later tickets are this host's alone.
 *
 * The frames (runtime/link.ts draws their header), by type:
 *
 *   type 1 offer    origin -> seed  {slots}          reserve up to `slots` clone slots on your host
 *   type 2 granted  seed -> origin  {slots, why}     reserved this many (why: when fewer)
 *   type 8 ticket   origin -> seed  {size, requested, hosts, ids}   the whole grant; your clone ids (none: end)
 *   type 3 clone    origin -> seed  {go, seq}        fork them (go false: the ticket was released); state = share seq (0: none)
 *   type 4 running  seed -> origin  {ids, pids}      they run
 *   type 5 failed   seed -> origin  {message}        they could not be started
 *   type 6 outcome  seed -> origin  {outcome}        one clone ended (guest-daemon/outcome.ts)
 *   type 7 kill     origin -> seed  {id, signal}     signal clone `id` (a number)
 */
import os from 'node:os';
import { reserve, hostLimit, usedSlots, type Reservation } from '../dom0/admission.js';
import { toOutcome, type CloneOutcome } from '../guest-daemon/outcome.js';
import { native } from '../native/addon.js';
import { createDomains, type Domain } from '../xen/domain.js';
import { becomeClone } from './lifecycle.js';
import { Link, type Frame } from './link.js';
import { fetchState, publishState } from './share.js';

/** How long the origin waits for a seed's answer (it may still be loading up to its fork point). */
function answerTimeoutMs(): number {
  return Number(process.env.SFMPI_SHARE_TIMEOUT_MS ?? 600_000);
}

/** This process's place in a program that sfnode started across hosts. */
interface Cluster {
  role: 'origin' | 'seed';
  /** Host names and clone slots, in host order (the origin's host first). */
  hosts: string[];
  slots: number[];
  /** The origin: a link per seed host (by host index); a seed: its link to the origin at index 0. */
  links: Map<number, Link>;
}

let cluster: Cluster | null | undefined;
/** The seeds serve one ticket: true once it was asked. */
let spent = false;

/**
 * The cluster when this process is the origin or a seed of a program sfnode started across hosts
 * and the seeds are still unspent; null otherwise (one host, a clone, or sfmpirun's MPI jobs).
 * The first call reads the join from dom0 (it waits until every host is linked).
 */
export function clusterFor(selfId: number): Cluster | null {
  if (selfId !== 0 || spent) return null;
  if (cluster !== undefined) return cluster;
  const names = process.env.SFMPI_NODE_HOSTS, slots = process.env.SFMPI_NODE_SLOTS, dom0 = process.env.SFMPI_DOM0_FD, role = process.env.SFMPI_SHARE_ROLE;
  if (!names || !slots || dom0 === undefined || (role !== 'origin' && role !== 'seed')) return (cluster = null);
  const hosts = names.split(','), counts = slots.split(',').map(Number);
  const mpi = (native as unknown as { mpi: { join(fd: number): { host: number; links: Int32Array } } }).mpi;
  const joined = mpi.join(Number(dom0));
  native.closeFd(Number(dom0));
  const links = new Map<number, Link>();
  for (let i = 0; i < joined.links.length; i += 3) {
    // One process per host: a host's index is the world rank of its first process.
    const peer = joined.links[i + 1], fd = joined.links[i + 2];
    if (role === 'origin' || peer === 0) links.set(peer, new Link(fd, hosts[peer] ?? `host ${peer}`));
    else native.closeFd(fd); // seeds talk to the origin only
  }
  cluster = { role, hosts, slots: counts, links };
  return cluster;
}

/** The fds a clone must not keep (the links: a seed must see the origin's end as its end). */
export function linkFds(): number[] {
  return cluster ? [...cluster.links.values()].filter((l) => !l.closed).map((l) => l.fd) : [];
}

/** Where a ticket's clones run: a host and its clone ids. */
export interface TicketHost {
  /** The host's name as the host list gave it (this host's own name on one host). */
  host: string;
  /** The clone ids placed there, ascending. */
  ids: number[];
}

/** A ticket's part on other hosts, in the origin. */
export class RemotePart {
  /** Clones on this host: ids 1..local. */
  readonly local: number;
  /** Where every clone runs, this host first. */
  readonly placement: TicketHost[];
  readonly #parts: { link: Link; ids: number[] }[];
  readonly #ended = new Set<number>();
  #started = false;

  constructor(local: number, placement: TicketHost[], parts: { link: Link; ids: number[] }[]) {
    this.local = local;
    this.placement = placement;
    this.#parts = parts;
  }

  /** Publishes the state for the seeds (their clone ids went with the grant) and lets them fork. */
  start(state: unknown): void {
    let seq = 0;
    try {
      if (state !== undefined && this.#parts.length > 0) seq = publishState(state, 'clone(ticket, state)');
    } catch (e) {
      this.release(); // the seeds end: their clones cannot have the state
      throw e;
    }
    this.#started = true;
    for (const p of this.#parts) p.link.send('clone', { go: true, seq });
  }

  /** The ticket was given back unused: every seed ends. */
  release(): void {
    if (this.#started) return;
    this.#started = true;
    for (const p of this.#parts.map((x) => x.link)) {
      try {
        p.send('clone', { go: false, seq: 0 });
      } catch {
        /* gone already */
      }
      p.close();
    }
  }

  /**
   * Waits until every seed's clones run (or could not start: their outcomes say why), then
   * watches them: `outcome` gets each clone's end as it comes, a lost host's clones included.
   */
  run(outcome: (o: CloneOutcome) => void): void {
    const end = (o: CloneOutcome) => {
      if (this.#ended.has(o.id)) return;
      this.#ended.add(o.id);
      outcome(o);
    };
    const notStarted = (ids: number[], why: string) =>
      ids.forEach((id) => end({ ok: false, id, pid: 0, code: null, signal: null, reason: `clone ${id} could not start: ${why}` }));
    for (const p of this.#parts) {
      const host = p.link.host;
      let f: Frame | null;
      try {
        f = p.link.receive(60_000);
      } catch (e) {
        f = null;
        notStarted(p.ids, `no answer from host ${host}: ${(e as Error).message}`);
      }
      if (f?.type === 'failed') notStarted(p.ids, `on host ${host}: ${String(f.body.message)}`);
      else if (!f && p.link.closed)
        // As for a host lost later: its clones may have been forked before it went.
        p.ids.forEach((id) => end({ ok: false, id, pid: 0, code: null, signal: null, reason: `clone ${id} was lost with host ${host}: its connection closed before its clones ran` }));
      else if (f && f.type !== 'running') notStarted(p.ids, `host ${host} answered ${f.type}`);
    }
    for (const p of this.#parts) {
      if (p.ids.every((id) => this.#ended.has(id))) {
        p.link.close();
        continue;
      }
      p.link.adopt(
        (f) => {
          if (f.type === 'outcome') end(f.body.outcome as CloneOutcome);
          if (p.ids.every((id) => this.#ended.has(id))) p.link.unref();
        },
        (why) => {
          for (const id of p.ids)
            end({ ok: false, id, pid: 0, code: null, signal: null, reason: `clone ${id} was lost with host ${p.link.host}: ${why}` });
        },
      );
    }
  }

  /** Signals remote clone `id`; false when it ended already. */
  kill(id: number, signo: number): boolean {
    if (this.#ended.has(id)) return false;
    const p = this.#parts.find((x) => x.ids.includes(id));
    if (!p || p.link.closed) return false;
    p.link.send('kill', { id, signal: signo });
    return true;
  }

  /** Whether any clone is on another host. */
  get spans(): boolean {
    return this.#parts.length > 0;
  }
}

/** What a seed's ticket knows: its host's reservation. */
export interface SeedPart {
  reservation: Reservation | null;
  /** This host's clone ids. */
  ids: number[];
  /** @internal */
  cluster: Cluster;
}

function slotsFree(limit: number | undefined): number {
  try {
    return Math.max(0, (limit ?? hostLimit()) - usedSlots());
  } catch {
    return 0;
  }
}

function reserveUpTo(want: number, limit: number | undefined): Reservation | null {
  let n = Math.min(want, slotsFree(limit));
  // Another job may take slots between the count and the reservation: ask for less then.
  while (n > 0) {
    try {
      return reserve(n, limit);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      n = Math.min(n - 1, slotsFree(limit));
    }
  }
  return null;
}

/** A ticket's grant across hosts. */
export interface Grant {
  size: number;
  requested: number;
  hosts: TicketHost[];
  reservation: Reservation;
  remote: RemotePart | null;
  seed: SeedPart | null;
}

const noSlots: Reservation = { slots: 0, release() {} };

/** The seed has nothing more to do for the program: it ends without running it further. */
function leaveQuietly(): never {
  process.exitCode = 0;
  process.exit(0);
}

/**
 * requestTicket(n) in the origin or a seed of `c`: the grant. In the origin, m <= n slots on
 * every host (RangeError when no host has one free); in a seed, what its host admits of the
 * origin's offer (the seed's own n is not used: the origin decides).
 */
export function grantAcross(c: Cluster, n: number, limit?: number): Grant {
  spent = true;
  if (c.role === 'seed') {
    const link = c.links.get(0);
    const offer = link?.receive(-1) ?? null;
    if (!offer) leaveQuietly(); // the origin ended without asking
    if (offer.type !== 'offer') throw new Error(`sfnode: the origin sent ${offer.type} where an offer was due`);
    const want = Number(offer.body.slots);
    const r = want > 0 ? reserveUpTo(want, limit) : null;
    const got = r?.slots ?? 0;
    link!.send('granted', { slots: got, why: got < want ? `${os.hostname()} admits ${got} more clones (limit ${limit ?? hostLimit()}, ${usedSlots() - got} in use)` : '' });
    const t = link!.receive(-1);
    const ids = t?.type === 'ticket' ? (t.body.ids as number[]) : [];
    if (ids.length === 0) {
      // No clone here (the ticket took fewer, or the origin ended): nothing more for this seed.
      r?.release();
      leaveQuietly();
    }
    if (ids.length !== got) throw new Error(`sfnode: the origin placed ${ids.length} clones on this host, which reserved ${got}`);
    return {
      size: Number(t!.body.size), requested: Number(t!.body.requested), hosts: t!.body.hosts as TicketHost[],
      reservation: r ?? noSlots, remote: null, seed: { reservation: r, ids, cluster: c },
    };
  }
  const local = reserveUpTo(Math.min(n, Math.max(0, (c.slots[0] ?? 1) - 1)), limit);
  let next = (local?.slots ?? 0) + 1;
  const placement: TicketHost[] = [];
  if (local) placement.push({ host: c.hosts[0], ids: [...Array(local.slots).keys()].map((i) => i + 1) });
  const parts: { link: Link; ids: number[] }[] = [];
  const unused: Link[] = [];
  for (const [h, link] of [...c.links].sort((a, b) => a[0] - b[0])) {
    const want = Math.min(n - (next - 1), c.slots[h] ?? 0);
    let got = 0;
    try {
      link.send('offer', { slots: want });
      const f = link.receive(answerTimeoutMs());
      if (f?.type === 'granted') got = Math.min(want, Math.max(0, Number(f.body.slots) || 0));
    } catch {
      got = 0; // a seed gone before the ticket: its host has no slot to give
    }
    if (got === 0) {
      unused.push(link);
      continue;
    }
    const ids = [...Array(got).keys()].map((i) => next + i);
    next += got;
    parts.push({ link, ids });
    placement.push({ host: link.host, ids });
  }
  const size = next - 1;
  // Every seed learns the whole grant; those without a clone end here.
  for (const [, link] of c.links) {
    const ids = parts.find((p) => p.link === link)?.ids ?? [];
    try {
      link.send('ticket', { size, requested: n, hosts: placement, ids });
    } catch {
      /* a seed gone already */
    }
  }
  for (const l of unused) l.close();
  const remote = new RemotePart(local?.slots ?? 0, placement, parts);
  if (size === 0) throw new RangeError(`requestTicket(${n}): no clone slot is free on any of the hosts ${c.hosts.join(', ')}`);
  return { size, requested: n, hosts: placement, reservation: local ?? noSlots, remote, seed: null };
}

/**
 * clone(ticket, state) in a seed: waits for its clone ids, fetches the state, forks them. Returns
 * in each clone only (with its id, after `afterFork`); the seed itself minds them and exits.
 */
export function cloneInSeed(seed: SeedPart, afterFork: () => void): number {
  const link = seed.cluster.links.get(0)!;
  const release = () => seed.reservation?.release();
  const order = link.receive(-1);
  if (!order || order.type !== 'clone' || !order.body.go) {
    release();
    leaveQuietly();
  }
  const ids = seed.ids;
  const seq = Number(order.body.seq);
  let state: unknown;
  let domains: Domain[];
  try {
    state = seq > 0 ? fetchState(seq, 'clone(ticket, state)') : undefined;
    const created = createDomains(ids.length, linkFds());
    if (created.id !== 0) {
      afterFork();
      becomeClone(ids[created.id - 1], (created as { channelFd: number }).channelFd, state);
      return ids[created.id - 1];
    }
    domains = (created as Extract<typeof created, { id: 0 }>).domains;
  } catch (e) {
    link.send('failed', { message: (e as Error).message });
    release();
    leaveQuietly();
  }
  link.send('running', { ids, pids: domains.map((d) => d.pid) });
  mind(link, ids, domains);
  release();
  leaveQuietly();
}

/** The seed's life after its fork: outcomes up, kills down, until every clone ended. */
function mind(link: Link, ids: number[], domains: Domain[]): void {
  const live = new Map(domains.map((d) => [d.id, d]));
  let nap = 1;
  while (live.size > 0) {
    for (const [local, d] of live) {
      // waitSync rounds its deadline down: 2 ms is one poll of about 1 ms.
      const raw = d.waitSync(2);
      if (!raw) continue;
      live.delete(local);
      nap = 1;
      link.send('outcome', { outcome: toOutcome(ids[local - 1], raw) });
    }
    if (live.size === 0) break;
    let f: Frame | null;
    try {
      f = link.receive(nap);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ETIMEDOUT') throw e;
      nap = Math.min(50, nap * 2); // busy at first, then a nap between looks
      continue;
    }
    if (!f) {
      // The origin is gone: no clone outlives it.
      for (const d of live.values()) d.signal('SIGKILL');
      for (const d of live.values()) d.waitSync(2000);
      return;
    }
    if (f.type === 'kill') {
      const local = ids.indexOf(Number(f.body.id)) + 1;
      live.get(local)?.signal(Number(f.body.signal));
    }
  }
}
