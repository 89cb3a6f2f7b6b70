import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { ArgdataError, decodeArgdata, type Decoded } from '../src/argdata/decode.js';
import { encodeArgdata } from '../src/argdata/encode.js';
import type { HostFacts, PathKind } from '../src/config/host-facts.js';
import { resolveService } from '../src/config/resolve.js';
import { parseServiceFile } from '../src/config/service.js';
import type { ArgValue, FdValue } from '../src/config/values.js';
import { v } from './helpers/values.js';


// --- Decoded builders -------------------------------------------------------------------------

const d = {
  bool: (value: boolean): Decoded => ({ type: 'bool', value }),
  int: (value: bigint): Decoded => ({ type: 'int', value }),
  float: (value: number): Decoded => ({ type: 'float', value }),
  str: (value: string): Decoded => ({ type: 'str', value }),
  binary: (bytes: number[]): Decoded => ({ type: 'binary', value: Uint8Array.from(bytes) }),
  timestamp: (value: bigint): Decoded => ({ type: 'timestamp', value }),
  fd: (index: number): Decoded => ({ type: 'fd', index }),
  seq: (...items: Decoded[]): Decoded => ({ type: 'seq', items }),
  map: (...entries: [Decoded, Decoded][]): Decoded => ({ type: 'map', entries }),
};

const byNumber = (node: FdValue): number => {
  assert.equal(node.fd.type, 'number');
  return node.fd.type === 'number' ? node.fd.number : -1;
};

/** "07 81 05" -> bytes. */
function bytesOf(hex: string): Uint8Array {
  return Uint8Array.from(hex.trim().split(/\s+/).filter((s) => s !== ''), (b) => parseInt(b, 16));
}

/** What decode(encode(value)) must give: the same tree, with each fd replaced by its table index. */
function expected(value: ArgValue, fdTable: readonly number[]): Decoded {
  switch (value.kind) {
    case 'null':
      return null;
    case 'fd':
      return d.fd(fdTable.indexOf(byNumber(value)));
    case 'map':
      return { type: 'map', entries: value.entries.map((e): [Decoded, Decoded] => [expected(e.key, fdTable), expected(e.value, fdTable)]) };
    case 'seq':
      return { type: 'seq', items: value.items.map((item) => expected(item, fdTable)) };
    default:
      return { type: value.kind, value: value.value } as Decoded;
  }
}

function roundTrip(value: ArgValue): void {
  const { bytes, fdTable } = encodeArgdata(value, byNumber);
  assert.deepEqual(decodeArgdata(bytes), expected(value, fdTable));
}

// --- round trips ------------------------------------------------------------------------------

describe('decodeArgdata: the argdata.md vectors', () => {
  const vectors: [string, string, Decoded][] = [
    ['seq [0, true, "A"]', '07 81 05 82 02 01 83 08 41 00', d.seq(d.int(0n), d.bool(true), d.str('A'))],
    ['seq [false, null, true]', '07 81 02 80 82 02 01', d.seq(d.bool(false), null, d.bool(true))],
    ['empty map', '06', d.map()],
    ['empty seq', '07', d.seq()],
    ['int 0', '05', d.int(0n)],
    ['int 128', '05 00 80', d.int(128n)],
    ['int -129', '05 FF 7F', d.int(-129n)],
    ['int 32768', '05 00 80 00', d.int(32768n)],
    ['int -2^63', '05 80 00 00 00 00 00 00 00', d.int(-(2n ** 63n))],
    ['float 1.0', '04 3F F0 00 00 00 00 00 00', d.float(1.0)],
    ['str "Hello\\0world"', '08 48 65 6C 6C 6F 00 77 6F 72 6C 64 00', d.str('Hello\0world')],
    ['null', '', null],
  ];
  for (const [name, hex, tree] of vectors) {
    it(`decodes ${name}`, () => assert.deepEqual(decodeArgdata(bytesOf(hex)), tree));
  }

  it('round-trips every vector through the encoder', () => {
    roundTrip(v.seq(v.int(0n), v.bool(true), v.str('A')));
    roundTrip(v.seq(v.bool(false), v.null(), v.bool(true)));
    roundTrip(v.map());
    roundTrip(v.seq());
    for (const n of [0n, 128n, -129n, 32768n, -(2n ** 63n)]) roundTrip(v.int(n));
    roundTrip(v.float(1.0));
    roundTrip(v.str('Hello\0world'));
    roundTrip(v.null());
  });

  it('the fd map vector decodes to indices 0, 1, 1, 2', () => {
    const doc = v.map([v.fd(0x12345678), v.fd(0x01234567)], [v.fd(0x01234567), v.fd(0x12)]);
    const { bytes, fdTable } = encodeArgdata(doc, byNumber);
    assert.deepEqual(fdTable, [0x12345678, 0x01234567, 0x12]);
    assert.deepEqual(decodeArgdata(bytes), d.map([d.fd(0), d.fd(1)], [d.fd(1), d.fd(2)]));
  });
});

