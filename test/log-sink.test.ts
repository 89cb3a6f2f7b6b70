import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
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

describe('memory', () => {
  test("a process that writes for as long as it runs does not grow the daemon's heap with its writes", async () => {
    v8.setFlagsFromString('--expose-gc');
    const collect = runInNewContext('gc') as () => void;
    const heapAfterCollection = async () => {
      await new Promise((r) => setImmediate(r));
      collect();
      return process.memoryUsage().heapUsed;
    };
    const instantFile = { append: () => Promise.resolve() } as unknown as LogFile;
    const sink = new LogSink(instantFile);
    const source = new PassThrough();
    const done = sink.attach(source);
    const writeLines = async (count: number) => {
      for (let i = 0; i < count; i++) {
        source.write('line\n');
        if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
      }
    };
    await writeLines(20_000);
    const before = await heapAfterCollection();
    await writeLines(200_000);
    const after = await heapAfterCollection();
    source.end();
    await done;
    // Keeping anything per write (a promise, an array) costs at least 16 bytes each: 3.2 MB here.
    assert.ok(after - before < 1_000_000, `heap grew by ${after - before} bytes over 200,000 writes`);
  });
});
