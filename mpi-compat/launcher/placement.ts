/**
 * Placement: which host runs which world rank. Input: hosts with slots (a hostfile, `--host`, or
 * the Slurm allocation: {@link hostsFor}); output: a {@link Plan}, one entry per host that gets
 * ranks, each with its world ranks in order and their local numbering. Pure: no DNS, no ssh.
 *
 * Rules, each as Open MPI does it (checked against Open MPI 4.1.4's own mapper, `mpirun
 * --do-not-launch --display-map`, in test/launcher/20.placement.test.ts):
 *
 * 1. Rank 0, the origin, runs on the host where sfmpirun runs when that host is in the list,
 *    under any of its names (hostname, short hostname, `localhost`, any local address; several
 *    such entries are one host): that host moves to the front and the others keep their order.
 *    Otherwise the list's first host takes rank 0. This is what Open MPI does (its mpirun's own
 *    node is first whatever the hostfile order; measured: `aa slots=2, bb slots=2, vm slots=2`
 *    run on vm puts ranks 0-1 on vm). MPICH's hydra instead follows the list, rank 0 on its first
 *    host: `origin: 'first'` asks for that. We take Open MPI's rule because the origin is the
 *    process the user started, holding the terminal and whatever it loaded before its fork
 *    point: starting it anywhere else costs an ssh hop and a remote re-run for nothing. The
 *    hostfile decides only when sfmpirun runs on a host outside it (a login node).
 * 2. `mapBy: 'slot'` (the default) fills hosts in order, each up to its slots: `aa:4,bb:4,cc:4
 *    -n 6` = aa 0-3, bb 4-5. `mapBy: 'node'` numbers ranks round robin over the hosts: aa 0 3,
 *    bb 1 4, cc 2 5; on hosts of unequal slots, how many each takes follows Open MPI 4.1's
 *    balancing (see balanceByNode).
 * 3. More ranks than slots is an error naming both numbers unless `oversubscribe`. Then, by
 *    slot: every host is filled to its slots and the rest is spread evenly over the hosts below
 *    their `max_slots`, the first hosts taking one more (`-n 14` on 4/4/4 = 5, 5, 4); by node:
 *    all ranks are spread evenly regardless of slots. `max_slots` is a hard cap, as Open MPI 5
 *    documents (Open MPI 4.1.4 ignored it when oversubscribing); beyond every cap, an error.
 * 4. A host that gets no rank is left out of the plan (no dom0 is started there).
 */
import dns from 'node:dns';
import net from 'node:net';
import os from 'node:os';
import { mergeHosts, PlacementError, parseHostOption, readHostfile, type HostSpec } from './hostfile.js';
import { inSlurmAllocation, slurmAllocation, type SlurmAllocation } from './slurm.js';

export { PlacementError, type HostSpec } from './hostfile.js';

/** How ranks are dealt to hosts: `slot` fills each host in turn, `node` goes round robin. */
export type MapBy = 'slot' | 'node';

/** The names and addresses under which this host may appear in a host list. */
export interface LocalIdentity {
  /** Host names, lower case (the hostname as the kernel has it; a short listed name matches
   * its first label). */
  names: string[];
  /** IPv4 addresses of this host's interfaces (loopback included). */
  addresses: string[];
}

/** This host's identity from `os.hostname()` and `os.networkInterfaces()`. */
export function localIdentity(): LocalIdentity {
  const names = [os.hostname().toLowerCase()];
  const addresses: string[] = [];
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4') addresses.push(a.address);
  return { names, addresses };
}

/** Whether `name` (from a host list) denotes this host: `localhost`, a loopback or local
 * address, the hostname, or the same first label when either side is not fully qualified. */
export function isLocalHost(name: string, id: LocalIdentity): boolean {
  const n = name.toLowerCase();
  if (net.isIPv4(n)) return n.startsWith('127.') || id.addresses.includes(n);
  if (n === 'localhost' || n === 'localhost.localdomain') return true;
  const short = n.split('.')[0];
  for (const local of id.names) {
    if (local === n) return true;
    if ((!n.includes('.') || !local.includes('.')) && local.split('.')[0] === short) return true;
  }
  return false;
}

/** What {@link place} needs besides the hosts. */
export interface PlacementOptions {
  /** Number of ranks (`-n`), a positive integer. */
  np: number;
  /** `slot` (default) or `node`. */
  mapBy?: MapBy;
  /** Allow more ranks than slots (never beyond max_slots). Default false. */
  oversubscribe?: boolean;
  /** Who "this host" is; default {@link localIdentity}(). */
  local?: LocalIdentity;
  /** `local` (default): rank 0 on this host when it is listed; `first`: on the list's first host. */
  origin?: 'local' | 'first';
}

