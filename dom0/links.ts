/**
 * The cluster network between ranks: one TCP connection for every pair of ranks on different
 * hosts, made by their hosts' dom0s, authenticated with the job's secret (dom0/handshake.ts),
 * then handed to the ranks as bare sockets (the data plane's TCP link, link_tcp.c).
 *
 * For hosts i < j, host i's dom0 connects to host j's data port once per pair (a on i, b on j).
 * After the handshake the client sends the pair, 8 bytes, and nothing else:
 *
 *     0               4               8
 *     +---------------+---------------+
 *     | a (u32 LE)    | b (u32 LE)    |    a: the client's rank, b: the server's rank
 *     +---------------+---------------+
 *
 * Then both ends take the socket out of Node's hands (a duplicate of its fd goes to the rank,
 * Node's own is closed unread). No byte of the data plane may travel before every end of the
 * job is out of Node's hands, or a dom0 could read it into its own buffer: the ranks wait for
 * the launcher's go (sent once every dom0 reported its links) before their fork point returns.
 */
import net from 'node:net';
import { native } from '../native/addon.js';
import { handshakeSocket, connectAuthenticated } from './handshake.js';
import type { JoinLink } from './join.js';

/** A host's data endpoint. */
export interface Endpoint {
  address: string;
  port: number;
}

/** What one dom0 needs to make its host's links. */
export interface LinkPlan {
  /** This host's index. */
  me: number;
  /** World ranks of each host, in host order. */
  ranksOf: readonly (readonly number[])[];
  /** Each host's data endpoint. */
  endpoints: readonly Endpoint[];
}

/** The fd under a net.Socket (Linux, libuv's handle). */
function fdOf(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('cannot take the socket out of Node: it has no fd');
  return fd;
}

/** A duplicate of the socket's fd, for a rank; Node's own is closed, nothing more is read. */
export function detach(socket: net.Socket): number {
  socket.pause();
  const fd = native.dupFd(fdOf(socket));
  socket.removeAllListeners('data');
  socket.on('error', () => {}); // closing Node's copy is all that is left
  socket.destroy();
  return fd;
}

