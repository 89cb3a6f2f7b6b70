import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { alive, block, childrenOf, DaemonProcess, daemonFiles, eventually, HEADER, webService } from './helpers/daemon.js';
import { exchange, portOf } from './helpers/sockets.js';

/** accept() and accept4() in /proc/PID/syscall, by architecture. */
const ACCEPT_SYSCALLS: Partial<Record<string, readonly string[]>> = { x64: ['43', '288'], arm64: ['202', '242'] };

const get = (port: number) => exchange({ host: '127.0.0.1', port }, 'GET / HTTP/1.0\r\n\r\n', 15_000);

describe('supervision', () => {
  test('crash recovery: 20 SIGKILLs, every connection opened during the gap is served, none refused', async (t) => {
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.1') });
    const daemon = await DaemonProcess.start(t, files);
    let running = await daemon.waitForState('web:0', 'RUNNING');
    const port = portOf(daemon.address('web', 'args.listener'));
    const pids = new Set<number>([running['pid'] as number]);
    for (let kill = 0; kill < 20; kill++) {
      const from = daemon.records.length;
      process.kill(running['pid'] as number, 'SIGKILL');
      // Straight into the gap: no process accepts now, the kernel queues these.
      const during = Array.from({ length: 5 }, () => get(port));
      const replies = await Promise.all(during);
      running = await daemon.waitForState('web:0', 'RUNNING', from);
      for (const reply of replies) assert.match(reply, /^HTTP\/1\.0 200 OK\r\n.*\r\n\r\npid \d+\n$/s);
      assert.ok(!pids.has(running['pid'] as number), 'a new process');
      pids.add(running['pid'] as number);
      const restarted = daemon.states('web:0').slice(-2).map((r) => `${r['from']}>${r['to']}`);
      assert.deepEqual(restarted, ['RUNNING>STARTING', 'STARTING>RUNNING'], 'restarted at once, with no backoff');
    }
    assert.equal(pids.size, 21);
  });

  test('standby: a started interpreter waits to take over, and replaces a crashed process', async (t) => {
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.1, standby: true') });
    const daemon = await DaemonProcess.start(t, files);
    let running = await daemon.waitForState('web:0', 'RUNNING');
    const port = portOf(daemon.address('web', 'args.listener'));
    for (let round = 0; round < 3; round++) {
      // The standby is the daemon's other child; it holds the socket but never accepts.
      await eventually(async () => (await childrenOf(daemon.pid)).length === 2, 10_000, 'a standby is ready');
      const standby = (await childrenOf(daemon.pid)).map((c) => c.pid).find((p) => p !== running['pid'])!;
      for (let i = 0; i < 5; i++) assert.match(await get(port), new RegExp(`pid ${running['pid']}\\n$`), 'only the running process answers');
      const from = daemon.records.length;
      process.kill(running['pid'] as number, 'SIGKILL');
      const reply = await get(port);
      running = await daemon.waitForState('web:0', 'RUNNING', from);
      assert.equal(running['pid'], standby, 'the standby took over');
      assert.match(reply, new RegExp(`pid ${standby}\\n$`));
    }
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null });
    assert.deepEqual(await childrenOf(daemon.pid), []);
  });

  test('early exits back off with growing delays, end FATAL, and leave other services alone; exit 0 ends EXITED', async (t) => {
    const files = await daemonFiles(t, {
      crashy: `${HEADER}supervise: {restart: on-failure, start_retries: 3, backoff: {initial: 100ms, factor: 2, jitter: 0}}\ncommand: raise SystemExit(3)\n`,
      done: `${HEADER}supervise: {restart: on-failure}\ncommand: print('bye')\n`,
      web: webService('start_seconds: 0.1'),
    });
    const daemon = await DaemonProcess.start(t, files);
    const web = await daemon.waitForState('web:0', 'RUNNING');
    const fatal = await daemon.waitForState('crashy:0', 'FATAL');
    assert.equal(fatal['reason'], 'Exited too quickly (process log may have details)');
    const states = daemon.states('crashy:0');
    assert.deepEqual(states.map((r) => r['to']), ['STARTING', 'BACKOFF', 'STARTING', 'BACKOFF', 'STARTING', 'BACKOFF', 'STARTING', 'FATAL']);
    const time = (r: Record<string, unknown>) => r['time'] as number;
    const gaps = [1, 3, 5].map((i) => time(states[i + 1]!) - time(states[i]!));
    t.diagnostic(`backoff gaps: ${gaps.join(', ')} ms`);
    assert.ok(gaps[0]! >= 95 && gaps[1]! >= 195 && gaps[2]! >= 395, `delays 100, 200, 400 ms: ${gaps}`);
    assert.ok(gaps[0]! < gaps[1]! && gaps[1]! < gaps[2]!, 'growing');
    const done = await daemon.waitForState('done:0', 'EXITED');
    assert.equal(done['reason'], 'exit status 0');
    assert.deepEqual(daemon.states('web:0').map((r) => r['to']), ['STARTING', 'RUNNING'], 'the other service was never touched');
    assert.match(await get(portOf(daemon.address('web', 'args.listener'))), new RegExp(`pid ${web['pid']}\\n$`));
  });

  test('stop escalation: a child that ignores the stop signal is killed with its grandchild after stop_timeout', async (t) => {
    const files = await daemonFiles(t, {
      stubborn: `${HEADER}supervise: {stop_timeout: 500ms, start_seconds: 0, sandbox: "off"}
command: |
${block(`
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = os.fork()
if child == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(1)
print('grandchild', child, flush=True)
while True:
    time.sleep(1)
`)}
`,
    });
    const daemon = await DaemonProcess.start(t, files);
    const running = await daemon.waitForState('stubborn:0', 'RUNNING');
    const pid = running['pid'] as number;
    const logFile = path.join(files.logsDir, 'stubborn.stdout.log');
    await eventually(async () => /grandchild \d+/.test(await fs.readFile(logFile, 'utf8').catch(() => '')), 10_000, 'the grandchild is started');
    const grandchild = Number(/grandchild (\d+)/.exec(await fs.readFile(logFile, 'utf8'))![1]);
    assert.ok(await alive(grandchild));
    const started = Date.now();
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null });
    const took = Date.now() - started;
    t.diagnostic(`stop took ${took} ms`);
    assert.ok(took >= 450, `it waited for stop_timeout (${took} ms)`);
    assert.equal(await alive(pid), false, 'the child is gone');
    assert.equal(await alive(grandchild), false, 'the grandchild is gone');
    const stopped = daemon.states('stubborn:0').at(-1)!;
    assert.deepEqual([stopped['to'], (stopped['exit'] as { signal: string }).signal], ['STOPPED', 'SIGKILL']);
  });

  test('replicas: 4 processes share one socket; while one restarts the other three serve', async (t) => {
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.3, replicas: 4') });
    const daemon = await DaemonProcess.start(t, files);
    const running = await Promise.all([0, 1, 2, 3].map((i) => daemon.waitForState(`web:${i}`, 'RUNNING')));
    const pids = running.map((r) => r['pid'] as number);
    assert.equal(new Set(pids).size, 4);
    const port = portOf(daemon.address('web', 'args.listener'));
    const served = new Set<number>();
    for (let i = 0; i < 400 && served.size < 4; i++) served.add(Number(/pid (\d+)/.exec(await get(port))![1]));
    assert.deepEqual([...served].sort(), [...pids].sort(), 'all four replicas answered');

    const from = daemon.records.length;
    process.kill(pids[2]!, 'SIGKILL');
    await daemon.waitForState('web:2', 'STARTING', from);
    const whileRestarting = new Set<number>();
    for (let i = 0; i < 30; i++) whileRestarting.add(Number(/pid (\d+)/.exec(await get(port))![1]));
    assert.ok(![...whileRestarting].includes(pids[2]!));
    const back = await daemon.waitForState('web:2', 'RUNNING', from);
    assert.notEqual(back['pid'], pids[2]);
    for (const i of [0, 1, 3]) assert.equal(daemon.states(`web:${i}`).length, 2, `web:${i} kept running`);
  });

  test('replicas: a process left blocked in accept() by a connection another replica took stops at once on its stop signal, exit 0', async (t) => {
    const acceptCalls = ACCEPT_SYSCALLS[process.arch];
    if (!acceptCalls) return t.skip(`no accept() syscall numbers for ${process.arch}`);
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.3, replicas: 2, stop_timeout: 30') });
    const daemon = await DaemonProcess.start(t, files);
    const pids = await Promise.all(['web:0', 'web:1'].map(async (p) => (await daemon.waitForState(p, 'RUNNING'))['pid'] as number));
    const port = portOf(daemon.address('web', 'args.listener'));
    const inAccept = async (pid: number) => acceptCalls.includes((await fs.readFile(`/proc/${pid}/syscall`, 'utf8')).split(' ')[0]!);
    // Both replicas wake for each connection; the one that loses it blocks in accept() until the
    // next. About one request in three leaves a replica there; the state is checked twice, since
    // the winner passes through accept() too.
    let blocked: number | undefined;
    for (let i = 0; i < 200 && blocked === undefined; i++) {
      await get(port);
      for (const pid of pids) {
        if (!(await inAccept(pid))) continue;
        await new Promise((r) => setTimeout(r, 100));
        if (await inAccept(pid)) blocked = pid;
      }
    }
    assert.ok(blocked !== undefined, 'a replica was left blocked in accept()');
    t.diagnostic(`pid ${blocked} blocked in accept()`);

    const started = Date.now();
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null });
    const took = Date.now() - started;
    t.diagnostic(`stop took ${took} ms`);
    assert.ok(took < 5000, `stopped well within stop_timeout (30 s): ${took} ms`);
    for (const name of ['web:0', 'web:1']) {
      const stopped = daemon.states(name).at(-1)!;
      assert.deepEqual([stopped['to'], stopped['exit']], ['STOPPED', { code: 0, signal: null }], `${name} ended by its own exit`);
    }
  });

  test('200 crash-restarts leave no zombie, the fd count as it was, and RSS at most 10 % up', async (t) => {
    const dir = await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'sockvisor-crash-'));
    t.after(() => fs.rm(dir, { recursive: true, force: true }));
    // Each run counts itself. Run 100 waits for the test to measure (the first runs warm the
    // daemon's heap and JIT up), runs 101 to 299 crash at once, and run 300 stays up, so both
    // measurements see the same steady state: one live child.
    const files = await daemonFiles(t, {
      crash: `${HEADER}supervise: {restart: always, start_seconds: 0, sandbox: "off"}
command: |
${block(`
import os, time
with open(${JSON.stringify(path.join(dir, 'runs'))}, 'a') as f:
    f.write('x')
runs = os.path.getsize(${JSON.stringify(path.join(dir, 'runs'))})
if runs == 100:
    while not os.path.exists(${JSON.stringify(path.join(dir, 'measured'))}):
        time.sleep(0.02)
if runs >= 300:
    while True:
        time.sleep(1)
raise SystemExit(1)
`)}
`,
    });
    const daemon = await DaemonProcess.start(t, files);
    const runs = async () => (await fs.stat(path.join(dir, 'runs')).catch(() => ({ size: 0 }))).size;
    const fdCount = async () => (await fs.readdir(`/proc/${daemon.pid}/fd`)).length;
    const rss = async () => Number(/^VmRSS:\s+(\d+)/m.exec(await fs.readFile(`/proc/${daemon.pid}/status`, 'utf8'))![1]);
    await eventually(async () => (await runs()) === 100, 90_000, 'run 100 is up');
    const fdsBefore = await fdCount();
    const rssBefore = await rss();
    await fs.writeFile(path.join(dir, 'measured'), '');
    await eventually(async () => (await runs()) >= 300, 180_000, '200 more crash-restarts');
    await daemon.waitFor((r) => r.msg === 'state' && r['to'] === 'RUNNING' && daemon.states('crash:0').filter((s) => s['to'] === 'STARTING').length >= 300, 30_000);
    const fdsAfter = await fdCount();
    const rssAfter = await rss();
    const children = await childrenOf(daemon.pid);
    t.diagnostic(`daemon fds ${fdsBefore} -> ${fdsAfter}; RSS ${rssBefore} -> ${rssAfter} kB; children ${JSON.stringify(children)}`);
    assert.deepEqual(children.filter((c) => c.state === 'Z'), [], 'no zombie');
    assert.equal(children.length, 1);
    assert.equal(fdsAfter, fdsBefore);
    // Growth is what a leak shows; V8 returning heap pages after the first measurement (seen:
    // 63 -> 56 MB while another suite loaded the machine) is not one.
    assert.ok(rssAfter <= rssBefore * 1.1, `RSS ${rssBefore} -> ${rssAfter} kB: more than 10 % up`);
  });
});