/** One host of a plan. */
export interface HostPlan {
  /** As written in the host list: the ssh target (or the Slurm node name). */
  name: string;
  /** How to reach it: the IPv4 address when the list gave one, else the name until
   * {@link resolveAddresses} fills in the address. */
  address: string;
  /** Slots it was given. */
  slots: number;
  /** Its max_slots cap (null: none). */
  maxSlots: number | null;
  /** True for the host sfmpirun runs on. */
  local: boolean;
  /** Where the host was listed (`hosts:3`, `--host`, `SLURM_JOB_NODELIST`). */
  origin: string;
  /** Its world ranks, ascending; `ranks[i]` has local rank i, `ranks[0]` is the host's seed
   * (the origin itself on the host of rank 0). */
  ranks: number[];
}

/** Where every rank runs. */
export interface Plan {
  /** World size (`-n`). */
  size: number;
  mapBy: MapBy;
  /** Hosts with at least one rank; `hosts[0]` holds rank 0. */
  hosts: HostPlan[];
  /** rank -> index into `hosts`. */
  hostOfRank: number[];
  /** rank -> its local rank on its host. */
  localRankOf: number[];
  /** True when some host runs more ranks than its slots. */
  oversubscribed: boolean;
}

function hostSummary(hosts: HostSpec[], what: (h: HostSpec) => string): string {
  const shown = hosts.slice(0, 8).map((h) => `${h.name} ${what(h)}`);
  if (hosts.length > 8) shown.push(`and ${hosts.length - 8} more`);
  return shown.join(', ');
}

/** Entries naming this host under different names become one, at the first one's place. */
function mergeLocal(hosts: HostSpec[], id: LocalIdentity): { hosts: HostSpec[]; localIndex: number } {
  const out: HostSpec[] = [];
  let localIndex = -1;
  for (const h of hosts) {
    if (!isLocalHost(h.name, id)) {
      out.push({ ...h });
      continue;
    }
    if (localIndex < 0) {
      localIndex = out.length;
      out.push({ ...h });
      continue;
    }
    const l = out[localIndex];
    l.maxSlots = l.maxSlots === null || h.maxSlots === null ? null : l.maxSlots + h.maxSlots;
    l.slots += h.slots;
  }
  return { hosts: out, localIndex };
}

/** Spreads `n` more ranks evenly over the hosts below their cap, the first ones taking one
 * more, until all are placed; false if every host reaches its cap first. */
function spread(counts: number[], hosts: HostSpec[], n: number): boolean {
  let left = n;
  while (left > 0) {
    const open = hosts.map((h, i) => i).filter((i) => hosts[i].maxSlots === null || counts[i] < (hosts[i].maxSlots as number));
    if (open.length === 0) return false;
    const base = Math.floor(left / open.length);
    const extra = left % open.length;
    for (const [k, i] of open.entries()) {
      const want = base + (k < extra ? 1 : 0);
      const cap = hosts[i].maxSlots === null ? Infinity : (hosts[i].maxSlots as number) - counts[i];
      const give = Math.min(want, cap);
      counts[i] += give;
      left -= give;
    }
  }
  return true;
}

/**
 * How many ranks each host takes by node when they fit in the slots: Open MPI 4.1's
 * orte_rmaps_rr_bynode, so that uneven hosts come out as Open MPI's do. Each pass aims at the
 * average of what is left per host still open (the first hosts one more), a host with fewer
 * free slots takes them all, and the shortfall goes to the next pass. (`1,4,3,3 -n 10` = 1, 4,
 * 3, 2; a plain round robin would give 1, 3, 3, 3.)
 */
function balanceByNode(counts: number[], hosts: HostSpec[], np: number): void {
  let mapped = 0;
  let open = hosts.length;
  do {
    const left = np - mapped;
    const avg = Math.max(1, Math.floor(left / open));
    const balance = (left - avg * open) / open;
    let extra = Math.trunc(balance);
    let extraHosts = 0;
    let addOne = false;
    if (balance - extra > 0) {
      extraHosts = left - (avg + extra) * open;
      extra++;
      addOne = true;
    }
    open = 0;
    for (let i = 0; i < hosts.length && mapped < np; i++) {
      const free = hosts[i].slots - counts[i];
      if (free <= 0) continue;
      if (addOne) {
        if (extraHosts === 0) {
          extra--;
          addOne = false;
        } else extraHosts--;
      }
      open++;
      const take = Math.min(free, avg + extra, np - mapped);
      counts[i] += take;
      mapped += take;
    }
  } while (mapped < np && open > 0);
}