/** Reads exactly `n` bytes from a paused, authenticated socket (with a deadline). */
export function readExactly(socket: net.Socket, n: number, timeoutMs: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const done = (err: Error | null, v?: Buffer) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(v!);
    };
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length < n) return;
      socket.pause();
      if (got.length > n) done(new Error(`${what}: ${got.length - n} bytes more than the pair`));
      else done(null, got);
    };
    const onClose = () => done(new Error(`${what}: closed before the pair arrived`));
    const timer = setTimeout(() => done(new Error(`${what}: no pair within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.resume();
  });
}

/** One dom0's side of the mesh: a data port, and the links of its host's ranks. */
export class DataLinks {
  readonly #secret: Buffer;
  readonly #server: net.Server;
  readonly #timeoutMs: number;
  readonly #pending = new Set<net.Socket>();
  /** Takes an authenticated connection and its pair, once expect() knows the plan. */
  #accepting: ((s: net.Socket, pair: Buffer) => void) | null = null;
  /** Authenticated connections that came before the plan. */
  #early: { socket: net.Socket; pair: Buffer }[] = [];
  #open: JoinLink[] = [];
  readonly #onRefused: (message: string) => void;

  /**
   * @param secret the job's
   * @param opts.timeoutMs deadline of each connection's set-up
   * @param opts.onRefused told of every connection refused (a stranger, a wrong secret, garbage,
   *   a pair not in the plan); the mesh goes on without it
   */
  constructor(secret: Buffer, opts: { timeoutMs?: number; onRefused?: (message: string) => void } = {}) {
    this.#secret = secret;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#onRefused = opts.onRefused ?? ((m) => process.emitWarning(`dom0: ${m}`));
    this.#server = net.createServer({ noDelay: true }, (s) => this.#arrive(s));
  }

  /** Every connection proves the secret and names its pair at once, plan or no plan yet. */
  #arrive(s: net.Socket): void {
    this.#pending.add(s);
    handshakeSocket(s, { secret: this.#secret, role: 'dom0', side: 'server', accept: ['dom0'], timeoutMs: this.#timeoutMs })
      .then((auth) => readExactly(auth, 8, this.#timeoutMs, `data connection from ${s.remoteAddress}`))
      .then((pair) => {
        if (this.#accepting) this.#accepting(s, pair);
        else this.#early.push({ socket: s, pair }); // held until expect() knows what to wait for
      })
      .catch((e: Error) => this.#refuse(s, e.message));
  }

  /** A stranger or a bad connection goes; the ones the plan needs may still come. */
  #refuse(s: net.Socket, why: string): void {
    this.#pending.delete(s);
    s.destroy();
    this.#onRefused(`refused a data connection: ${why}`);
  }

  /** Listens on `address` only (the cluster network's, never every interface); the port. */
  listen(address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, address, () => {
        this.#server.off('error', reject);
        resolve((this.#server.address() as net.AddressInfo).port);
      });
    });
  }

  /**
   * Makes every link of this host's ranks: connects to the hosts after this one, accepts from
   * the hosts before. Resolves with them all (local = index of the rank on this host), or
   * rejects naming the pair or peer that failed.
   */
  async expect(plan: LinkPlan): Promise<JoinLink[]> {
    const mine = plan.ranksOf[plan.me];
    const localOf = new Map(mine.map((r, i) => [r, i]));
    const want = new Set<string>(); // pairs to accept: "a:b"
    for (let h = 0; h < plan.me; h++) for (const a of plan.ranksOf[h]) for (const b of mine) want.add(`${a}:${b}`);
    const accepted = new Promise<JoinLink[]>((resolve, reject) => {
      const out: JoinLink[] = [];
      const take = (s: net.Socket, pair: Buffer) => {
        const a = pair.readUInt32LE(0), b = pair.readUInt32LE(4);
        if (!want.delete(`${a}:${b}`)) return this.#refuse(s, `data connection from ${s.remoteAddress}: pair ${a} -> ${b} is not one this host expects (or came twice)`);
        this.#pending.delete(s);
        const link = { local: localOf.get(b)!, peer: a, fd: detach(s) };
        this.#open.push(link);
        out.push(link);
        if (want.size === 0) resolve(out);
      };
      this.#accepting = take;
      for (const e of this.#early.splice(0)) take(e.socket, e.pair);
      if (want.size === 0) return resolve(out);
      setTimeout(() => {
        if (want.size > 0) reject(new Error(`${want.size} data connection(s) from other hosts never came (first: ranks ${[...want][0].replace(':', ' -> ')})`));
      }, this.#timeoutMs).unref();
    });
    const outgoing: Promise<JoinLink>[] = [];
    for (let h = plan.me + 1; h < plan.ranksOf.length; h++) {
      const ep = plan.endpoints[h];
      for (const a of mine)
        for (const b of plan.ranksOf[h]) {
          outgoing.push(
            (async () => {
              const s = await connectAuthenticated({ host: ep.address, port: ep.port, secret: this.#secret, role: 'dom0', accept: ['dom0'], timeoutMs: this.#timeoutMs });
              const pair = Buffer.alloc(8);
              pair.writeUInt32LE(a, 0);
              pair.writeUInt32LE(b, 4);
              await new Promise<void>((resolve, reject) => s.write(pair, (e) => (e ? reject(e) : resolve())));
              const link = { local: localOf.get(a)!, peer: b, fd: detach(s) };
              this.#open.push(link);
              return link;
            })().catch((e: Error) => {
              throw new Error(`data connection of rank ${a} to rank ${b} on ${ep.address}:${ep.port}: ${e.message}`);
            }),
          );
        }
    }
    const [acc, out] = await Promise.all([accepted, Promise.all(outgoing)]);
    return [...out, ...acc];
  }

  /**
   * The links are in the ranks' hands: forget them (the caller closed its copies) and stop
   * listening, since no data connection comes after the job's mesh is made.
   */
  handedOver(): void {
    this.#open = [];
    this.#server.close();
  }

  /** Stops listening and closes what was not handed over. */
  close(): void {
    this.#server.close();
    for (const s of [...this.#pending, ...this.#early.map((e) => e.socket)]) s.destroy();
    this.#early = [];
    for (const l of this.#open) native.closeFd(l.fd);
    this.#open = [];
  }
}