describe('decodeArgdata: nested documents round-trip', () => {
  it('every scalar type inside maps and seqs', () => {
    roundTrip(
      v.map(
        [v.str('null'), v.null()],
        [v.str('bools'), v.seq(v.bool(false), v.bool(true))],
        [v.str('ints'), v.seq(v.int(127n), v.int(-128n), v.int(255n), v.int(-1n), v.int(2n ** 100n), v.int(-(2n ** 100n) - 7n))],
        [v.str('floats'), v.seq(v.float(-0), v.float(0.5), v.float(Number.NaN), v.float(-Infinity), v.float(1e-310))],
        [v.str('strs'), v.seq(v.str(''), v.str('é€😀'), v.str('日本'))],
        [v.str('binary'), v.seq(v.binary([]), v.binary([0x00, 0xff, 0x10]))],
        [v.str('timestamps'), v.seq(v.timestamp(0n), v.timestamp(-1n), v.timestamp(1_483_228_800_000_000_000n))],
      ),
    );
  });
  it('non-string keys, fds as keys and values, empty containers', () => {
    roundTrip(
      v.map(
        [v.int(1n), v.map([v.null(), v.null()])],
        [v.seq(v.str('a'), v.str('b')), v.seq(v.seq(), v.map(), v.seq(v.seq(v.fd(7))))],
        [v.fd(9), v.fd(7)],
        [v.bool(true), v.seq(v.fd(9), v.fd(3))],
      ),
    );
  });
  it('entries with multi-byte lengths', () => {
    roundTrip(v.seq(v.str('x'.repeat(126)), v.map([v.str('k'), v.binary(new Array<number>(300).fill(0xab))]), v.str('y'.repeat(20_000))));
  });
  it('deep nesting does not overflow the call stack', () => {
    let doc = v.seq(v.int(42n));
    for (let i = 0; i < 200_000; i++) doc = v.seq(doc);
    let decoded = decodeArgdata(encodeArgdata(doc, byNumber).bytes);
    let depth = 0;
    while (decoded !== null && decoded.type === 'seq' && decoded.items.length === 1) {
      decoded = decoded.items[0]!;
      depth++;
    }
    assert.equal(depth, 200_001);
    assert.deepEqual(decoded, d.int(42n));
  });
  it('decodes a view that does not start at the beginning of its buffer', () => {
    const inner = encodeArgdata(v.seq(v.fd(5), v.float(2.5)), byNumber).bytes;
    const padded = new Uint8Array(inner.length + 3);
    padded.set(inner, 3);
    assert.deepEqual(decodeArgdata(padded.subarray(3)), d.seq(d.fd(0), d.float(2.5)));
  });
});

// --- corrupt input ----------------------------------------------------------------------------

function assertArgdataError(hex: string, offset: number, message?: RegExp): void {
  assert.throws(
    () => decodeArgdata(bytesOf(hex)),
    (e: unknown) => {
      assert.ok(e instanceof ArgdataError, `expected an ArgdataError, got ${String(e)}`);
      assert.equal(e.offset, offset, e.message);
      if (message) assert.match(e.message, message);
      return true;
    },
  );
}

