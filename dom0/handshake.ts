/**
 * The cluster network's handshake: on a fresh TCP connection each end proves that it holds the
 * job's secret before anything else is said, whatever the connection is for afterwards (frames
 * to a dom0, or a data connection whose fd is handed to a C rank).
 *
 * The secret is 32 random bytes made by the launcher for one job, handed to each dom0 on ssh's
 * standard input or in srun's environment (never on a command line, which every user of the
 * host can read in /proc), as 43 base64url characters: {@link encodeSecret}.
 *
 * Messages, client = the end that connected, server = the end that accepted:
 *
 *     hello, both ends at once, 40 bytes:
 *      0               4       5       6               8                               40
 *     +---------------+-------+-------+---------------+-------------------------------+
 *     | "SFHS"        | ver 1 | role  | reserved (0)  | nonce: 32 random bytes        |
 *     +---------------+-------+-------+---------------+-------------------------------+
 *     role: 1 launcher, 2 dom0, 3 rank
 *
 *     client -> server, once it has the server's hello:   proof_c (32 bytes)
 *     server -> client, once proof_c is right:            proof_s (32 bytes)
 *
 *     proof_X = HMAC-SHA256(secret, "sfmpi cluster handshake v1\0" | X | role_c | role_s
 *                                   | nonce_c | nonce_s),   X = "C" for proof_c, "S" for proof_s
 *
 * Why it holds:
 * - Each proof covers both nonces, fresh per connection, so a recorded proof is worth nothing
 *   on another connection (replay).
 * - The two directions are told apart ("C"/"S") and a hello carrying our own nonce is refused,
 *   so a peer cannot hand us our own proof back (reflection); the roles are inside the MAC, so a
 *   rank's proof cannot pass for a dom0's.
 * - The server proves nothing until the client has: a stranger connecting to a dom0 gets a
 *   nonce and nothing it could use.
 * - Proofs are compared with crypto.timingSafeEqual; every wait has a deadline (a silent peer is
 *   dropped after `timeoutMs`); any failure destroys the socket and rejects with a
 *   {@link HandshakeError} that says what happened.
 *
 * Caveats: this authenticates the connection when it opens; it does not encrypt or sign what
 * follows. Someone who can only connect to the cluster network gets nowhere; someone who can
 * rewrite its packets can take over an authenticated TCP connection, as with any unencrypted
 * protocol (MPI's own TCP transports have no authentication at all). Run jobs on a network you
 * trust not to be rewritten, or put a VPN or TLS under it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import type { Readable } from 'node:stream';

/** Bytes of the job secret. */
export const SECRET_SIZE = 32;
/** The environment variable that carries the encoded secret (srun's environment, a dom0's). */
export const SECRET_ENV = 'SFMPI_JOB_SECRET';
/** Bytes of a hello: magic, version, role, reserved, nonce. */
export const HELLO_SIZE = 40;
/** Bytes of a proof (an HMAC-SHA256). */
export const PROOF_SIZE = 32;
/** The handshake's version; a hello of any other version is refused. */
export const HANDSHAKE_VERSION = 1;
/** Default deadline for the whole handshake. */
export const HANDSHAKE_TIMEOUT_MS = 5000;

const MAGIC = Buffer.from('SFHS', 'latin1');
const LABEL = Buffer.from('sfmpi cluster handshake v1\0', 'latin1');

/** Who an end is; the peer's role is checked against what the caller accepts. */
export const Role = { launcher: 1, dom0: 2, rank: 3 } as const;
/** One of the {@link Role} names. */
export type RoleName = keyof typeof Role;
const ROLE_NAMES = new Map<number, RoleName>(Object.entries(Role).map(([k, v]) => [v, k as RoleName]));

/** Stable codes of {@link HandshakeError}. */
export type HandshakeErrorCode =
  | 'ERR_HANDSHAKE_TIMEOUT'
  | 'ERR_HANDSHAKE_CLOSED'
  /** Nothing listens at the address (ECONNREFUSED): no handshake was ever started. */
  | 'ERR_HANDSHAKE_REFUSED'
  | 'ERR_HANDSHAKE_PROTOCOL'
  | 'ERR_HANDSHAKE_VERSION'
  | 'ERR_HANDSHAKE_ROLE'
  | 'ERR_HANDSHAKE_REFLECTED'
  | 'ERR_HANDSHAKE_AUTH';

