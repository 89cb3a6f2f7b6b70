/** The daemon's own log: pino JSON lines, or a compact text form for people (`--log-format pretty`). */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/daemon-config.js';

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

export function createLogger(format: LogFormat, level: LogLevel, out: NodeJS.WritableStream = process.stdout): Logger {
  // No pid or hostname on every line: `pid` in a record is always a service process's.
  const options = { level, base: undefined };
  if (format === 'json') return pino(options, pino.destination({ dest: 1, sync: true }));
  const pretty = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) out.write(prettyLine(line) + '\n');
      done();
    },
  });
  return pino(options, pretty);
}
