/**
 * Log capture throughput: a service that writes a file of numbered lines (default 200 MB) to its
 * stdout as fast as it can and exits, `[/bin/cat, FILE]`, until the supervisor's log file for
 * that stream holds every byte; beside `cat FILE > OUT` for the same bytes, and beside Debian's
 * supervisord (`supervisor` package; installed with apt-get when missing) capturing the same
 * program's stdout to its log (stdout_logfile_maxbytes=0: no rotation).
 *
 * - sockvisord: a program service (`supervise: {program: [/bin/cat, FILE], autostart: false,
 *   restart: never, start_seconds: 0, logs: {max_bytes: 0}}`, strict sandbox, the data directory
 *   granted by `path:`), started with `sockvisorctl start`; timed from the daemon's STARTING
 *   state line (its `time`, ms) until the log file's size reaches the expected count.
 * - supervisord: `[program:cat] command=/bin/cat FILE`, autostart=false, startsecs=0, started with
 *   `supervisorctl start cat`; timed from its "spawned: 'cat'" log line (ms) until the log file's
 *   size reaches the expected count.
 * - baseline: `/bin/cat FILE` with its stdout opened on OUT (truncated), as the shell's `>` does;
 *   spawn to exit.
 *
 * The log files grow by the data's size each run (no rotation); the last run's bytes are checked
 * against the data. Runs rotate the order of the three sides.
 *
 *   npm run build && node dist/bench/log-capture.js [-- --mb N] [--runs R] [--json FILE]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureSupervisor, exitOf, exitOnInterrupt, LineLog, positiveIntFlag, printNotes, stats, stopChild, supervisordConfig, tryKill, withTimeout, writeJson, sockvisordLog } from './common.js';

const DAEMON = fileURLToPath(new URL('../src/cli/sockvisord.js', import.meta.url));
const CTL = fileURLToPath(new URL('../src/cli/sockvisorctl.js', import.meta.url));
const CAT = '/bin/cat';
const DEADLINE_MS = 120_000;
const POLL_MS = 2;

const liveChildren = new Set<ChildProcess>();

function spawnTracked(file: string, args: readonly string[], stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe']): ChildProcess {
  const child = spawn(file, args, { stdio });
  liveChildren.add(child);
  void exitOf(child).then(() => liveChildren.delete(child));
  return child;
}

function killEverything(): void {
  // The cat processes run in their supervisor's process groups; a supervisor killed hard leaves
  // a cat that ends at its file's end on its own, or on a closed pipe.
  for (const child of liveChildren) tryKill(child.pid!);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function writeData(file: string, bytes: number): Promise<number> {
  const handle = await fs.open(file, 'w');
  let written = 0;
  let n = 0;
  try {
    while (written < bytes) {
      const lines: string[] = [];
      for (let i = 0; i < 16384; i++) lines.push(`${String(n++).padStart(10, '0')} the quick brown fox jumps over the lazy dog 0123456789\n`);
      const chunk = Buffer.from(lines.join(''));
      await handle.write(chunk);
      written += chunk.length;
    }
  } finally {
    await handle.close();
  }
  return written;
}

/** Until `file` is at least `size` bytes; returns Date.now() then. */
async function untilSize(file: string, size: number, what: string): Promise<number> {
  const deadline = performance.now() + DEADLINE_MS;
  for (;;) {
    let now: number;
    try {
      const st = statSync(file);
      now = Date.now();
      if (st.size >= size) {
        if (st.size > size) throw new Error(`${what}: ${file} holds ${st.size} bytes, expected ${size}`);
        return now;
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (performance.now() > deadline) throw new Error(`${what}: ${file} did not reach ${size} bytes within ${DEADLINE_MS} ms`);
    await sleep(POLL_MS);
  }
}

/** The last `length` bytes of `file` equal `data`'s bytes. */
async function tailEquals(file: string, data: string, length: number): Promise<boolean> {
  const a = openSync(file, 'r');
  const b = openSync(data, 'r');
  try {
    const offset = statSync(file).size - length;
    const chunk = 8 * 2 ** 20;
    const x = Buffer.alloc(chunk);
    const y = Buffer.alloc(chunk);
    for (let done = 0; done < length; done += chunk) {
      const n = Math.min(chunk, length - done);
      readSync(a, x, 0, n, offset + done);
      readSync(b, y, 0, n, done);
      if (!x.subarray(0, n).equals(y.subarray(0, n))) return false;
    }
    return true;
  } finally {
    closeSync(a);
    closeSync(b);
  }
}

function run(file: string, args: readonly string[], what: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return withTimeout(new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const child = spawnTracked(file, args);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', (e) => reject(new Error(`${what}: ${e.message}`)));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  }), DEADLINE_MS, what);
}

/** supervisord's log time, `2026-11-29 01:28:06,270`, in this process's (and its) local time. */
function supervisordTime(line: string): number | undefined {
  const m = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d),(\d{3}) /.exec(line);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s, ms] = m.slice(1).map(Number) as [number, number, number, number, number, number, number];
  return new Date(y, mo - 1, d, h, mi, s, ms).getTime();
}

const { values } = parseArgs({ options: { mb: { type: 'string' }, runs: { type: 'string' }, json: { type: 'string' } } });
const mb = positiveIntFlag(values.mb, 'mb', 200);
const runs = positiveIntFlag(values.runs, 'runs', 5);

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sockvisor-logs-'));
exitOnInterrupt(`stopping the daemons, removing ${root}`, () => {
  killEverything();
  rmSync(root, { recursive: true, force: true });
});
const notes: string[] = [];
try {
  const supervisor = ensureSupervisor();
  const dataDir = path.join(root, 'data');
  await fs.mkdir(dataDir);
  const data = path.join(dataDir, 'lines.txt');
  const bytes = await writeData(data, mb * 2 ** 20);

  // sockvisord
  const sdir = path.join(root, 'sockvisord');
  await fs.mkdir(path.join(sdir, 'sockvisor.d'), { recursive: true });
  const sconfig = path.join(sdir, 'sockvisor.yaml');
  const ssocket = path.join(sdir, 'sockvisor.sock');
  await fs.writeFile(sconfig, ['services: sockvisor.d', 'python: /usr/bin/python3', `control: {socket: ${ssocket}}`, `pidfile: ${path.join(sdir, 'sockvisord.pid')}`, `logs: {dir: ${path.join(sdir, 'logs')}}`, 'log_level: info', 'watch: false', ''].join('\n'));
  await fs.writeFile(path.join(sdir, 'sockvisor.d', 'cat.yaml'), [
    '%TAG ! tag:nuxi.nl,2015:cloudabi/',
    '---',
    'supervise:',
    `  program: [${CAT}, ${data}]`,
    '  autostart: false',
    '  restart: never',
    '  start_seconds: 0',
    '  logs: {max_bytes: 0}',
    'path:',
    `  - !file {path: ${dataDir}}`,
    '',
  ].join('\n'));
  const slogFile = path.join(sdir, 'logs', 'cat.stdout.log');
  const sd = spawnTracked(process.execPath, [DAEMON, 'run', '-c', sconfig]);
  const sdExited = exitOf(sd);
  const { log: slog, stderr: sdErr } = sockvisordLog(sd);
  await slog.waitFor(0, (e) => e['msg'] === 'service loaded' && e['service'] === 'cat', 'sockvisord: "service loaded" for cat', sdExited, 30_000).catch((e: Error) => {
    throw new Error(`${e.message}\nsockvisord stdout:\n${slog.last(10)}\nstderr:\n${sdErr.join('\n')}`);
  });

  // supervisord
  const vdir = path.join(root, 'supervisord');
  await fs.mkdir(path.join(vdir, 'logs'), { recursive: true });
  const vconfig = path.join(vdir, 'supervisord.conf');
  const vlogFile = path.join(vdir, 'logs', 'cat.stdout.log');
  await fs.writeFile(vconfig, supervisordConfig(vdir, path.join(vdir, 'supervisor.sock'), [
    '[program:cat]',
    `command=${CAT} ${data}`,
    'autostart=false',
    'autorestart=false',
    'startsecs=0',
    `stdout_logfile=${vlogFile}`,
    'stdout_logfile_maxbytes=0',
    'stdout_logfile_backups=0',
    `stderr_logfile=${path.join(vdir, 'logs', 'cat.stderr.log')}`,
    '',
  ]));
  const vd = spawnTracked(supervisor.supervisord, ['-c', vconfig]);
  const vdExited = exitOf(vd);
  const vlog = new LineLog<string>([vd.stdout!, vd.stderr!], (line) => line);
  await vlog.waitFor(0, (l) => /RPC interface 'supervisor' initialized/.test(l), 'supervisord: RPC interface initialized', vdExited, 30_000).catch((e: Error) => {
    throw new Error(`${e.message}\nsupervisord output:\n${vlog.last(10)}`);
  });
  await sleep(500);

  const outFile = path.join(root, 'out.txt');
  let sRuns = 0;
  let vRuns = 0;
  const sides = [
    {
      name: 'sockvisord',
      samples: [] as number[],
      run: async () => {
        const mark = slog.entries.length;
        const r = await run(process.execPath, [CTL, '-s', ssocket, 'start', 'cat'], 'sockvisorctl start cat');
        if (r.code !== 0) notes.push(`sockvisorctl start cat: exit ${r.code}: ${(r.stdout + r.stderr).trim()}`);
        const starting = await slog.waitFor(mark, (e) => e['msg'] === 'state' && e['service'] === 'cat' && e['to'] === 'STARTING', 'sockvisord: cat STARTING', sdExited, DEADLINE_MS);
        sRuns++;
        const end = await untilSize(slogFile, sRuns * bytes, 'sockvisord');
        // The exit is logged once the pipe is drained; wait for it so the next start finds it stopped.
        await slog.waitFor(starting.index + 1, (e) => e['msg'] === 'state' && e['service'] === 'cat' && (e['to'] === 'EXITED' || e['to'] === 'STOPPED' || e['to'] === 'FATAL' || e['to'] === 'BACKOFF'), 'sockvisord: cat exited', sdExited, DEADLINE_MS);
        return end - Number(starting.entry['time']);
      },
    },
    {
      name: 'supervisord',
      samples: [] as number[],
      run: async () => {
        const mark = vlog.entries.length;
        const r = await run(supervisor.supervisorctl, ['-c', vconfig, 'start', 'cat'], 'supervisorctl start cat');
        if (r.code !== 0) notes.push(`supervisorctl start cat: exit ${r.code}: ${(r.stdout + r.stderr).trim()}`);
        const spawned = await vlog.waitFor(mark, (l) => /spawned: 'cat' with pid/.test(l), "supervisord: spawned: 'cat'", vdExited, DEADLINE_MS);
        vRuns++;
        const end = await untilSize(vlogFile, vRuns * bytes, 'supervisord');
        await vlog.waitFor(spawned.index + 1, (l) => /exited: cat /.test(l), 'supervisord: exited: cat', vdExited, DEADLINE_MS);
        return end - supervisordTime(spawned.entry)!;
      },
    },
    {
      name: 'cat FILE > OUT',
      samples: [] as number[],
      run: async () => {
        const fd = openSync(outFile, 'w');
        const start = performance.now();
        try {
          const child = spawnTracked(CAT, [data], ['ignore', fd, 'inherit' as never]);
          await withTimeout(exitOf(child), DEADLINE_MS, 'cat FILE > OUT');
          if (child.exitCode !== 0) throw new Error(`cat exited ${child.exitCode ?? child.signalCode}`);
        } finally {
          closeSync(fd);
        }
        const ms = performance.now() - start;
        if (statSync(outFile).size !== bytes) throw new Error(`cat FILE > OUT: ${statSync(outFile).size} bytes, expected ${bytes}`);
        return ms;
      },
    },
  ];
  // A warm-up round: the page cache, the daemons' first-start work.
  for (const side of sides) await side.run();
  for (let r = 0; r < runs; r++) {
    for (let i = 0; i < sides.length; i++) {
      const side = sides[(r + i) % sides.length]!;
      side.samples.push(await side.run());
    }
  }
  if (!(await tailEquals(slogFile, data, bytes))) throw new Error(`sockvisord: the last run's log bytes differ from the data`);
  if (!(await tailEquals(vlogFile, data, bytes))) throw new Error(`supervisord: the last run's log bytes differ from the data`);

  for (const [child, name] of [[sd, 'sockvisord'], [vd, 'supervisord']] as const) {
    const problem = await stopChild(child, name, 30_000);
    if (problem !== undefined) notes.push(`${name} stop: ${problem}`);
  }

  const cpus = os.cpus();
  const flags = [...(values.mb === undefined ? [] : ['--mb', String(mb)]), ...(values.runs === undefined ? [] : ['--runs', String(runs)])];
  console.log(`machine: ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}, ${os.type()} ${os.release()}`);
  console.log(`command: node dist/bench/log-capture.js${flags.length === 0 ? '' : ` ${flags.join(' ')}`}  (${runs} runs after 1 warm-up, order rotated)`);
  console.log(`data: ${bytes} bytes of numbered lines (${(bytes / 2 ** 20).toFixed(0)} MiB, 67-byte lines) in ${os.tmpdir()}; logs and OUT on the same file system`);
  console.log(`sockvisord:  program service [${CAT}, FILE], strict sandbox, logs max_bytes 0; from its STARTING line until the log file holds every byte`);
  console.log(`supervisord: ${supervisor.version}, [program:cat] ${CAT} FILE, stdout_logfile_maxbytes=0; from its "spawned" line until the log file holds every byte`);
  console.log(`baseline:    ${CAT} FILE > OUT, spawn to exit`);
  console.log('');
  const row = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(18) : c.padStart(12))).join('');
  console.log(row(['', 'ms median', 'ms min', 'ms max', 'MB/s', 'vs cat']));
  const base = stats(sides[2]!.samples).median;
  const result: Record<string, ReturnType<typeof stats> & { mbPerSecond: number }> = {};
  for (const side of sides) {
    const s = stats(side.samples);
    const mbps = bytes / 2 ** 20 / (s.median / 1000);
    result[side.name] = { ...s, mbPerSecond: mbps };
    console.log(row([side.name, s.median.toFixed(0), s.min.toFixed(0), s.max.toFixed(0), mbps.toFixed(0), `${(s.median / base).toFixed(2)}x`]));
  }
  console.log('');
  console.log('checked: each log file grew by exactly the data size every run, and its last run\'s bytes equal the data');
  printNotes(notes);
  writeJson(values.json, { bytes, runs, supervisord: supervisor.version, sockvisord: result['sockvisord'], supervisordSide: result['supervisord'], cat: result['cat FILE > OUT'], notes });
} catch (e) {
  console.error(e instanceof Error ? `FAIL: ${e.message}` : e);
  process.exitCode = 1;
} finally {
  for (const child of [...liveChildren]) await stopChild(child, 'child', 10_000);
  killEverything();
  await fs.rm(root, { recursive: true, force: true });
}
