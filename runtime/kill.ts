/** kill(): ends clones early. */
import { errors } from './errors.js';
import type { Ticket } from './ticket.js';

/**
 * Sends `signal` (default SIGKILL) to clone `id` of the ticket, or to all of them. Returns how
 * many clones were still there to receive it. join() then reports them as killed.
 */
export function kill(ticket: Ticket, id?: number, signal: NodeJS.Signals | number = 'SIGKILL'): number {
  if (ticket.foreign) throw errors.foreignTicket('kill', ticket.number);
  if (ticket.phase === 'granted' || ticket.phase === 'released') throw errors.notCloned('kill', ticket.number);
  if (id !== undefined && (!Number.isInteger(id) || id < 1 || id > ticket.size))
    throw errors.badId(ticket.number, id, ticket.size);
  const targets = id === undefined ? ticket.domains : [ticket.domains[id - 1]];
  let sent = 0;
  for (const d of targets) if (!ticket.outcomes[d.id - 1] && d.signal(signal)) sent++;
  return sent;
}
