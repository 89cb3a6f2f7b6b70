/** The daemon's own log: pino JSON lines, or a compact text form for people (`--log-format pretty`). */
import fs from 'node:fs';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/daemon-config.js';
import type { LogFile } from '../logs/log-file.js';

export type LogFormat = 'json' | 'pretty';

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const OMIT = new Set(['level', 'time', 'msg']);

/** One JSON record as a line of text: time, level, message, then key=value pairs. */
export function prettyLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = new Date(typeof record['time'] === 'number' ? record['time'] : Date.now()).toISOString().slice(11, 23);
  const fields = Object.entries(record)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  return `${time} ${(LEVEL_NAMES[record['level'] as number] ?? 'LOG').padEnd(5)} ${String(record['msg'] ?? '')}${fields.length ? ' ' + fields.join(' ') : ''}`;
}

/**
 * Where the daemon's log goes: stdout (JSON or pretty), and once the config is loaded also the
 * daemon log file, which `sockvisorctl maintail` reads. Lines logged before the file is known are
 * kept (a bounded number) and written to it first.
 */
export class DaemonLogTee extends Writable {
  private file: LogFile | undefined;
  private early: string[] = [];

  constructor(private readonly format: LogFormat) {
    super();
  }

  attachFile(file: LogFile): void {
    this.file = file;
    if (this.early.length > 0) void file.append(Buffer.from(this.early.join('')));
    this.early = [];
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    const text = chunk.toString('utf8');
    // Synchronous, so nothing logged is lost when the daemon exits right after.
    fs.writeSync(1, this.format === 'json' ? text : text.split('\n').filter(Boolean).map((l) => prettyLine(l) + '\n').join(''));
    const lines = text.split('\n').filter(Boolean).map((l) => l + '\n');
    if (this.file) void this.file.append(Buffer.from(lines.join('')));
    else this.early = [...this.early, ...lines].slice(-1000);
    done();
  }
}

export function createLogger(format: LogFormat, level: LogLevel): { logger: Logger; tee: DaemonLogTee } {
  const tee = new DaemonLogTee(format);
  // No pid or hostname on every line: `pid` in a record is always a service process's.
  return { logger: pino({ level, base: undefined }, tee), tee };
}
