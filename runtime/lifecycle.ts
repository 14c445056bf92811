/**
 * The life of this process as a clone: who it is, how it leaves. A forked Node.js cannot leave
 * through Node's own exit path (see native/addon/exit.cc), so from the fork on every way out
 * (process.exit, an empty loop, an uncaught exception, an unhandled rejection, exit(value))
 * runs the 'exit' listeners, writes its frame to the parent and ends with _exit.
 */
import { inspect } from 'node:util';
import { ERROR, VALUE, encodeFrame, writeFrame } from '../guest-daemon/channel.js';
import { native } from '../native/addon.js';

interface Self {
  /** 0 in the origin; this process's id in the ticket it was cloned from. */
  id: number;
  /** The channel to the parent (clones only). */
  channelFd: number;
  /** What the parent handed to clone(ticket, state). */
  state: unknown;
  /** A frame was written: nothing more goes up the channel. */
  reported: boolean;
}

export const self: Self = { id: 0, channelFd: -1, state: undefined, reported: false };

let installed = false;
let fatal: { error: unknown } | null = null;
let leaving = false;

function errorInfo(e: unknown): { name: string; message: string; stack?: string } {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: 'Error', message: `non-error value thrown: ${inspect(e)}` };
}

/** Sends a frame up the channel; at most once per clone life. */
function report(kind: number, payload: unknown): void {
  if (self.reported || self.channelFd < 0) return;
  const frame = encodeFrame(kind, payload);
  self.reported = true;
  writeFrame(self.channelFd, frame);
}

/** The end of every clone: report, then _exit. Never returns. */
function leave(code: number): never {
  if (fatal) {
    // As Node prints an uncaught error: the inspected error, then the version line.
    process.stderr.write(`${inspect(fatal.error)}\n\nNode.js ${process.version}\n`);
    try {
      report(ERROR, errorInfo(fatal.error));
    } catch {
      /* the parent may be gone; the exit status still says it */
    }
  }
  return native.exitNow(code);
}

function runExitListeners(emit: typeof process.emit, code: number): void {
  (process as unknown as { _exiting: boolean })._exiting = true;
  try {
    (emit as (...a: unknown[]) => boolean).call(process, 'exit', code);
  } catch (e) {
    fatal ??= { error: e };
  }
}

/**
 * Makes this freshly forked process a clone: called in the child right after the fork, before
 * anything else runs, and waits at the start gate once done (native/addon/fork.cc). Nested
 * clones inherit the hooks of the clone they came from.
 *
 * Only clones run it, so V8 would compile it lazily in every clone, each time anew (0.4 ms of a
 * clone's 1.7 ms start): the parentheses are V8's hint to compile it with the module, in the
 * origin, and clones inherit the bytecode (kept: see clone.ts on bytecode flushing).
 */
export const becomeClone = (function becomeClone(id: number, channelFd: number, state: unknown): void {
  try {
    self.id = id;
    self.channelFd = channelFd;
    self.state = state;
    self.reported = false;
    fatal = null;
    leaving = false;
    // Node reads the pid once at start-up; a clone is another process.
    Object.defineProperty(process, 'pid', { value: native.getpid(), configurable: true, enumerable: true, writable: false });
    if (installed) return;
    installed = true;

    const emit = process.emit;
    const exitCode = (fallback: number) => {
      const c = process.exitCode;
      return typeof c === 'number' ? c : c === undefined || c === null ? fallback : Number(c) || fallback;
    };
    // Every 'exit' emission in a clone is its last act: Node's process.exit() and its fatal
    // exception handler both emit 'exit' before calling into the C++ exit path we must avoid.
    process.emit = function (this: NodeJS.Process, event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'uncaughtException') {
        const handled = (emit as (...a: unknown[]) => boolean).call(this, event, ...args);
        if (!handled) fatal = { error: args[0] };
        return handled;
      }
      if (event === 'exit') {
        if (leaving) return false;
        leaving = true;
        const code = typeof args[0] === 'number' ? args[0] : exitCode(0);
        runExitListeners(emit, code);
        leave(fatal ? (exitCode(1) || 1) : exitCode(code));
      }
      return (emit as (...a: unknown[]) => boolean).call(this, event, ...args);
    } as typeof process.emit;
    // process.exit() called from inside an 'exit' listener skips the emit and lands here.
    (process as unknown as { reallyExit: (code: number) => void }).reallyExit = (code: number) => {
      leave(fatal ? (exitCode(1) || 1) : code);
    };

    native.installExitKeeper(
      () => {
        (emit as (...a: unknown[]) => boolean).call(process, 'beforeExit', exitCode(0));
      },
      () => {
        process.emit('exit', exitCode(0));
      },
    );
  } finally {
    // The clone's start is done: what the program does next waits until every clone is forked.
    native.passStartGate();
  }
});

/** exit(value) in a clone: hands the value to the parent and leaves with code 0. */
export function exitWithValue(value: unknown): never {
  try {
    report(VALUE, value);
  } catch (e) {
    throw new TypeError(`exit(value): the value cannot be sent to the origin: ${(e as Error).message}`);
  }
  process.exitCode = 0;
  process.exit(0);
}
