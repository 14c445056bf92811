/**
 * The fork API for TypeScript: ask for a ticket, clone the running program, let clones exit with
 * a value, join them in the origin.
 *
 * @example
 * const ticket = requestTicket(8);
 * const id = clone(ticket);          // 0 here, 1..8 in the clones
 * if (id > 0) exit(sum(slice(id)));  // each clone hands back a value
 * const outcomes = await join(ticket);
 */
export { requestTicket, Ticket, type TicketOptions } from './ticket.js';
export type { TicketHost } from './hosts.js';
export { clone, cloneId, inheritedState } from './clone.js';
export { join, joinSync } from './join.js';
export { kill } from './kill.js';
export { exit } from './exit.js';
export { region, regionOf, regionTable, type RegionEntry } from './region.js';
export { hintOverwrite, isLazy, loadOnce, type LoadOnceOptions } from './share.js';
export { CloneRuntimeError } from './errors.js';
export type { CloneOutcome, CloneSuccess, CloneFailure } from '../guest-daemon/outcome.js';