/**
 * Places `opts.np` ranks on `hosts` (see the rules at the top of this file). Throws a
 * PlacementError: ERR_NO_HOSTS for an empty list, ERR_OVERSUBSCRIBED when the ranks do not fit
 * (naming -n, the slots and the hosts), ERR_PLACEMENT_OPTION for a bad option.
 */
export function place(hosts: readonly HostSpec[], opts: PlacementOptions): Plan {
  const np = opts.np;
  if (!Number.isSafeInteger(np) || np < 1)
    throw new PlacementError('ERR_PLACEMENT_OPTION', `-n must be a positive integer, got ${String(np)}`);
  const mapBy = opts.mapBy ?? 'slot';
  if (mapBy !== 'slot' && mapBy !== 'node')
    throw new PlacementError('ERR_PLACEMENT_OPTION', `--map-by must be slot or node, got "${String(mapBy)}"`);
  const originRule = opts.origin ?? 'local';
  if (originRule !== 'local' && originRule !== 'first')
    throw new PlacementError('ERR_PLACEMENT_OPTION', `origin must be "local" or "first", got "${String(originRule)}"`);
  if (hosts.length === 0) throw new PlacementError('ERR_NO_HOSTS', 'no hosts to run on');

  const merged = mergeLocal(mergeHosts(hosts), opts.local ?? localIdentity());
  const list = merged.hosts;
  if (originRule === 'local' && merged.localIndex > 0) list.unshift(...list.splice(merged.localIndex, 1));
  const isLocal = list.map((_, i) => (originRule === 'local' ? i === 0 && merged.localIndex >= 0 : i === merged.localIndex));

  const total = list.reduce((s, h) => s + h.slots, 0);
  if (np > total && !opts.oversubscribe)
    throw new PlacementError(
      'ERR_OVERSUBSCRIBED',
      `-n ${np} is more than the ${total} slot${total === 1 ? '' : 's'} of ${list.length === 1 ? 'the host' : `the ${list.length} hosts`} (${hostSummary(list, (h) => String(h.slots))}); add --oversubscribe to run more ranks than slots`,
    );

  const counts = list.map(() => 0);
  let ok = true;
  if (mapBy === 'slot') {
    let left = np;
    for (let i = 0; i < list.length && left > 0; i++) {
      counts[i] = Math.min(list[i].slots, left);
      left -= counts[i];
    }
    if (left > 0) ok = spread(counts, list, left);
  } else if (np <= total) balanceByNode(counts, list, np);
  else ok = spread(counts, list, np);
  if (!ok) {
    const cap = list.reduce((s, h) => s + (h.maxSlots ?? 0), 0);
    throw new PlacementError(
      'ERR_OVERSUBSCRIBED',
      `-n ${np} is more than max_slots allows: at most ${cap} rank${cap === 1 ? '' : 's'} on these hosts (${hostSummary(list, (h) => `max ${h.maxSlots}`)})`,
    );
  }

  // Ranks: contiguous per host by slot; round robin over the hosts' counts by node.
  const ranks: number[][] = list.map(() => []);
  if (mapBy === 'slot') {
    let r = 0;
    for (let i = 0; i < list.length; i++) for (let k = 0; k < counts[i]; k++) ranks[i].push(r++);
  } else {
    for (let r = 0, round = 0; r < np; round++)
      for (let i = 0; i < list.length && r < np; i++) if (counts[i] > round) ranks[i].push(r++);
  }

  const hostsOut: HostPlan[] = [];
  const hostOfRank = new Array<number>(np);
  const localRankOf = new Array<number>(np);
  for (let i = 0; i < list.length; i++) {
    if (ranks[i].length === 0) continue;
    const h = list[i];
    const index = hostsOut.length;
    ranks[i].forEach((r, k) => {
      hostOfRank[r] = index;
      localRankOf[r] = k;
    });
    hostsOut.push({
      name: h.name,
      address: h.name,
      slots: h.slots,
      maxSlots: h.maxSlots,
      local: isLocal[i],
      origin: h.origin,
      ranks: ranks[i],
    });
  }
  return {
    size: np,
    mapBy,
    hosts: hostsOut,
    hostOfRank,
    localRankOf,
    oversubscribed: list.some((h, i) => counts[i] > h.slots),
  };
}

