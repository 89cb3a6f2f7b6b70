/**
 * One log file with size rotation: `web.stdout.log`, then `.1` ... `.N` for older content.
 * Writes are whole lines, queued and written in order; rotation happens only between lines, so
 * no line is lost, cut or written twice across a rotation.
 */
import fs from 'node:fs/promises';
import type { LogLimits } from '../config/supervise.js';

const NEWLINE = 0x0a;

export class LogFile {
  private handle: fs.FileHandle | undefined;
  private size = 0;
  private chain: Promise<void> = Promise.resolve();
  /** Appends that arrived while a write was under way, to be written together by the next one. */
  private gathering: { readonly parts: Buffer[]; readonly written: Promise<void> } | undefined;
  private readonly followers = new Set<(data: Buffer) => void>();

  constructor(readonly path: string, private limits: LogLimits) {}

  /** New rotation limits (a reload) apply from the next write. */
  setLimits(limits: LogLimits): void {
    this.limits = limits;
  }

  /**
   * Appends whole lines. Resolves once they are written; calls are written in call order. While
   * one write is under way, the appends that arrive meanwhile are gathered into the next: a busy
   * log takes one system call per pipe-full of waiting output, not one per read.
   */
  append(lines: Buffer): Promise<void> {
    if (!this.gathering) {
      const parts: Buffer[] = [];
      const written = this.chain.then(() => {
        if (this.gathering?.parts === parts) this.gathering = undefined;
        return this.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
      });
      this.chain = written.catch(() => undefined);
      this.gathering = { parts, written };
    }
    this.gathering.parts.push(lines);
    return this.gathering.written;
  }

  private async open(): Promise<fs.FileHandle> {
    if (!this.handle) {
      this.handle = await fs.open(this.path, 'a', 0o640);
      this.size = (await this.handle.stat()).size;
    }
    return this.handle;
  }

  private async write(lines: Buffer): Promise<void> {
    await this.open();
    let rest = lines;
    while (rest.length > 0) {
      const now = bytesBeforeRotation(rest, this.size, this.limits.maxBytes);
      if (now === 0) {
        await this.rotate();
        continue;
      }
      await this.writeOut(rest.subarray(0, now));
      rest = rest.subarray(now);
    }
  }

  private async writeOut(data: Buffer): Promise<void> {
    const handle = await this.open();
    let written = 0;
    while (written < data.length) written += (await handle.write(data, written, data.length - written)).bytesWritten;
    this.size += data.length;
    for (const follower of this.followers) follower(data);
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
    // Later appends must wait for the task, so they may not join a write queued before it.
    this.gathering = undefined;
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

/**
 * How many bytes of `lines` (whole lines) go into a file that holds `size` bytes before it is
 * rotated: all of them when they fit or there is no limit, else the whole lines that fit; 0 means
 * rotate first. A line longer than the limit goes whole into a fresh file of its own.
 */
export function bytesBeforeRotation(lines: Buffer, size: number, maxBytes: number): number {
  if (maxBytes <= 0 || size + lines.length <= maxBytes) return lines.length;
  const room = maxBytes - size;
  const fitting = room > 0 ? lines.lastIndexOf(NEWLINE, room - 1) + 1 : 0;
  if (fitting > 0) return fitting;
  if (size > 0) return 0;
  return lines.indexOf(NEWLINE) + 1 || lines.length;
}
