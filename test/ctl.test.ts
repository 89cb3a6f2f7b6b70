/**
 * sockvisorctl end to end: the real client (dist/src/cli/sockvisorctl.js) against a real
 * sockvisord, every command, checked by what it prints and how it exits.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { VERSION } from '../src/version.js';
import { clientForNobody, run } from './helpers/cli.js';
import { CTL, ctl, expectRun, lines, runningLine, statusLine, statusPids } from './helpers/ctl.js';
import { block, DaemonProcess, daemonFiles, eventually, HEADER, webService, type DaemonFiles, type LogRecord } from './helpers/daemon.js';

type TestContext = { after: (fn: () => Promise<void>) => void };

/** What every command prints when nothing listens on `sock`. */
const unreachable = (sock: string, why = 'no such file (is it running?)') => `sockvisorctl: cannot reach sockvisord at ${sock}: ${why}`;

/** A sockvisorctl that keeps running (`tail -f`, `maintail -f`), killed at the end of the test. */
class CtlChild {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly proc: ChildProcess) {
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => ((this.stdout += d), this.wake()));
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => ((this.stderr += d), this.wake()));
    void this.exited.then(() => this.wake());
  }

  static start(t: TestContext, sock: string, args: readonly string[]): CtlChild {
    const child = new CtlChild(spawn(process.execPath, [CTL, '-s', sock, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
    t.after(async () => {
      if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
      await child.exited;
    });
    return child;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `check` holds on the output so far; rejects at the deadline with that output. */
  async until(check: (c: CtlChild) => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`not within ${timeoutMs} ms: ${what}\nstdout:\n${this.stdout.slice(-2000)}\nstderr:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }
}

/** Exits at once (status 0) with a line on stdout and two on stderr, and is never restarted. */
const ONCE = `${HEADER}supervise: {restart: never}
stderr: !fd stderr
command: |
${block(`
import sys
print('once out')
sys.stderr.write('once err 1\\nonce err 2\\n')
`)}
`;

/**
 * Runs until stopped; SIGUSR1 prints the next 30 numbered 91-byte lines, SIGUSR2 one line. Its
 * stdout log rotates at 4 KB, so a few batches rotate it.
 */
const TICKER = `${HEADER}supervise: {start_seconds: 0.2, logs: {max_bytes: 4KB, backups: 3}}
stderr: !fd stderr
command: |
${block(`
import signal, sys, time
count = [0]
def batch(signum, frame):
    for i in range(30):
        sys.stdout.write('line %04d %s\\n' % (count[0], 'x' * 80))
        count[0] += 1
    sys.stdout.flush()
def usr2(signum, frame):
    sys.stdout.write('got SIGUSR2\\n')
    sys.stdout.flush()
signal.signal(signal.SIGUSR1, batch)
signal.signal(signal.SIGUSR2, usr2)
print('ticker ready', flush=True)
while True:
    time.sleep(3600)
`)}
`;

const tickerLine = (n: number) => `line ${String(n).padStart(4, '0')} ${'x'.repeat(80)}`;

/** A tiny long-running service with no sockets. */
const SLEEPER = `${HEADER}supervise: {start_seconds: 0.2}
stderr: !fd stderr
command: |
${block(`
import time
while True:
    time.sleep(3600)
`)}
`;

interface Fleet {
  readonly files: DaemonFiles;
  readonly daemon: DaemonProcess;
  readonly sock: string;
  /** RUNNING pids by process name, from the daemon log. */
  readonly pids: Record<string, number>;
}

/** web (1 process), api (2 replicas), once (exits at once) and, optionally, ticker; all settled. */
async function fleet(t: TestContext, options: { ticker?: boolean } = {}): Promise<Fleet> {
  const services: Record<string, string> = { web: webService('start_seconds: 0.2'), api: webService('start_seconds: 0.2, replicas: 2'), once: ONCE };
  if (options.ticker) services['ticker'] = TICKER;
  const files = await daemonFiles(t, services);
  const daemon = await DaemonProcess.start(t, files);
  const running = ['api:0', 'api:1', ...(options.ticker ? ['ticker:0'] : []), 'web:0'];
  const pids: Record<string, number> = {};
  for (const name of running) pids[name] = (await daemon.waitForState(name, 'RUNNING'))['pid'] as number;
  await daemon.waitForState('once:0', 'EXITED');
  if (options.ticker) await eventually(async () => (await fs.readFile(path.join(files.logsDir, 'ticker.stdout.log'), 'utf8').catch(() => '')) === 'ticker ready\n', 10_000, 'ticker ready');
  return { files, daemon, sock: files.controlSocket, pids };
}

const stateAfter = (daemon: DaemonProcess, from: number) => daemon.records.slice(from).filter((r) => r.msg === 'state');
const transition = (r: LogRecord) => `${String(r['process'])} ${String(r['from'])}->${String(r['to'])}`;

describe('sockvisorctl against a running sockvisord', () => {
  test('status: all, by service, glob and replica, with supervisorctl columns, sockets lines and exit codes 0/3/4; -s and -c', async (t) => {
    const { daemon, sock, pids, files } = await fleet(t);
    const api = daemon.address('api', 'args.listener');
    const web = daemon.address('web', 'args.listener');

    // Everything: once:0 has exited, so exit 3.
    expectRun(await ctl(sock, 'status'), 3, [
      runningLine('api:0', pids['api:0']),
      runningLine('api:1', pids['api:1']),
      statusLine('once:0', 'EXITED', 'exit status 0'),
      runningLine('web:0', pids['web:0']),
      `api sockets: ${api}`,
      `web sockets: ${web}`,
    ]);
    // The columns, spelled out once: 33 wide for the name, 10 for the state.
    const first = lines((await ctl(sock, 'status', 'api:0')).stdout)[0]!;
    assert.equal(first.indexOf('RUNNING'), 33);
    assert.equal(first.indexOf('pid '), 43);

    expectRun(await ctl(sock, 'status', 'web', 'api'), 0, [runningLine('api:0', pids['api:0']), runningLine('api:1', pids['api:1']), runningLine('web:0', pids['web:0']), `api sockets: ${api}`, `web sockets: ${web}`]);
    expectRun(await ctl(sock, 'status', 'web*'), 0, [runningLine('web:0', pids['web:0']), `web sockets: ${web}`]);
    expectRun(await ctl(sock, 'status', '*:1'), 0, [runningLine('api:1', pids['api:1']), `api sockets: ${api}`]);
    expectRun(await ctl(sock, 'status', 'api:1'), 0, [runningLine('api:1', pids['api:1']), `api sockets: ${api}`]);
    expectRun(await ctl(sock, 'status', 'once'), 3, [statusLine('once:0', 'EXITED', 'exit status 0')]);
    expectRun(await ctl(sock, 'status', 'web', 'once'), 3, [statusLine('once:0', 'EXITED', 'exit status 0'), runningLine('web:0', pids['web:0']), `web sockets: ${web}`]);
    // An unknown name wins over a stopped process: 4.
    expectRun(await ctl(sock, 'status', 'nope', 'web'), 4, ['nope: ERROR (no such process)', runningLine('web:0', pids['web:0']), `web sockets: ${web}`]);
    expectRun(await ctl(sock, 'status', 'nope', 'once'), 4, ['nope: ERROR (no such process)', statusLine('once:0', 'EXITED', 'exit status 0')]);
    expectRun(await ctl(sock, 'status', 'web:7'), 4, ['web:7: ERROR (no such process)']);

    // --json: the protocol's result, with the same exit code.
    const json = await ctl(sock, 'status', '--json');
    assert.equal(json.code, 3);
    const parsed = JSON.parse(json.stdout) as { processes: { name: string; service: string; index: number; state: string; pid: number; uptime: number; description: string; sockets: string[] }[]; unknown: string[]; config: { ok: boolean } };
    assert.deepEqual(parsed.processes.map((p) => [p.name, p.service, p.index, p.state, p.pid]), [
      ['api:0', 'api', 0, 'RUNNING', pids['api:0']],
      ['api:1', 'api', 1, 'RUNNING', pids['api:1']],
      ['once:0', 'once', 0, 'EXITED', 0],
      ['web:0', 'web', 0, 'RUNNING', pids['web:0']],
    ]);
    assert.deepEqual(parsed.processes.find((p) => p.name === 'web:0')!.sockets, [web]);
    assert.deepEqual(parsed.unknown, []);
    assert.equal(parsed.config.ok, true);
    const unknownJson = await ctl(sock, 'status', '--json', 'nope');
    assert.equal(unknownJson.code, 4);
    assert.deepEqual((JSON.parse(unknownJson.stdout) as { unknown: string[] }).unknown, ['nope']);

    // -c: the socket comes from the daemon config, relative to the config's directory.
    const viaConfig = await run(process.execPath, [CTL, '-c', files.config, 'status', 'web'], { cwd: '/' });
    expectRun(viaConfig, 0, [runningLine('web:0', pids['web:0']), `web sockets: ${web}`]);
    const missing = path.join(files.dir, 'missing.yaml');
    expectRun(await run(process.execPath, [CTL, '-c', missing, 'status']), 1, [], [`sockvisorctl: cannot read the daemon config ${missing}: no such file`]);
  });

  test('start, stop, restart: per-process lines, errors with exit 1, and the transitions in the daemon log', async (t) => {
    const { daemon, sock, pids } = await fleet(t);

    let mark = daemon.records.length;
    expectRun(await ctl(sock, 'stop', 'web'), 0, ['web:0: stopped']);
    await daemon.waitForState('web:0', 'STOPPED', mark);
    assert.deepEqual(stateAfter(daemon, mark).map(transition), ['web:0 RUNNING->STOPPING', 'web:0 STOPPING->STOPPED']);
    expectRun(await ctl(sock, 'stop', 'web:0'), 1, ['web:0: ERROR (not running)']);
    expectRun(await ctl(sock, 'status', 'web'), 3, [statusLine('web:0', 'STOPPED', 'Stopped'), `web sockets: ${daemon.address('web', 'args.listener')}`]);
    expectRun(await ctl(sock, 'pid', 'web'), 7, ['0']);

    mark = daemon.records.length;
    expectRun(await ctl(sock, 'start', 'web'), 0, ['web:0: started']);
    const restarted = await daemon.waitForState('web:0', 'RUNNING', mark);
    assert.notEqual(restarted['pid'], pids['web:0']);
    assert.deepEqual(stateAfter(daemon, mark).map(transition), ['web:0 STOPPED->STARTING', 'web:0 STARTING->RUNNING']);
    expectRun(await ctl(sock, 'start', 'web'), 1, ['web:0: ERROR (already started)']);
    expectRun(await ctl(sock, 'status', 'web:0'), 0, [runningLine('web:0', restarted['pid']), /^web sockets: /]);

    // One replica, then a glob that names a started and a stopped one.
    mark = daemon.records.length;
    expectRun(await ctl(sock, 'stop', 'api:1'), 0, ['api:1: stopped']);
    await daemon.waitForState('api:1', 'STOPPED', mark);
    expectRun(await ctl(sock, 'status', 'api'), 3, [runningLine('api:0', pids['api:0']), statusLine('api:1', 'STOPPED', 'Stopped'), /^api sockets: /]);
    expectRun(await ctl(sock, 'start', 'api*'), 1, ['api:0: ERROR (already started)', 'api:1: started']);
    await daemon.waitForState('api:1', 'RUNNING', mark);

    // restart: both replicas get new processes.
    const before = await statusPids(sock);
    mark = daemon.records.length;
    expectRun(await ctl(sock, 'restart', 'api'), 0, ['api:0: restarted', 'api:1: restarted']);
    for (const name of ['api:0', 'api:1']) {
      await daemon.waitForState(name, 'STOPPED', mark);
      const now = await daemon.waitForState(name, 'RUNNING', mark);
      assert.notEqual(now['pid'], before[name]);
    }
    const after = await statusPids(sock);
    assert.notEqual(after['api:0'], before['api:0']);
    assert.notEqual(after['api:1'], before['api:1']);
    assert.equal(after['web:0'], before['web:0'], 'web was not restarted');

    mark = daemon.records.length;
    expectRun(await ctl(sock, 'restart', '--hard', 'web:0'), 0, ['web:0: restarted']);
    await daemon.waitForState('web:0', 'STOPPING', mark);
    await daemon.waitForState('web:0', 'RUNNING', mark);

    // Names that match nothing, and a process that cannot be started or stopped.
    expectRun(await ctl(sock, 'start', 'nope'), 1, ['nope: ERROR (no such process)']);
    expectRun(await ctl(sock, 'stop', 'nope', 'web'), 1, ['nope: ERROR (no such process)', 'web:0: stopped']);
    expectRun(await ctl(sock, 'restart', 'nope'), 1, ['nope: ERROR (no such process)']);
    expectRun(await ctl(sock, 'stop', 'once'), 1, ['once:0: ERROR (not running)']);
    mark = daemon.records.length;
    expectRun(await ctl(sock, 'start', 'once'), 1, [/^once:0: ERROR \(exited at once \(exit status 0\)\)$/]);
    await daemon.waitForState('once:0', 'EXITED', mark);
    // No name at all is a usage error.
    const usage = await ctl(sock, 'start');
    assert.equal(usage.code, 1);
    assert.match(usage.stderr, /missing required argument 'NAME/);

    // all
    mark = daemon.records.length;
    expectRun(await ctl(sock, 'stop', 'all'), 1, ['api:0: stopped', 'api:1: stopped', 'once:0: ERROR (not running)', 'web:0: ERROR (not running)']);
    for (const name of ['api:0', 'api:1']) await daemon.waitForState(name, 'STOPPED', mark);
    expectRun(await ctl(sock, 'status'), 3, [statusLine('api:0', 'STOPPED', 'Stopped'), statusLine('api:1', 'STOPPED', 'Stopped'), statusLine('once:0', 'EXITED', 'exit status 0'), statusLine('web:0', 'STOPPED', 'Stopped'), /^api sockets: /, /^web sockets: /]);
  });

  test('signal: USR1 reaches the process (its handler writes to stdout, seen with tail); bad names and signals', async (t) => {
    const { sock, files } = await fleet(t, { ticker: true });
    const stdoutLog = path.join(files.logsDir, 'ticker.stdout.log');

    expectRun(await ctl(sock, 'signal', 'USR1', 'ticker'), 0, ['ticker:0: signalled']);
    await eventually(async () => (await ctl(sock, 'tail', '-n', '1', 'ticker')).stdout === `${tickerLine(29)}\n`, 10_000, 'the USR1 batch in tail');
    expectRun(await ctl(sock, 'tail', '-n', '2', 'ticker:0'), 0, [tickerLine(28), tickerLine(29)]);

    // Lower case and the SIG prefix are accepted too.
    expectRun(await ctl(sock, 'signal', 'usr2', 'ticker:0'), 0, ['ticker:0: signalled']);
    await eventually(async () => (await ctl(sock, 'tail', '-n', '1', 'ticker')).stdout === 'got SIGUSR2\n', 10_000, 'the USR2 line');
    expectRun(await ctl(sock, 'signal', 'SIGUSR2', 'tick*'), 0, ['ticker:0: signalled']);
    await eventually(async () => (await fs.readFile(stdoutLog, 'utf8')).endsWith('got SIGUSR2\ngot SIGUSR2\n'), 10_000, 'the second USR2 line');

    expectRun(await ctl(sock, 'signal', 'HUP', 'once'), 1, ['once:0: ERROR (not running)']);
    expectRun(await ctl(sock, 'signal', 'HUP', 'nope'), 1, ['nope: ERROR (no such process)']);
    expectRun(await ctl(sock, 'signal', 'BOGUS', 'ticker'), 1, [], ['sockvisorctl: ERROR (BOGUS is not a signal name)']);
    // The process survived all that.
    expectRun(await ctl(sock, 'status', 'ticker'), 0, [/^ticker:0 +RUNNING +pid \d+, uptime /]);
  });

  test("pid: the daemon's without a name, a process's with one; 7 when not running, 1 when unknown; --json", async (t) => {
    const { daemon, sock, pids } = await fleet(t);
    expectRun(await ctl(sock, 'pid'), 0, [String(daemon.pid)]);
    expectRun(await ctl(sock, 'pid', 'web'), 0, [String(pids['web:0'])]);
    expectRun(await ctl(sock, 'pid', 'api:1'), 0, [String(pids['api:1'])]);
    expectRun(await ctl(sock, 'pid', 'api'), 0, ['api:0'.padEnd(33) + String(pids['api:0']), 'api:1'.padEnd(33) + String(pids['api:1'])]);
    expectRun(await ctl(sock, 'pid', 'once'), 7, ['0']);
    expectRun(await ctl(sock, 'pid', 'nope'), 1, ['nope: ERROR (no such process)']);

    const daemonJson = await ctl(sock, 'pid', '--json');
    assert.equal(daemonJson.code, 0);
    assert.deepEqual(JSON.parse(daemonJson.stdout), { pid: daemon.pid });
    const apiJson = await ctl(sock, 'pid', '--json', 'api');
    assert.equal(apiJson.code, 0);
    assert.deepEqual(JSON.parse(apiJson.stdout), { pids: [{ name: 'api:0', pid: pids['api:0'] }, { name: 'api:1', pid: pids['api:1'] }], unknown: [] });
    const onceJson = await ctl(sock, 'pid', '--json', 'once');
    assert.equal(onceJson.code, 7);
    assert.deepEqual(JSON.parse(onceJson.stdout), { pids: [{ name: 'once:0', pid: 0 }], unknown: [] });
  });

  test('tail and clear: stdout and stderr logs, -n, unknown names, bad arguments; clear empties the logs', async (t) => {
    const { sock, files } = await fleet(t);
    expectRun(await ctl(sock, 'tail', 'once'), 0, ['once out']);
    expectRun(await ctl(sock, 'tail', 'once:0', 'stdout'), 0, ['once out']);
    // The runner's own note on the sandbox comes first in the stderr log.
    expectRun(await ctl(sock, 'tail', 'once', 'stderr'), 0, [/^sandbox: /, 'once err 1', 'once err 2']);
    expectRun(await ctl(sock, 'tail', '-n', '2', 'once', 'stderr'), 0, ['once err 1', 'once err 2']);
    expectRun(await ctl(sock, 'tail', '-n', '1', 'once', 'stderr'), 0, ['once err 2']);
    expectRun(await ctl(sock, 'tail', '--lines', '0', 'once', 'stderr'), 0, []);
    expectRun(await ctl(sock, 'tail', 'nope'), 1, ['nope: ERROR (no such process)']);

    const badCount = await ctl(sock, 'tail', '-n', 'x', 'once');
    assert.equal(badCount.code, 1);
    assert.match(badCount.stderr, /expected a whole number of lines/);
    const badStream = await ctl(sock, 'tail', 'once', 'stdin');
    assert.equal(badStream.code, 1);
    assert.match(badStream.stderr, /Allowed choices are stdout, stderr/);

    expectRun(await ctl(sock, 'clear', 'once'), 0, ['once: cleared']);
    expectRun(await ctl(sock, 'tail', 'once'), 0, []);
    expectRun(await ctl(sock, 'tail', 'once', 'stderr'), 0, []);
    assert.equal((await fs.stat(path.join(files.logsDir, 'once.stdout.log'))).size, 0);
    assert.equal((await fs.stat(path.join(files.logsDir, 'once.stderr.log'))).size, 0);
    expectRun(await ctl(sock, 'clear', 'nope'), 1, ['nope: ERROR (no such process)']);
    expectRun(await ctl(sock, 'clear', 'api:1', 'web'), 0, ['api: cleared', 'web: cleared']);
  });

  test('tail -f follows a log across rotation: lines from before and after arrive once each, in order; Ctrl-C ends it with exit 0', async (t) => {
    const { sock, files } = await fleet(t, { ticker: true });
    const logFiles = async () => (await fs.readdir(files.logsDir)).filter((n) => n.startsWith('ticker.stdout.log')).sort();

    const follower = CtlChild.start(t, sock, ['tail', '-f', 'ticker']);
    await follower.until((c) => c.stdout === 'ticker ready\n', 'the current end of the log');
    assert.equal(follower.stderr, '==> Press Ctrl-C to exit <==\n');

    const seenFiles: string[][] = [];
    for (let batch = 0; batch < 4; batch++) {
      expectRun(await ctl(sock, 'signal', 'USR1', 'ticker'), 0, ['ticker:0: signalled']);
      const last = tickerLine(batch * 30 + 29);
      await follower.until((c) => c.stdout.includes(`${last}\n`), `batch ${batch} through tail -f`);
      seenFiles.push(await logFiles());
    }
    // 13 + 30 * 91 bytes fit in 4 KB; the second batch rotated the log, the fourth again.
    assert.deepEqual(seenFiles[0], ['ticker.stdout.log']);
    assert.deepEqual(seenFiles[1], ['ticker.stdout.log', 'ticker.stdout.log.1']);
    assert.deepEqual(seenFiles[3], ['ticker.stdout.log', 'ticker.stdout.log.1', 'ticker.stdout.log.2']);
    for (const name of seenFiles[3]!) assert.ok((await fs.stat(path.join(files.logsDir, name))).size <= 4096, `${name} is within max_bytes`);

    assert.deepEqual(lines(follower.stdout), ['ticker ready', ...Array.from({ length: 120 }, (_, n) => tickerLine(n))]);

    follower.proc.kill('SIGINT');
    assert.deepEqual(await follower.exited, { code: 0, signal: null });
    assert.equal(follower.stderr, '==> Press Ctrl-C to exit <==\n');
  });

  test("maintail and maintail -f: the daemon's own log", async (t) => {
    const { daemon, sock } = await fleet(t);
    const all = await ctl(sock, 'maintail', '-n', '1000');
    assert.equal(all.code, 0);
    const records = lines(all.stdout).map((l) => JSON.parse(l) as LogRecord);
    assert.ok(records.some((r) => r.msg === 'sockvisord started'), 'the start line is in the daemon log file');
    assert.deepEqual(records.filter((r) => r.msg === 'service loaded').map((r) => r['service']), ['api', 'once', 'web']);
    assert.ok(records.some((r) => r.msg === 'state' && r['process'] === 'web:0' && r['to'] === 'RUNNING'));

    const ten = await ctl(sock, 'maintail');
    assert.equal(ten.code, 0);
    assert.equal(lines(ten.stdout).length, 10);
    const two = await ctl(sock, 'maintail', '-n', '2');
    assert.deepEqual(lines(two.stdout), lines(ten.stdout).slice(-2));

    const follower = CtlChild.start(t, sock, ['maintail', '-f', '-n', '1']);
    await follower.until((c) => c.stdout.endsWith('\n'), 'the last line of the daemon log');
    assert.equal(follower.stdout, `${lines(ten.stdout).at(-1)}\n`);
    const mark = daemon.records.length;
    expectRun(await ctl(sock, 'stop', 'web'), 0, ['web:0: stopped']);
    await daemon.waitForState('web:0', 'STOPPED', mark);
    await follower.until((c) => lines(c.stdout).some((l) => /"process":"web:0".*"to":"STOPPED"/.test(l)), 'the stop in maintail -f');
    const followed = lines(follower.stdout).slice(1).map((l) => JSON.parse(l) as LogRecord);
    assert.deepEqual(followed.filter((r) => r.msg === 'state').map(transition), ['web:0 RUNNING->STOPPING', 'web:0 STOPPING->STOPPED']);
    follower.proc.kill('SIGINT');
    assert.deepEqual(await follower.exited, { code: 0, signal: null });
  });

  test('avail, version', async (t) => {
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.2'), api: webService('start_seconds: 0.2, replicas: 2'), manual: SLEEPER.replace('{start_seconds: 0.2}', '{start_seconds: 0.2, autostart: false}') });
    const daemon = await DaemonProcess.start(t, files);
    await daemon.waitForState('web:0', 'RUNNING');
    const sock = files.controlSocket;
    const row = (name: string, auto: string, replicas: string) => name.padEnd(33) + 'in use'.padEnd(10) + auto.padEnd(10) + replicas;
    expectRun(await ctl(sock, 'avail'), 0, [row('api', 'auto', '2 replicas'), row('manual', 'manual', '1 replica'), row('web', 'auto', '1 replica')]);
    const json = await ctl(sock, 'avail', '--json');
    assert.equal(json.code, 0);
    assert.deepEqual(JSON.parse(json.stdout), {
      services: [
        { name: 'api', replicas: 2, autostart: true, inUse: true },
        { name: 'manual', replicas: 1, autostart: false, inUse: true },
        { name: 'web', replicas: 1, autostart: true, inUse: true },
      ],
    });
    expectRun(await ctl(sock, 'status', 'manual'), 3, [statusLine('manual:0', 'STOPPED', 'Not started')]);

    expectRun(await ctl(sock, 'version'), 0, [VERSION]);
    expectRun(await run(process.execPath, [CTL, '--version']), 0, [VERSION]);
  });

  test('reread names the changes and restarts nothing; reload applies them; a broken config changes nothing', async (t) => {
    const { daemon, sock, files } = await fleet(t);
    const before = await statusPids(sock);
    expectRun(await ctl(sock, 'reread'), 0, ['No config updates to processes']);

    const webFile = path.join(files.servicesDir, 'web.yaml');
    await fs.writeFile(webFile, (await fs.readFile(webFile, 'utf8')).replace('start_seconds: 0.2', 'start_seconds: 0.3, env: {MODE: b}'));
    await fs.writeFile(path.join(files.servicesDir, 'extra.yaml'), SLEEPER);
    await fs.rm(path.join(files.servicesDir, 'once.yaml'));

    const mark = daemon.records.length;
    const changed = 'web: new generation (supervise.env, supervise.start_seconds)';
    expectRun(await ctl(sock, 'reread'), 0, ['extra: added', changed, 'once: removed']);
    const json = await ctl(sock, 'reread', '--json');
    assert.equal(json.code, 0);
    const parsed = JSON.parse(json.stdout) as { ok: boolean; errors: string[]; changes: { service: string; action: string; fields: string[] }[] };
    assert.equal(parsed.ok, true);
    assert.deepEqual(parsed.errors, []);
    assert.deepEqual(parsed.changes.map((c) => [c.service, c.action]), [['extra', 'add'], ['web', 'swap'], ['once', 'remove']]);
    assert.equal(parsed.changes[1]!.fields.length, 2);
    // Nothing happened: same pids, no state change, extra is not there and once still is.
    assert.deepEqual(await statusPids(sock), before);
    expectRun(await ctl(sock, 'status', 'extra'), 4, ['extra: ERROR (no such process)']);
    expectRun(await ctl(sock, 'status', 'once'), 3, [statusLine('once:0', 'EXITED', 'exit status 0')]);
    assert.deepEqual(stateAfter(daemon, mark), []);

    expectRun(await ctl(sock, 'reload'), 0, ['extra: added', changed, 'once: removed']);
    const web = await daemon.waitForState('web:0', 'RUNNING', mark);
    const extra = await daemon.waitForState('extra:0', 'RUNNING', mark);
    assert.notEqual(web['pid'], before['web:0']);
    expectRun(await ctl(sock, 'status'), 0, [
      runningLine('api:0', before['api:0']),
      runningLine('api:1', before['api:1']),
      runningLine('extra:0', extra['pid']),
      runningLine('web:0', web['pid']),
      /^api sockets: /,
      /^web sockets: /,
    ]);
    expectRun(await ctl(sock, 'status', 'once'), 4, ['once: ERROR (no such process)']);
    expectRun(await ctl(sock, 'reread'), 0, ['No config updates to processes']);

    // A config with an error: reread and reload say so (exit 1) and change nothing; status notes it.
    await fs.writeFile(path.join(files.servicesDir, 'broken.yaml'), `${HEADER}supervise: {restart: maybe}\ncommand: pass\n`);
    const pidsBefore = await statusPids(sock);
    const broken = await ctl(sock, 'reread');
    assert.equal(broken.code, 1, broken.stdout);
    assert.equal(lines(broken.stdout)[0], 'ERROR (the config did not load: 1 error; nothing changed)');
    assert.match(lines(broken.stdout)[1]!, /^ {2}\S*broken\.yaml:3:\d+: error: supervise\.restart: expected one of always, on-failure, never/);
    const reloadBroken = await ctl(sock, 'reload');
    assert.equal(reloadBroken.code, 1);
    assert.equal(lines(reloadBroken.stdout)[0], 'ERROR (the config did not load: 1 error; nothing changed)');
    assert.deepEqual(await statusPids(sock), pidsBefore);
    const withNote = await ctl(sock, 'status', 'web');
    assert.equal(withNote.code, 0);
    assert.match(lines(withNote.stdout).at(-1)!, /^config: last load failed: \S*broken\.yaml:3:\d+: error: supervise\.restart/);
    await fs.rm(path.join(files.servicesDir, 'broken.yaml'));
    expectRun(await ctl(sock, 'reread'), 0, ['No config updates to processes']);
    expectRun(await ctl(sock, 'status', 'web'), 0, [runningLine('web:0', web['pid']), /^web sockets: /]);
  });

  test('shutdown: the daemon stops its processes and exits 0; then every command names the socket and exits 4', async (t) => {
    const { daemon, sock, files, pids } = await fleet(t);
    const mark = daemon.records.length;
    expectRun(await ctl(sock, 'shutdown'), 0, ['Shut down']);
    assert.deepEqual(await daemon.exited, { code: 0, signal: null });
    assert.deepEqual(stateAfter(daemon, mark).filter((r) => r['to'] === 'STOPPED').map((r) => r['process']).sort(), ['api:0', 'api:1', 'web:0']);
    assert.ok(daemon.records.slice(mark).some((r) => r.msg === 'sockvisord stopped'));
    for (const pid of Object.values(pids)) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `process ${pid} is gone`);
    await assert.rejects(fs.stat(sock), { code: 'ENOENT' });
    await assert.rejects(fs.stat(files.pidfile), { code: 'ENOENT' });

    const commands = [
      ['status'], ['status', 'web'], ['start', 'web'], ['stop', 'web'], ['restart', 'web'], ['signal', 'HUP', 'web'], ['pid'], ['pid', 'web'],
      ['tail', 'web'], ['maintail'], ['clear', 'web'], ['avail'], ['reread'], ['reload'], ['shutdown'], ['version'],
      ['status', '--json'], ['avail', '--json'], ['pid', '--json'], ['reread', '--json'],
    ];
    const results = await Promise.all(commands.map((args) => ctl(sock, ...args)));
    commands.forEach((args, i) => expectRun(results[i]!, 4, [], [unreachable(sock)], `sockvisorctl ${args.join(' ')}`));
    // -c finds the same (missing) socket.
    expectRun(await run(process.execPath, [CTL, '-c', files.config, 'status']), 4, [], [unreachable(sock)]);

    // Following commands fail the same way (the banner aside; see the todo test below).
    for (const args of [['tail', '-f', 'web'], ['maintail', '-f']]) {
      const r = await ctl(sock, ...args);
      assert.equal(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.equal(lines(r.stderr).at(-1), unreachable(sock));
    }
  });

  test('a daemon killed with SIGKILL leaves its socket: commands say the connection is refused and exit 4', async (t) => {
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.2') });
    const daemon = await DaemonProcess.start(t, files);
    await daemon.waitForState('web:0', 'RUNNING');
    daemon.proc.kill('SIGKILL');
    await daemon.exited;
    assert.ok((await fs.stat(files.controlSocket)).isSocket());
    for (const args of [['status'], ['stop', 'web'], ['pid'], ['version']]) {
      expectRun(await ctl(files.controlSocket, ...args), 4, [], [unreachable(files.controlSocket, 'connection refused (is it running?)')], args.join(' '));
    }
  });

  test('an unauthorised user is refused by the peer-credential check, even through a 0666 socket; root still gets answers', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root, to run the client as nobody');
      return;
    }
    // A client nobody can run, copied out of a checkout nobody cannot read.
    const NOBODY_CTL = await clientForNobody(t);
    const probe = await run('runuser', ['-u', 'nobody', '--', process.execPath, NOBODY_CTL, '--version']).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
    if (probe.code !== 0) {
      t.skip(`nobody cannot run ${CTL} (runuser exit ${probe.code}: ${probe.stderr.trim().split('\n')[0]})`);
      return;
    }
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.2') });
    const daemon = await DaemonProcess.start(t, files);
    const running = await daemon.waitForState('web:0', 'RUNNING');
    const sock = files.controlSocket;
    const asNobody = (...args: string[]) => run('runuser', ['-u', 'nobody', '--', process.execPath, NOBODY_CTL, '-s', sock, ...args]);
    // The temp dir is 0700: let nobody reach the socket file; the socket itself is 0600 still.
    await fs.chmod(files.dir, 0o711);
    assert.equal((await fs.stat(sock)).mode & 0o777, 0o600);
    expectRun(await asNobody('status'), 4, [], [unreachable(sock, 'permission denied (try as root or as a member of control.group)')], 'the file mode refuses');

    // With the file wide open, only the daemon's own check is left.
    await fs.chmod(sock, 0o666);
    const mark = daemon.records.length;
    for (const args of [['status'], ['stop', 'web'], ['shutdown']]) {
      expectRun(await asNobody(...args), 4, [], [/^sockvisorctl: cannot reach sockvisord at .*ctl\.sock: permission denied \(uid 65534 may not control this sockvisord\)$/], `nobody: ${args.join(' ')}`);
    }
    const refused = daemon.records.slice(mark).filter((r) => r.msg === 'control connection refused');
    assert.equal(refused.length, 3);
    assert.equal((refused[0]!['peer'] as { uid: number }).uid, 65534);
    // Nothing was done for nobody, and root is still served.
    expectRun(await ctl(sock, 'status', 'web'), 0, [runningLine('web:0', running['pid']), /^web sockets: /]);
    assert.deepEqual(stateAfter(daemon, mark), []);
  });
});

/**
 * What the brief asks for but this checkout does not do yet. `todo` tests run and report, but do
 * not fail the suite; each names the command, what was expected and what happens.
 */
describe('sockvisorctl: edge cases', () => {
  test('with the daemon gone, tail -f and maintail -f print one line too (not the Ctrl-C banner first)', async (t) => {
    const files = await daemonFiles(t, {});
    for (const args of [['tail', '-f', 'web'], ['maintail', '-f']]) {
      expectRun(await ctl(files.controlSocket, ...args), 4, [], [unreachable(files.controlSocket)], args.join(' '));
    }
  });

  test('shutdown with a tail -f connected: the daemon still exits, and the follower ends', async (t) => {
    const { daemon, sock } = await fleet(t);
    const follower = CtlChild.start(t, sock, ['tail', '-f', 'web']);
    await follower.until((c) => c.stderr.includes('Ctrl-C'), 'the follower to connect');
    expectRun(await ctl(sock, 'shutdown'), 0, ['Shut down']);
    const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 10_000).unref());
    assert.deepEqual(await Promise.race([daemon.exited, deadline]), { code: 0, signal: null }, 'the daemon exits within 10 s');
    assert.deepEqual(await Promise.race([follower.exited, deadline]), { code: 0, signal: null }, 'the follower ends');
  });

  test('after a refused connection, shutdown still finishes: "sockvisord stopped" is logged and the pidfile removed', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root, to run the client as nobody');
      return;
    }
    const NOBODY_CTL = await clientForNobody(t);
    const probe = await run('runuser', ['-u', 'nobody', '--', process.execPath, NOBODY_CTL, '--version']).catch(() => undefined);
    if (probe?.code !== 0) {
      t.skip(`nobody cannot run ${CTL}`);
      return;
    }
    const { daemon, sock, files } = await fleet(t);
    await fs.chmod(files.dir, 0o711);
    await fs.chmod(sock, 0o666);
    const refused = await run('runuser', ['-u', 'nobody', '--', process.execPath, NOBODY_CTL, '-s', sock, 'status']);
    assert.equal(refused.code, 4);
    expectRun(await ctl(sock, 'shutdown'), 0, ['Shut down']);
    assert.deepEqual(await daemon.exited, { code: 0, signal: null });
    assert.ok(daemon.records.some((r) => r.msg === 'sockvisord stopped'), 'the daemon logged "sockvisord stopped"');
    await assert.rejects(fs.stat(files.pidfile), { code: 'ENOENT' });
  });

  test('tail of a process index that does not exist is an unknown name', async (t) => {
    const files = await daemonFiles(t, { once: ONCE });
    const daemon = await DaemonProcess.start(t, files);
    await daemon.waitForState('once:0', 'EXITED');
    expectRun(await ctl(files.controlSocket, 'tail', 'once:7'), 1, ['once:7: ERROR (no such process)']);
  });

  test('reread names changed fields by their config keys (supervise.start_seconds, not supervise.startMs)', async (t) => {
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.2') });
    const daemon = await DaemonProcess.start(t, files);
    await daemon.waitForState('web:0', 'RUNNING');
    const webFile = path.join(files.servicesDir, 'web.yaml');
    await fs.writeFile(webFile, (await fs.readFile(webFile, 'utf8')).replace('start_seconds: 0.2', 'start_seconds: 0.3'));
    expectRun(await ctl(files.controlSocket, 'reread'), 0, ['web: updated in place (supervise.start_seconds)']);
  });
});