describe('decodeArgdata: corrupt input gives an ArgdataError naming the offset', () => {
  it('a truncated seq entry names the entry length', () => {
    // Second entry (offset 3) claims 5 bytes; 2 remain.
    assertArgdataError('07 81 05 85 02 01', 3, /past the end/);
    // A nested entry is bounded by its own container, not by the buffer.
    assertArgdataError('07 83 07 82 05 05 01', 3, /past the end/);
    // A length whose continuation bytes run off the end.
    assertArgdataError('07 81 05 01', 3);
  });
  it('a length with a leading 00 byte', () => {
    assertArgdataError('07 81 05 00 82 02 01', 3, /00/);
    assertArgdataError('06 00 80', 1, /00/);
  });
  it('a str without its trailing 00', () => {
    assertArgdataError('07 82 08 41', 2, /00/);
    assertArgdataError('08 41', 0, /00/);
    assertArgdataError('08', 0, /00/);
  });
  it('invalid UTF-8 in a str', () => {
    assertArgdataError('07 81 05 83 08 FF 00', 4, /UTF-8/);
    assertArgdataError('08 C0 80 00', 0, /UTF-8/); // overlong NUL
    assertArgdataError('08 ED A0 80 00', 0, /UTF-8/); // lone surrogate
    assertArgdataError('08 E2 82 00', 0, /UTF-8/); // truncated sequence
  });
  it('an unknown type byte', () => {
    assertArgdataError('07 81 0A', 2, /0x0a/);
    assertArgdataError('0A', 0, /0x0a/);
    assertArgdataError('06 80 81 00', 3, /0x00/); // key null, value of type 00
  });
  it('an fd payload that is not 4 bytes', () => {
    assertArgdataError('07 84 03 00 00 01', 2, /fd/);
    assertArgdataError('03 00 00 00 00 01', 0, /fd/);
  });
  it('a float payload that is not 8 bytes, and a bool payload that is not empty or 01', () => {
    assertArgdataError('04 3F F0 00 00 00 00 00', 0, /float/);
    assertArgdataError('07 82 02 02', 2, /bool/);
    assertArgdataError('02 01 00', 0, /bool/);
  });
  it('a map with an odd number of entries names the unpaired key', () => {
    assertArgdataError('06 83 08 61 00', 1, /without a value/);
    assertArgdataError('07 87 06 80 80 83 08 61 00', 5, /without a value/);
  });
  it('the error message names the offset', () => {
    assertArgdataError('07 81 05 85 02 01', 3, /offset 3/);
  });
});

// --- the seed's examples, end to end ----------------------------------------------------------

const CLOUDABI_TREE = '/usr/local/x86_64-unknown-cloudabi/lib/python3.6';
const STDLIB = '/usr/lib/python3.11';
const DYNLOAD = '/usr/lib/python3.11/lib-dynload';

const facts: HostFacts = {
  pathKind: (p: string): PathKind => (p === CLOUDABI_TREE ? 'missing' : 'directory'),
  python: () => ({ executable: '/usr/bin/python3', version: '3.11.2', stdlib: STDLIB, dynload: DYNLOAD }),
  hostAddresses: (host: string) => [host],
  user: () => undefined,
  group: () => undefined,
};

function fdKey(node: FdValue): string {
  const fd = node.fd;
  switch (fd.type) {
    case 'stdio':
      return `stdio:${fd.stream}`;
    case 'file':
      return `file:${fd.path}`;
    case 'socket':
      return `socket:${fd.address}`;
    case 'number':
      return assert.fail(`the seed examples use no numbered fds (got ${fd.number})`);
  }
}

function readSeed(name: string): string {
  return readFileSync(new URL(`../../test/fixtures/seed/${name}`, import.meta.url), 'utf8');
}

