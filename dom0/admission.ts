/**
 * Admission control: how many clones this host allows to be alive at once, over every job of
 * this user. Each ticket holds a reservation file `<pid>-<seq>` (its slot count inside) in
 * /dev/shm/sfmpi-dom0-<uid>/; a reservation whose holder is dead is pruned, so a killed origin
 * frees its slots. A short-lived lock directory makes check-and-reserve atomic across processes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The default: 16 clones per core, at most one per 256 MiB of memory, never fewer than 8. */
export function defaultHostLimit(): number {
  const byCores = os.availableParallelism() * 16;
  const byMemory = Math.floor(os.totalmem() / (256 * 1024 * 1024));
  return Math.max(8, Math.min(byCores, byMemory));
}

/** SFMPI_MAX_CLONES if set (validated), else the default. */
export function hostLimit(): number {
  const raw = process.env.SFMPI_MAX_CLONES;
  if (raw === undefined || raw === '') return defaultHostLimit();
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`SFMPI_MAX_CLONES must be a non-negative integer, got "${raw}"`);
  return n;
}

const dir = path.join('/dev/shm', `sfmpi-dom0-${process.getuid?.() ?? 0}`);
const lockDir = path.join(dir, '.lock');
let seq = 0;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function withLock<T>(fn: () => T): T {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const deadline = Date.now() + 2000;
  for (;;) {
    try {
      fs.mkdirSync(lockDir);
      fs.writeFileSync(path.join(lockDir, 'owner'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let owner = NaN;
      try {
        owner = Number(fs.readFileSync(path.join(lockDir, 'owner'), 'utf8'));
      } catch {
        /* being created or removed right now */
      }
      if (Number.isInteger(owner) && !alive(owner)) {
        fs.rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(`admission: the host lock ${lockDir} is held by pid ${owner} for over 2 s`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(lockDir, { recursive: true, force: true });
  }
}

/** Live reservations on this host, pruning those whose holder died. */
function reservedSlots(): number {
  let total = 0;
  for (const name of fs.readdirSync(dir)) {
    const m = /^(\d+)-\d+$/.exec(name);
    if (!m) continue;
    const file = path.join(dir, name);
    if (!alive(Number(m[1]))) {
      fs.rmSync(file, { force: true });
      continue;
    }
    total += Number(fs.readFileSync(file, 'utf8')) || 0;
  }
  return total;
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
  const file = withLock(() => {
    const used = reservedSlots();
    if (used + slots > limit)
      throw new RangeError(
        `admission refused: ${slots} clone${slots === 1 ? '' : 's'} requested, ${used} of this host's ` +
          `${limit} slots in use (set SFMPI_MAX_CLONES to change the limit)`,
      );
    const f = path.join(dir, `${process.pid}-${++seq}`);
    fs.writeFileSync(f, String(slots));
    return f;
  });
  let released = false;
  return {
    slots,
    release() {
      if (released) return;
      released = true;
      fs.rmSync(file, { force: true });
    },
  };
}
