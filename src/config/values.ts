import type { SourcePos } from './diagnostics.js';

/**
 * A typed value of a service's argdata document, as cloudabi-run built it from YAML.
 * Every node keeps its source position; scalars also keep their source text, because some
 * consumers (environment values, program arguments) want what the operator wrote, not its type.
 */
export type ArgValue =
  | NullValue
  | BoolValue
  | IntValue
  | FloatValue
  | StrValue
  | BinaryValue
  | TimestampValue
  | MapValue
  | SeqValue
  | FdValue;

interface Node {
  readonly pos: SourcePos;
}
interface ScalarNode extends Node {
  /** The scalar's text as written (after YAML folding and escapes). */
  readonly raw: string;
}

export interface NullValue extends ScalarNode { readonly kind: 'null' }
export interface BoolValue extends ScalarNode { readonly kind: 'bool'; readonly value: boolean }
/** No size limit, as in the argdata format. */
export interface IntValue extends ScalarNode { readonly kind: 'int'; readonly value: bigint }
export interface FloatValue extends ScalarNode { readonly kind: 'float'; readonly value: number }
export interface StrValue extends ScalarNode { readonly kind: 'str'; readonly value: string }
export interface BinaryValue extends ScalarNode { readonly kind: 'binary'; readonly value: Uint8Array }
/** Nanoseconds since 1970-01-01T00:00:00Z. */
export interface TimestampValue extends ScalarNode { readonly kind: 'timestamp'; readonly value: bigint }

export interface MapEntry {
  readonly key: ArgValue;
  readonly value: ArgValue;
}
export interface MapValue extends Node { readonly kind: 'map'; readonly entries: readonly MapEntry[] }
export interface SeqValue extends Node { readonly kind: 'seq'; readonly items: readonly ArgValue[] }
export interface FdValue extends Node { readonly kind: 'fd'; readonly fd: FdRef }

export type SocketType = 'stream' | 'dgram' | 'seqpacket';

/** What an `!fd`, `!file` or `!socket` node asks the daemon to hand over. */
export type FdRef =
  | { readonly type: 'stdio'; readonly stream: 'stdout' | 'stderr' }
  | { readonly type: 'number'; readonly number: number }
  | FileRef
  | SocketRef;

export interface FileRef {
  readonly type: 'file';
  /** Absolute host path the daemon opens read-only. */
  readonly path: string;
  /** The path as written in the service file, when it differs (relative, or a mapped CloudABI tree). */
  readonly declared: string;
  /** The CloudABI-era interpreter tree this entry stands in for, when the loader mapped one. */
  readonly mappedFrom?: string;
}

export interface SocketRef {
  readonly type: 'socket';
  readonly mode: 'bind' | 'connect';
  /** The address as written. */
  readonly address: string;
  readonly socketType: SocketType;
  /** Listen backlog; undefined means the system maximum. */
  readonly backlog: number | undefined;
  /** For a unix `bind:` path: the file mode, and owner and group as written (names or ids). */
  readonly fileMode?: number;
  readonly owner?: string;
  readonly group?: string;
}

export function mapGet(map: MapValue, key: string): ArgValue | undefined {
  return map.entries.find((e) => e.key.kind === 'str' && e.key.value === key)?.value;
}
