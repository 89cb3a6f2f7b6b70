import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { encodeArgdata, encodeIntPayload, encodeLength } from '../src/argdata/encode.js';
import type { ArgValue, FdValue } from '../src/config/values.js';
import { v } from './helpers/values.js';


const byNumber = (node: FdValue): number => {
  assert.equal(node.fd.type, 'number');
  return node.fd.type === 'number' ? node.fd.number : -1;
};

/** Uppercase, space separated: the form argdata.md writes its vectors in. */
function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' ');
}
/** Joins vector fragments and normalises whitespace, so long expectations can be built piecewise. */
function h(...parts: string[]): string {
  return parts.join(' ').trim().split(/\s+/).filter((s) => s !== '').join(' ');
}
function enc(value: ArgValue): string {
  return hex(encodeArgdata(value, byNumber).bytes);
}

// --- the vectors from argdata.md, verbatim ----------------------------------------------------

describe('argdata.md test vectors', () => {
  it('seq [0, true, "A"]', () => {
    assert.equal(enc(v.seq(v.int(0n), v.bool(true), v.str('A'))), '07 81 05 82 02 01 83 08 41 00');
  });
  it('seq [false, null, true]', () => {
    assert.equal(enc(v.seq(v.bool(false), v.null(), v.bool(true))), '07 81 02 80 82 02 01');
  });
  it('empty map / empty seq', () => {
    assert.equal(enc(v.map()), '06');
    assert.equal(enc(v.seq()), '07');
  });
  it('int 0 / 128 / -129 / 32768', () => {
    assert.equal(enc(v.int(0n)), '05');
    assert.equal(enc(v.int(128n)), '05 00 80');
    assert.equal(enc(v.int(-129n)), '05 FF 7F');
    assert.equal(enc(v.int(32768n)), '05 00 80 00');
  });
  it('int -2^63', () => {
    assert.equal(enc(v.int(-(2n ** 63n))), '05 80 00 00 00 00 00 00 00');
  });
  it('float 1.0', () => {
    assert.equal(enc(v.float(1.0)), '04 3F F0 00 00 00 00 00 00');
  });
  it('str "Hello\\0world"', () => {
    assert.equal(enc(v.str('Hello\0world')), '08 48 65 6C 6C 6F 00 77 6F 72 6C 64 00');
  });
  it('a map with fds 0x12345678, 0x01234567, 0x01234567, 0x12 gives indices 0, 1, 1, 2', () => {
    // Fds as both keys and values, so key-before-value ordering is exercised too.
    const doc = v.map([v.fd(0x12345678), v.fd(0x01234567)], [v.fd(0x01234567), v.fd(0x12)]);
    const { bytes, fdTable } = encodeArgdata(doc, byNumber);
    assert.equal(
      hex(bytes),
      h('06', '85 03 00 00 00 00', '85 03 00 00 00 01', '85 03 00 00 00 01', '85 03 00 00 00 02'),
    );
    assert.deepEqual(fdTable, [0x12345678, 0x01234567, 0x12]);
  });
});

// --- helpers ----------------------------------------------------------------------------------

describe('encodeLength', () => {
  it('encodes base 128 with the high bit on the last byte only', () => {
    assert.equal(hex(encodeLength(0)), '80');
    assert.equal(hex(encodeLength(1)), '81');
    assert.equal(hex(encodeLength(127)), 'FF');
    assert.equal(hex(encodeLength(128)), '01 80');
    assert.equal(hex(encodeLength(16383)), '7F FF');
    assert.equal(hex(encodeLength(16384)), '01 00 80');
  });
  it('stays correct past 2^32', () => {
    assert.equal(hex(encodeLength(2 ** 35)), '01 00 00 00 00 80');
  });
  it('rejects lengths that are not non-negative integers', () => {
    assert.throws(() => encodeLength(-1), RangeError);
    assert.throws(() => encodeLength(1.5), RangeError);
    assert.throws(() => encodeLength(Number.NaN), RangeError);
  });
});

describe('encodeIntPayload', () => {
  it('is minimal big-endian two\'s complement', () => {
    assert.equal(hex(encodeIntPayload(0n)), '');
    assert.equal(hex(encodeIntPayload(1n)), '01');
    assert.equal(hex(encodeIntPayload(127n)), '7F');
    assert.equal(hex(encodeIntPayload(128n)), '00 80');
    assert.equal(hex(encodeIntPayload(255n)), '00 FF');
    assert.equal(hex(encodeIntPayload(256n)), '01 00');
    assert.equal(hex(encodeIntPayload(-1n)), 'FF');
    assert.equal(hex(encodeIntPayload(-128n)), '80');
    assert.equal(hex(encodeIntPayload(-129n)), 'FF 7F');
    assert.equal(hex(encodeIntPayload(-256n)), 'FF 00');
    assert.equal(hex(encodeIntPayload(2n ** 63n - 1n)), '7F FF FF FF FF FF FF FF');
  });
});

// --- encodeArgdata beyond the vectors ---------------------------------------------------------

