/**
 * Typing of untagged plain scalars the way cloudabi-run typed them in 2016 (YAML 1.1 rules),
 * and of the explicit `!!` core tags. Pure: text in, typed value or a reason out.
 */

export type ScalarType =
  | { kind: 'null' }
  | { kind: 'bool'; value: boolean }
  | { kind: 'int'; value: bigint }
  | { kind: 'float'; value: number }
  | { kind: 'timestamp'; value: bigint }
  | { kind: 'str'; value: string };

const NULLS = new Set(['', '~', 'null', 'Null', 'NULL']);
// YAML 1.1 booleans; accepted in any mix of case, as libyaml-era tools compared them.
const TRUES = new Set(['yes', 'y', 'true', 'on']);
const FALSES = new Set(['no', 'n', 'false', 'off']);

const DECIMAL = /^[-+]?[0-9][0-9_]*$/;
const HEX = /^([-+]?)0x([0-9a-fA-F_]+)$/;
const OCTAL = /^([-+]?)0o([0-7_]+)$/;
const BINARY = /^([-+]?)0b([01_]+)$/;
const FLOAT = /^[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*|[0-9][0-9_]*(?=[eE]))(?:[eE][-+]?[0-9]+)?$/;
const INF = /^([-+]?)\.(?:inf|Inf|INF)$/;
const NAN = /^\.(?:nan|NaN|NAN)$/;
const DATE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;
const DATETIME =
  /^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[Tt]|[ \t]+)([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]*))?(?:[ \t]*(Z|[-+][0-9]{1,2}(?::?[0-9]{2})?))?$/;

export function parseNull(text: string): boolean {
  return NULLS.has(text);
}

export function parseBool(text: string): boolean | undefined {
  const lower = text.toLowerCase();
  if (TRUES.has(lower)) return true;
  if (FALSES.has(lower)) return false;
  return undefined;
}

export function parseInt(text: string): bigint | undefined {
  if (DECIMAL.test(text)) {
    const digits = text.replace(/_/g, '');
    return BigInt(digits.startsWith('+') ? digits.slice(1) : digits);
  }
  for (const [re, prefix] of [[HEX, '0x'], [OCTAL, '0o'], [BINARY, '0b']] as const) {
    const m = re.exec(text);
    if (m) {
      const digits = m[2]!.replace(/_/g, '');
      if (digits === '') return undefined;
      const magnitude = BigInt(prefix + digits);
      return m[1] === '-' ? -magnitude : magnitude;
    }
  }
  return undefined;
}

export function parseFloat(text: string): number | undefined {
  const inf = INF.exec(text);
  if (inf) return inf[1] === '-' ? -Infinity : Infinity;
  if (NAN.test(text)) return NaN;
  if (FLOAT.test(text)) return Number(text.replace(/_/g, ''));
  return undefined;
}

const NS_PER_MS = 1_000_000n;

/** A YAML 1.1 timestamp as nanoseconds since the epoch, UTC unless an offset is given. */
export function parseTimestamp(text: string): bigint | undefined {
  let year: number, month: number, day: number;
  let hour = 0, minute = 0, second = 0, fraction = '', offsetMinutes = 0;
  const date = DATE.exec(text);
  const datetime = date ? undefined : DATETIME.exec(text);
  if (date) {
    [year, month, day] = [Number(date[1]), Number(date[2]), Number(date[3])];
  } else if (datetime) {
    const m = datetime;
    [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
    [hour, minute, second] = [Number(m[4]), Number(m[5]), Number(m[6])];
    fraction = m[7] ?? '';
    const zone = m[8];
    if (zone !== undefined && zone !== 'Z') {
      const z = /^([-+])([0-9]{1,2}):?([0-9]{2})?$/.exec(zone)!;
      const minutes = Number(z[2]) * 60 + Number(z[3] ?? '0');
      offsetMinutes = z[1] === '-' ? -minutes : minutes;
    }
  } else {
    return undefined;
  }
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return undefined;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC rolls 2016-02-30 over into March; a date that does not exist is not a timestamp.
  const check = new Date(Date.UTC(year, month - 1, day));
  if (check.getUTCDate() !== day || check.getUTCMonth() !== month - 1) return undefined;
  const subSecondNs = BigInt((fraction + '000000000').slice(0, 9));
  return BigInt(ms) * NS_PER_MS + subSecondNs - BigInt(offsetMinutes) * 60_000n * NS_PER_MS;
}

/** The implicit typing of an untagged plain scalar. */
export function typePlainScalar(text: string): ScalarType {
  if (parseNull(text)) return { kind: 'null' };
  const b = parseBool(text);
  if (b !== undefined) return { kind: 'bool', value: b };
  const i = parseInt(text);
  if (i !== undefined) return { kind: 'int', value: i };
  const f = parseFloat(text);
  if (f !== undefined) return { kind: 'float', value: f };
  const t = parseTimestamp(text);
  if (t !== undefined) return { kind: 'timestamp', value: t };
  return { kind: 'str', value: text };
}

export const CORE_TAG_PREFIX = 'tag:yaml.org,2002:';

/**
 * A scalar with an explicit core tag (`!!int 12`). Returns the typed value, or an error message
 * when the text does not fit the tag. Binary is handled by the caller, since it yields bytes.
 */
export function typeTaggedScalar(tagName: string, text: string): ScalarType | string {
  switch (tagName) {
    case 'str':
      return { kind: 'str', value: text };
    case 'null':
      return parseNull(text) ? { kind: 'null' } : `"${text}" is not a null (use ~, null or nothing)`;
    case 'bool': {
      const b = parseBool(text);
      return b === undefined ? `"${text}" is not a boolean (use true or false)` : { kind: 'bool', value: b };
    }
    case 'int': {
      const i = parseInt(text);
      return i === undefined ? `"${text}" is not an integer` : { kind: 'int', value: i };
    }
    case 'float': {
      const f = parseFloat(text);
      if (f !== undefined) return { kind: 'float', value: f };
      const i = parseInt(text);
      return i === undefined ? `"${text}" is not a number` : { kind: 'float', value: Number(i) };
    }
    case 'timestamp': {
      const t = parseTimestamp(text);
      return t === undefined ? `"${text}" is not a timestamp (use 2016-08-01 or 2016-08-01T12:00:00Z)` : { kind: 'timestamp', value: t };
    }
    default:
      return `unknown tag !!${tagName}`;
  }
}
