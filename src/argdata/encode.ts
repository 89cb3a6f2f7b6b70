/**
 * Serialises an argdata document into the CloudABI argdata binary format (see
 * shared/design/argdata.md), the same bytes cloudabi-run handed to its programs.
 */
import type { ArgValue, FdValue } from '../config/values.js';

export interface EncodedArgdata<K> {
  readonly bytes: Uint8Array;
  /** Entry i is the key of the fd the child sees as fd table index i. */
  readonly fdTable: readonly K[];
}

/** Type bytes from the format; null has none, because null is the empty value. */
export const ADT = {
  binary: 0x01,
  bool: 0x02,
  fd: 0x03,
  float: 0x04,
  int: 0x05,
  map: 0x06,
  seq: 0x07,
  str: 0x08,
  timestamp: 0x09,
} as const;

/**
 * A byte buffer that grows towards the front.
 *
 * A container entry is `length ‖ value`, and the length is only known once the value is written.
 * Writing forwards would mean either sizing every subtree in a separate pass or shifting bytes to
 * make room for each length, which is quadratic in nesting depth. Writing the document back to
 * front makes every length available exactly when it has to be emitted, so one pass suffices and
 * each byte is copied only by the (amortised, doubling) growth.
 */
class BackWriter {
  private buf: Uint8Array;
  private view: DataView;
  /** The written bytes are buf[start..buf.length). */
  private start: number;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
    this.start = capacity;
  }

  get size(): number {
    return this.buf.length - this.start;
  }

  private reserve(n: number): void {
    if (this.start >= n) return;
    const size = this.size;
    const capacity = Math.max(this.buf.length * 2, size + n);
    const next = new Uint8Array(capacity);
    next.set(this.buf.subarray(this.start), capacity - size);
    this.buf = next;
    this.view = new DataView(next.buffer);
    this.start = capacity - size;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[--this.start] = b;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.start -= b.length;
    this.buf.set(b, this.start);
  }

  uint32(n: number): void {
    this.reserve(4);
    this.start -= 4;
    this.view.setUint32(this.start, n, false);
  }

  float64(x: number): void {
    this.reserve(8);
    this.start -= 8;
    this.view.setFloat64(this.start, x, false);
  }

  /** Emitted least significant group first because we are writing backwards. */
  length(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`argdata length out of range: ${n}`);
    this.byte(0x80 | n % 128);
    // Division rather than `>>> 7`, so lengths past 2^32 stay correct.
    for (n = Math.floor(n / 128); n > 0; n = Math.floor(n / 128)) this.byte(n % 128);
  }

  /** A copy, so the caller does not keep the unused front of the growth buffer alive. */
  finish(): Uint8Array {
    return this.buf.slice(this.start);
  }
}

/**
 * The length prefix of a map or seq entry: big-endian base 128 with the high bit marking the last
 * byte, so 0..127 is one byte and there is never a leading 00.
 */
export function encodeLength(n: number): Uint8Array {
  const w = new BackWriter(8);
  w.length(n);
  return w.finish();
}

/**
 * The payload of an int or timestamp: the shortest big-endian two's complement that still has the
 * right sign bit, so 0 is empty, 128 needs a leading 00 and -129 a leading FF.
 */
export function encodeIntPayload(v: bigint): Uint8Array {
  if (v === 0n) return new Uint8Array(0);
  // Work on a non-negative magnitude so toString(16) does the heavy lifting in linear time; a
  // negative v is the bitwise complement of ~v = -v - 1, which is non-negative.
  const negative = v < 0n;
  const m = negative ? -v - 1n : v;
  let hex = m === 0n ? '' : m.toString(16);
  if (hex.length % 2 === 1) hex = '0' + hex;
  // A sign byte is needed when the top bit of the magnitude would otherwise be read as the sign
  // (or, for -1, when there are no magnitude bytes at all).
  const needsSignByte = hex.length === 0 || parseInt(hex.slice(0, 2), 16) >= 0x80;
  const offset = needsSignByte ? 1 : 0;
  const out = new Uint8Array(offset + hex.length / 2);
  const flip = negative ? 0xff : 0x00;
  out[0] = flip; // only survives when the sign byte is present
  for (let i = 0; i < hex.length / 2; i++) {
    out[offset + i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16) ^ flip;
  }
  return out;
}

