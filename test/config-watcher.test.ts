import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, test, type TestContext } from 'node:test';
import { ConfigWatcher, type ConfigWatcherOptions } from '../src/daemon/config-watcher.js';
import { Debouncer } from '../src/daemon/debounce.js';

/** Generous: the machine running these may be slow and busy. */
const DEADLINE_MS = 5000;
const DEBOUNCE_MS = 300;
/** How long to wait before concluding that no call is coming. */
const SILENCE_MS = DEBOUNCE_MS + 700;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// --- Debouncer --------------------------------------------------------------------------------

/** A Debouncer whose flushes can be awaited. */
function recordedDebouncer<T>(quietMs: number, maxWaitMs: number) {
  const flushes: { items: T[]; at: number }[] = [];
  let wake: (() => void) | undefined;
  const debouncer = new Debouncer<T>(quietMs, maxWaitMs, (items) => {
    flushes.push({ items, at: performance.now() });
    wake?.();
  });
  const flushCount = async (count: number, timeoutMs = DEADLINE_MS) => {
    const deadline = performance.now() + timeoutMs;
    while (flushes.length < count) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`expected ${count} flushes within ${timeoutMs} ms, saw ${flushes.length}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => (clearTimeout(timer), resolve());
      });
    }
  };
  return { debouncer, flushes, flushCount };
}

describe('Debouncer', () => {
  test('a burst is flushed once, de-duplicated, after it has been quiet for the quiet time', async () => {
    const { debouncer, flushes, flushCount } = recordedDebouncer<string>(50, 1000);
    debouncer.push('a');
    await sleep(10);
    debouncer.push('b');
    await sleep(10);
    debouncer.push('a');
    const lastPush = performance.now();
    await flushCount(1);
    assert.deepEqual(flushes[0]!.items, ['a', 'b']);
    assert.ok(flushes[0]!.at >= lastPush + 49, `flushed ${(flushes[0]!.at - lastPush).toFixed(1)} ms after the last push`);
    await sleep(100);
    assert.equal(flushes.length, 1);
  });

  test('a burst that never goes quiet is still flushed every maximum wait', async () => {
    const { debouncer, flushes, flushCount } = recordedDebouncer<number>(50, 200);
    const pushed: number[] = [];
    const streamEnd = performance.now() + 700;
    for (let i = 0; performance.now() < streamEnd; i++) {
      debouncer.push(i);
      pushed.push(i);
      await sleep(10);
    }
    const duringStream = flushes.length;
    assert.ok(duringStream >= 2, `only ${duringStream} flushes during a 700 ms stream with a 200 ms maximum wait`);
    await flushCount(duringStream + 1);
    assert.deepEqual(flushes.flatMap((f) => f.items), pushed, 'every item is flushed exactly once, in order');
  });

  test('a noticed item joins the burst and starts the maximum wait, but does not end the quiet', async () => {
    const { debouncer, flushes, flushCount } = recordedDebouncer<string>(30, 300);
    const start = performance.now();
    debouncer.notice('unsettled');
    await sleep(150);
    assert.equal(flushes.length, 0, 'a notice alone waits for the maximum wait');
    await flushCount(1);
    assert.deepEqual(flushes[0]!.items, ['unsettled']);
    assert.ok(flushes[0]!.at >= start + 299, `flushed after ${(flushes[0]!.at - start).toFixed(1)} ms`);

    debouncer.notice('unsettled');
    debouncer.push('settled');
    await flushCount(2, 250);
    assert.deepEqual(flushes[1]!.items, ['unsettled', 'settled'], 'a push ends the quiet for what was noticed too');
  });

  test('a notice while a burst is waiting to be quiet keeps it from being quiet', async () => {
    const { debouncer, flushes, flushCount } = recordedDebouncer<string>(150, 2000);
    debouncer.push('settled');
    for (let i = 0; i < 6; i++) {
      await sleep(20);
      debouncer.notice('still writing');
    }
    const lastNotice = performance.now();
    await flushCount(1);
    assert.deepEqual(flushes[0]!.items, ['settled', 'still writing']);
    assert.ok(flushes[0]!.at >= lastNotice + 149, `flushed ${(flushes[0]!.at - lastNotice).toFixed(1)} ms after the last notice`);
  });

  test('a push after a flush starts a new burst', async () => {
    const { debouncer, flushes, flushCount } = recordedDebouncer<string>(20, 1000);
    debouncer.push('a');
    await flushCount(1);
    debouncer.push('b');
    await flushCount(2);
    assert.deepEqual(flushes.map((f) => f.items), [['a'], ['b']]);
  });

  test('cancel drops the burst and leaves no timer behind', async () => {
    const { debouncer, flushes } = recordedDebouncer<string>(20, 100);
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    debouncer.push('a');
    assert.equal(timers(), before + 2);
    debouncer.cancel();
    assert.equal(timers(), before);
    await sleep(150);
    assert.equal(flushes.length, 0);
  });

  test('a maximum wait shorter than the quiet time is refused', () => {
    assert.throws(() => new Debouncer(300, 100, () => undefined), RangeError);
    assert.throws(() => new Debouncer(-1, 100, () => undefined), RangeError);
  });
});

// --- ConfigWatcher ----------------------------------------------------------------------------

class Calls {
  readonly all: { paths: string[]; at: number; snapshot: unknown }[] = [];
  private consumed = 0;
  private wake: (() => void) | undefined;

  record(paths: readonly string[], snapshot: unknown): void {
    this.all.push({ paths: [...paths].sort(), at: performance.now(), snapshot });
    this.wake?.();
  }

  async next(timeoutMs: number): Promise<Calls['all'][number]> {
    const deadline = performance.now() + timeoutMs;
    while (this.all.length <= this.consumed) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no onChange within ${timeoutMs} ms (calls so far: ${JSON.stringify(this.all.map((c) => c.paths))})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => (clearTimeout(timer), resolve());
      });
    }
    return this.all[this.consumed++]!;
  }

  get unseen(): string[][] {
    return this.all.slice(this.consumed).map((c) => c.paths);
  }
}

const recorded = new WeakMap<ConfigWatcher, Calls>();

function callsOf(watcher: ConfigWatcher): Calls {
  const calls = recorded.get(watcher);
  if (!calls) throw new Error('not a watcher started by this test file');
  return calls;
}

/** The paths of the next onChange; rejects if none comes by the deadline. */
async function nextChange(watcher: ConfigWatcher, timeoutMs: number): Promise<string[]> {
  return (await callsOf(watcher).next(timeoutMs)).paths;
}

/** Waits out a bounded window and asserts that no onChange came in it. */
async function assertNoChange(watcher: ConfigWatcher, why: string, windowMs = SILENCE_MS): Promise<void> {
  await sleep(windowMs);
  assert.deepEqual(callsOf(watcher).unseen, [], why);
}

/** A temp directory with a config file and a services directory holding web.yaml. */
class Fixture {
  readonly configFile: string;
  readonly servicesDir: string;
  readonly errors: Error[] = [];
  private readonly watchers: ConfigWatcher[] = [];

  private constructor(readonly dir: string) {
    this.configFile = path.join(dir, 'sockvisor.yaml');
    this.servicesDir = path.join(dir, 'sockvisor.d');
  }

  static async create(t: TestContext, options: { symlinkedServices?: boolean } = {}): Promise<Fixture> {
    const f = new Fixture(await fs.mkdtemp(path.join(os.tmpdir(), 'config-watcher-')));
    // One hook, so the watchers are closed before their files are removed from under them.
    t.after(async () => {
      for (const watcher of f.watchers) await watcher.close();
      await fs.rm(f.dir, { recursive: true, force: true });
    });
    await fs.writeFile(f.configFile, 'services: sockvisor.d\n');
    if (options.symlinkedServices) {
      await fs.mkdir(path.join(f.dir, 'a'));
      await fs.symlink(path.join(f.dir, 'a'), f.servicesDir);
    } else {
      await fs.mkdir(f.servicesDir);
    }
    await fs.writeFile(f.service('web'), 'greeting: hello\n');
    return f;
  }

  service(name: string, dir = this.servicesDir): string {
    return path.join(dir, `${name}.yaml`);
  }

  async watch(options: Partial<ConfigWatcherOptions> = {}, snapshot: () => unknown = () => undefined): Promise<ConfigWatcher> {
    const calls = new Calls();
    const watcher = await ConfigWatcher.start({
      configFile: this.configFile,
      servicesDir: this.servicesDir,
      debounceMs: DEBOUNCE_MS,
      // Out of reach, so a call comes from a settled change and not from the maximum wait's fallback.
      maxWaitMs: 60_000,
      onError: (e) => this.errors.push(e),
      ...options,
      onChange: (paths) => calls.record(paths, snapshot()),
    });
    recorded.set(watcher, calls);
    this.watchers.push(watcher);
    return watcher;
  }
}

/** How editors save: write a temp file beside the original, then rename it over the original. */
async function saveByRename(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temp, text);
  await fs.rename(temp, file);
}

/** `ln -s target tmp && mv -T tmp link`: the link is replaced in one step. */
async function swapSymlink(link: string, target: string): Promise<void> {
  const temp = `${link}.${process.pid}.new`;
  await fs.symlink(target, temp);
  await fs.rename(temp, link);
}

describe('ConfigWatcher', () => {
  test('a service file saved by renaming a temp file over it is one call', async (t) => {
    const f = await Fixture.create(t);
    const watcher = await f.watch();
    await saveByRename(f.service('web'), 'greeting: hi\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.service('web')]);
    await assertNoChange(watcher, 'one save is one call');
    assert.deepEqual(f.errors, []);
  });

  test('20 saves 10 ms apart are one call, after the last of them', async (t) => {
    const f = await Fixture.create(t);
    const watcher = await f.watch();
    let lastSave = 0;
    for (let i = 0; i < 20; i++) {
      await saveByRename(f.service('web'), `greeting: hello ${i}\n`);
      lastSave = performance.now();
      await sleep(10);
    }
    const call = await callsOf(watcher).next(DEADLINE_MS);
    assert.deepEqual(call.paths, [f.service('web')]);
    assert.ok(call.at >= lastSave + DEBOUNCE_MS, `called ${(call.at - lastSave).toFixed(0)} ms after the last save`);
    await assertNoChange(watcher, 'the burst is one call');
  });

  test('saves to several files in one burst are one call naming them all', async (t) => {
    const f = await Fixture.create(t);
    const watcher = await f.watch();
    const files = [f.service('web'), f.service('db'), f.configFile];
    for (let i = 0; i < 20; i++) {
      await saveByRename(files[i % files.length]!, `greeting: hello ${i}\n`);
      await sleep(10);
    }
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [...files].sort());
    await assertNoChange(watcher, 'the burst is one call');
  });

  test('a new service file is a call', async (t) => {
    const f = await Fixture.create(t);
    const watcher = await f.watch();
    await fs.writeFile(f.service('db'), 'greeting: db\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.service('db')]);
  });

  test('a deleted service file is a call', async (t) => {
    const f = await Fixture.create(t);
    const watcher = await f.watch();
    await fs.rm(f.service('web'));
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.service('web')]);
  });

  test('the config file saved by renaming a temp file over it is one call', async (t) => {
    const f = await Fixture.create(t);
    const watcher = await f.watch();
    await saveByRename(f.configFile, 'services: sockvisor.d\nlog_level: debug\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.configFile]);
    await assertNoChange(watcher, 'one save is one call');
    // A second save: the first replaced the file that was being watched.
    await saveByRename(f.configFile, 'services: sockvisor.d\nlog_level: info\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.configFile]);
  });

  test('the config file deleted and written again is a call each time', async (t) => {
    const f = await Fixture.create(t);
    const watcher = await f.watch();
    await fs.rm(f.configFile);
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.configFile]);
    await fs.writeFile(f.configFile, 'services: sockvisor.d\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.configFile]);
  });

  test('a symlinked config file swapped to another file: a call, then the new target is watched and the old one is not', async (t) => {
    const f = await Fixture.create(t);
    const oldTarget = path.join(f.dir, 'config-a.yaml');
    const newTarget = path.join(f.dir, 'config-b.yaml');
    await fs.rename(f.configFile, oldTarget);
    await fs.symlink(oldTarget, f.configFile);
    await fs.writeFile(newTarget, 'services: sockvisor.d\nlog_level: debug\n');
    const watcher = await f.watch();

    await swapSymlink(f.configFile, newTarget);
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.configFile]);
    await assertNoChange(watcher, 'one swap is one call');

    await saveByRename(newTarget, 'services: sockvisor.d\nlog_level: info\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.configFile], 'an edit of the new target is a call');
    await saveByRename(oldTarget, 'services: sockvisor.d\nlog_level: warn\n');
    await assertNoChange(watcher, 'the old target is no longer the config file');
    assert.deepEqual(f.errors, []);
  });

  test('the config file under a symlinked directory swapped to another release: a call, then the new file is watched', async (t) => {
    const f = await Fixture.create(t);
    for (const release of ['r1', 'r2']) {
      await fs.mkdir(path.join(f.dir, release));
      await fs.writeFile(path.join(f.dir, release, 'sockvisor.yaml'), `services: ../sockvisor.d\n# ${release}\n`);
    }
    const current = path.join(f.dir, 'current');
    await fs.symlink(path.join(f.dir, 'r1'), current);
    const watcher = await f.watch({ configFile: path.join(current, 'sockvisor.yaml') });

    await swapSymlink(current, path.join(f.dir, 'r2'));
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [path.join(current, 'sockvisor.yaml')]);
    await saveByRename(path.join(f.dir, 'r2', 'sockvisor.yaml'), 'services: ../sockvisor.d\n# r2 edited\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [path.join(current, 'sockvisor.yaml')], 'an edit in the new release is a call');
    await saveByRename(path.join(f.dir, 'r1', 'sockvisor.yaml'), 'services: ../sockvisor.d\n# r1 edited\n');
    await assertNoChange(watcher, 'the old release is no longer the config');
    assert.deepEqual(f.errors, []);
  });

  test('files other than service files, and other entries beside the services directory, are not calls', async (t) => {
    const f = await Fixture.create(t);
    const watcher = await f.watch();
    await fs.writeFile(path.join(f.servicesDir, 'notes.txt'), 'not a service\n');
    await fs.writeFile(path.join(f.servicesDir, 'web.yaml~'), 'a backup\n');
    await fs.mkdir(path.join(f.servicesDir, 'old'));
    await fs.writeFile(path.join(f.servicesDir, 'old', 'db.yaml'), 'below depth 0\n');
    await fs.writeFile(path.join(f.dir, 'unrelated.conf'), 'beside the services directory\n');
    await fs.mkdir(path.join(f.dir, 'sockvisor.d.bak'));
    await assertNoChange(watcher, 'nothing the daemon reads changed');
    await fs.writeFile(f.service('web'), 'greeting: still watching\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.service('web')]);
  });

  test('a symlinked services directory swapped to another directory: a call, then the new target is watched and the old one is not', async (t) => {
    const f = await Fixture.create(t, { symlinkedServices: true });
    const oldTarget = path.join(f.dir, 'a');
    const newTarget = path.join(f.dir, 'b');
    await fs.mkdir(newTarget);
    await fs.writeFile(f.service('web', newTarget), 'greeting: from b\n');
    const watcher = await f.watch();

    await swapSymlink(f.servicesDir, newTarget);
    assert.ok((await nextChange(watcher, DEADLINE_MS)).includes(f.servicesDir), 'the swap names the services directory');

    await saveByRename(f.service('web', newTarget), 'greeting: edited in b\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.service('web')], 'named under the services directory as configured');

    await saveByRename(f.service('web', oldTarget), 'greeting: edited in a\n');
    await fs.writeFile(f.service('db', oldTarget), 'greeting: new in a\n');
    await assertNoChange(watcher, 'the old target is no longer the services directory');
    assert.deepEqual(f.errors, []);
  });

  test('the services directory deleted, then made again: calls, and the new directory is watched', async (t) => {
    const f = await Fixture.create(t);
    const watcher = await f.watch();
    await fs.rm(f.servicesDir, { recursive: true });
    assert.ok((await nextChange(watcher, DEADLINE_MS)).includes(f.servicesDir));
    await fs.mkdir(f.servicesDir);
    assert.ok((await nextChange(watcher, DEADLINE_MS)).includes(f.servicesDir));
    await fs.writeFile(f.service('db'), 'greeting: db\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.service('db')]);
  });

  test('the services directory replaced by another moved into its place: the new directory is watched', async (t) => {
    const f = await Fixture.create(t);
    const replacement = path.join(f.dir, 'sockvisor.d.new');
    await fs.mkdir(replacement);
    await fs.writeFile(f.service('web', replacement), 'greeting: replaced\n');
    const watcher = await f.watch();
    // The parent may be read before and after without ever missing the name: only the inode changed.
    await fs.rename(f.servicesDir, path.join(f.dir, 'sockvisor.d.old'));
    await fs.rename(replacement, f.servicesDir);
    assert.ok((await nextChange(watcher, DEADLINE_MS)).includes(f.servicesDir));
    await saveByRename(f.service('web'), 'greeting: edited\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.service('web')]);
    await saveByRename(f.service('web', path.join(f.dir, 'sockvisor.d.old')), 'greeting: edited in the old one\n');
    await assertNoChange(watcher, 'the old directory is not the services directory any more');
  });

  test('the services directory deleted and made again at once: the new directory is watched', async (t) => {
    const f = await Fixture.create(t);
    const watcher = await f.watch();
    // Quick enough that a read of the parent may never see the directory missing.
    await fs.rm(f.servicesDir, { recursive: true });
    await fs.mkdir(f.servicesDir);
    assert.ok((await nextChange(watcher, DEADLINE_MS)).includes(f.servicesDir));
    await fs.writeFile(f.service('db'), 'greeting: db\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.service('db')]);
  });

  test('a file written in two chunks 100 ms apart is one call, after the second chunk', async (t) => {
    const f = await Fixture.create(t);
    // A debounce this short cannot hide a report of the first chunk: only the write-finish guard can.
    const watcher = await f.watch({ debounceMs: 20 }, () => readFileSync(f.service('web'), 'utf8'));
    const file = await fs.open(f.service('web'), 'w');
    await file.write('greeting: a long\n');
    await sleep(100);
    await file.write('greeting: second half\n');
    const secondChunk = performance.now();
    await file.close();
    const call = await callsOf(watcher).next(DEADLINE_MS);
    assert.deepEqual(call.paths, [f.service('web')]);
    assert.ok(call.at > secondChunk, 'called before the second chunk was written');
    assert.equal(call.snapshot, 'greeting: a long\ngreeting: second half\n', 'what a reload would have read');
    await assertNoChange(watcher, 'one write is one call', 20 + 700);
  });

  test('a file saved over and over still gives a call every maximum wait', async (t) => {
    const f = await Fixture.create(t);
    const watcher = await f.watch({ maxWaitMs: 1000 });
    const streamEnd = performance.now() + 3000;
    for (let i = 0; performance.now() < streamEnd; i++) {
      await saveByRename(f.service('web'), `greeting: hello ${i}\n`);
      await sleep(50);
    }
    const duringStream = callsOf(watcher).all.length;
    assert.ok(duringStream >= 2, `${duringStream} calls during 3 s of saves with a 1 s maximum wait`);
    for (const call of callsOf(watcher).all) assert.deepEqual(call.paths, [f.service('web')]);
  });

  test('retarget watches the new config file and services directory, and no longer the old ones', async (t) => {
    const f = await Fixture.create(t);
    const otherConfig = path.join(f.dir, 'other.yaml');
    const otherServices = path.join(f.dir, 'other.d');
    await fs.writeFile(otherConfig, 'services: other.d\n');
    await fs.mkdir(otherServices);
    await fs.writeFile(f.service('web', otherServices), 'greeting: other\n');
    const watcher = await f.watch();

    await watcher.retarget(otherConfig, otherServices);
    await saveByRename(f.service('web', otherServices), 'greeting: edited\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.service('web', otherServices)]);
    await saveByRename(otherConfig, 'services: other.d\nlog_level: debug\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [otherConfig]);

    await saveByRename(f.service('web'), 'greeting: edited in the old directory\n');
    await saveByRename(f.configFile, 'services: sockvisor.d\nlog_level: debug\n');
    await assertNoChange(watcher, 'the old paths are not watched');

    await watcher.retarget(otherConfig, otherServices);
    await fs.writeFile(f.service('db', otherServices), 'greeting: db\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.service('db', otherServices)], 'retarget to the same paths changes nothing');
    assert.deepEqual(f.errors, []);
  });

  test('after close, changes are not calls, including one already on its way', async (t) => {
    const f = await Fixture.create(t);
    const watcher = await f.watch();
    await saveByRename(f.service('web'), 'greeting: before close\n');
    assert.deepEqual(await nextChange(watcher, DEADLINE_MS), [f.service('web')]);

    await saveByRename(f.service('web'), 'greeting: on its way\n');
    await sleep(50);
    await watcher.close();
    await saveByRename(f.service('web'), 'greeting: after close\n');
    await saveByRename(f.configFile, 'services: sockvisor.d\nlog_level: debug\n');
    await fs.writeFile(f.service('db'), 'greeting: db\n');
    await assertNoChange(watcher, 'no call after close');
    await watcher.close(); // a second close is harmless
  });

  test('after close, a process that used a watcher exits by itself', async (t) => {
    const f = await Fixture.create(t);
    const moduleUrl = new URL('../src/daemon/config-watcher.js', import.meta.url).href;
    // The child watches, sees one change, closes with a save still settling and a burst pending,
    // then reports what is still open. It must then exit with nothing left to wait for: a maximum
    // wait left running would hold it for a minute.
    const script = `
      import fs from 'node:fs/promises';
      const { ConfigWatcher } = await import(${JSON.stringify(moduleUrl)});
      const [configFile, servicesDir, web] = ${JSON.stringify([f.configFile, f.servicesDir, f.service('web')])};
      let calls = 0, seen;
      const first = new Promise((resolve) => (seen = resolve));
      const watcher = await ConfigWatcher.start({ configFile, servicesDir, debounceMs: 100, maxWaitMs: 60000, onChange: () => (calls++, seen()) });
      await fs.writeFile(web, 'greeting: one\\n');
      await first;
      await fs.writeFile(web, 'greeting: two\\n');
      await new Promise((resolve) => setTimeout(resolve, 30));
      await watcher.close();
      const closedAt = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 0));
      await new Promise((resolve) => setImmediate(resolve));
      const open = process.getActiveResourcesInfo();
      process.on('exit', () => console.log(JSON.stringify({ calls, open, exitMs: performance.now() - closedAt })));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exit = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => (child.kill('SIGKILL'), resolve(null)), DEADLINE_MS + 5000);
      child.once('exit', (code) => (clearTimeout(timer), resolve(code)));
    });
    assert.notEqual(exit, null, `the process did not exit after close; it printed ${stdout} ${stderr}`);
    assert.equal(exit, 0, stderr);
    const report = JSON.parse(stdout.trim()) as { calls: number; open: string[]; exitMs: number };
    assert.equal(report.calls, 1, 'one call before close, none after');
    // chokidar may still finish a size poll of its own (a Timeout, an FSReqCallback); that ends by itself.
    assert.deepEqual(report.open.filter((r) => r === 'FSEventWrap' || r === 'StatWatcher'), [], 'no watch is left open');
    t.diagnostic(`exited ${report.exitMs.toFixed(0)} ms after close; open right after close: ${JSON.stringify(report.open)}`);
  });
});