describe('encodeArgdata scalars', () => {
  it('null at the top level is the empty byte string', () => {
    assert.equal(enc(v.null()), '');
  });
  it('bool false has an empty payload, true is 01', () => {
    assert.equal(enc(v.bool(false)), '02');
    assert.equal(enc(v.bool(true)), '02 01');
  });
  it('int 127 / -128 / 255 / -1', () => {
    assert.equal(enc(v.int(127n)), '05 7F');
    assert.equal(enc(v.int(-128n)), '05 80');
    assert.equal(enc(v.int(255n)), '05 00 FF');
    assert.equal(enc(v.int(-1n)), '05 FF');
  });
  it('ints beyond 64 bits', () => {
    assert.equal(enc(v.int(2n ** 64n)), '05 01 00 00 00 00 00 00 00 00');
    assert.equal(enc(v.int(-(2n ** 63n) - 1n)), '05 FF 7F FF FF FF FF FF FF FF');
  });
  it('float -0.0 and 0.5', () => {
    assert.equal(enc(v.float(-0)), '04 80 00 00 00 00 00 00 00');
    assert.equal(enc(v.float(0.5)), '04 3F E0 00 00 00 00 00 00');
  });
  it('timestamp is encoded like an int of nanoseconds', () => {
    // 2017-01-01T00:00:00Z = 1483228800 s = 0x14957CBC30A10000 ns.
    assert.equal(enc(v.timestamp(1_483_228_800_000_000_000n)), '09 14 95 7C BC 30 A1 00 00');
    assert.equal(enc(v.timestamp(0n)), '09');
    assert.equal(enc(v.timestamp(-1n)), '09 FF');
  });
  it('binary', () => {
    assert.equal(enc(v.binary([0x00, 0xff, 0x10])), '01 00 FF 10');
    assert.equal(enc(v.binary([])), '01');
  });
  it('non-ASCII strings are UTF-8', () => {
    assert.equal(enc(v.str('é€😀')), '08 C3 A9 E2 82 AC F0 9F 98 80 00');
    assert.equal(enc(v.str('日本')), '08 E6 97 A5 E6 9C AC 00');
    assert.equal(enc(v.str('')), '08 00');
  });
});

describe('encodeArgdata containers', () => {
  it('nested map with str keys', () => {
    const doc = v.map([v.str('a'), v.map([v.str('b'), v.int(1n)])]);
    assert.equal(enc(doc), h('06', '83 08 61 00', '88', '06 83 08 62 00 82 05 01'));
  });
  it('null keys and values are the entry 80', () => {
    assert.equal(enc(v.map([v.null(), v.null()])), '06 80 80');
  });
  it('entries of 127, 128 and 202 bytes get one- and two-byte lengths', () => {
    const x = (n: number) => '78 '.repeat(n);
    assert.equal(enc(v.seq(v.str('x'.repeat(125)))), h('07 FF 08', x(125), '00'));
    assert.equal(enc(v.seq(v.str('x'.repeat(126)))), h('07 01 80 08', x(126), '00'));
    assert.equal(enc(v.seq(v.str('x'.repeat(200)))), h('07 01 CA 08', x(200), '00'));
  });
  it('a multi-byte entry length inside a map inside a seq', () => {
    const inner = v.map([v.str('k'), v.binary(new Array<number>(300).fill(0xab))]);
    // binary entry: 01 + 300 bytes = 301 = 2*128 + 45 -> 02 AD.
    // map: 06 (1) + 83 08 6B 00 (4) + 02 AD (2) + 301 = 308 = 2*128 + 52 -> 02 B4.
    assert.equal(enc(v.seq(inner)), h('07 02 B4 06 83 08 6B 00 02 AD 01', 'AB '.repeat(300)));
  });
  it('deep nesting does not overflow the call stack', () => {
    let doc = v.seq();
    for (let i = 0; i < 200_000; i++) doc = v.seq(doc);
    const { bytes } = encodeArgdata(doc, byNumber);
    assert.equal(bytes[0], 0x07);
    assert.equal(bytes[bytes.length - 1], 0x07);
  });
  it('returns a standalone array, not a view into a larger buffer', () => {
    const { bytes } = encodeArgdata(v.seq(v.str('x'.repeat(1000))), byNumber);
    assert.equal(bytes.byteOffset, 0);
    assert.equal(bytes.buffer.byteLength, bytes.length);
  });
});

describe('encodeArgdata fd table', () => {
  it('assigns indices depth-first in document order, key before value, sharing equal keys', () => {
    const doc = v.map([v.str('b'), v.seq(v.fd(9), v.fd(7))], [v.str('a'), v.fd(7)], [v.fd(5), v.fd(9)]);
    const calls: number[] = [];
    const { bytes, fdTable } = encodeArgdata(doc, (node) => {
      const n = byNumber(node);
      calls.push(n);
      return n;
    });
    assert.deepEqual(calls, [9, 7, 7, 5, 9]);
    assert.deepEqual(fdTable, [9, 7, 5]);
    assert.equal(
      hex(bytes),
      h(
        '06',
        '83 08 62 00',
        '8D 07 85 03 00 00 00 00 85 03 00 00 00 01',
        '83 08 61 00',
        '85 03 00 00 00 01',
        '85 03 00 00 00 02',
        '85 03 00 00 00 00',
      ),
    );
  });
  it('a top-level fd and no fds at all', () => {
    const one = encodeArgdata(v.fd(42), byNumber);
    assert.equal(hex(one.bytes), '03 00 00 00 00');
    assert.deepEqual(one.fdTable, [42]);
    assert.deepEqual(encodeArgdata(v.seq(v.int(1n)), byNumber).fdTable, []);
  });
  it('keys are whatever fdKey returns, compared by identity', () => {
    const stdout = { name: 'stdout' };
    const doc = v.seq(v.fd(1), v.fd(2), v.fd(2), v.fd(1));
    // Two nodes with fd 2 but distinct (non-===) key objects get distinct indices.
    const { bytes, fdTable } = encodeArgdata(doc, (node) => (byNumber(node) === 1 ? stdout : { name: 'fresh' }));
    assert.equal(fdTable.length, 3);
    assert.equal(fdTable[0], stdout);
    assert.notEqual(fdTable[1], fdTable[2]);
    assert.equal(
      hex(bytes),
      h('07', '85 03 00 00 00 00', '85 03 00 00 00 01', '85 03 00 00 00 02', '85 03 00 00 00 00'),
    );
  });
});
