/**
 * Host lists as MPI users write them: hostfiles in MPICH's and in Open MPI's syntax, and the
 * `--host` option. The result is a list of hosts with their slots, in the order first written.
 *
 * Hostfile lines (one host each; `#` starts a comment to the end of the line; blank lines skipped):
 *
 *     th1                        MPICH and Open MPI: 1 slot
 *     th2:4                      MPICH: 4 slots
 *     th3 slots=4                Open MPI: 4 slots
 *     th4 slots=2 max_slots=4    Open MPI: 2 slots, at most 4 ranks even with --oversubscribe
 *     th5 max_slots=4            Open MPI: slots default to max_slots
 *     10.77.0.6 slots=2          an IPv4 address instead of a name
 *
 * A host written more than once gets the sum of its entries' slots, at the place of its first
 * entry. What the MPI launchers do, measured with Open MPI 4.1.4 (`mpirun --do-not-launch
 * --display-map`) and MPICH 4.0.2's hydra: Open MPI merges repeated lines into one node at its
 * first place, one slot per bare line, and so does its `--host a:2,a:2` (4 slots); its hostfile
 * parser refuses a second `slots=` for one host ("multiple definitions of the slot count").
 * Hydra keeps non-adjacent repeats as separate entries in order (`a:2 b:2 a:2` starts three
 * proxies) and merges adjacent ones. We follow Open MPI's merge, and sum where its hostfile
 * parser refuses, as its `--host` does: one rule for every source. `max_slots` caps add up the
 * same way; an entry without one leaves the host uncapped.
 *
 * Not taken (each is an error that says so): IPv6 addresses, `user@host` (set `User` in
 * ~/.ssh/config), Open MPI's other keywords (`count`, `cpu`, `port`, `username`, rankfile and
 * relative `+n` entries), excluded `^host` entries. A bare host is 1 slot (MPICH's rule and Open
 * MPI's for `--host`); Open MPI's hostfile would use the remote core count, which no one knows
 * before the host's dom0 runs.
 */
import fs from 'node:fs';
import net from 'node:net';

/** Stable codes of {@link PlacementError}, one per source of bad input. */
export type PlacementErrorCode =
  | 'ERR_HOSTFILE'
  | 'ERR_HOST_OPTION'
  | 'ERR_SLURM_ENV'
  | 'ERR_NO_HOSTS'
  | 'ERR_OVERSUBSCRIBED'
  | 'ERR_PLACEMENT_OPTION';

/** Bad host input or an impossible placement; `message` is one line for the user, naming the
 * file and line, the option or the variable, and what is wrong. */
export class PlacementError extends Error {
  /** Which kind of input was wrong. */
  readonly code: PlacementErrorCode;
  /** @param code the kind of input; @param message the whole line shown to the user. */
  constructor(code: PlacementErrorCode, message: string) {
    super(message);
    this.name = 'PlacementError';
    this.code = code;
  }
}

/** One host and its slots, merged over every entry naming it. */
export interface HostSpec {
  /** The host as first written: a name (the ssh target) or an IPv4 address. */
  name: string;
  /** How many ranks it takes before it counts as oversubscribed (>= 1). */
  slots: number;
  /** Hard cap even with --oversubscribe (Open MPI's max_slots); null for none. */
  maxSlots: number | null;
  /** Where it was first named, for messages: `hosts:3`, `--host`, `SLURM_JOB_NODELIST`. */
  origin: string;
}

/** Most slots one host may have: far beyond any machine, low enough that a typo (an extra
 * digit or ten) is caught here rather than as an admission error on a remote host. */
export const MAX_SLOTS_PER_HOST = 1 << 20;

const LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);

/** Why `name` is not a host we take, or null when it is a host name or an IPv4 address. */
export function badHostName(name: string): string | null {
  if (name === '') return 'empty host name';
  if (name.includes('@')) return `"${name}": user@host is not supported (set User in ~/.ssh/config)`;
  if (net.isIPv6(name) || /^\[.*\]$/.test(name)) return `"${name}": IPv6 addresses are not supported`;
  if (/^[0-9.]+$/.test(name)) return net.isIPv4(name) ? null : `"${name}" is not a valid IPv4 address`;
  if (name.length > 253 || !HOSTNAME.test(name)) return `"${name}" is not a host name or an IPv4 address`;
  return null;
}

function count(text: string, what: string): number | string {
  if (!/^[0-9]+$/.test(text)) return `${what} must be a positive integer`;
  const n = Number(text);
  if (n < 1) return `${what} must be a positive integer`;
  if (n > MAX_SLOTS_PER_HOST) return `${what} ${text} is more than ${MAX_SLOTS_PER_HOST}, the most one host may have`;
  return n;
}

interface Entry {
  name: string;
  slots: number;
  maxSlots: number | null;
}

