/**
 * Groups (MPI_Group, mpi4py's `Group`): ordered sets of processes, local objects with no
 * communication. A group is a list of COMM_WORLD ranks; its rank i is the process at entry i.
 * `comm.group` makes one; `comm.create(group)` and `comm.createGroup(group)` (comm.ts) make a
 * communicator of its members.
 *
 * Every call here is local and checks its arguments at the boundary: ranks are ranks of THIS
 * group (0..size-1), as in MPI, never world ranks.
 */
import { MPIError, rangeError, typeError } from './errors.js';
import { PROC_NULL, runtime, UNDEFINED } from './core.js';

/** Group comparison results (MPI_IDENT, MPI_SIMILAR, MPI_UNEQUAL; MPICH's values). */
export const IDENT = 0;
/** Same members in another order (MPI_SIMILAR). */
export const SIMILAR = 2;
/** Different members (MPI_UNEQUAL). */
export const UNEQUAL = 3;
/** Same group, another communicator context (MPI_CONGRUENT, from communicator comparisons). */
export const CONGRUENT = 1;

/** A range triple of rangeIncl/rangeExcl: first rank, last rank, stride. */
export type RankRange = readonly [first: number, last: number, stride: number];

/** An ordered set of processes. */
export class Group {
  readonly #world: readonly number[];
  #freed = false;

  /** @internal from the world ranks of the members, in group order (use comm.group). */
  constructor(world: readonly number[]) {
    this.#world = world;
  }

  /** Number of members. */
  get size(): number {
    return this.#world.length;
  }

  /** This process's rank in the group, or MPI.UNDEFINED when it is not a member. */
  get rank(): number {
    const i = this.#world.indexOf(runtime.worldRank);
    return i < 0 ? UNDEFINED : i;
  }

  /** @internal the COMM_WORLD rank of each member. */
  get _world(): readonly number[] {
    this.#live('group');
    return this.#world;
  }

  #live(where: string): void {
    if (this.#freed) throw new MPIError('ERR_ARG', `${where}: the group has been freed`);
  }

