/**
 * The sfnative addon (native/addon/*.cc and the C core it links), typed. Loaded once per
 * process; every TypeScript layer (runtime, xen, dom0, mpi-compat) reaches the kernel and the
 * data plane through this module.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** What the origin gets back from forkClones, and what each clone gets. */
export interface ForkResult {
  /** 0 in the parent, 1..count in the clones. */
  id: number;
  /** In a clone: its end of the channel to the parent. */
  fd?: number;
  /** In the parent: clone pids, in id order. */
  pids: number[];
  /** In the parent: the parent's ends of the channels, in id order. */
  fds: number[];
  /** In the parent: ms from the call to each fork's return. */
  ms?: number[];
  totalMs?: number;
}

/** How a watched clone ended: code or signal number, and what it wrote on its channel. */
export interface RawOutcome {
  pid: number;
  code: number | null;
  signal: number | null;
  data: Buffer;
}

export interface NativeCloneWatch {
  readonly pid: number;
  watch(callback: (outcome: RawOutcome) => void): void;
  waitSync(timeoutMs?: number): RawOutcome | null;
  signal(signo: number): boolean;
  close(): void;
}

export interface NativeAddon {
  forkClones(
    count: number,
    options?: { stdinNull?: boolean; parkTimeoutMs?: number; closeInChild?: number[] },
  ): ForkResult;
  /** Lets the clones of the last forkClones run (they wait until the origin has forked all). */
  releaseClones(): void;
  /** In a fresh clone, once its own start is done: waits until the origin has forked all. */
  passStartGate(): void;
  CloneWatch: new (pid: number, channelFd: number) => NativeCloneWatch;
  installExitKeeper(onEmpty: () => void, onExit: () => void): void;
  exitNow(code: number): never;
  dieWithParent(parentPid: number): void;
  getpid(): number;
  dup2(from: number, to: number): void;
  closeFd(fd: number): void;
  setCloexec(fd: number, on?: boolean): void;
  allocRegion(bytes: number, options?: { hugePages?: boolean }): ArrayBuffer;
  /** The one sentence for how a process ended (native/proc): "was killed by signal 11 (SIGSEGV)". */
  describeExit(code: number | null, signal: number, finished?: boolean): string;
  /** A Unix stream socket pair: [ours (close-on-exec), theirs (for a child)]. */
  socketPair(): [number, number];
  /** `data` with `fds` attached to its first byte (SCM_RIGHTS); waits for room on a full socket. */
  sendFds(fd: number, data: Buffer, fds: number[]): void;
  /** One recvmsg of up to maxBytes after waiting up to timeoutMs (-1: forever); empty data at the end. */
  recvMsg(fd: number, maxBytes: number, timeoutMs?: number): { data: Buffer; fds: number[] };
  /** A close-on-exec duplicate of `fd`. */
  dupFd(fd: number): number;
  /** Where an ArrayBuffer's memory starts. */
  bufferAddress(buffer: ArrayBuffer): bigint;
  /** The base page size of this host. */
  pageSize(): number;
  /** The host's limit of live clones (native/proc/admission.c); RangeError for a bad SFMPI_MAX_CLONES. */
  admissionLimit(): number;
  /** Reserves slots (limit -1: the host's); a reservation id, or RangeError "admission refused: ...". */
  admissionReserve(slots: number, limit?: number): number;
  /** Gives a reservation back (idempotent). */
  admissionRelease(id: number): void;
  /** Slots in use on this host. */
  admissionUsed(): number;
  /** The kernel's THP mode, and whether large ArrayBuffers of this isolate are advised onto huge
   * pages (native/addon/hugepages.cc): how many so far, and how many bytes. */
  hugePages(): HugePageState;
  /** Bytes of a view's memory the kernel currently backs with huge pages (from /proc/self/smaps). */
  hugePageBytes(view: ArrayBufferView | ArrayBuffer | SharedArrayBuffer): number;
  /** One control line read by native/control/decode.c; null when malformed (guest-daemon/control.ts). */
  decodeControl(line: string): import('../guest-daemon/control.js').ControlMessage | null;
  /** A job's outcome, decided by native/control/outcome.c (the native launcher's own). */
  JobOutcome: new (size: number) => NativeJobOutcome;
  /** "rank 3", "ranks 4-7", "ranks 1, 3, 5" (sf_outcome_rank_list). */
  rankList(ranks: readonly number[]): string;
}

/** native/addon/outcome.cc over sf_outcome (sf_control.h states the policy). */
export interface NativeJobOutcome {
  /** A decoded control line; true when it is the job's first failure. */
  event(msg: { ev: 'fork' | 'fail' | 'exit'; host: string; rank: number; code?: number; signal?: number; pid?: number; cause?: string }): boolean;
  /** A host gone, with its ranks; true when it is the job's first failure. */
  lost(host: string, ranks: readonly number[], why: string): boolean;
  timeout(seconds: number): void;
  failed(): boolean;
  /** The exit status, with the failure's line when it is not 0. */
  result(): { status: number; failure?: string };
}

/** What native.hugePages() reports. */
export interface HugePageState {
  /** /sys/kernel/mm/transparent_hugepage/enabled: 'always', 'madvise', 'never', or 'unsupported'. */
  mode: string;
  /** Large ArrayBuffers are advised MADV_HUGEPAGE when allocated. */
  hooked: boolean;
  /** Why not, when hooked is false. */
  reason: string;
  buffers: number;
  bytes: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * The package root: the nearest folder above this module whose package.json is sfmpi's. This
 * file is dist/native/addon.js once compiled, but sfmpirun may have bundled it into a program's
 * folder, so the location is searched for rather than assumed.
 */
function findPackageRoot(): string {
  for (let dir = here; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'sfmpi') return dir;
    } catch {
      /* no package.json here */
    }
    if (path.dirname(dir) === dir) return path.resolve(here, '..', '..');
  }
}

export const packageRoot = findPackageRoot();

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  const file = path.join(packageRoot, 'build', 'Release', 'sfnative.node');
  try {
    return require(file) as NativeAddon;
  } catch (cause) {
    throw new Error(
      `sfmpi: cannot load the native addon ${file}; was it built? Run "npm install" (or "npm run install") ` +
        `in ${packageRoot}. Cause: ${(cause as Error).message}`,
    );
  }
}

export const native: NativeAddon = load();
