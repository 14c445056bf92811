/** Forwards a rank's output whole lines at a time, so ranks never interleave mid-line. */
import type { Readable, Writable } from 'node:stream';

export function forwardLines(from: Readable, to: Writable): Promise<void> {
  let rest: Buffer | null = null;
  return new Promise((resolve) => {
    from.on('data', (chunk: Buffer) => {
      const buf: Buffer = rest ? Buffer.concat([rest, chunk]) : chunk;
      const last = buf.lastIndexOf(0x0a);
      if (last < 0) {
        rest = buf;
        return;
      }
      to.write(buf.subarray(0, last + 1));
      rest = last + 1 < buf.length ? Buffer.from(buf.subarray(last + 1)) : null;
    });
    const done = () => {
      if (rest) to.write(rest);
      rest = null;
      resolve();
    };
    from.on('end', done);
    from.on('error', done);
  });
}
