import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { LineSplitter, MAX_LINE_BYTES } from '../src/logs/line-splitter.js';
import type { LogFile } from '../src/logs/log-file.js';
import { LogSink } from '../src/logs/log-sink.js';

describe('line framing', () => {
  test('lines split across reads are joined; a tail without a newline ends the stream as a line', () => {
    const s = new LineSplitter();
    assert.deepEqual(s.push(Buffer.from('ab')).map(String), []);
    assert.deepEqual(s.push(Buffer.from('c\nde\nf')).map(String), ['abc\n', 'de\n']);
    assert.deepEqual(s.end().map(String), ['f\n']);
    assert.deepEqual(s.end(), []);
  });

  test('a line longer than the limit is written in pieces instead of held without bound', () => {
    const s = new LineSplitter();
    const pieces = s.push(Buffer.alloc(MAX_LINE_BYTES + 10, 'x'));
    assert.equal(pieces.length, 1);
    assert.equal(pieces[0]!.length, MAX_LINE_BYTES + 11);
  });
});

describe('backpressure', () => {
  test('when writing falls behind, the readers pause; they resume as it catches up; nothing is lost', async () => {
    // A log file whose writes complete only when the test says so: a disk that is behind.
    const written: string[] = [];
    const pending: (() => void)[] = [];
    const slowFile = {
      append(lines: readonly Buffer[]) {
        return new Promise<void>((resolve) => pending.push(() => (written.push(...lines.map(String)), resolve())));
      },
    } as unknown as LogFile;
    const sink = new LogSink(slowFile, { highWaterBytes: 100, lowWaterBytes: 20 });
    const source = new PassThrough();
    const done = sink.attach(source);
    for (let i = 0; i < 10; i++) source.write(`line ${i} ${'y'.repeat(20)}\n`);
    await new Promise((r) => setImmediate(r));
    assert.equal(source.isPaused(), true, 'reading stopped above the high-water mark');
    while (pending.length > 0) {
      pending.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(source.isPaused(), false, 'reading resumed below the low-water mark');
    source.end('last\n');
    await new Promise((r) => setImmediate(r));
    while (pending.length > 0) pending.shift()!();
    await done;
    assert.deepEqual(written, [...Array.from({ length: 10 }, (_, i) => `line ${i} ${'y'.repeat(20)}\n`), 'last\n']);
  });
});
