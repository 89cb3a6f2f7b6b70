import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseYamlDocument } from '../src/config/yaml-document.js';
import { mapGet, type ArgValue } from '../src/config/values.js';

/** Reads `value: TEXT` through the real YAML reader and returns the typed value and any messages. */
function typed(text: string): { value: ArgValue; messages: string[] } {
  const parsed = parseYamlDocument(`value: ${text}\n`, 't.yaml');
  assert.ok(parsed.value && parsed.value.kind === 'map', `not a map: ${text}`);
  return { value: mapGet(parsed.value, 'value')!, messages: parsed.diagnostics.map((d) => `${d.pos.line}:${d.pos.col}: ${d.message}`) };
}

function kindAndValue(text: string): [string, unknown] {
  const { value, messages } = typed(text);
  assert.deepEqual(messages, [], `unexpected messages for ${text}`);
  if (value.kind === 'binary') return [value.kind, Buffer.from(value.value).toString('hex')];
  return [value.kind, 'value' in value ? value.value : null];
}

const ns = (iso: string, extraNs = 0n) => BigInt(Date.parse(iso)) * 1_000_000n + extraNs;

describe('untagged plain scalars are typed as cloudabi-run typed them', () => {
  test('YAML 1.1 booleans in any case form', () => {
    for (const t of ['yes', 'Yes', 'YES', 'y', 'Y', 'true', 'True', 'TRUE', 'on', 'On', 'ON']) assert.deepEqual(kindAndValue(t), ['bool', true], t);
    for (const t of ['no', 'No', 'NO', 'n', 'N', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF']) assert.deepEqual(kindAndValue(t), ['bool', false], t);
  });

  test('null: ~, null, Null, NULL and nothing', () => {
    for (const t of ['~', 'null', 'Null', 'NULL', '']) assert.deepEqual(kindAndValue(t), ['null', null], JSON.stringify(t));
  });

  test('integers: decimal, signed, 0x, 0o, 0b, underscores, beyond 64 bits', () => {
    assert.deepEqual(kindAndValue('0'), ['int', 0n]);
    assert.deepEqual(kindAndValue('8080'), ['int', 8080n]);
    assert.deepEqual(kindAndValue('-129'), ['int', -129n]);
    assert.deepEqual(kindAndValue('+7'), ['int', 7n]);
    assert.deepEqual(kindAndValue('0x1F'), ['int', 31n]);
    assert.deepEqual(kindAndValue('-0xff'), ['int', -255n]);
    assert.deepEqual(kindAndValue('0o755'), ['int', 0o755n]);
    assert.deepEqual(kindAndValue('0b1010'), ['int', 10n]);
    assert.deepEqual(kindAndValue('1_000_000'), ['int', 1000000n]);
    assert.deepEqual(kindAndValue('123456789012345678901234567890'), ['int', 123456789012345678901234567890n]);
    assert.deepEqual(kindAndValue('-9223372036854775809'), ['int', -9223372036854775809n]);
  });

  test('floats: decimals, exponents, .inf and .nan', () => {
    assert.deepEqual(kindAndValue('1.5'), ['float', 1.5]);
    assert.deepEqual(kindAndValue('-0.25'), ['float', -0.25]);
    assert.deepEqual(kindAndValue('.5'), ['float', 0.5]);
    assert.deepEqual(kindAndValue('6.02e23'), ['float', 6.02e23]);
    assert.deepEqual(kindAndValue('1e3'), ['float', 1000]);
    assert.deepEqual(kindAndValue('1.'), ['float', 1]);
    assert.deepEqual(kindAndValue('.inf'), ['float', Infinity]);
    assert.deepEqual(kindAndValue('-.Inf'), ['float', -Infinity]);
    const [kind, value] = kindAndValue('.NaN');
    assert.equal(kind, 'float');
    assert.ok(Number.isNaN(value));
  });

  test('timestamps: dates, times, fractions and offsets, in nanoseconds', () => {
    assert.deepEqual(kindAndValue('2016-08-01'), ['timestamp', ns('2016-08-01T00:00:00Z')]);
    assert.deepEqual(kindAndValue('2016-08-01T12:00:00Z'), ['timestamp', ns('2016-08-01T12:00:00Z')]);
    assert.deepEqual(kindAndValue('2016-08-01t12:00:00z'.replace('z', 'Z')), ['timestamp', ns('2016-08-01T12:00:00Z')]);
    assert.deepEqual(kindAndValue('2016-08-01T12:00:00.123456789Z'), ['timestamp', ns('2016-08-01T12:00:00Z', 123456789n)]);
    assert.deepEqual(kindAndValue('2016-08-01T12:00:00.5+02:00'), ['timestamp', ns('2016-08-01T10:00:00Z', 500000000n)]);
    assert.deepEqual(kindAndValue('2001-12-14 21:59:43.10 -5'), ['timestamp', ns('2001-12-15T02:59:43Z', 100000000n)]);
    assert.deepEqual(kindAndValue('1969-12-31T23:59:59Z'), ['timestamp', -1_000_000_000n]);
  });

  test('a date that does not exist is a string', () => {
    assert.deepEqual(kindAndValue('2016-02-30'), ['str', '2016-02-30']);
    assert.deepEqual(kindAndValue('2016-13-01'), ['str', '2016-13-01']);
  });

  test('everything else is a string, and quoted scalars are always strings', () => {
    assert.deepEqual(kindAndValue('Konrad'), ['str', 'Konrad']);
    assert.deepEqual(kindAndValue('127.0.0.1:8080'), ['str', '127.0.0.1:8080']);
    assert.deepEqual(kindAndValue('0x'), ['str', '0x']);
    assert.deepEqual(kindAndValue('"yes"'), ['str', 'yes']);
    assert.deepEqual(kindAndValue("'123'"), ['str', '123']);
    assert.deepEqual(kindAndValue('"~"'), ['str', '~']);
    assert.deepEqual(kindAndValue('|\n  12\n'), ['str', '12\n']);
    assert.deepEqual(kindAndValue('! 12'), ['str', '12']);
  });
});

describe('explicit core tags', () => {
  test('!!str, !!int, !!float, !!bool, !!null, !!timestamp, !!binary', () => {
    assert.deepEqual(kindAndValue('!!str 12'), ['str', '12']);
    assert.deepEqual(kindAndValue('!!str yes'), ['str', 'yes']);
    assert.deepEqual(kindAndValue('!!int "0x10"'), ['int', 16n]);
    assert.deepEqual(kindAndValue('!!float 3'), ['float', 3]);
    assert.deepEqual(kindAndValue('!!bool "off"'), ['bool', false]);
    assert.deepEqual(kindAndValue('!!null ""'), ['null', null]);
    assert.deepEqual(kindAndValue('!!timestamp "2016-08-01"'), ['timestamp', ns('2016-08-01T00:00:00Z')]);
    assert.deepEqual(kindAndValue('!!binary aGVsbG8='), ['binary', Buffer.from('hello').toString('hex')]);
    assert.deepEqual(kindAndValue('!!binary |\n  aGVs\n  bG8=\n'), ['binary', Buffer.from('hello').toString('hex')]);
  });

  test('a value that does not fit its tag is an error at its position', () => {
    assert.deepEqual(typed('!!int twelve').messages, ['1:8: "twelve" is not an integer']);
    assert.deepEqual(typed('!!bool maybe').messages, ['1:8: "maybe" is not a boolean (use true or false)']);
    assert.match(typed('!!timestamp soon').messages[0]!, /^1:8: "soon" is not a timestamp/);
    assert.match(typed('!!float abc').messages[0]!, /^1:8: "abc" is not a number/);
    assert.match(typed('!!binary "not base64!"').messages[0]!, /^1:8: !!binary value is not valid base64/);
  });
});
