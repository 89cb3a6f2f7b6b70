/**
 * Reads a YAML map of known keys into typed fields, collecting one diagnostic per bad key or value
 * instead of stopping at the first. Shared by the `supervise` block and the daemon config.
 */
import { error, type Diagnostic, type SourcePos } from './diagnostics.js';
import { parseDuration, parseSize } from './units.js';
import { describe, describeKey } from './yaml-document.js';
import type { ArgValue, MapValue } from './values.js';

/** A field reader returns the typed value, or a message for the value's position. */
export type FieldReader<T> = (value: ArgValue) => T | { problem: string; hint?: string };

export class MapReader {
  readonly positions: Record<string, SourcePos> = {};

  constructor(
    private readonly map: MapValue,
    private readonly where: string,
    allowed: readonly string[],
    private readonly diagnostics: Diagnostic[],
  ) {
    for (const { key } of map.entries) {
      if (key.kind !== 'str' || !allowed.includes(key.value)) {
        diagnostics.push(error(key.pos, `unknown key ${describeKey(key)} in ${where}`, `known keys: ${allowed.join(', ')}`));
      }
    }
  }

  get pos(): SourcePos {
    return this.map.pos;
  }

  raw(key: string): ArgValue | undefined {
    const entry = this.map.entries.find((e) => e.key.kind === 'str' && e.key.value === key);
    if (entry) this.positions[key] = entry.value.pos;
    return entry?.value;
  }

  read<T>(key: string, reader: FieldReader<T>, fallback: T): T {
    const value = this.raw(key);
    if (value === undefined) return fallback;
    const result = reader(value);
    if (isProblem(result)) {
      this.diagnostics.push(error(value.pos, `${this.where}.${key}: ${result.problem}`, result.hint));
      return fallback;
    }
    return result;
  }
}

function isProblem(x: unknown): x is { problem: string; hint?: string } {
  return typeof x === 'object' && x !== null && 'problem' in x && Object.keys(x).every((k) => k === 'problem' || k === 'hint');
}

export const problem = (text: string, hint?: string): { problem: string; hint?: string } =>
  hint === undefined ? { problem: text } : { problem: text, hint };

export const str: FieldReader<string> = (v) =>
  v.kind === 'str' && v.value !== '' ? v.value : problem(`expected a string, got ${describe(v)}`);

/** A scalar taken as the text the operator wrote, for values that are strings to the OS (env, argv). */
export const text: FieldReader<string> = (v) => {
  if (v.kind === 'str') return v.value;
  if (v.kind === 'int' || v.kind === 'float' || v.kind === 'bool') return v.raw;
  return problem(`expected a string, got ${describe(v)}`);
};

export const bool: FieldReader<boolean> = (v) => (v.kind === 'bool' ? v.value : problem(`expected true or false, got ${describe(v)}`));

export function intIn(min: number, max: number): FieldReader<number> {
  return (v) => {
    if (v.kind !== 'int') return problem(`expected an integer, got ${describe(v)}`);
    if (v.value < BigInt(min) || v.value > BigInt(max)) return problem(`${v.raw} is out of range; allowed are ${min} to ${max}`);
    return Number(v.value);
  };
}

export function numberIn(min: number, max: number): FieldReader<number> {
  return (v) => {
    if (v.kind !== 'int' && v.kind !== 'float') return problem(`expected a number, got ${describe(v)}`);
    const n = Number(v.value);
    if (!(n >= min && n <= max)) return problem(`${v.raw} is out of range; allowed are ${min} to ${max}`);
    return n;
  };
}

export function oneOf<T extends string>(choices: readonly T[]): FieldReader<T> {
  return (v) =>
    v.kind === 'str' && (choices as readonly string[]).includes(v.value)
      ? (v.value as T)
      : problem(`expected one of ${choices.join(', ')}, got ${describe(v)}`);
}

export const duration: FieldReader<number> = (v) => {
  const ms = parseDuration(v);
  return typeof ms === 'string' ? problem(ms) : ms;
};

export const size: FieldReader<number> = (v) => {
  const bytes = parseSize(v);
  return typeof bytes === 'string' ? problem(bytes) : bytes;
};

export function mapOf(v: ArgValue, where: string, diagnostics: Diagnostic[]): MapValue | undefined {
  if (v.kind === 'map') return v;
  diagnostics.push(error(v.pos, `${where} must be a map, got ${describe(v)}`));
  return undefined;
}
