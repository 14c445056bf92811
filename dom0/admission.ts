/**
 * Admission control: how many clones this host allows to be alive at once, over every job of
 * this user. The one implementation is native (native/proc/admission.c), shared with C jobs
 * (libsfmpi's MPI_Init reserves there too): a reservation is a file `<pid>-<seq>` holding its
 * slot count in /dev/shm/sfmpi-dom0-<uid>/, pruned once its holder is dead, so a killed origin
 * frees its slots; an flock makes check-and-reserve atomic across processes.
 */
import { native } from '../native/addon.js';

/** The default: 16 clones per core, at most one per 256 MiB of memory, never fewer than 8. */
export function defaultHostLimit(): number {
  const saved = process.env.SFMPI_MAX_CLONES;
  delete process.env.SFMPI_MAX_CLONES;
  try {
    return native.admissionLimit();
  } finally {
    if (saved !== undefined) process.env.SFMPI_MAX_CLONES = saved;
  }
}

/** SFMPI_MAX_CLONES if set (a RangeError names it when malformed), else the default. */
export function hostLimit(): number {
  return native.admissionLimit();
}

/** A grant of slots; release() gives them back (idempotent). */
export interface Reservation {
  readonly slots: number;
  release(): void;
}

/**
 * Reserves `slots` clone slots or throws a RangeError that says how many are in use and how to
 * raise the limit. Nothing is forked before this succeeds.
 */
export function reserve(slots: number, limit = hostLimit()): Reservation {
  const id = native.admissionReserve(slots, limit);
  let released = false;
  return {
    slots,
    release() {
      if (released) return;
      released = true;
      native.admissionRelease(id);
    },
  };
}

/** Slots reserved on this host right now. */
export function usedSlots(): number {
  return native.admissionUsed();
}
