/**
 * What kind of program the user gave and how to start it: JavaScript runs as is, TypeScript is
 * bundled by esbuild (no loader hooks: Node 20 runs them on a thread a clone does not have), and
 * anything else is an executable (an MPI C program).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** Node flags for an origin that will be cloned: V8 work stays on the main thread (a clone has
 * no platform worker threads), stack traces point into the user's .ts files, and the preload
 * ties the origin to the launcher. */
export const ORIGIN_NODE_FLAGS = [
  '--single-threaded',
  '--enable-source-maps',
  '--import',
  pathToFileURL(path.join(path.dirname(new URL(import.meta.url).pathname), 'origin-preload.js')).href,
];

export interface Prepared {
  /** argv[0] and the rest, ready for spawn. */
  command: string;
  args: string[];
  kind: 'javascript' | 'typescript' | 'executable';
  /** Files to remove when the job ends (the bundle). */
  cleanup: string[];
  /** ms spent preparing (bundling). */
  ms: number;
}

export class ProgramError extends Error {}

function findInPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

/** Bundles left behind by a launcher that was killed (its pid is gone). */
function removeStaleBundles(dir: string, base: string): void {
  const pattern = new RegExp(`^\\.?${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.sfmpi-(\\d+)\\.mjs$`);
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') fs.rmSync(path.join(dir, name), { force: true });
    }
  }
}

async function bundle(file: string): Promise<{ out: string }> {
  const { build } = await import('esbuild');
  const dir = path.dirname(file);
  const base = path.basename(file).replace(/\.[cm]?ts$/, '');
  // Next to the source, so that bare imports resolve exactly as they would from the .ts file.
  let out = path.join(dir, `.${base}.sfmpi-${process.pid}.mjs`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    out = path.join((await import('node:os')).tmpdir(), `${base}.sfmpi-${process.pid}.mjs`);
  }
  removeStaleBundles(path.dirname(out), base);
  try {
    await build({
      entryPoints: [file],
      outfile: out,
      bundle: true,
      packages: 'external',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: 'inline',
      logLevel: 'silent',
    });
  } catch (e) {
    const errs = (e as { errors?: { text: string; location?: { file: string; line: number; column: number } }[] }).errors;
    const first = errs?.[0];
    const where = first?.location ? `${first.location.file}:${first.location.line}:${first.location.column}: ` : '';
    throw new ProgramError(`cannot compile ${file}: ${where}${first?.text ?? (e as Error).message}`);
  }
  return { out };
}

/** Resolves and prepares `program` (a path, or a command found in PATH). */
export async function prepare(program: string, args: string[]): Promise<Prepared> {
  const t0 = performance.now();
  let file = path.resolve(program);
  if (!fs.existsSync(file)) {
    const inPath = program.includes('/') ? null : findInPath(program);
    if (!inPath) throw new ProgramError(`program not found: ${program}`);
    file = inPath;
  }
  if (fs.statSync(file).isDirectory()) throw new ProgramError(`program is a directory: ${program}`);
  const ext = path.extname(file);
  if (['.ts', '.mts', '.cts'].includes(ext)) {
    const { out } = await bundle(file);
    return {
      command: process.execPath,
      args: [...ORIGIN_NODE_FLAGS, out, ...args],
      kind: 'typescript',
      cleanup: [out],
      ms: performance.now() - t0,
    };
  }
  if (['.js', '.mjs', '.cjs'].includes(ext))
    return { command: process.execPath, args: [...ORIGIN_NODE_FLAGS, file, ...args], kind: 'javascript', cleanup: [], ms: performance.now() - t0 };
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    throw new ProgramError(`program is neither JavaScript, TypeScript nor executable: ${program}`);
  }
  return { command: file, args, kind: 'executable', cleanup: [], ms: performance.now() - t0 };
}

export function removeAll(files: string[]): void {
  for (const f of files) fs.rmSync(f, { force: true });
}
