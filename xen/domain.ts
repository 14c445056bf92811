/**
 * Domains: the unit our "hypervisor" creates, pauses, resumes, destroys and waits on. Here a
 * domain is a process forked from the live program (DESIGN.md, "A local clone"); a remote seed
 * would be started from a descriptor instead, behind the same operations.
 */
import os from 'node:os';
import { native, type NativeCloneWatch, type RawOutcome } from '../native/addon.js';

export type { RawOutcome } from '../native/addon.js';

/** A clone as its parent sees it. */
export class Domain {
  /** @param id clone id (1..n) @param watch the native watch over its pid and channel */
  constructor(
    readonly id: number,
    private readonly watcher: NativeCloneWatch,
  ) {}

  get pid(): number {
    return this.watcher.pid;
  }

  /** Resolves once the domain has exited and its channel is drained (reaps it). */
  wait(): Promise<RawOutcome> {
    return new Promise((resolve) => this.watcher.watch(resolve));
  }

  /** Blocks until the domain has exited (reaps it); null on timeout. */
  waitSync(timeoutMs = -1): RawOutcome | null {
    return this.watcher.waitSync(timeoutMs);
  }

  /** Sends a signal (by name or number); false when the domain is already gone. */
  signal(signal: NodeJS.Signals | number = 'SIGKILL'): boolean {
    const signo = typeof signal === 'number' ? signal : os.constants.signals[signal];
    if (signo === undefined) throw new RangeError(`unknown signal ${String(signal)}`);
    return this.watcher.signal(signo);
  }

  pause(): boolean {
    return this.signal('SIGSTOP');
  }

  resume(): boolean {
    return this.signal('SIGCONT');
  }

  destroy(): boolean {
    return this.signal('SIGKILL');
  }

  /** Forgets the domain without reaping it: for a fresh clone, about its parent's domains. */
  forget(): void {
    this.watcher.close();
  }
}

/** What createDomains returns in the parent (id 0) and in each new domain (id 1..n). */
export type Creation =
  | { id: 0; domains: Domain[]; forkMs: number[]; totalMs: number; readyAt: number }
  | { id: number; channelFd: number };

/**
 * Forks `count` domains from the live process. Synchronous: in the parent it returns once all
 * are running; in each child it returns there, with that child's id and channel.
 * @param closeInChild fds the children must not keep (e.g. this process's own channel upward)
 */
export function createDomains(count: number, closeInChild: number[] = []): Creation {
  const r = native.forkClones(count, { closeInChild });
  if (r.id !== 0) return { id: r.id, channelFd: r.fd as number };
  let domains: Domain[];
  try {
    domains = r.pids.map((pid, i) => new Domain(i + 1, new native.CloneWatch(pid, r.fds[i])));
  } finally {
    native.releaseClones();
  }
  // Every clone is running from here on (performance.now() time base).
  const readyAt = performance.now();
  return { id: 0, domains, forkMs: r.ms ?? [], totalMs: r.totalMs ?? 0, readyAt };
}

/** Makes `from` also be `to` (dup2): for per-rank stdio. */
export function dup2(from: number, to: number): void {
  native.dup2(from, to);
}

/** Closes an fd; closing one already closed is not an error. */
export function closeFd(fd: number): void {
  native.closeFd(fd);
}

/**
 * A zero-filled, page-aligned ArrayBuffer outside V8's heap; 2 MiB-aligned and advised for huge
 * pages when large, so that forking it is cheap. Freed when the buffer is collected.
 */
export function allocRegion(bytes: number, options: { hugePages?: boolean } = {}): ArrayBuffer {
  if (!Number.isSafeInteger(bytes) || bytes < 1)
    throw new RangeError(`region size must be a positive integer number of bytes, got ${bytes}`);
  return native.allocRegion(bytes, options);
}
