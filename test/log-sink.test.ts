import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { LineSplitter, MAX_LINE_BYTES } from '../src/logs/line-splitter.js';
import { bytesBeforeRotation, LogFile } from '../src/logs/log-file.js';
import { LogSink } from '../src/logs/log-sink.js';

describe('line framing', () => {
  test('lines split across reads are joined; a tail without a newline ends the stream as a line', () => {
    const s = new LineSplitter();
    assert.equal(String(s.push(Buffer.from('ab'))), '');
    assert.equal(String(s.push(Buffer.from('c\nde\nf'))), 'abc\nde\n');
    assert.equal(String(s.push(Buffer.from('g\n'))), 'fg\n');
    assert.equal(String(s.push(Buffer.from('h'))), '');
    assert.equal(String(s.end()), 'h\n');
    assert.equal(s.end().length, 0);
  });

  test('a line longer than the limit is written in pieces instead of held without bound', () => {
    const s = new LineSplitter();
    assert.equal(s.push(Buffer.alloc(MAX_LINE_BYTES - 1, 'x')).length, 0);
    const cut = s.push(Buffer.from('yy'));
    assert.equal(cut.length, MAX_LINE_BYTES + 2);
    assert.equal(cut.at(-1), 0x0a);
    assert.equal(String(s.push(Buffer.from('z\n'))), 'z\n', 'after the cut, the rest of the line starts afresh');
    const s2 = new LineSplitter();
    const lines = s2.push(Buffer.concat([Buffer.from('a\n'), Buffer.alloc(MAX_LINE_BYTES, 'x')]));
    assert.equal(lines.length, 2 + MAX_LINE_BYTES + 1, 'whole lines and the cut tail of the same read');
    assert.equal(s2.end().length, 0);
  });
});

describe('rotation cut (pure)', () => {
  const lines = Buffer.from('aaaa\nbb\ncccccc\n'); // lines of 5, 3 and 7 bytes
  test('everything when it fits or there is no limit', () => {
    assert.equal(bytesBeforeRotation(lines, 0, 0), 15);
    assert.equal(bytesBeforeRotation(lines, 100, 115), 15);
  });
  test('else the whole lines that fit, cut after a newline', () => {
    assert.equal(bytesBeforeRotation(lines, 0, 14), 8);
    assert.equal(bytesBeforeRotation(lines, 2, 10), 8);
    assert.equal(bytesBeforeRotation(lines, 2, 9), 5);
    assert.equal(bytesBeforeRotation(lines, 0, 5), 5);
  });
  test('rotate first when not even the first line fits and the file has content, or is over a lowered limit', () => {
    assert.equal(bytesBeforeRotation(lines, 1, 5), 0);
    assert.equal(bytesBeforeRotation(lines, 50, 10), 0);
  });
  test('a line longer than the limit goes whole into an empty file', () => {
    assert.equal(bytesBeforeRotation(lines, 0, 4), 5);
    assert.equal(bytesBeforeRotation(Buffer.from('no newline'), 0, 4), 10);
  });
});

describe('log file rotation (real files)', () => {
  const numbered = (from: number, to: number) => Buffer.from(Array.from({ length: to - from }, (_, i) => `line ${String(from + i).padStart(4, '0')}\n`).join(''));
  test('rotates only between lines: every line once, whole, in order, no file over the limit', async (t) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sockvisor-logfile-'));
    t.after(() => fs.rm(dir, { recursive: true, force: true }));
    const file = new LogFile(path.join(dir, 'web.stdout.log'), { maxBytes: 100, backups: 50 });
    // Appends of 1, 7, 23 and 2 lines (10 bytes each) against a 100-byte limit.
    await file.append(numbered(0, 1));
    await file.append(numbered(1, 8));
    await file.append(numbered(8, 31));
    await file.append(numbered(31, 33));
    await file.close();
    const names = (await fs.readdir(dir)).sort((a, b) => (Number(b.split('.').at(-1)) || 0) - (Number(a.split('.').at(-1)) || 0));
    const contents = await Promise.all(names.map((n) => fs.readFile(path.join(dir, n), 'utf8')));
    assert.equal(contents.join(''), String(numbered(0, 33)));
    assert.deepEqual(contents.map((c) => c.length), [100, 100, 100, 30]);
    assert.deepEqual(names, ['web.stdout.log.3', 'web.stdout.log.2', 'web.stdout.log.1', 'web.stdout.log']);
  });

  test('appends made while a write is under way go out together, in order; a task queued between appends sees only the earlier ones', async (t) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sockvisor-logfile-'));
    t.after(() => fs.rm(dir, { recursive: true, force: true }));
    const log = path.join(dir, 'w.log');
    const file = new LogFile(log, { maxBytes: 0, backups: 0 });
    const writes: string[] = [];
    file.follow((data) => writes.push(String(data)));
    const appended = Array.from({ length: 100 }, (_, i) => file.append(numbered(i, i + 1)));
    await Promise.all(appended);
    assert.deepEqual(writes, [String(numbered(0, 100))], 'one write for 100 appends made at once');
    writes.length = 0;
    const first = file.append(Buffer.from('before\n'));
    const seen = file.whenWritten(() => fs.readFile(log, 'utf8'));
    const last = file.append(Buffer.from('after\n'));
    await Promise.all([first, last]);
    assert.equal(await seen, `${String(numbered(0, 100))}before\n`);
    assert.deepEqual(writes, ['before\n', 'after\n']);
    await file.close();
    assert.equal(await fs.readFile(log, 'utf8'), `${String(numbered(0, 100))}before\nafter\n`);
  });

  test('a line longer than the limit gets a file of its own; backups 0 truncates in place', async (t) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sockvisor-logfile-'));
    t.after(() => fs.rm(dir, { recursive: true, force: true }));
    const log = path.join(dir, 'w.log');
    const file = new LogFile(log, { maxBytes: 20, backups: 1 });
    await file.append(Buffer.from(`short\n${'x'.repeat(30)}\nend\n`));
    await file.close();
    assert.equal(await fs.readFile(`${log}.1`, 'utf8'), `${'x'.repeat(30)}\n`);
    assert.equal(await fs.readFile(log, 'utf8'), 'end\n');
    const truncating = new LogFile(log, { maxBytes: 10, backups: 0 });
    await truncating.append(Buffer.from('123456789\nabc\n'));
    await truncating.close();
    assert.equal(await fs.readFile(log, 'utf8'), 'abc\n');
  });
});

describe('backpressure', () => {
  test('when writing falls behind, the readers pause; they resume as it catches up; nothing is lost', async () => {
    // A log file whose writes complete only when the test says so: a disk that is behind.
    const written: string[] = [];
    const pending: (() => void)[] = [];
    const slowFile = {
      append(lines: Buffer) {
        return new Promise<void>((resolve) => pending.push(() => (written.push(String(lines)), resolve())));
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
    assert.equal(written.join(''), [...Array.from({ length: 10 }, (_, i) => `line ${i} ${'y'.repeat(20)}\n`), 'last\n'].join(''));
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