/** Where the hosts came from, and the hosts. */
export interface HostSource {
  source: 'hostfile' | 'host' | 'slurm';
  hosts: HostSpec[];
  /** The allocation, when source is `slurm`. */
  slurm?: SlurmAllocation;
}

/**
 * The hosts for a job from what the user gave: `--hostfile`, else the Slurm allocation when
 * inside one (`SLURM_JOB_ID` set), else `--host`; with `--host` beside a hostfile or an
 * allocation, `--host` picks hosts from it (as Open MPI does; a `:N` there caps that host's
 * slots at N). Null when none applies: a single-host job as before. Throws PlacementError.
 */
export function hostsFor(given: { hostfile?: string; host?: string; env?: NodeJS.ProcessEnv }): HostSource | null {
  const env = given.env ?? process.env;
  let base: HostSource | null = null;
  if (given.hostfile !== undefined) base = { source: 'hostfile', hosts: readHostfile(given.hostfile) };
  else if (inSlurmAllocation(env)) {
    const slurm = slurmAllocation(env);
    base = { source: 'slurm', hosts: slurm.hosts, slurm };
  }
  if (given.host === undefined) return base;
  const picked = parseHostOption(given.host);
  if (!base) return { source: 'host', hosts: picked };
  const from = base.source === 'hostfile' ? `hostfile ${given.hostfile}` : 'the Slurm allocation';
  const counted = new Set(
    given.host
      .split(',')
      .filter((item) => item.includes(':'))
      .map((item) => item.trim().slice(0, item.trim().lastIndexOf(':')).toLowerCase()),
  );
  const hosts: HostSpec[] = [];
  for (const p of picked) {
    const h = base.hosts.find((b) => b.name.toLowerCase() === p.name.toLowerCase());
    if (!h) throw new PlacementError('ERR_HOST_OPTION', `--host: "${p.name}" is not in ${from}`);
    hosts.push({ ...h, slots: counted.has(p.name.toLowerCase()) ? Math.min(h.slots, p.slots) : h.slots });
  }
  return { ...base, hosts };
}

/** Parses `--map-by` the way Open MPI spells it: `slot` or `node`, with optional
 * `:OVERSUBSCRIBE` / `:NOOVERSUBSCRIBE` (any case). Other objects are a PlacementError. */
export function parseMapBy(value: string): { mapBy: MapBy; oversubscribe?: boolean } {
  const [object, ...qualifiers] = value.toLowerCase().split(':');
  if (object !== 'slot' && object !== 'node')
    throw new PlacementError('ERR_PLACEMENT_OPTION', `--map-by ${value}: only slot and node are supported`);
  const out: { mapBy: MapBy; oversubscribe?: boolean } = { mapBy: object };
  for (const q of qualifiers) {
    if (q === 'oversubscribe') out.oversubscribe = true;
    else if (q === 'nooversubscribe') out.oversubscribe = false;
    else throw new PlacementError('ERR_PLACEMENT_OPTION', `--map-by ${value}: unknown qualifier "${q}" (OVERSUBSCRIBE or NOOVERSUBSCRIBE)`);
  }
  return out;
}

/** Looks a name up as IPv4, like dns.promises.lookup(name, { family: 4 }). */
export type Lookup4 = (name: string) => Promise<string>;

const systemLookup: Lookup4 = async (name) => (await dns.promises.lookup(name, { family: 4 })).address;

/**
 * Fills in each host's IPv4 `address` (hosts listed by address keep it). Rejects with a
 * PlacementError naming the host when a name does not resolve, or resolves to a loopback
 * address in a plan of several hosts (Debian maps its own hostname to 127.0.1.1: the other
 * hosts could not reach it there).
 */
export async function resolveAddresses(plan: Plan, lookup: Lookup4 = systemLookup): Promise<Plan> {
  const hosts = await Promise.all(
    plan.hosts.map(async (h) => {
      if (net.isIPv4(h.name)) return { ...h, address: h.name };
      let address: string;
      try {
        address = await lookup(h.name);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new PlacementError('ERR_NO_HOSTS', `host ${h.name} (${h.origin}) does not resolve to an IPv4 address${code ? ` (${code})` : ''}`);
      }
      if (plan.hosts.length > 1 && address.startsWith('127.'))
        throw new PlacementError(
          'ERR_NO_HOSTS',
          `host ${h.name} (${h.origin}) resolves to ${address}, a loopback address the other hosts cannot reach; list it by its address or fix /etc/hosts`,
        );
      return { ...h, address };
    }),
  );
  return { ...plan, hosts };
}
