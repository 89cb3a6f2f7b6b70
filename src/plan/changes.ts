/** What differs between the running services and the config as it now reads. Pure. */
import type { ServiceSpec } from '../config/spec.js';
import type { ArgValue } from '../config/values.js';

export interface ServiceChange {
  readonly service: string;
  readonly action: 'add' | 'remove' | 'change';
  /** For a change: the top-level document keys and `supervise.*` fields that differ. */
  readonly fields: readonly string[];
}

/** A value as data only: positions and source text do not make two values different. */
export function canonical(value: ArgValue): unknown {
  switch (value.kind) {
    case 'map':
      return { map: value.entries.map((e) => [canonical(e.key), canonical(e.value)]) };
    case 'seq':
      return { seq: value.items.map(canonical) };
    case 'fd':
      return { fd: value.fd };
    case 'null':
      return null;
    case 'int':
    case 'timestamp':
      return { [value.kind]: value.value.toString() };
    case 'binary':
      return { binary: Buffer.from(value.value).toString('hex') };
    case 'float':
      return { float: Number.isNaN(value.value) ? 'NaN' : value.value };
    default:
      return { [value.kind]: value.value };
  }
}

/** Spec fields named as operators write them in the `supervise` block. */
const CONFIG_KEY: Partial<Record<keyof ServiceSpec['supervise'], string>> = {
  startMs: 'start_seconds', startRetries: 'start_retries', stopSignal: 'stop_signal', stopTimeoutMs: 'stop_timeout',
};

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function changedFields(before: ServiceSpec, after: ServiceSpec): string[] {
  const fields: string[] = [];
  const keys = (spec: ServiceSpec) => new Map(spec.document.entries.map((e) => [JSON.stringify(canonical(e.key)), e.value]));
  const a = keys(before);
  const b = keys(after);
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(key);
    const y = b.get(key);
    if (x === undefined || y === undefined || !same(canonical(x), canonical(y))) fields.push(labelOf(key));
  }
  const { positions: _p, ...supA } = before.supervise;
  const { positions: _q, ...supB } = after.supervise;
  for (const key of Object.keys(supA) as (keyof typeof supA)[]) if (!same(supA[key], supB[key])) fields.push(`supervise.${CONFIG_KEY[key] ?? key}`);
  // Same text, other facts: a host that now resolves elsewhere, a different interpreter.
  if (!same(before.sockets.map((s) => s.identity), after.sockets.map((s) => s.identity)) && !fields.some((f) => !f.startsWith('supervise.'))) fields.push('sockets');
  if (before.python?.executable !== after.python?.executable) fields.push('python');
  return fields;
}

function labelOf(canonicalKey: string): string {
  const key = JSON.parse(canonicalKey) as { str?: string };
  return typeof key?.str === 'string' ? key.str : canonicalKey;
}

export function serviceChanges(running: readonly ServiceSpec[], next: readonly ServiceSpec[]): ServiceChange[] {
  const now = new Map(running.map((s) => [s.name, s]));
  const then = new Map(next.map((s) => [s.name, s]));
  const changes: ServiceChange[] = [];
  for (const spec of next) {
    const old = now.get(spec.name);
    if (!old) changes.push({ service: spec.name, action: 'add', fields: [] });
    else {
      const fields = changedFields(old, spec);
      if (fields.length > 0) changes.push({ service: spec.name, action: 'change', fields });
    }
  }
  for (const spec of running) if (!then.has(spec.name)) changes.push({ service: spec.name, action: 'remove', fields: [] });
  return changes;
}