/** A failed handshake; the socket has been destroyed. */
export class HandshakeError extends Error {
  /** What failed. */
  readonly code: HandshakeErrorCode;
  /** The peer as `address:port` (or what the caller named it). */
  readonly peer: string;
  /** @param code what failed; @param peer who; @param message one line naming both. */
  constructor(code: HandshakeErrorCode, peer: string, message: string) {
    super(message);
    this.name = 'HandshakeError';
    this.code = code;
    this.peer = peer;
  }
}

/** Options of {@link handshakeSocket}. */
export interface HandshakeOptions {
  /** The job secret, 32 bytes. */
  secret: Buffer;
  /** This end's role. */
  role: RoleName;
  /** `client` for the end that connected, `server` for the end that accepted. */
  side: 'client' | 'server';
  /** Roles accepted from the peer; default: any. */
  accept?: readonly RoleName[];
  /** Deadline for the whole handshake in ms (default {@link HANDSHAKE_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** How to name the peer in errors; default its `address:port`. */
  peer?: string;
}

/** A new random job secret. */
export function newSecret(): Buffer {
  return randomBytes(SECRET_SIZE);
}

function checkSecret(secret: Buffer): void {
  if (!Buffer.isBuffer(secret)) throw new TypeError('the job secret must be a Buffer');
  if (secret.length !== SECRET_SIZE) throw new RangeError(`the job secret must be ${SECRET_SIZE} bytes, got ${secret.length}`);
}

/** The secret as 43 base64url characters, for an environment variable or a line on stdin. */
export function encodeSecret(secret: Buffer): string {
  checkSecret(secret);
  return secret.toString('base64url');
}

/** Reads an encoded secret; `where` names its source in the error, which never shows the text
 * itself (a near-miss of a secret is still most of a secret). */
export function decodeSecret(text: string, where = SECRET_ENV): Buffer {
  const t = text.trim();
  if (!/^[A-Za-z0-9_-]{43}$/.test(t))
    throw new RangeError(`${where}: the job secret must be 43 base64url characters (${SECRET_SIZE} bytes), got ${t.length} characters`);
  return Buffer.from(t, 'base64url');
}

/** Loads the secret from `env[name]` and, by default, removes it there so that no child
 * started later inherits it by accident. Throws RangeError naming the variable. */
export function secretFromEnv(env: NodeJS.ProcessEnv = process.env, name = SECRET_ENV, remove = true): Buffer {
  const text = env[name];
  if (text === undefined || text === '') throw new RangeError(`${name} is not set: the job secret is missing`);
  const secret = decodeSecret(text, name);
  if (remove) delete env[name];
  return secret;
}

/**
 * Reads the secret from the first line of `stream` (dom0's stdin under ssh). Bytes after the
 * line are put back and the stream is left paused, so stdin can go on serving as the
 * launcher's lifeline (its end means the launcher is gone). Rejects on a deadline, an end
 * before the line, or a line longer than a secret.
 */
export function readSecretLine(stream: Readable, timeoutMs = HANDSHAKE_TIMEOUT_MS, where = 'standard input'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const done = (err: Error | null, secret?: Buffer, rest?: Buffer) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.pause();
      if (rest && rest.length > 0) stream.unshift(rest);
      if (err) reject(err);
      else resolve(secret as Buffer);
    };
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const nl = got.indexOf(0x0a);
      if (nl < 0) {
        if (got.length > 64) done(new RangeError(`${where}: no job secret line in the first ${got.length} bytes`));
        return;
      }
      try {
        done(null, decodeSecret(got.subarray(0, nl).toString('latin1'), where), got.subarray(nl + 1));
      } catch (e) {
        done(e as Error);
      }
    };
    const onEnd = () => done(new RangeError(`${where} ended before the job secret line`));
    const onError = (e: Error) => done(new RangeError(`${where}: ${e.message} before the job secret line`));
    const timer = setTimeout(() => done(new RangeError(`${where}: no job secret line within ${timeoutMs} ms`)), timeoutMs);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
    stream.resume();
  });
}

function proof(secret: Buffer, who: 'C' | 'S', roleC: number, roleS: number, nonceC: Buffer, nonceS: Buffer): Buffer {
  const mac = createHmac('sha256', secret);
  mac.update(LABEL);
  mac.update(Buffer.from([who.charCodeAt(0), roleC, roleS]));
  mac.update(nonceC);
  mac.update(nonceS);
  return mac.digest();
}

