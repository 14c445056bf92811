/**
 * clone(): the fork point. Every clone continues from here with the whole state of the process
 * (heap, closures, typed arrays, loaded modules); only the return value differs.
 */
import v8 from 'node:v8';
import { isMainThread } from 'node:worker_threads';
import { toOutcome } from '../guest-daemon/outcome.js';
import { createDomains } from '../xen/domain.js';
import { errors } from './errors.js';
import { cloneInSeed, linkFds } from './hosts.js';
import { becomeClone, self } from './lifecycle.js';
import { checkState } from './state.js';
import { tickets, type Ticket } from './ticket.js';

// V8 drops the bytecode of a function that has not run for a few major GCs, to be compiled again
// if it ever runs. In a process that clones, what the origin drops every clone compiles again on
// its own, each time: the code only clones run (becomeClone) first of all, but also whatever the
// origin ran long ago and its clones run now. So an origin keeps its bytecode.
v8.setFlagsFromString('--no-flush-bytecode');

/**
 * Forks `ticket.size` clones of this running process. Returns this process's clone id: 0 in the
 * origin, 1..n in the clones, which resume right here. Synchronous: when it returns in the
 * origin, every clone is running.
 *
 * @param state handed to every clone (read it with `inheritedState()`); on this host it is
 *   simply inherited with the rest of memory, no copy is made. Clones on other hosts (sfnode
 *   across hosts) get it from a descriptor: small values from its state blob, large typed arrays
 *   as lazy regions, as of this call.
 * @throws CloneRuntimeError ERR_TICKET_USED / ERR_TICKET_RELEASED / ERR_FOREIGN_TICKET /
 *   ERR_NOT_MAIN_THREAD (called from a worker thread)
 * @throws TypeError when `state` could not travel to a clone on another host (a function, a
 *   symbol, a WeakMap...), naming the part: checked on every host alike.
 * @throws Error with the failed syscall if the kernel refuses the fork (nothing is left behind).
 */
export function clone(ticket: Ticket, state?: unknown): number {
  // fork(2) copies only the calling thread: a clone of a worker thread would have no main thread.
  if (!isMainThread) throw errors.notMainThread();
  if (ticket.foreign) throw errors.foreignTicket('clone', ticket.number);
  if (ticket.phase === 'released') throw errors.ticketReleased(ticket.number);
  if (ticket.phase !== 'granted') throw errors.ticketUsed(ticket.number);
  if (state !== undefined) checkState(state);
  ticket.phase = 'cloned';
  // A seed (this host's copy of a program run across hosts) forks the clones the origin gave it.
  if (ticket.seed) return cloneInSeed(ticket.seed, afterForkInClone);
  const remote = ticket.remote;
  ticket.outcomes = new Array(ticket.size).fill(undefined);
  remote?.start(state);
  const local = remote ? remote.local : ticket.size;

  if (local > 0) {
    // A nested clone must not hand its own channel upward to its children; nor may a clone keep
    // the origin's links to other hosts (their seeds must see the origin's end as its end).
    const created = createDomains(local, self.id > 0 ? [self.channelFd] : linkFds());
    if (created.id !== 0) {
      afterForkInClone();
      becomeClone(created.id, (created as { channelFd: number }).channelFd, state);
      return created.id;
    }
    const origin = created as Extract<typeof created, { id: 0 }>;
    ticket.domains = origin.domains;
    ticket.forkMs = origin.forkMs;
    ticket.totalForkMs = origin.totalMs;
    ticket.readyAt = origin.readyAt;
  }
  remote?.run((o) => {
    ticket.outcomes[o.id - 1] = o;
    settle(ticket);
  });
  if (remote) ticket.readyAt = performance.now();
  for (const domain of ticket.domains) {
    domain.wait().then((raw) => {
      ticket.outcomes[domain.id - 1] = toOutcome(domain.id, raw);
      settle(ticket);
    });
  }
  return 0;
}

/** Resolves the joiners once every outcome is in, and gives the slots back. */
export function settle(ticket: Ticket): void {
  if (ticket.outcomes.some((o) => o === undefined)) return;
  if (ticket.phase === 'cloned') {
    ticket.phase = 'joined';
    ticket.reservation.release();
    tickets.delete(ticket.number);
  }
  const outcomes = ticket.outcomes as NonNullable<(typeof ticket.outcomes)[number]>[];
  for (const resolve of ticket.waiters.splice(0)) resolve(outcomes);
}

/**
 * @internal For MPI.init, whose job control is native (native/proc/watch.c): takes the clones of
 * `ticket` out of the runtime's watch and returns their pids in id order; the caller watches and
 * reaps them, and gives the ticket's slots back with `release()` once they are gone. join() and
 * kill() no longer apply to the ticket.
 */
export function handOver(ticket: Ticket): { pids: number[]; release(): void } {
  if (ticket.phase !== 'cloned') throw errors.notCloned('handOver', ticket.number);
  ticket.phase = 'joined';
  const pids = ticket.domains.map((d) => d.pid);
  for (const d of ticket.domains) d.forget();
  tickets.delete(ticket.number);
  return { pids, release: () => ticket.reservation.release() };
}

/** In a fresh clone: what was the parent's is not ours. Compiled with the module (the
 * parentheses), like becomeClone, so that no clone compiles it. */
const afterForkInClone = (function afterForkInClone(): void {
  for (const t of tickets.values()) {
    t.foreign = true;
    for (const d of t.domains) d.forget();
  }
  tickets.clear();
});

/** What the parent handed to clone(ticket, state); undefined in the origin. */
export function inheritedState<T = unknown>(): T | undefined {
  return self.state as T | undefined;
}

/** This process's clone id: 0 in the origin, 1..n in a clone. */
export function cloneId(): number {
  return self.id;
}
