/**
 * How a clone tells the origin it is running: one byte on a Unix socket pair that the origin made
 * before clone(), so every clone inherits its writing end. The clone's side is one write(2). The
 * origin blocks in poll(2) with a deadline until the bytes are in (native.recvMsg), as the
 * worker_threads peer blocks in Atomics.wait: neither side polls on a timer, so neither takes
 * cores from the workers it waits for. No event loop is involved: a reader handle made before
 * clone() would be inherited by every clone's loop.
 */
import fs from 'node:fs';
import { native } from '../../native/addon.js';

/** One round of acknowledgements. Open it before clone(); collect() in the origin only. */
export class Ack {
  private constructor(
    private readonly reader: number,
    private readonly writer: number,
  ) {}

  static open(): Ack {
    const [reader, writer] = native.socketPair();
    return new Ack(reader, writer);
  }

  /** In a clone: "I am running, with the state". */
  send(): void {
    fs.writeSync(this.writer, Buffer.of(1));
  }

  /** In the origin: performance.now() at the n-th acknowledgement; closes the pair. */
  collect(n: number, timeoutMs: number): number {
    const deadline = performance.now() + timeoutMs;
    let got = 0;
    try {
      for (;;) {
        const left = Math.ceil(deadline - performance.now());
        if (left <= 0) throw new Error(`only ${got} of ${n} clones acknowledged within ${timeoutMs} ms`);
        let read: number;
        try {
          read = native.recvMsg(this.reader, 64, left).data.length;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ETIMEDOUT') continue; // the deadline says it
          throw e;
        }
        got += read;
        if (got >= n) return performance.now();
      }
    } finally {
      native.closeFd(this.reader);
      native.closeFd(this.writer);
    }
  }
}