/** Parses one non-blank line (comment already cut); returns the entry or the problem. */
function parseLine(line: string): Entry | string {
  // Open MPI's lexer takes `slots = 4` as well as `slots=4`.
  const tokens = line.replace(/\s*=\s*/g, '=').split(/\s+/);
  const first = tokens[0];
  let name = first;
  let slots: number | null = null;
  const colon = first.indexOf(':');
  if (colon >= 0 && first.indexOf(':', colon + 1) < 0) {
    name = first.slice(0, colon);
    const n = count(first.slice(colon + 1), 'slots');
    if (typeof n === 'string') return n;
    slots = n;
  }
  const bad = badHostName(name);
  if (bad) return bad;
  let maxSlots: number | null = null;
  let sawSlots = false;
  let sawMax = false;
  for (const token of tokens.slice(1)) {
    const eq = token.indexOf('=');
    const key = eq < 0 ? token : token.slice(0, eq);
    const value = eq < 0 ? null : token.slice(eq + 1);
    if (key === 'slots') {
      if (value === null || value === '') return 'slots needs a value: slots=N';
      if (sawSlots) return 'slots is given twice';
      if (slots !== null) return `the slot count is given twice (${first} and ${token})`;
      const n = count(value, 'slots');
      if (typeof n === 'string') return n;
      slots = n;
      sawSlots = true;
    } else if (key === 'max_slots' || key === 'max-slots') {
      if (value === null || value === '') return `${key} needs a value: ${key}=N`;
      if (sawMax) return `${key} is given twice`;
      const n = count(value, key);
      if (typeof n === 'string') return n;
      maxSlots = n;
      sawMax = true;
    } else {
      return `unexpected "${token}" after the host name (expected slots=N or max_slots=N)`;
    }
  }
  if (slots === null) slots = maxSlots ?? 1;
  if (maxSlots !== null && maxSlots < slots) return `max_slots (${maxSlots}) is less than slots (${slots})`;
  return { name, slots, maxSlots };
}

/** Merges entries naming the same host (host names compare case-insensitively, as DNS does):
 * slots and caps add up, the host keeps the place and spelling of its first entry. */
export function mergeHosts(entries: readonly HostSpec[]): HostSpec[] {
  const byKey = new Map<string, HostSpec>();
  const out: HostSpec[] = [];
  for (const e of entries) {
    const key = e.name.toLowerCase();
    const seen = byKey.get(key);
    if (!seen) {
      const copy = { ...e };
      byKey.set(key, copy);
      out.push(copy);
      continue;
    }
    seen.maxSlots = seen.maxSlots === null || e.maxSlots === null ? null : seen.maxSlots + e.maxSlots;
    seen.slots += e.slots;
  }
  return out;
}

/**
 * Parses a hostfile's text. `file` names it in errors, which read
 * `FILE:LINE: "the line": what is wrong` (a PlacementError with code ERR_HOSTFILE).
 */
export function parseHostfile(text: string, file: string): HostSpec[] {
  const entries: HostSpec[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].replace(/\r$/, '');
    const hash = raw.indexOf('#');
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line === '') continue;
    const entry = parseLine(line);
    if (typeof entry === 'string') throw new PlacementError('ERR_HOSTFILE', `${file}:${i + 1}: "${line}": ${entry}`);
    entries.push({ ...entry, origin: `${file}:${i + 1}` });
  }
  if (entries.length === 0) throw new PlacementError('ERR_HOSTFILE', `${file}: no hosts in it`);
  return mergeHosts(entries);
}

/** Reads and parses a hostfile; an unreadable file is a PlacementError naming it. */
export function readHostfile(file: string): HostSpec[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'a directory, not a file' : err.message;
    throw new PlacementError('ERR_HOSTFILE', `${file}: cannot read the hostfile: ${why}`);
  }
  return parseHostfile(text, file);
}

/**
 * Parses `--host a:4,b:4` (slots after a colon) or `--host a,a,b` (each mention one slot), as
 * Open MPI does. Errors read `--host: "item": what is wrong` (code ERR_HOST_OPTION).
 */
export function parseHostOption(value: string, flag = '--host'): HostSpec[] {
  const entries: HostSpec[] = [];
  const items = value.split(',');
  for (const [i, raw] of items.entries()) {
    const item = raw.trim();
    if (item === '') throw new PlacementError('ERR_HOST_OPTION', `${flag}: "${value}": empty host name at item ${i + 1}`);
    const colon = item.lastIndexOf(':');
    const name = colon >= 0 && !net.isIPv6(item) ? item.slice(0, colon) : item;
    let slots = 1;
    if (name !== item) {
      const n = count(item.slice(colon + 1), 'slots');
      if (typeof n === 'string') throw new PlacementError('ERR_HOST_OPTION', `${flag}: "${item}": ${n}`);
      slots = n;
    }
    const bad = badHostName(name);
    if (bad) throw new PlacementError('ERR_HOST_OPTION', `${flag}: ${bad}`);
    entries.push({ name, slots, maxSlots: null, origin: flag });
  }
  return mergeHosts(entries);
}
