/**
 * A fleet of idle services: N small Python services (default 200, `import time; time.sleep(1e9)`)
 * under sockvisord, each with its own held socket, beside the same N programs under Debian's
 * supervisord (`supervisor` package; installed with apt-get when missing), on the same real
 * interpreter. Both with their default start check (sockvisord start_seconds 1, supervisord
 * startsecs=1).
 *
 * Measured, for each daemon:
 * - start: from spawning the daemon until it has reported every service RUNNING (one daemon after
 *   the other, never both starting at once), `--starts` times each (default 3, alternating which
 *   goes first; every start but the last is stopped again), median with min and max;
 * - RSS: the daemon's own VmRSS once all are RUNNING (not its children's), at each start, median
 *   with min and max; and again after the idle window;
 * - idle CPU: utime + stime of the daemon (all its threads, /proc/PID/stat) over a window of
 *   `--cpu-seconds` (default 60) with all services idle, and its wake-ups as the voluntary and
 *   nonvoluntary context switches summed over its threads (/proc/PID/task/TID/status) in the
 *   same window. Both daemons run side by side during the window, which they share.
 *
 *   npm run build && node dist/bench/fleet.js [-- --services N] [--starts R] [--cpu-seconds S] [--python PATH] [--json FILE]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureSupervisor, exitOf, exitOnInterrupt, killByMarker, LineLog, positiveIntFlag, printNotes, procKb, realInterpreter, sockvisordConfig, stats, stopChild, supervisordConfig, tryKill, writeJson, sockvisordLog } from './common.js';

const DAEMON = fileURLToPath(new URL('../src/cli/sockvisord.js', import.meta.url));
const HOST = '127.0.0.1';
/** For all services to be RUNNING. */
const START_DEADLINE_MS = 180_000;
/** A daemon with N services stops them all, each within its stop timeout. */
const STOP_GRACE_MS = 60_000;
const svcName = (i: number) => `svc${String(i).padStart(3, '0')}`;

const liveDaemons = new Set<ChildProcess>();
/** Command-line markers of service processes, so every way out finds them. */
const markers = new Set<string>();

function killEverything(): void {
  for (const child of liveDaemons) tryKill(child.pid!);
  killByMarker([...markers]);
}

/** Clock ticks per second for /proc/PID/stat; 100 on every Linux this runs on. */
const CLK_TCK = 100;

interface ProcSample {
  /** utime + stime, seconds. */
  readonly cpu: number;
  readonly voluntary: number;
  readonly nonvoluntary: number;
  readonly at: number;
}

function procSample(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
  const cpu = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  let voluntary = 0;
  let nonvoluntary = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let status: string;
    try {
      status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    } catch {
      continue; // a thread that just ended
    }
    voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    nonvoluntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  }
  return { cpu, voluntary, nonvoluntary, at: performance.now() };
}

interface Started {
  readonly name: string;
  readonly child: ChildProcess;
  readonly startSeconds: number;
  readonly rssKb: number;
  readonly notes: string[];
}

