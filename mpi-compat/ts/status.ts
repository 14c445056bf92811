/**
 * Status of a completed receive or probe (MPI_Status).
 */
import { TYPE_NAMES } from './datatype.js';

/** Source, tag and size of a received (or probed) message. */
export class Status {
  /** Rank of the sender in the communicator of the receive (PROC_NULL for a receive from PROC_NULL). */
  source = -1;
  /** Tag of the message. */
  tag = -1;
  /** Elements received: typed-array elements for buffer messages, bytes for object messages. */
  count = 0;
  /** Bytes of payload. */
  bytes = 0;
  /** Datatype of the message: 'object' or a typed-array element type ('float64', 'int32', ...). */
  datatype = 'object';

  /** @internal fill from the binding's status array (world source already mapped by the caller). */
  _set(source: number, tag: number, bytes: number, dtype: number): this {
    this.source = source;
    this.tag = tag;
    this.bytes = bytes;
    this.datatype = TYPE_NAMES[dtype] ?? 'unknown';
    const size = dtype === 0 ? 1 : ELEMENT_BYTES[dtype] ?? 1;
    this.count = bytes / size;
    return this;
  }

  /** Elements received (mpi4py's Get_count). */
  getCount(): number {
    return this.count;
  }
}

const ELEMENT_BYTES = [1, 1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8];
