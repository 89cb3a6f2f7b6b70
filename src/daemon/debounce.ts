/**
 * Turns a burst of change notices into one call. A save touches a file several times and an
 * operator often saves several files at once; reloading on each would restart services for
 * half-finished edits.
 */
export class Debouncer<T> {
  private readonly pending = new Set<T>();
  private quietTimer: NodeJS.Timeout | undefined;
  private maxWaitTimer: NodeJS.Timeout | undefined;

  /**
   * Flushes once the burst has been quiet for `quietMs`, or `maxWaitMs` after it began even if it
   * has not gone quiet: a writer that never stops must not hold back every reload.
   */
  constructor(
    private readonly quietMs: number,
    private readonly maxWaitMs: number,
    private readonly flush: (items: T[]) => void,
  ) {
    if (!Number.isFinite(quietMs) || quietMs < 0) throw new RangeError(`quiet time must be a non-negative number of ms, not ${quietMs}`);
    if (!Number.isFinite(maxWaitMs) || maxWaitMs < quietMs) throw new RangeError(`maximum wait (${maxWaitMs} ms) must be at least the quiet time (${quietMs} ms)`);
  }

  /** Something settled: it joins the burst, and the burst is not quiet yet. */
  push(item: T): void {
    this.pending.add(item);
    if (this.quietTimer) this.quietTimer.refresh();
    else this.quietTimer = setTimeout(() => this.fire(), this.quietMs);
    this.startMaxWait();
  }

  /**
   * Something is still changing: it joins the burst, starts the maximum wait and keeps a started
   * burst from being quiet. It does not start the quiet time itself: it may never settle, and then
   * only the maximum wait flushes it.
   */
  notice(item: T): void {
    this.pending.add(item);
    this.quietTimer?.refresh();
    this.startMaxWait();
  }

  /** Drops the burst; nothing is flushed and no timer is left behind. */
  cancel(): void {
    this.stopTimers();
    this.pending.clear();
  }

  private startMaxWait(): void {
    this.maxWaitTimer ??= setTimeout(() => this.fire(), this.maxWaitMs);
  }

  private stopTimers(): void {
    clearTimeout(this.quietTimer);
    clearTimeout(this.maxWaitTimer);
    this.quietTimer = this.maxWaitTimer = undefined;
  }

  private fire(): void {
    this.stopTimers();
    const items = [...this.pending];
    this.pending.clear();
    this.flush(items);
  }
}