async function startSockvisord(root: string, python: string, services: number): Promise<Started> {
  const dir = path.join(root, 'sockvisord');
  const servicesDir = path.join(dir, 'sockvisor.d');
  await fs.mkdir(servicesDir, { recursive: true });
  const config = path.join(dir, 'sockvisor.yaml');
  await fs.writeFile(config, sockvisordConfig(dir, python));
  for (let i = 0; i < services; i++) {
    await fs.writeFile(path.join(servicesDir, `${svcName(i)}.yaml`), [
      '%TAG ! tag:nuxi.nl,2015:cloudabi/',
      '---',
      'args:',
      `  listener: !socket {bind: ${HOST}:0}`,
      'command: |',
      '  import time',
      '  time.sleep(1e9)',
      '',
    ].join('\n'));
  }
  const started = performance.now();
  const child = spawn(process.execPath, [DAEMON, 'run', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  liveDaemons.add(child);
  markers.add(`--daemon-pid ${child.pid} `);
  const { log, stderr } = sockvisordLog(child);
  const running = new Set<string>();
  try {
    await log.waitFor(0, (e) => {
      if (e['msg'] === 'state' && e['to'] === 'RUNNING') running.add(String(e['process']));
      else if (e['msg'] === 'state' && e['from'] === 'RUNNING') running.delete(String(e['process']));
      return running.size === services;
    }, `sockvisord: all ${services} services RUNNING`, exitOf(child), START_DEADLINE_MS);
  } catch (e) {
    throw new Error(`${(e as Error).message} (${running.size} were)\nsockvisord stdout (last lines):\n${log.last(10)}\nstderr:\n${stderr.join('\n') || '(empty)'}`);
  }
  const startSeconds = (performance.now() - started) / 1000;
  const notes = log.entries.filter((e) => Number(e['level'] ?? 0) >= 40).slice(0, 5).map((e) => `sockvisord: ${JSON.stringify(e)}`);
  return { name: 'sockvisord', child, startSeconds, rssKb: procKb(`/proc/${child.pid}/status`, 'VmRSS'), notes };
}

async function startSupervisord(root: string, python: string, supervisord: string, services: number): Promise<Started> {
  const dir = path.join(root, 'supervisord');
  await fs.mkdir(path.join(dir, 'logs'), { recursive: true });
  const config = path.join(dir, 'supervisord.conf');
  // The trailing argument (ignored by the program) marks the processes as this bench's.
  const marker = `fleet-${path.basename(root)}`;
  markers.add(marker);
  const programs: string[] = [];
  for (let i = 0; i < services; i++) {
    programs.push(`[program:${svcName(i)}]`, `command=${python} -c "import time; time.sleep(1e9)" ${marker}`, 'autostart=true', 'autorestart=true', 'startsecs=1', 'stopsignal=TERM', 'stopwaitsecs=5', '');
  }
  await fs.writeFile(config, supervisordConfig(dir, path.join(dir, 'supervisor.sock'), programs));
  const started = performance.now();
  const child = spawn(supervisord, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  liveDaemons.add(child);
  const running = new Set<string>();
  const log = new LineLog<string>([child.stdout!, child.stderr!], (line) => line);
  try {
    await log.waitFor(0, (line) => {
      const m = /success: (svc\d+) entered RUNNING state/.exec(line);
      if (m) running.add(m[1]!);
      return running.size === services;
    }, `supervisord: all ${services} programs RUNNING`, exitOf(child), START_DEADLINE_MS);
  } catch (e) {
    throw new Error(`${(e as Error).message} (${running.size} were)\nsupervisord output (last lines):\n${log.last(10)}`);
  }
  const startSeconds = (performance.now() - started) / 1000;
  const notes = log.entries.filter((l) => / (CRIT|ERRO) /.test(l) && !/without any HTTP authentication/.test(l)).slice(0, 5).map((l) => `supervisord: ${l}`);
  return { name: 'supervisord', child, startSeconds, rssKb: procKb(`/proc/${child.pid}/status`, 'VmRSS'), notes };
}

const { values } = parseArgs({ options: { services: { type: 'string' }, starts: { type: 'string' }, 'cpu-seconds': { type: 'string' }, python: { type: 'string' }, json: { type: 'string' } } });
const services = positiveIntFlag(values.services, 'services', 200);
const starts = positiveIntFlag(values.starts, 'starts', 3);
const cpuSeconds = positiveIntFlag(values['cpu-seconds'], 'cpu-seconds', 60);
const pythonPath = values.python ?? '/usr/bin/python3';

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sockvisor-fleet-'));
exitOnInterrupt(`stopping the daemons and their services, removing ${root}`, () => {
  killEverything();
  rmSync(root, { recursive: true, force: true });
});
const notes: string[] = [];
try {
  const python = realInterpreter(pythonPath);
  const supervisor = ensureSupervisor();
  // One start after the other, each in a directory of its own; the last pair then idles side by
  // side through the same CPU window.
  const startSeconds = { sockvisord: [] as number[], supervisord: [] as number[] };
  const rssKbAtStart = { sockvisord: [] as number[], supervisord: [] as number[] };
  const startBoth = async (run: number): Promise<readonly [Started, Started]> => {
    const dir = path.join(root, `run${run}`);
    const startOurs = () => startSockvisord(dir, pythonPath, services);
    const startTheirs = () => startSupervisord(dir, pythonPath, supervisor.supervisord, services);
    let ours: Started;
    let theirs: Started;
    if (run % 2 === 0) {
      ours = await startOurs();
      theirs = await startTheirs();
    } else {
      theirs = await startTheirs();
      ours = await startOurs();
    }
    startSeconds.sockvisord.push(ours.startSeconds);
    startSeconds.supervisord.push(theirs.startSeconds);
    rssKbAtStart.sockvisord.push(ours.rssKb);
    rssKbAtStart.supervisord.push(theirs.rssKb);
    notes.push(...ours.notes, ...theirs.notes);
    return [ours, theirs];
  };
  for (let run = 0; run < starts - 1; run++) {
    for (const started of await startBoth(run)) {
      const problem = await stopChild(started.child, started.name, STOP_GRACE_MS);
      liveDaemons.delete(started.child);
      if (problem !== undefined) notes.push(`${started.name} stop after start ${run + 1}: ${problem}`);
    }
  }
  const [ours, theirs] = await startBoth(starts - 1);
  // A moment for the last start-up work (log flushes, timers) to pass before the window opens.
  await new Promise((r) => setTimeout(r, 2000));
  const before = [procSample(ours.child.pid!), procSample(theirs.child.pid!)] as const;
  await new Promise((r) => setTimeout(r, cpuSeconds * 1000));
  const after = [procSample(ours.child.pid!), procSample(theirs.child.pid!)] as const;
  const idle = [0, 1].map((i) => {
    const seconds = (after[i]!.at - before[i]!.at) / 1000;
    return {
      windowSeconds: seconds,
      cpuSeconds: after[i]!.cpu - before[i]!.cpu,
      cpuPercent: (100 * (after[i]!.cpu - before[i]!.cpu)) / seconds,
      voluntary: after[i]!.voluntary - before[i]!.voluntary,
      nonvoluntary: after[i]!.nonvoluntary - before[i]!.nonvoluntary,
      wakeupsPerSecond: (after[i]!.voluntary - before[i]!.voluntary + after[i]!.nonvoluntary - before[i]!.nonvoluntary) / seconds,
    };
  });
  const rssAfter = [procKb(`/proc/${ours.child.pid}/status`, 'VmRSS'), procKb(`/proc/${theirs.child.pid}/status`, 'VmRSS')];

  for (const [child, name] of [[ours.child, 'sockvisord'], [theirs.child, 'supervisord']] as const) {
    const problem = await stopChild(child, name, STOP_GRACE_MS);
    liveDaemons.delete(child);
    if (problem !== undefined) notes.push(`${name} stop: ${problem}`);
  }

  const cpus = os.cpus();
  const flags = [
    ...(values.services === undefined ? [] : ['--services', String(services)]),
    ...(values.starts === undefined ? [] : ['--starts', String(starts)]),
    ...(values['cpu-seconds'] === undefined ? [] : ['--cpu-seconds', String(cpuSeconds)]),
    ...(values.python === undefined ? [] : ['--python', values.python]),
  ];
  console.log(`machine: ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GB, Node ${process.version}, Python ${python.version}, ${os.type()} ${os.release()}`);
  console.log(`command: node dist/bench/fleet.js${flags.length === 0 ? '' : ` ${flags.join(' ')}`}`);
  console.log(`sockvisord:  ${services} service files "import time; time.sleep(1e9)", each with its own !socket {bind: ${HOST}:0}; defaults (start_seconds 1, sandbox strict)`);
  console.log(`supervisord: ${supervisor.version} (${supervisor.supervisord}), ${services} [program:svcNNN] ${pythonPath} -c "import time; time.sleep(1e9)", startsecs=1`);
  console.log(`interpreter: ${pythonPath} (${python.executable}), both`);
  console.log(`idle window: ${cpuSeconds} s, both daemons running side by side; CPU = utime+stime of the daemon process (all threads), wake-ups = context switches summed over its threads`);
  console.log('');
  const row = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(14) : c.padStart(14))).join('');
  console.log(`start: ${starts} starts each, alternating which daemon goes first; median (min to max). RSS: at each start, median; RSS after and the idle window: the last start`);
  console.log('');
  console.log(row(['', 'start s', 'start min-max', 'RSS MB', 'RSS after MB', 'CPU s', 'CPU %', 'vol. cs', 'invol. cs', 'wake-ups/s']));
  const sides = [ours, theirs];
  const startStats = [stats(startSeconds.sockvisord), stats(startSeconds.supervisord)] as const;
  const rssStats = [stats(rssKbAtStart.sockvisord), stats(rssKbAtStart.supervisord)] as const;
  sides.forEach((side, i) => {
    const w = idle[i]!;
    const st = startStats[i]!;
    console.log(row([side.name, st.median.toFixed(2), `${st.min.toFixed(2)}-${st.max.toFixed(2)}`, (rssStats[i]!.median / 1024).toFixed(1), (rssAfter[i]! / 1024).toFixed(1), w.cpuSeconds.toFixed(2), w.cpuPercent.toFixed(2), String(w.voluntary), String(w.nonvoluntary), w.wakeupsPerSecond.toFixed(1)]));
  });
  printNotes(notes);
  writeJson(values.json, {
    services, starts, cpuSeconds, python: python.version, supervisord: supervisor.version,
    sockvisord: { start: startStats[0], startSeconds: startSeconds.sockvisord, rss: rssStats[0], rssKb: rssKbAtStart.sockvisord, rssAfterKb: rssAfter[0], idle: idle[0] },
    supervisordSide: { start: startStats[1], startSeconds: startSeconds.supervisord, rss: rssStats[1], rssKb: rssKbAtStart.supervisord, rssAfterKb: rssAfter[1], idle: idle[1] },
    notes,
  });
} catch (e) {
  console.error(e instanceof Error ? `FAIL: ${e.message}` : e);
  process.exitCode = 1;
} finally {
  for (const child of [...liveDaemons]) await stopChild(child, 'daemon', STOP_GRACE_MS);
  killEverything();
  await fs.rm(root, { recursive: true, force: true });
}
