/**
 * Collects one output stream (stdout or stderr) of every replica of a service into its log file,
 * line by line. When the disk falls behind, the readers are paused, so the pipes fill and the
 * children block in write(): nothing is dropped and nothing buffers without bound.
 */
import type { Readable } from 'node:stream';
import { LineSplitter } from './line-splitter.js';
import type { LogFile } from './log-file.js';

export interface LogSinkOptions {
  /** Pause the readers above this many queued bytes... */
  readonly highWaterBytes?: number;
  /** ...and resume below this many. */
  readonly lowWaterBytes?: number;
}

export class LogSink {
  private readonly sources = new Set<Readable>();
  private queued = 0;
  private paused = false;
  private readonly high: number;
  private readonly low: number;

  constructor(readonly file: LogFile, options: LogSinkOptions = {}) {
    this.high = options.highWaterBytes ?? 1024 * 1024;
    this.low = options.lowWaterBytes ?? this.high / 4;
  }

  /** Reads `stream` to its end; resolves when everything it wrote is in the file. */
  attach(stream: Readable): Promise<void> {
    const splitter = new LineSplitter();
    this.sources.add(stream);
    if (this.paused) stream.pause();
    // Only the latest write is kept: the file writes appends in call order, so once it settles
    // every earlier one has. Chaining them instead (Promise.all of the previous and the next)
    // resolves to an ever deeper array, which grew the daemon's memory for as long as a chatty
    // process ran.
    let written: Promise<void> = Promise.resolve();
    const add = (lines: Buffer) => {
      if (lines.length > 0) written = this.enqueue(lines);
    };
    return new Promise((resolve) => {
      stream.on('data', (data: Buffer) => add(splitter.push(data)));
      stream.on('error', () => undefined);
      stream.once('close', () => {
        this.sources.delete(stream);
        add(splitter.end());
        void written.then(() => resolve());
      });
    });
  }

  private enqueue(lines: Buffer): Promise<void> {
    const bytes = lines.length;
    this.queued += bytes;
    if (!this.paused && this.queued > this.high) {
      this.paused = true;
      for (const s of this.sources) s.pause();
    }
    return this.file.append(lines).then(
      () => this.written(bytes),
      () => this.written(bytes),
    );
  }

  private written(bytes: number): void {
    this.queued -= bytes;
    if (this.paused && this.queued < this.low) {
      this.paused = false;
      for (const s of this.sources) s.resume();
    }
  }
}
