/** The runtime's error catalogue: every misuse has a class of error and a stable `code`. */

/** An error of the clone runtime; `code` is stable across versions, the message is for people. */
export class CloneRuntimeError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'CloneRuntimeError';
  }
}

export const errors = {
  ticketUsed: (ticket: number) =>
    new CloneRuntimeError('ERR_TICKET_USED', `clone(ticket ${ticket}): this ticket was already used; request a new ticket`),
  ticketReleased: (ticket: number) =>
    new CloneRuntimeError('ERR_TICKET_RELEASED', `clone(ticket ${ticket}): this ticket was released; request a new ticket`),
  notCloned: (verb: string, ticket: number) =>
    new CloneRuntimeError('ERR_NOT_CLONED', `${verb}(ticket ${ticket}): clone() has not been called on this ticket`),
  foreignTicket: (verb: string, ticket: number) =>
    new CloneRuntimeError(
      'ERR_FOREIGN_TICKET',
      `${verb}(ticket ${ticket}): this ticket belongs to the process this clone was forked from`,
    ),
  notMainThread: () =>
    new CloneRuntimeError('ERR_NOT_MAIN_THREAD', 'clone() must be called on the main thread, not in a worker thread'),
  exitInOrigin: () =>
    new CloneRuntimeError('ERR_NOT_A_CLONE', 'exit() may only be called in a clone; this process is the origin (clone id 0)'),
  remoteSync: (ticket: number) =>
    new CloneRuntimeError(
      'ERR_REMOTE_CLONES',
      `joinSync(ticket ${ticket}): this ticket has clones on other hosts, whose ends arrive while the event loop runs; use await join(ticket)`,
    ),
  badId: (ticket: number, id: unknown, n: number) =>
    new RangeError(`kill(ticket ${ticket}, id): id ${String(id)} is not a clone of this ticket (1..${n})`),
};
