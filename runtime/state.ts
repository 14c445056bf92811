/**
 * The state a program hands to its clones (`clone(ticket, state)`): on this host it is simply
 * inherited, but a clone on another host gets it from a descriptor, so it must be serializable
 * there. It is checked here on every host, so a program does not fail only once its job spans
 * hosts. Typed arrays are fine (regions travel as regions, other arrays as bytes).
 */
import * as v8 from 'node:v8';

/** Throws a TypeError naming the first part of `state` that cannot travel in a descriptor. */
export function checkState(state: unknown, where = 'clone(ticket, state)'): void {
  const seen = new Set<object>();
  const stripped = walk(state, 'state', seen, where);
  try {
    v8.serialize(stripped);
  } catch (e) {
    throw new TypeError(`${where}: state cannot be serialized for a clone on another host: ${(e as Error).message}`);
  }
}

/** A copy of v with typed arrays and buffers left out (checked without copying them). */
function walk(v: unknown, path: string, seen: Set<object>, where: string): unknown {
  const bad = (what: string) => new TypeError(`${where}: ${path} is ${what}, which cannot be sent to a clone on another host`);
  if (typeof v === 'function') throw bad('a function');
  if (typeof v === 'symbol') throw bad('a symbol');
  if (v === null || typeof v !== 'object') return v;
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer || v instanceof SharedArrayBuffer) return null;
  if (v instanceof WeakMap || v instanceof WeakSet || v instanceof WeakRef) throw bad(`a ${v.constructor.name}`);
  if (v instanceof Promise) throw bad('a Promise');
  if (seen.has(v)) return null; // cycles are fine for v8.serialize
  seen.add(v);
  if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}[${i}]`, seen, where));
  if (v instanceof Map) {
    const m = new Map();
    let i = 0;
    for (const [k, x] of v) m.set(walk(k, `${path} key ${i}`, seen, where), walk(x, `${path}.get(${i++})`, seen, where));
    return m;
  }
  if (v instanceof Set) {
    const s = new Set();
    let i = 0;
    for (const x of v) s.add(walk(x, `${path} item ${i++}`, seen, where));
    return s;
  }
  if (v instanceof Date || v instanceof RegExp || v instanceof Error) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) out[k] = walk((v as Record<string, unknown>)[k], `${path}.${k}`, seen, where);
  return out;
}