  static #of(where: string, name: string, g: unknown): Group {
    if (!(g instanceof Group)) throw typeError(where, `${name} must be a Group (comm.group, group.incl, ...)`, g);
    g.#live(where);
    return g;
  }

  /** Ranks of this group, each checked (integer, in range, no repeats). */
  #ranks(where: string, ranks: unknown, name = 'ranks'): number[] {
    if (!Array.isArray(ranks) && !ArrayBuffer.isView(ranks)) throw typeError(where, `${name} must be an array of ranks of the group`, ranks);
    const out = Array.from(ranks as ArrayLike<number>);
    const seen = new Set<number>();
    out.forEach((r, i) => {
      if (typeof r !== 'number' || !Number.isInteger(r)) throw typeError(where, `${name}[${i}] must be an integer rank`, r);
      if (r < 0 || r >= this.size) throw rangeError(where, `${name}[${i}] is rank ${r}, out of range for a group of size ${this.size}`);
      if (seen.has(r)) throw rangeError(where, `${name}[${i}] repeats rank ${r}`);
      seen.add(r);
    });
    return out;
  }

  /** The ranks in `other` of this group's `ranks` (MPI_UNDEFINED where absent, PROC_NULL stays). */
  translateRanks(ranks: ArrayLike<number>, other: Group): number[] {
    const where = 'group.translateRanks';
    this.#live(where);
    const o = Group.#of(where, 'other', other);
    if (!Array.isArray(ranks) && !ArrayBuffer.isView(ranks)) throw typeError(where, 'ranks must be an array of ranks of the group', ranks);
    return Array.from(ranks, (r, i) => {
      if (r === PROC_NULL) return PROC_NULL;
      if (typeof r !== 'number' || !Number.isInteger(r)) throw typeError(where, `ranks[${i}] must be an integer rank`, r);
      if (r < 0 || r >= this.size) throw rangeError(where, `ranks[${i}] is rank ${r}, out of range for a group of size ${this.size}`);
      const j = o.#world.indexOf(this.#world[r]);
      return j < 0 ? UNDEFINED : j;
    });
  }

  /** MPI.IDENT (same members, same order), MPI.SIMILAR (same members) or MPI.UNEQUAL. */
  compare(other: Group): number {
    this.#live('group.compare');
    const o = Group.#of('group.compare', 'other', other);
    const a = this.#world, b = o.#world;
    if (a.length !== b.length) return UNEQUAL;
    if (a.every((w, i) => w === b[i])) return IDENT;
    const s = new Set(b);
    return a.every((w) => s.has(w)) ? SIMILAR : UNEQUAL;
  }

  /** The members at `ranks`, in that order (MPI_Group_incl). */
  incl(ranks: ArrayLike<number>): Group {
    this.#live('group.incl');
    return new Group(this.#ranks('group.incl', ranks).map((r) => this.#world[r]));
  }

  /** Every member but those at `ranks`, in group order (MPI_Group_excl). */
  excl(ranks: ArrayLike<number>): Group {
    this.#live('group.excl');
    const drop = new Set(this.#ranks('group.excl', ranks));
    return new Group(this.#world.filter((_, i) => !drop.has(i)));
  }

  /** The ranks of range triples, checked, in order. */
  #expand(where: string, ranges: unknown): number[] {
    if (!Array.isArray(ranges)) throw typeError(where, 'ranges must be an array of [first, last, stride] triples', ranges);
    const out: number[] = [];
    ranges.forEach((t, i) => {
      if (!Array.isArray(t) || t.length !== 3 || !t.every((x) => Number.isInteger(x))) throw typeError(where, `ranges[${i}] must be a triple of integers [first, last, stride]`, t);
      const [first, last, stride] = t as number[];
      if (stride === 0) throw rangeError(where, `ranges[${i}] has stride 0`);
      for (const r of [first, last]) if (r < 0 || r >= this.size) throw rangeError(where, `ranges[${i}] names rank ${r}, out of range for a group of size ${this.size}`);
      if ((last - first) * stride < 0) throw rangeError(where, `ranges[${i}] [${first}, ${last}, ${stride}] runs away from its last rank`);
      for (let r = first; stride > 0 ? r <= last : r >= last; r += stride) out.push(r);
    });
    return this.#ranks(where, out, 'ranges');
  }

  /** The members of range triples `[first, last, stride]`, in order (MPI_Group_range_incl). */
  rangeIncl(ranges: readonly RankRange[]): Group {
    this.#live('group.rangeIncl');
    return new Group(this.#expand('group.rangeIncl', ranges).map((r) => this.#world[r]));
  }

  /** Every member but those of the range triples, in group order (MPI_Group_range_excl). */
  rangeExcl(ranges: readonly RankRange[]): Group {
    this.#live('group.rangeExcl');
    const drop = new Set(this.#expand('group.rangeExcl', ranges));
    return new Group(this.#world.filter((_, i) => !drop.has(i)));
  }

  /** This group's members, then those of `other` not in it (MPI_Group_union). */
  union(other: Group): Group {
    this.#live('group.union');
    const o = Group.#of('group.union', 'other', other);
    const mine = new Set(this.#world);
    return new Group([...this.#world, ...o.#world.filter((w) => !mine.has(w))]);
  }

  /** This group's members that are also in `other`, in this group's order (MPI_Group_intersection). */
  intersection(other: Group): Group {
    this.#live('group.intersection');
    const theirs = new Set(Group.#of('group.intersection', 'other', other).#world);
    return new Group(this.#world.filter((w) => theirs.has(w)));
  }

  /** This group's members that are not in `other`, in this group's order (MPI_Group_difference). */
  difference(other: Group): Group {
    this.#live('group.difference');
    const theirs = new Set(Group.#of('group.difference', 'other', other).#world);
    return new Group(this.#world.filter((w) => !theirs.has(w)));
  }

  /** Releases the group; later calls on it throw ERR_ARG (communicators made from it live on). */
  free(): void {
    this.#live('group.free');
    if (this === GROUP_EMPTY) throw new MPIError('ERR_ARG', 'group.free: MPI.GROUP_EMPTY cannot be freed');
    this.#freed = true;
  }

  /** @internal checks `g` is a live Group (for comm.create and windows). */
  static _check(where: string, name: string, g: unknown): Group {
    return Group.#of(where, name, g);
  }
}

/** The group with no members (MPI_GROUP_EMPTY). */
export const GROUP_EMPTY: Group = new Group([]);
