/**
 * One log file with size rotation: `web.stdout.log`, then `.1` ... `.N` for older content.
 * Writes are whole lines, queued and written in order; rotation happens only between lines, so
 * no line is lost, cut or written twice across a rotation.
 */
import fs from 'node:fs/promises';
import type { LogLimits } from '../config/supervise.js';

export class LogFile {
  private handle: fs.FileHandle | undefined;
  private size = 0;
  private chain: Promise<void> = Promise.resolve();
  private readonly followers = new Set<(data: Buffer) => void>();

  constructor(readonly path: string, private limits: LogLimits) {}

  /** New rotation limits (a reload) apply from the next write. */
  setLimits(limits: LogLimits): void {
    this.limits = limits;
  }

  /** Appends whole lines. Resolves once they are written; calls are written in call order. */
  append(lines: readonly Buffer[]): Promise<void> {
    const run = this.chain.then(() => this.write(lines));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async open(): Promise<fs.FileHandle> {
    if (!this.handle) {
      this.handle = await fs.open(this.path, 'a', 0o640);
      this.size = (await this.handle.stat()).size;
    }
    return this.handle;
  }

  private async write(lines: readonly Buffer[]): Promise<void> {
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const handle = await this.open();
      const data = Buffer.concat(batch, batchBytes);
      let written = 0;
      while (written < data.length) written += (await handle.write(data, written, data.length - written)).bytesWritten;
      this.size += data.length;
      for (const follower of this.followers) follower(data);
      batch = [];
      batchBytes = 0;
    };
    await this.open();
    for (const line of lines) {
      const max = this.limits.maxBytes;
      if (max > 0 && this.size + batchBytes + line.length > max && this.size + batchBytes > 0) {
        await flush();
        await this.rotate();
      }
      batch.push(line);
      batchBytes += line.length;
    }
    await flush();
  }

  private async rotate(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
    const { backups } = this.limits;
    if (backups === 0) {
      await fs.truncate(this.path, 0).catch(() => undefined);
    } else {
      for (let i = backups - 1; i >= 1; i--) await fs.rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch(() => undefined);
      await fs.rename(this.path, `${this.path}.1`).catch(() => undefined);
    }
    this.size = 0;
  }

  /**
   * Calls `listener` with everything written from now on, in order, across rotations: `tail -f`
   * follows the writer itself rather than watching files.
   */
  follow(listener: (data: Buffer) => void): () => void {
    this.followers.add(listener);
    return () => this.followers.delete(listener);
  }

  /** Runs `task` once everything appended so far is written, and before anything appended later. */
  whenWritten<T>(task: () => Promise<T>): Promise<T> {
    const run = this.chain.then(task);
    this.chain = run.then(() => undefined, () => undefined);
    return run;
  }

  /** Empties the log and removes its rotated files, as `sockvisorctl clear` does. */
  clear(): Promise<void> {
    return this.whenWritten(async () => {
      await this.handle?.close();
      this.handle = undefined;
      await fs.truncate(this.path, 0).catch(() => undefined);
      for (let i = 1; i <= this.limits.backups; i++) await fs.rm(`${this.path}.${i}`, { force: true });
      this.size = 0;
    });
  }

  async close(): Promise<void> {
    await this.chain;
    await this.handle?.close();
    this.handle = undefined;
  }
}
