/**
 * Tickets: a grant of n clone slots (SnowFlock's ticket). Requesting one forks nothing; it only
 * reserves slots: on this host, failing with a clear error beyond its capacity; or, when sfnode
 * started the program across hosts, on those hosts (runtime/hosts.ts), granting m <= n.
 */
import os from 'node:os';
import { reserve, type Reservation } from '../dom0/admission.js';
import type { CloneOutcome } from '../guest-daemon/outcome.js';
import type { Domain } from '../xen/domain.js';
import { clusterFor, grantAcross, type RemotePart, type SeedPart, type TicketHost } from './hosts.js';
import { self } from './lifecycle.js';

/** Options of requestTicket. */
export interface TicketOptions {
  /** Host-wide limit of live clones to admit against (default: dom0's, see SFMPI_MAX_CLONES). */
  hostLimit?: number;
}

let nextTicket = 1;

/** Tickets of this process, by number; inherited ones are marked foreign in a fresh clone. */
export const tickets = new Map<number, Ticket>();

/** A grant of `size` clone slots. Use it once with clone(); then join() it. */
export class Ticket {
  /** Number of clones this ticket grants (across hosts it may be fewer than `requested`). */
  readonly size: number;
  /** The n asked of requestTicket(n). */
  readonly requested: number;
  /** Where its clones run: each host's name and clone ids, this host first. */
  readonly hosts: readonly TicketHost[];
  /** This ticket's number in its process (1, 2, ...), used in messages. */
  readonly number: number;
  /** @internal lifecycle: 'granted' → 'cloned' → 'joined' ('released' if given back unused). */
  phase: 'granted' | 'cloned' | 'joined' | 'released' = 'granted';
  /** @internal true in a clone for the tickets of the process it was forked from. */
  foreign = false;
  /** @internal the clones, once cloned (origin only). */
  domains: Domain[] = [];
  /** @internal each clone's outcome, by id - 1, as they arrive. */
  outcomes: (CloneOutcome | undefined)[] = [];
  /** @internal ms from clone() to each clone running, and in total. */
  forkMs: number[] = [];
  totalForkMs = 0;
  /** performance.now() when every clone was running (0 before clone()). */
  readyAt = 0;
  /** @internal the host slots held. */
  reservation: Reservation;
  /** @internal joiners waiting for every outcome. */
  waiters: ((outcomes: CloneOutcome[]) => void)[] = [];
  /** @internal the clones on other hosts (the origin of a program sfnode runs across hosts). */
  remote: RemotePart | null = null;
  /** @internal this host's part, in a seed. */
  seed: SeedPart | null = null;

  /** @internal use requestTicket() */
  constructor(size: number, reservation: Reservation, requested = size, hosts?: readonly TicketHost[]) {
    this.size = size;
    this.requested = requested;
    this.number = nextTicket++;
    this.reservation = reservation;
    this.hosts = hosts ?? [{ host: os.hostname(), ids: [...Array(size).keys()].map((i) => i + 1) }];
  }

  /** Gives the slots back without cloning (a ticket that was cloned is released by join). */
  release(): void {
    if (this.foreign || this.phase !== 'granted') return;
    this.phase = 'released';
    this.reservation.release();
    this.remote?.release();
    this.seed?.reservation?.release();
    tickets.delete(this.number);
  }
}

/**
 * Asks for `n` clone slots on this host. Throws TypeError for a non-integer n, RangeError for
 * n < 1 or beyond the host's admission limit; nothing is forked either way.
 *
 * Across hosts (`sfnode --hostfile ...`, the first ticket of the run): slots on this host first,
 * then on the others in host order, each host admitting what it can; the ticket grants
 * m <= n (`size`, with `requested` = n and `hosts` saying where), a RangeError only when no host
 * has a slot. In a seed (a host's copy of the program, re-run up to here) the call waits for the
 * origin's.
 */
export function requestTicket(n: number, options: TicketOptions = {}): Ticket {
  if (typeof n !== 'number' || !Number.isInteger(n))
    throw new TypeError(`requestTicket(n): n must be an integer, got ${typeof n === 'number' ? n : typeof n}`);
  if (n < 1) throw new RangeError(`requestTicket(n): n must be at least 1, got ${n}`);
  if (options.hostLimit !== undefined && (!Number.isInteger(options.hostLimit) || options.hostLimit < 0))
    throw new RangeError(`requestTicket(n, options): options.hostLimit must be a non-negative integer`);
  const c = clusterFor(self.id);
  let ticket: Ticket;
  if (c) {
    const g = grantAcross(c, n, options.hostLimit);
    ticket = new Ticket(g.size, g.reservation, g.requested, g.hosts);
    ticket.remote = g.remote;
    ticket.seed = g.seed;
  } else ticket = new Ticket(n, reserve(n, options.hostLimit));
  tickets.set(ticket.number, ticket);
  return ticket;
}