function encodeSeed(name: string, text: string) {
  const file = `/etc/sockvisor/services/${name}.yaml`;
  const parsed = parseServiceFile(text, file, name);
  assert.deepEqual(parsed.diagnostics.filter((x) => x.severity === 'error'), []);
  assert.ok(parsed.service);
  const resolved = resolveService(parsed.service, 'python3', facts);
  assert.deepEqual(resolved.diagnostics.filter((x) => x.severity === 'error'), []);
  assert.ok(resolved.spec);
  const first = encodeArgdata(resolved.spec.document, fdKey);
  const second = encodeArgdata(resolved.spec.document, fdKey);
  assert.deepEqual(second.bytes, first.bytes, 'encoding is deterministic');
  assert.deepEqual(second.fdTable, first.fdTable);
  assert.equal(first.bytes[0], 0x06, 'the document is a map');
  return { ...first, decoded: decodeArgdata(first.bytes), spec: resolved.spec, diagnostics: [...parsed.diagnostics, ...resolved.diagnostics] };
}

const HELLO_COMMAND = [
  'import io',
  'import sys',
  '',
  'argdata = sys.argdata',
  "s = io.TextIOWrapper(argdata['output'], encoding='UTF-8')",
  String.raw`s.write('Hello, %s %s!\n' % (argdata['first_name'], argdata['last_name']))`,
  '',
].join('\n');

describe('seed examples: parse, resolve, encode, decode', () => {
  it('hello.yaml', () => {
    const { decoded, fdTable, spec } = encodeSeed('hello', readSeed('hello.yaml'));
    assert.deepEqual(decoded, d.map(
      [d.str('stderr'), d.fd(0)],
      [d.str('path'), d.seq(d.fd(1), d.fd(2))],
      [d.str('args'), d.map(
        [d.str('first_name'), d.str('Konrad')],
        [d.str('last_name'), d.str('Zuse')],
        [d.str('output'), d.fd(3)],
      )],
      [d.str('command'), d.str(HELLO_COMMAND)],
    ));
    assert.deepEqual(fdTable, ['stdio:stderr', `file:${STDLIB}`, `file:${DYNLOAD}`, 'stdio:stdout']);
    assert.deepEqual(spec.files.map((f) => [f.keyPath, f.path, f.isDirectory, f.mappedFrom]), [
      ['path[0]', STDLIB, true, CLOUDABI_TREE],
      ['path[1]', DYNLOAD, true, CLOUDABI_TREE],
    ]);
  });

  it('web.yaml, with the bind address the seed left out', () => {
    const original = readSeed('web.yaml');
    const text = original.replace('!socket', '!socket {bind: 127.0.0.1:8080}');
    assert.notEqual(text, original);
    const { decoded, fdTable, spec } = encodeSeed('web', text);
    assert.ok(decoded !== null && decoded.type === 'map');
    assert.deepEqual(decoded.entries.map(([k]) => k), [d.str('stderr'), d.str('path'), d.str('args'), d.str('command')]);
    const [stderr, path, args, command] = decoded.entries.map(([, value]) => value);
    assert.deepEqual(stderr, d.fd(0));
    assert.deepEqual(path, d.seq(d.fd(1), d.fd(2)));
    assert.deepEqual(args, d.map([d.str('my_socket'), d.fd(3)]));
    assert.ok(command !== null && command !== undefined && command.type === 'str');
    assert.ok(command.value.startsWith('import http.server\nimport socketserver\nimport sys\n\nclass Server('), command.value);
    assert.ok(command.value.includes('serve_forever()'));
    assert.ok(command.value.endsWith("    Server(sys.argdata['my_socket'], HTTPRequestHandler).serve_forever()\n"), command.value);
    assert.deepEqual(fdTable, ['stdio:stderr', `file:${STDLIB}`, `file:${DYNLOAD}`, 'socket:127.0.0.1:8080']);
    assert.deepEqual(spec.sockets.map((s) => [s.keyPath, s.mode, s.socketType, s.written]), [['args.my_socket', 'bind', 'stream', '127.0.0.1:8080']]);
  });

  it('the unchanged web.yaml is rejected for its bare !socket', () => {
    const parsed = parseServiceFile(readSeed('web.yaml'), '/etc/sockvisor/services/web.yaml', 'web');
    const errors = parsed.diagnostics.filter((x) => x.severity === 'error');
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /!socket needs an address/);
    assert.deepEqual([errors[0]!.pos.line, errors[0]!.pos.col], [7, 16]);
  });
});
