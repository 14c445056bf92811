/**
 * dom0's end of the join protocol: what it tells the first rank of its host about a job that
 * spans hosts. The messages are drawn in native/include/sf_control.h (the rank's end,
 * sf_join_read, is C, shared by libsfmpi and the Node binding); this file only writes them.
 */
import { native } from '../native/addon.js';

const MAGIC = 0x4e4a4653; // "SFJN" little-endian
const VERSION = 1;
const JOIN = 1, FDS = 2, GO = 3;
/** SF_JOIN_FDS_MAX: descriptors per FDS message. */
const FDS_MAX = 200;

/** One of the host's links to a rank on another host. */
export interface JoinLink {
  /** The local rank (index among the host's ranks) whose link it is. */
  local: number;
  /** The world rank at its other end. */
  peer: number;
  /** The connected, authenticated socket. */
  fd: number;
}

function header(type: number, length: number, nfds: number): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt16LE(VERSION, 4);
  h.writeUInt16LE(type, 6);
  h.writeUInt32LE(length, 8);
  h.writeUInt32LE(nfds, 12);
  return h;
}

/** Sends JOIN (where every rank lives) and the links' descriptors on the join socket `fd`. */
export function sendJoin(fd: number, host: number, hostOf: readonly number[], links: readonly JoinLink[]): void {
  const body = Buffer.alloc(12 + 4 * hostOf.length + 8 * links.length);
  body.writeUInt32LE(hostOf.length, 0);
  body.writeUInt32LE(host, 4);
  body.writeUInt32LE(links.length, 8);
  hostOf.forEach((h, r) => body.writeUInt32LE(h, 12 + 4 * r));
  links.forEach((l, i) => {
    body.writeUInt32LE(l.local, 12 + 4 * hostOf.length + 8 * i);
    body.writeUInt32LE(l.peer, 16 + 4 * hostOf.length + 8 * i);
  });
  native.sendFds(fd, Buffer.concat([header(JOIN, body.length, 0), body]), []);
  for (let i = 0; i < links.length; i += FDS_MAX) {
    const part = links.slice(i, i + FDS_MAX).map((l) => l.fd);
    native.sendFds(fd, header(FDS, 0, part.length), part);
  }
}

/** Sends GO: every socket of the job is in its rank's hands; the fork point may proceed. */
export function sendGo(fd: number): void {
  native.sendFds(fd, header(GO, 0, 0), []);
}
