/** Durations and sizes as operators write them: `250ms`, `10s`, `5m`, `512KB`, `10MB`. Pure. */
import type { ArgValue } from './values.js';

const DURATION = /^([0-9]+(?:\.[0-9]+)?)[ \t]*(ms|s|m|h)$/;
const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds, or a message saying why the value is not a duration. */
export function parseDuration(value: ArgValue): number | string {
  if (value.kind === 'int' || value.kind === 'float') {
    const seconds = Number(value.value);
    if (!Number.isFinite(seconds)) return `duration ${value.raw} is not finite`;
    if (seconds < 0) return `duration ${value.raw} is negative`;
    return Math.round(seconds * 1000);
  }
  if (value.kind === 'str') {
    const text = value.value.trim();
    if (/^-/.test(text)) return `duration "${value.value}" is negative`;
    const m = DURATION.exec(text);
    if (m) return Math.round(Number(m[1]) * DURATION_UNIT_MS[m[2]!]!);
  }
  return `${shown(value)} is not a duration; write 250ms, 10s, 5m or a number of seconds`;
}

function shown(value: ArgValue): string {
  return 'raw' in value ? `"${value.raw}"` : `a ${value.kind}`;
}

const SIZE = /^([0-9]+)[ \t]*(B|KB|MB|GB)$/i;
const SIZE_UNIT: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

/** Bytes (KB = 1024 bytes, as supervisord counts), or a message. */
export function parseSize(value: ArgValue): number | string {
  if (value.kind === 'int') {
    if (value.value < 0n) return `size ${value.raw} is negative`;
    return Number(value.value);
  }
  if (value.kind === 'str') {
    const text = value.value.trim();
    if (/^-/.test(text)) return `size "${value.value}" is negative`;
    const m = SIZE.exec(text);
    if (m) return Number(m[1]) * SIZE_UNIT[m[2]!.toUpperCase()]!;
  }
  return `${shown(value)} is not a size; write 512KB, 10MB, 1GB or a number of bytes`;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
