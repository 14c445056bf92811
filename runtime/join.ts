/** join(): the origin's side of a clone's end. */
import { toOutcome, type CloneOutcome } from '../guest-daemon/outcome.js';
import { settle } from './clone.js';
import { errors } from './errors.js';
import type { Ticket } from './ticket.js';

function check(verb: string, ticket: Ticket): void {
  if (ticket.foreign) throw errors.foreignTicket(verb, ticket.number);
  if (ticket.phase === 'granted' || ticket.phase === 'released') throw errors.notCloned(verb, ticket.number);
}

/**
 * Resolves, once every clone of the ticket has ended, with each clone's outcome in id order:
 * its exit(value), or how it failed (exit code, signal, uncaught error). Never rejects for a
 * clone's failure: a failure is an outcome. Rejects at once for misuse (join before clone).
 */
export function join(ticket: Ticket): Promise<CloneOutcome[]> {
  try {
    check('join', ticket);
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise((resolve) => {
    ticket.waiters.push(resolve);
    settle(ticket);
  });
}

/**
 * Blocks until every clone of the ticket has ended; the outcomes as join() gives them. For the
 * places where MPI users expect a blocking call (finalize). The event loop does not run meanwhile.
 * @param timeoutMs give up after this long (-1: never) with an Error naming the clones still running
 */
export function joinSync(ticket: Ticket, timeoutMs = -1): CloneOutcome[] {
  check('joinSync', ticket);
  if (ticket.remote?.spans) throw errors.remoteSync(ticket.number);
  const deadline = timeoutMs < 0 ? Infinity : Date.now() + timeoutMs;
  for (const d of ticket.domains) {
    if (ticket.outcomes[d.id - 1]) continue;
    const left = deadline === Infinity ? -1 : Math.max(0, deadline - Date.now());
    const raw = d.waitSync(left);
    if (raw === null) {
      const running = ticket.domains.filter((x) => !ticket.outcomes[x.id - 1]).map((x) => x.id);
      throw new Error(`joinSync(ticket ${ticket.number}): clones ${running.join(', ')} still running after ${timeoutMs} ms`);
    }
    ticket.outcomes[d.id - 1] = toOutcome(d.id, raw);
  }
  settle(ticket);
  return ticket.outcomes as CloneOutcome[];
}