// Lone surrogates (possible from a YAML "\uD800" escape) become U+FFFD, per the WHATWG encoder;
// rejecting them is the config checker's job, where a source position is available.
const utf8 = new TextEncoder();

// Stack markers for the iterative encoder. Non-negative numbers on the stack are literal type bytes.
const MARK = -1;
const LENGTH = -2;

/**
 * Encodes `value` as one argdata document. fdKey says which fd a `!fd`/`!file`/`!socket` node
 * stands for; equal keys (===) share one fd table index.
 *
 * fdKey is called once per fd node, in depth-first document order (key before value), which is
 * the order table indices are assigned in. Keys are compared as a Map does (=== except that NaN
 * equals itself), so keys should be primitives or stable objects.
 */
export function encodeArgdata<K>(value: ArgValue, fdKey: (node: FdValue) => K): EncodedArgdata<K> {
  const fdIndices = assignFdIndices(value, fdKey);
  const fdTable = fdIndices.table;
  const indices = fdIndices.indices;
  // The back-to-front pass meets fd leaves in exactly the reverse of document order.
  let fdCursor = indices.length;

  const w = new BackWriter();
  // Explicit stacks instead of recursion, so deeply nested documents cannot overflow the call stack.
  // MARK records where an entry ends (its end is written first); LENGTH then prefixes its size.
  const stack: (ArgValue | number)[] = [value];
  const marks: number[] = [];
  while (stack.length > 0) {
    const task = stack.pop()!;
    if (typeof task === 'number') {
      if (task === MARK) marks.push(w.size);
      else if (task === LENGTH) w.length(w.size - marks.pop()!);
      else w.byte(task);
      continue;
    }
    switch (task.kind) {
      case 'null':
        break;
      case 'bool':
        if (task.value) w.byte(0x01);
        w.byte(ADT.bool);
        break;
      case 'int':
        w.bytes(encodeIntPayload(task.value));
        w.byte(ADT.int);
        break;
      case 'timestamp':
        w.bytes(encodeIntPayload(task.value));
        w.byte(ADT.timestamp);
        break;
      case 'float':
        w.float64(task.value);
        w.byte(ADT.float);
        break;
      case 'str':
        w.byte(0x00);
        w.bytes(utf8.encode(task.value));
        w.byte(ADT.str);
        break;
      case 'binary':
        w.bytes(task.value);
        w.byte(ADT.binary);
        break;
      case 'fd':
        w.uint32(indices[--fdCursor]!);
        w.byte(ADT.fd);
        break;
      // Pops run in reverse push order: the type byte is pushed first so it lands in front, and
      // within each entry the value's tasks are on top so it is written (backwards) before its key.
      case 'map':
        stack.push(ADT.map);
        for (const e of task.entries) stack.push(LENGTH, e.key, MARK, LENGTH, e.value, MARK);
        break;
      case 'seq':
        stack.push(ADT.seq);
        for (const item of task.items) stack.push(LENGTH, item, MARK);
        break;
      default: {
        const unreachable: never = task;
        throw new TypeError(`unknown argdata node ${(unreachable as { kind: string }).kind}`);
      }
    }
  }
  return { bytes: w.finish(), fdTable };
}

/**
 * Walks fd nodes in document order (key before value) and gives each occurrence its table index.
 * Iterative, like the encoder, so depth costs nothing per node.
 */
function assignFdIndices<K>(value: ArgValue, fdKey: (node: FdValue) => K): { table: K[]; indices: number[] } {
  const table: K[] = [];
  const byKey = new Map<K, number>();
  const indices: number[] = [];
  const stack: ArgValue[] = [value];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (v.kind === 'fd') {
      const key = fdKey(v);
      let index = byKey.get(key);
      if (index === undefined) {
        index = table.length;
        if (index > 0xffffffff) throw new RangeError('argdata fd table exceeds 2^32 entries');
        table.push(key);
        byKey.set(key, index);
      }
      indices.push(index);
    } else if (v.kind === 'map') {
      for (let i = v.entries.length - 1; i >= 0; i--) {
        const e = v.entries[i]!;
        stack.push(e.value, e.key);
      }
    } else if (v.kind === 'seq') {
      for (let i = v.items.length - 1; i >= 0; i--) stack.push(v.items[i]!);
    }
  }
  return { table, indices };
}
