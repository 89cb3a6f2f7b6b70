/** Cuts a byte stream into whole lines, so lines from different writers never interleave. Pure. */

/** A line longer than this is written out in pieces rather than held in memory without bound. */
export const MAX_LINE_BYTES = 256 * 1024;

export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** Returns the complete lines in `data` (each ending in "\n"), keeping any partial tail. */
  push(data: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let start = 0;
    for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
      const piece = data.subarray(start, nl + 1);
      lines.push(this.pendingBytes > 0 ? Buffer.concat([...this.pending, piece]) : piece);
      this.pending = [];
      this.pendingBytes = 0;
      start = nl + 1;
    }
    if (start < data.length) {
      this.pending.push(data.subarray(start));
      this.pendingBytes += data.length - start;
      if (this.pendingBytes >= MAX_LINE_BYTES) lines.push(this.flushPartial());
    }
    return lines;
  }

  /** At end of stream: the unterminated tail, if any, as a line of its own. */
  end(): Buffer[] {
    return this.pendingBytes > 0 ? [this.flushPartial()] : [];
  }

  private flushPartial(): Buffer {
    const line = Buffer.concat([...this.pending, Buffer.from('\n')]);
    this.pending = [];
    this.pendingBytes = 0;
    return line;
  }
}
