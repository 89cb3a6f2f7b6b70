/**
 * Decodes CloudABI argdata bytes (see shared/design/argdata.md) into a plain tree, so tests and
 * debug dumps can check what the encoder produced. Pure, and iterative so that deeply nested input
 * cannot overflow the call stack.
 *
 * Error offsets: a problem with an entry's length names the offset of the length's first byte; a
 * problem with a value (unknown type, bad payload) names the offset of its type byte; a map with a
 * key but no value names the offset of that key's entry.
 */
import { ADT } from './encode.js';

export type Decoded =
  | null
  | { type: 'binary'; value: Uint8Array }
  | { type: 'bool'; value: boolean }
  | { type: 'fd'; index: number }
  | { type: 'float'; value: number }
  | { type: 'int'; value: bigint }
  | { type: 'str'; value: string }
  | { type: 'timestamp'; value: bigint }
  | { type: 'map'; entries: [Decoded, Decoded][] }
  | { type: 'seq'; items: Decoded[] };

type Container = Extract<Decoded, { type: 'map' | 'seq' }>;

export class ArgdataError extends Error {
  constructor(
    message: string,
    /** Byte offset in the decoded buffer. */
    readonly offset: number,
  ) {
    super(`argdata: ${message} at offset ${offset}`);
    this.name = 'ArgdataError';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A map or seq whose entries lie in bytes[pos..end). */
interface Frame {
  readonly node: Container;
  pos: number;
  readonly end: number;
  /** A map's key waiting for its value, and where that key's entry started. */
  key?: { value: Decoded; at: number };
}

export function decodeArgdata(bytes: Uint8Array): Decoded {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const root = decodeValue(bytes, view, 0, bytes.length);
  if (root === null || (root.type !== 'map' && root.type !== 'seq')) return root;

  const stack: Frame[] = [{ node: root, pos: 1, end: bytes.length }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.pos === frame.end) {
      if (frame.key !== undefined) throw new ArgdataError('map key without a value', frame.key.at);
      stack.pop();
      continue;
    }
    const entryAt = frame.pos;
    const { length, valueAt } = readLength(bytes, entryAt, frame.end);
    const valueEnd = valueAt + length;
    const value = decodeValue(bytes, view, valueAt, valueEnd);
    frame.pos = valueEnd;

    const { node } = frame;
    if (node.type === 'seq') {
      node.items.push(value);
    } else if (frame.key === undefined) {
      frame.key = { value, at: entryAt };
    } else {
      node.entries.push([frame.key.value, value]);
      frame.key = undefined;
    }
    if (value !== null && (value.type === 'map' || value.type === 'seq')) {
      stack.push({ node: value, pos: valueAt + 1, end: valueEnd });
    }
  }
  return root;
}

/** An entry length: big-endian base 128, the high bit set on the last byte only. */
function readLength(bytes: Uint8Array, at: number, end: number): { length: number; valueAt: number } {
  if (bytes[at] === 0x00) throw new ArgdataError('entry length starts with a 00 byte', at);
  let length = 0;
  for (let i = at; i < end; i++) {
    const b = bytes[i]!;
    length = length * 128 + (b & 0x7f);
    // Further digits only make the length larger, so an overrun can be reported straight away.
    if (length > end - i - 1) throw new ArgdataError('entry runs past the end of its container', at);
    if (b & 0x80) return { length, valueAt: i + 1 };
  }
  throw new ArgdataError('entry length is cut off', at);
}

/** The value in bytes[start..end); maps and seqs come back empty, for the caller to fill. */
function decodeValue(bytes: Uint8Array, view: DataView, start: number, end: number): Decoded {
  if (start === end) return null;
  const type = bytes[start]!;
  const payload = bytes.subarray(start + 1, end);
  const size = payload.length;
  switch (type) {
    case ADT.binary:
      return { type: 'binary', value: payload.slice() };
    case ADT.bool:
      if (size === 0) return { type: 'bool', value: false };
      if (size === 1 && payload[0] === 0x01) return { type: 'bool', value: true };
      throw new ArgdataError('bool payload must be empty or 01', start);
    case ADT.fd:
      if (size !== 4) throw new ArgdataError(`fd payload must be 4 bytes, not ${size}`, start);
      return { type: 'fd', index: view.getUint32(start + 1, false) };
    case ADT.float:
      if (size !== 8) throw new ArgdataError(`float payload must be 8 bytes, not ${size}`, start);
      return { type: 'float', value: view.getFloat64(start + 1, false) };
    case ADT.int:
      return { type: 'int', value: readInt(payload) };
    case ADT.timestamp:
      return { type: 'timestamp', value: readInt(payload) };
    case ADT.str: {
      if (size === 0 || payload[size - 1] !== 0x00) throw new ArgdataError('str does not end in a 00 byte', start);
      try {
        return { type: 'str', value: utf8.decode(payload.subarray(0, size - 1)) };
      } catch {
        throw new ArgdataError('str is not valid UTF-8', start);
      }
    }
    case ADT.map:
      return { type: 'map', entries: [] };
    case ADT.seq:
      return { type: 'seq', items: [] };
    default:
      throw new ArgdataError(`unknown type byte 0x${type.toString(16).padStart(2, '0')}`, start);
  }
}

/** Big-endian two's complement of any length; empty is 0. */
function readInt(payload: Uint8Array): bigint {
  if (payload.length === 0) return 0n;
  let hex = '';
  for (const b of payload) hex += b.toString(16).padStart(2, '0');
  const unsigned = BigInt('0x' + hex);
  return payload[0]! & 0x80 ? unsigned - (1n << BigInt(payload.length * 8)) : unsigned;
}
