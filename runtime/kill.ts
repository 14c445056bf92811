/** kill(): ends clones early, on this host or (sfnode across hosts) on others. */
import os from 'node:os';
import { errors } from './errors.js';
import type { Ticket } from './ticket.js';

/**
 * Sends `signal` (default SIGKILL) to clone `id` of the ticket, or to all of them. Returns how
 * many clones were still there to receive it. join() then reports them as killed. A clone on
 * another host gets it through its seed; it counts as there while its end has not arrived.
 */
export function kill(ticket: Ticket, id?: number, signal: NodeJS.Signals | number = 'SIGKILL'): number {
  if (ticket.foreign) throw errors.foreignTicket('kill', ticket.number);
  if (ticket.phase === 'granted' || ticket.phase === 'released') throw errors.notCloned('kill', ticket.number);
  if (id !== undefined && (!Number.isInteger(id) || id < 1 || id > ticket.size))
    throw errors.badId(ticket.number, id, ticket.size);
  const remote = ticket.remote;
  const local = remote ? remote.local : ticket.size;
  const signo = typeof signal === 'number' ? signal : os.constants.signals[signal];
  if (signo === undefined) throw new RangeError(`unknown signal ${String(signal)}`);
  const ids = id === undefined ? [...Array(ticket.size).keys()].map((i) => i + 1) : [id];
  let sent = 0;
  for (const i of ids) {
    if (ticket.outcomes[i - 1]) continue;
    // Clones 1..local run here; the others on the hosts of ticket.hosts, whose seeds pass it on.
    if (i <= local ? ticket.domains[i - 1].signal(signo) : remote!.kill(i, signo)) sent++;
  }
  return sent;
}