const peerRoles = new WeakMap<net.Socket, RoleName>();

/** The role the peer proved on a socket returned by {@link handshakeSocket}. */
export function peerRole(socket: net.Socket): RoleName | undefined {
  return peerRoles.get(socket);
}

function ignore(): void {
  /* errors after the handshake surface as 'close' with hadError; owners add their own listener */
}

/**
 * Runs the handshake on a fresh socket (nothing read from it or written to it yet) and resolves
 * with the same socket once both ends have proved the secret; rejects with a HandshakeError
 * (the socket destroyed) otherwise. Never throws from a socket event.
 *
 * The resolved socket is paused, with any bytes the peer sent after its last handshake
 * message put back into it: attach a reader and resume (FrameChannel does). TCP_NODELAY is on.
 * For a socket whose fd goes to another process, the protocol above must let the client speak
 * first after the handshake (so that nothing of the server's sits in this process's buffer):
 * `socket.readableLength` is 0 then.
 */
export function handshakeSocket(socket: net.Socket, opts: HandshakeOptions): Promise<net.Socket> {
  checkSecret(opts.secret);
  const myRole = Role[opts.role];
  if (myRole === undefined) throw new RangeError(`unknown role "${String(opts.role)}" (launcher, dom0 or rank)`);
  if (opts.side !== 'client' && opts.side !== 'server') throw new RangeError(`side must be "client" or "server", got "${String(opts.side)}"`);
  for (const r of opts.accept ?? []) if (Role[r] === undefined) throw new RangeError(`unknown role "${String(r)}" in accept (launcher, dom0 or rank)`);
  const accept = new Set<number>((opts.accept ?? (Object.keys(Role) as RoleName[])).map((r) => Role[r]));
  const timeoutMs = opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`timeoutMs must be a positive number of ms, got ${timeoutMs}`);
  const client = opts.side === 'client';
  const nonce = randomBytes(32);
  const hello = Buffer.alloc(HELLO_SIZE);
  MAGIC.copy(hello, 0);
  hello[4] = HANDSHAKE_VERSION;
  hello[5] = myRole;
  nonce.copy(hello, 8);
  // Named once known: after a reset the socket no longer has a remote address to show.
  let peerName = opts.peer ?? null;
  const who = () => (peerName ??= socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : null) ?? 'the peer';
  who();

  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    let stage: 'hello' | 'proof' = 'hello';
    let peerRoleCode = 0;
    let peerNonce: Buffer | null = null;
    let settled = false;

    const waitingFor = () =>
      stage === 'hello' ? `its hello (${buf.length} of ${HELLO_SIZE} bytes)` : `its proof of the job secret (${buf.length} of ${PROOF_SIZE} bytes)`;

    const cleanup = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      socket.off('error', onError);
      socket.on('error', ignore);
    };
    const fail = (code: HandshakeErrorCode, message: string) => {
      if (settled) return;
      settled = true;
      cleanup();
      socket.destroy();
      reject(new HandshakeError(code, who(), message));
    };
    const succeed = (rest: Buffer) => {
      if (settled) return;
      settled = true;
      cleanup();
      socket.pause();
      if (rest.length > 0) socket.unshift(rest);
      peerRoles.set(socket, ROLE_NAMES.get(peerRoleCode) as RoleName);
      resolve(socket);
    };

    const checkHello = (): boolean => {
      const have = Math.min(buf.length, HELLO_SIZE);
      for (let i = 0; i < Math.min(have, 4); i++)
        if (buf[i] !== MAGIC[i]) {
          const head = buf.subarray(0, Math.min(buf.length, 8));
          const text = head.toString('latin1').replace(/[^\x20-\x7e]/g, '.');
          fail('ERR_HANDSHAKE_PROTOCOL', `${who()} does not speak the sfmpi handshake: it sent ${[...head].map((b) => b.toString(16).padStart(2, '0')).join(' ')} "${text}"`);
          return false;
        }
      if (have > 4 && buf[4] !== HANDSHAKE_VERSION) {
        fail('ERR_HANDSHAKE_VERSION', `${who()} speaks handshake version ${buf[4]}, this end version ${HANDSHAKE_VERSION}`);
        return false;
      }
      if (have > 5 && !ROLE_NAMES.has(buf[5])) {
        fail('ERR_HANDSHAKE_PROTOCOL', `${who()} sent an unknown role ${buf[5]} in its hello`);
        return false;
      }
      if (have > 7 && (buf[6] !== 0 || buf[7] !== 0)) {
        fail('ERR_HANDSHAKE_PROTOCOL', `${who()} sent non-zero reserved bytes in its hello`);
        return false;
      }
      return have === HELLO_SIZE;
    };

    const onData = (chunk: Buffer) => {
      if (settled) return;
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (stage === 'hello') {
        if (!checkHello()) return;
        peerRoleCode = buf[5];
        peerNonce = Buffer.from(buf.subarray(8, HELLO_SIZE));
        buf = buf.subarray(HELLO_SIZE);
        if (!accept.has(peerRoleCode)) {
          const wanted = [...accept].map((r) => ROLE_NAMES.get(r)).join(' or ');
          return fail('ERR_HANDSHAKE_ROLE', `${who()} says it is a ${ROLE_NAMES.get(peerRoleCode)}, this ${opts.role} accepts only ${wanted}`);
        }
        if (timingSafeEqual(peerNonce, nonce))
          return fail('ERR_HANDSHAKE_REFLECTED', `${who()} sent back this end's own nonce (a reflected hello)`);
        stage = 'proof';
        if (client) socket.write(proof(opts.secret, 'C', myRole, peerRoleCode, nonce, peerNonce));
      }
      if (buf.length < PROOF_SIZE) return;
      const got = buf.subarray(0, PROOF_SIZE);
      const rest = Buffer.from(buf.subarray(PROOF_SIZE));
      const [roleC, roleS, nonceC, nonceS] = client
        ? [myRole, peerRoleCode, nonce, peerNonce as Buffer]
        : [peerRoleCode, myRole, peerNonce as Buffer, nonce];
      const want = proof(opts.secret, client ? 'S' : 'C', roleC, roleS, nonceC, nonceS);
      if (!timingSafeEqual(got, want))
        return fail('ERR_HANDSHAKE_AUTH', `${who()} failed to prove the job secret (a different job's secret, or not an sfmpi peer)`);
      if (!client) socket.write(proof(opts.secret, 'S', roleC, roleS, nonceC, nonceS));
      succeed(rest);
    };
    const closedMessage = () =>
      client && stage === 'proof'
        ? `${who()} closed the connection instead of proving the job secret: it refused this end's proof (do both ends have the same job secret?)`
        : `${who()} closed the connection during the handshake, while this end waited for ${waitingFor()}`;
    const onEnd = () => fail('ERR_HANDSHAKE_CLOSED', closedMessage());
    const onClose = () => fail('ERR_HANDSHAKE_CLOSED', closedMessage());
    const onError = (e: NodeJS.ErrnoException) =>
      fail(e.code === 'ECONNREFUSED' ? 'ERR_HANDSHAKE_REFUSED' : 'ERR_HANDSHAKE_CLOSED', `connection to ${who()} failed during the handshake: ${e.code ?? e.message}${stage === 'hello' && buf.length === 0 ? '' : `, while this end waited for ${waitingFor()}`}`);
    const timer = setTimeout(
      () => fail('ERR_HANDSHAKE_TIMEOUT', `handshake with ${who()} timed out after ${timeoutMs} ms, waiting for ${waitingFor()}`),
      timeoutMs,
    );

    socket.setNoDelay(true);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    socket.on('error', onError);
    if (socket.destroyed) return fail('ERR_HANDSHAKE_CLOSED', `the socket to ${who()} was already closed`);
    socket.write(hello);
    socket.resume();
  });
}

/** Connects to `host:port` and runs the handshake as the client; one deadline covers both.
 * Resolves with the authenticated (paused) socket, or rejects with a HandshakeError. */
export function connectAuthenticated(opts: Omit<HandshakeOptions, 'side' | 'peer'> & { host: string; port: number; localAddress?: string }): Promise<net.Socket> {
  const socket = net.connect({ host: opts.host, port: opts.port, localAddress: opts.localAddress });
  return handshakeSocket(socket, { ...opts, side: 'client', peer: `${opts.host}:${opts.port}` });
}
