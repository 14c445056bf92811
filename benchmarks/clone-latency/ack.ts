/**
 * How a clone tells the origin it is running: one byte on a FIFO that the origin opened before
 * clone(), so every clone inherits it. The clone's side is one write(2). The origin waits as a
 * waiting rank does, and as the Atomics.wait peer blocks: it reads what has arrived, and sleeps
 * 0.1 ms between looks (so "ready" is late by at most that). A FIFO because Node has no pipe(2);
 * the origin opens it read-write and non-blocking, so it never sees end-of-file and no write or
 * read blocks. No event loop is involved: a reader handle made before clone() would be inherited
 * by every clone's loop.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

let dir: string | null = null;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function fifoPath(): string {
  if (dir === null) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfmpi-bench-clone-'));
    execFileSync('mkfifo', ['-m', '600', path.join(dir, 'ack')]);
    const made = dir;
    const owner = process.pid;
    // Clones inherit this listener and run it when they leave: only the origin removes the FIFO.
    process.once('exit', () => {
      if (process.pid === owner) fs.rmSync(made, { recursive: true, force: true });
    });
  }
  return path.join(dir, 'ack');
}

/** One round of acknowledgements. Open it before clone(); collect() in the origin only. */
export class Ack {
  private constructor(private readonly fd: number) {}

  static open(): Ack {
    return new Ack(fs.openSync(fifoPath(), fs.constants.O_RDWR | fs.constants.O_NONBLOCK));
  }

  /** In a clone: "I am running, with the state". */
  send(): void {
    fs.writeSync(this.fd, Buffer.of(1));
  }

  /** In the origin: performance.now() at the n-th acknowledgement; closes the FIFO. */
  collect(n: number, timeoutMs: number): number {
    const deadline = performance.now() + timeoutMs;
    const bytes = Buffer.alloc(64);
    let got = 0;
    try {
      for (;;) {
        let read = 0;
        try {
          read = fs.readSync(this.fd, bytes, 0, bytes.length, null);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        }
        got += read;
        if (got >= n) return performance.now();
        if (read > 0) continue;
        if (performance.now() > deadline) throw new Error(`only ${got} of ${n} clones acknowledged within ${timeoutMs} ms`);
        Atomics.wait(sleeper, 0, 0, 0.1);
      }
    } finally {
      fs.closeSync(this.fd);
    }
  }
}
