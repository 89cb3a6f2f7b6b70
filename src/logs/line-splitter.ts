/** Cuts a byte stream into whole lines, so lines from different writers never interleave. Pure. */

/** A line longer than this is written out in pieces rather than held in memory without bound. */
export const MAX_LINE_BYTES = 256 * 1024;

const NEWLINE = 0x0a;
const NONE = Buffer.alloc(0);

export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /**
   * Returns the complete lines in `data`, each ending in "\n", as one buffer (empty when there is
   * none yet), and keeps any partial tail for the next call. One buffer rather than one per line:
   * the log path only ever cuts between lines at a rotation, and a buffer per line was most of
   * its cost.
   */
  push(data: Buffer): Buffer {
    const last = data.lastIndexOf(NEWLINE);
    if (last === -1) return this.keep(data);
    const lines = this.withPending(data.subarray(0, last + 1));
    const tail = this.keep(data.subarray(last + 1));
    return tail.length > 0 ? Buffer.concat([lines, tail]) : lines;
  }

  /** At end of stream: the unterminated tail, if any, as a line of its own. */
  end(): Buffer {
    return this.pendingBytes > 0 ? this.withPending(Buffer.from('\n')) : NONE;
  }

  /** Holds a piece with no newline; if that makes the partial line too long, returns it cut. */
  private keep(piece: Buffer): Buffer {
    if (piece.length === 0) return NONE;
    this.pending.push(piece);
    this.pendingBytes += piece.length;
    return this.pendingBytes >= MAX_LINE_BYTES ? this.withPending(Buffer.from('\n')) : NONE;
  }

  private withPending(end: Buffer): Buffer {
    if (this.pendingBytes === 0) return end;
    const joined = Buffer.concat([...this.pending, end]);
    this.pending = [];
    this.pendingBytes = 0;
    return joined;
  }
}
