/**
 * Restarts and reloads, in two parts.
 *
 * Part 1, failed requests across restarts under load: 8 HTTP/1.0 clients GET / in a loop (a new
 * connection per request) while the server is restarted 11 times, one restart after the other.
 * sockvisord runs the demo web.yaml (Example 2) on a held socket, restarted with `sockvisorctl
 * restart web` (a generation swap: the new process starts, then the old one stops gracefully);
 * Debian's supervisord (`supervisor` package; installed with apt-get when missing) runs the same
 * server as a plain program binding its own port (bench/recovery/server.py), restarted with
 * `supervisorctl restart web`. A request fails on a connection error, a timeout, or a response
 * that is not the complete 200 with the demo's body. Target: no failed request on sockvisord.
 *
 * Part 2, reload at scale: sockvisord with N tiny Python services (default 1000), each with its
 * own held socket; one service file's argdata is changed and `sockvisorctl reload` applied, R
 * times. The daemon's own timing (load, plan, apply) comes from its "reload done" log line; the
 * client's wall time is measured here; every other process must keep its pid. Target: plan +
 * apply at most 100 ms (median).
 *
 *   npm run build && npm run bench:reload [-- --services N] [-- --reloads R] [-- --restarts K]
 *                                         [-- --sandbox strict|best-effort|off] [-- --python PATH]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureSupervisor, exitOf, exitOnInterrupt, freePort, killByMarker, LineLog, positiveIntFlag, printNotes, realInterpreter, sockvisordConfig, stats, stopChild, supervisordConfig, tryKill, withTimeout, writeJson, sockvisordLog } from './common.js';

const DAEMON = fileURLToPath(new URL('../src/cli/sockvisord.js', import.meta.url));
const CTL = fileURLToPath(new URL('../src/cli/sockvisorctl.js', import.meta.url));
const DEMO_WEB = fileURLToPath(new URL('../../etc/demo/sockvisor.d/web.yaml', import.meta.url));
const SERVER_PY = fileURLToPath(new URL('../../bench/recovery/server.py', import.meta.url));
const HOST = '127.0.0.1';
const REQUEST = `GET / HTTP/1.0\r\nHost: ${HOST}\r\n\r\n`;
const EXPECTED_BODY = '<marquee>It works!</marquee>';
const CLIENTS = 8;
/** A request that waits in a backlog while a server restarts is waiting, not failing, this long. */
const REQUEST_TIMEOUT_MS = 5000;
/**
 * Pause after a failed request, as in bench:recovery: without it a refused port is retried in
 * microseconds, and the failure count measures the client's loop speed, not the server's gap.
 */
const RETRY_GAP_MS = 2;
/** Load before the first restart and after the last, so both ends of the run are steady state. */
const LOAD_MARGIN_MS = 1000;
/** For a service to answer, a daemon to start one service, a restart or a reload to return. */
const DEADLINE_MS = 30_000;
/** Part 2: for all N services to be RUNNING ("keep the start under about 3 minutes"). */
const START_DEADLINE_MS = 180_000;
/** Part 2: a daemon with N services stops them all, each within its stop_timeout. */
const STOP_GRACE_MS = 60_000;
const TARGET_PLAN_APPLY_MS = 100;

// ---------------------------------------------------------------------------------------------
// Cleanup bookkeeping: every process this bench starts, so that every way out stops it.

/** Daemons and clients still alive. */
const liveChildren = new Set<ChildProcess>();
/**
 * Command-line markers of service processes: sockvisord's carry `--daemon-pid N`, supervisord's
 * server `server.py PORT`. A service whose pid was never read is still found by these.
 */
const markers = new Set<string>();
/** Set while the load runs; clearing it ends the client loops. */
let loadRunning = false;

function killEverything(): void {
  loadRunning = false;
  for (const child of liveChildren) tryKill(child.pid!);
  killByMarker([...markers]);
}

function spawnTracked(file: string, args: readonly string[]): ChildProcess {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  void exitOf(child).then(() => liveChildren.delete(child));
  return child;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One client command (sockvisorctl, supervisorctl): its output and wall time, spawn to exit. */
function runClient(file: string, args: readonly string[], what: string): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return withTimeout(new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let ms = 0;
    const start = performance.now();
    const child = spawnTracked(file, args);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('exit', () => (ms = performance.now() - start));
    child.once('error', (e) => reject(new Error(`${what}: ${e.message}`)));
    child.once('close', (code) => resolve({ code, stdout, stderr, ms }));
  }), DEADLINE_MS, what);
}

/** Like runClient, but anything other than exit 0 with `expect` in its output is an error. */
async function runChecked(file: string, args: readonly string[], what: string, expect: RegExp): Promise<{ stdout: string; ms: number }> {
  const r = await runClient(file, args, what);
  if (r.code !== 0 || !expect.test(r.stdout)) throw new Error(`${what}: exit ${r.code}, expected output ${expect}\nstdout:\n${r.stdout.slice(0, 2000)}\nstderr:\n${r.stderr}`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// The load: CLIENTS loops of one GET per new connection, each response checked in full.

type Outcome = { readonly ok: true } | { readonly ok: false; readonly kind: string; readonly detail: string };

function check(response: Buffer): Outcome {
  const text = response.toString('latin1');
  // The end of what arrived says where the response was cut.
  const fail = (kind: string) => ({ ok: false as const, kind, detail: `${response.length} bytes, ending ${JSON.stringify(text.slice(-40))}` });
  if (text === '') return fail('EMPTY');
  const split = text.indexOf('\r\n\r\n');
  if (split === -1) return fail('NO_HEADER_END');
  const head = text.slice(0, split);
  const body = text.slice(split + 4);
  if (!/^HTTP\/1\.[01] 200 /.test(head)) return fail('BAD_STATUS');
  const length = /\r\nContent-Length: *(\d+)/i.exec(head);
  if (!length) return fail('NO_CONTENT_LENGTH');
  if (body.length !== Number(length[1])) return fail('SHORT_BODY');
  if (body !== EXPECTED_BODY) return fail('BAD_BODY');
  return { ok: true };
}

function request(port: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    const socket = net.connect({ host: HOST, port });
    const finish = (outcome: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ ok: false, kind: 'TIMEOUT', detail: `no complete response within ${REQUEST_TIMEOUT_MS} ms` }), REQUEST_TIMEOUT_MS);
    socket.setNoDelay(true);
    socket.once('connect', () => socket.write(REQUEST));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.once('end', () => finish(check(Buffer.concat(chunks))));
    socket.once('error', (e: NodeJS.ErrnoException) => finish({ ok: false, kind: e.code ?? 'ERROR', detail: `${e.message} after ${Buffer.concat(chunks).length} bytes` }));
    socket.once('close', () => finish({ ok: false, kind: 'CLOSED', detail: `closed without end after ${Buffer.concat(chunks).length} bytes` }));
  });
}

interface LoadCounts {
  requests: number;
  failed: number;
  readonly byKind: Map<string, number>;
  /** Failures by the restart in progress when the request ended (0: between restarts). */
  readonly byRestart: Map<number, number>;
  /** The first failure of each kind, for the report. */
  readonly examples: Map<string, string>;
}

/** Runs the clients until `loadRunning` is cleared; `phase()` names the restart in progress. */
async function runLoad(port: number, phase: () => number): Promise<LoadCounts> {
  const counts: LoadCounts = { requests: 0, failed: 0, byKind: new Map(), byRestart: new Map(), examples: new Map() };
  const client = async () => {
    while (loadRunning) {
      const outcome = await request(port);
      counts.requests++;
      if (outcome.ok) continue;
      counts.failed++;
      counts.byKind.set(outcome.kind, (counts.byKind.get(outcome.kind) ?? 0) + 1);
      counts.byRestart.set(phase(), (counts.byRestart.get(phase()) ?? 0) + 1);
      if (!counts.examples.has(outcome.kind)) counts.examples.set(outcome.kind, `${outcome.kind} (restart ${phase() || 'none'}): ${outcome.detail}`);
      await sleep(RETRY_GAP_MS);
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  return counts;
}

/** Before the load: the server answers at all (so start-up is not counted as failures). */
async function untilServed(port: number, what: string): Promise<void> {
  const deadline = performance.now() + DEADLINE_MS;
  for (;;) {
    const outcome = await request(port);
    if (outcome.ok) return;
    if (performance.now() > deadline) throw new Error(`${what}: not served within ${DEADLINE_MS} ms; last: ${outcome.kind} ${outcome.detail}`);
    await sleep(20);
  }
}

interface RestartRun {
  readonly load: LoadCounts;
  readonly restartMs: number[];
  readonly seconds: number;
  readonly notes: string[];
}

/**
 * The load from LOAD_MARGIN_MS before the first restart to LOAD_MARGIN_MS after the last;
 * `restart` runs one restart and returns once its client has.
 */
async function restartsUnderLoad(port: number, restarts: number, restart: (k: number) => Promise<number>): Promise<RestartRun> {
  let current = 0;
  loadRunning = true;
  const start = performance.now();
  const load = runLoad(port, () => current);
  const restartMs: number[] = [];
  try {
    await sleep(LOAD_MARGIN_MS);
    for (let k = 1; k <= restarts; k++) {
      current = k;
      restartMs.push(await restart(k));
      current = 0;
    }
    await sleep(LOAD_MARGIN_MS);
  } finally {
    loadRunning = false;
  }
  const counts = await load;
  return { load: counts, restartMs, seconds: (performance.now() - start) / 1000, notes: [] };
}

// ---------------------------------------------------------------------------------------------
// sockvisord.

interface DaemonLine {
  readonly msg: string;
  readonly level?: number;
  readonly service?: string;
  readonly process?: string;
  readonly from?: string;
  readonly to?: string;
  readonly pid?: number;
  readonly [key: string]: unknown;
}

/**
 * A daemon config with everything (socket, pidfile, logs) under `dir`. `python` is an absolute path
 * to a real binary: a reload re-probes a PATH name or a shim (pyenv) every time.
 */
async function writeDaemonConfig(dir: string, python: string): Promise<{ config: string; socket: string; services: string }> {
  const services = path.join(dir, 'sockvisor.d');
  await fs.mkdir(services, { recursive: true });
  const config = path.join(dir, 'sockvisor.yaml');
  const socket = path.join(dir, 'sockvisor.sock');
  await fs.writeFile(config, sockvisordConfig(dir, python, socket));
  return { config, socket, services };
}

interface Daemon {
  readonly child: ChildProcess;
  readonly log: LineLog<DaemonLine>;
  readonly stderr: string[];
  readonly exited: Promise<void>;
}

function startDaemon(config: string): Daemon {
  const child = spawnTracked(process.execPath, [DAEMON, 'run', '-c', config]);
  markers.add(`--daemon-pid ${child.pid} `);
  const { log, stderr } = sockvisordLog<DaemonLine>(child);
  return { child, log, stderr, exited: exitOf(child) };
}

/** The daemon's stop; service processes it left behind are killed and counted in the notes. */
async function stopDaemon(daemon: Daemon, notes: string[]): Promise<void> {
  const problem = await stopChild(daemon.child, 'sockvisord', STOP_GRACE_MS);
  if (problem !== undefined) notes.push(`stop: ${problem}`);
  const marker = `--daemon-pid ${daemon.child.pid} `;
  killByMarker([marker]);
  markers.delete(marker);
}

function daemonFailure(e: unknown, daemon: Daemon): Error {
  return new Error(`${(e as Error).message}\nsockvisord stdout (last lines):\n${daemon.log.last(10)}\nsockvisord stderr:\n${daemon.stderr.join('\n') || '(empty)'}`);
}

/** Warnings and errors the daemon logged from entry `from` on, one note each. */
function complaints(log: LineLog<DaemonLine>, from: number, label: string): string[] {
  return log.entries.slice(from).filter((e) => (e.level ?? 0) >= 40).map((e) => `${label}: ${JSON.stringify(e)}`);
}

async function sockvisordRestarts(root: string, python: string, restarts: number): Promise<RestartRun & { port: number; sandbox: string; reloads: RestartRun }> {
  const dir = path.join(root, 'sockvisord-web');
  const { config, socket, services } = await writeDaemonConfig(dir, python);
  const port = await freePort(HOST);
  const demo = await fs.readFile(DEMO_WEB, 'utf8');
  if (!demo.includes(`${HOST}:8080`)) throw new Error(`${DEMO_WEB}: no ${HOST}:8080 to replace with a free port`);
  if (!/^args:\n/m.test(demo)) throw new Error(`${DEMO_WEB}: no top-level "args:" to add the gen: key to`);
  // The demo file as it is, but on a free port, with a `gen: K` under args that the reloads change.
  const webFile = path.join(services, 'web.yaml');
  await fs.writeFile(webFile, demo.replace(`${HOST}:8080`, `${HOST}:${port}`).replace(/^args:\n/m, 'args:\n  gen: 0\n'));

  const daemon = startDaemon(config);
  const notes: string[] = [];
  try {
    await daemon.log.waitFor(0, (e) => e.msg === 'state' && e.process === 'web:0' && e.to === 'RUNNING', 'sockvisord: web:0 RUNNING', daemon.exited, DEADLINE_MS);
    await untilServed(port, 'sockvisord');
    const mark = daemon.log.entries.length;
    const run = await restartsUnderLoad(port, restarts, async (k) => {
      const r = await runChecked(process.execPath, [CTL, '-s', socket, 'restart', 'web'], `sockvisorctl restart web (${k})`, /^web:0: restarted$/m);
      return r.ms;
    });
    // Each restart must have put a new process in: restarts + 1 pids reached RUNNING in all.
    const pids = new Set(daemon.log.entries.filter((e) => e.msg === 'state' && e.process === 'web:0' && e.to === 'RUNNING').map((e) => e.pid));
    if (pids.size !== restarts + 1) throw new Error(`sockvisord: ${pids.size} pids RUNNING for web:0 over ${restarts} restarts, expected ${restarts + 1}`);
    // Then as many reloads under the same load: the argdata edited (temp file renamed over it),
    // `sockvisorctl reload`, and the new generation's process RUNNING.
    const reloads = await restartsUnderLoad(port, restarts, async (k) => {
      const text = await fs.readFile(webFile, 'utf8');
      const tmp = path.join(dir, 'web.yaml.tmp');
      await fs.writeFile(tmp, text.replace(/^ {2}gen: \d+$/m, `  gen: ${k}`));
      const from = daemon.log.entries.length;
      const start = performance.now();
      await fs.rename(tmp, webFile);
      await runChecked(process.execPath, [CTL, '-s', socket, 'reload'], `sockvisorctl reload (${k})`, /^web: new generation \(args[.\w]*\)$/m);
      const pidsBefore = new Set(daemon.log.entries.slice(0, from).filter((e) => e.msg === 'state' && e.process === 'web:0' && e.to === 'RUNNING').map((e) => e.pid));
      await daemon.log.waitFor(from, (e) => e.msg === 'state' && e.process === 'web:0' && e.to === 'RUNNING' && !pidsBefore.has(e.pid), `sockvisord reload ${k}: web:0 RUNNING with a new pid`, daemon.exited, DEADLINE_MS);
      return performance.now() - start;
    });
    const sandbox = daemon.log.entries.find((e) => e.msg === 'sandbox applied')?.['sandbox'];
    notes.push(...complaints(daemon.log, mark, 'sockvisord'));
    // The same notes array: what the stop below finds still lands in it.
    return { ...run, notes, port, sandbox: typeof sandbox === 'string' ? sandbox : 'unknown', reloads };
  } catch (e) {
    throw daemonFailure(e, daemon);
  } finally {
    await stopDaemon(daemon, notes);
  }
}

// ---------------------------------------------------------------------------------------------
// supervisord.

interface SupervisordLine {
  readonly text: string;
  readonly spawnedPid?: number;
  readonly running?: boolean;
}

async function supervisordRestarts(root: string, python: string, supervisord: string, supervisorctl: string, restarts: number): Promise<RestartRun & { port: number; reloads: RestartRun }> {
  const dir = path.join(root, 'supervisord');
  await fs.mkdir(path.join(dir, 'logs'), { recursive: true });
  const port = await freePort(HOST);
  const config = path.join(dir, 'supervisord.conf');
  // `gen` is a trailing argument server.py ignores: a change of the command line, for the reloads.
  const writeConfig = (gen: number) => fs.writeFile(config, supervisordConfig(dir, path.join(dir, 'supervisor.sock'), [
    '[program:web]',
    `command=${python} ${SERVER_PY} ${port} ${gen}`,
    'autostart=true',
    'autorestart=true',
    // As sockvisord's default start_seconds (1 s): how long `restart` waits before it returns.
    'startsecs=1',
    'stopsignal=TERM',
    'stopwaitsecs=10',
    `stdout_logfile=${path.join(dir, 'logs', 'web.stdout.log')}`,
    `stderr_logfile=${path.join(dir, 'logs', 'web.stderr.log')}`,
    '',
  ]));
  await writeConfig(0);
  markers.add(`${SERVER_PY} ${port}`);

  const daemon = spawnTracked(supervisord, ['-c', config]);
  const exited = exitOf(daemon);
  // With nodaemon=true, supervisord also writes its log to stdout.
  const log = new LineLog<SupervisordLine>([daemon.stdout!, daemon.stderr!], (text) => {
    const spawned = /spawned: 'web' with pid (\d+)/.exec(text);
    return { text, ...(spawned ? { spawnedPid: Number(spawned[1]) } : {}), ...(/success: web entered RUNNING state/.test(text) ? { running: true } : {}) };
  });
  const notes: string[] = [];
  try {
    await log.waitFor(0, (e) => e.running === true, 'supervisord: web entered RUNNING', exited, DEADLINE_MS);
    await untilServed(port, 'supervisord');
    const mark = log.entries.length;
    const run = await restartsUnderLoad(port, restarts, async (k) => {
      const r = await runChecked(supervisorctl, ['-c', config, 'restart', 'web'], `supervisorctl restart web (${k})`, /^web: started$/m);
      return r.ms;
    });
    const pids = new Set(log.entries.filter((e) => e.spawnedPid !== undefined).map((e) => e.spawnedPid));
    if (pids.size !== restarts + 1) throw new Error(`supervisord: ${pids.size} pids spawned for web over ${restarts} restarts, expected ${restarts + 1}`);
    // Then as many reloads under the same load, as supervisord's operators apply a changed
    // program: the command line edited, `supervisorctl reread`, `supervisorctl update`, and the
    // new process RUNNING.
    const reloads = await restartsUnderLoad(port, restarts, async (k) => {
      const from = log.entries.length;
      const start = performance.now();
      await writeConfig(k);
      await runChecked(supervisorctl, ['-c', config, 'reread'], `supervisorctl reread (${k})`, /^web: changed$/m);
      await runChecked(supervisorctl, ['-c', config, 'update'], `supervisorctl update (${k})`, /^web: updated process group$/m);
      await log.waitFor(from, (e) => e.running === true, `supervisord reload ${k}: web entered RUNNING`, exited, DEADLINE_MS);
      return performance.now() - start;
    });
    // Not WARN: "stopped: web (terminated by SIGTERM)" is every restart's stop.
    for (const e of log.entries.slice(mark)) if (/ (CRIT|ERRO) /.test(e.text)) notes.push(`supervisord: ${e.text}`);
    return { ...run, notes, port, reloads };
  } catch (e) {
    throw new Error(`${(e as Error).message}\nsupervisord output (last lines):\n${log.last(10)}`);
  } finally {
    const problem = await stopChild(daemon, 'supervisord', DEADLINE_MS);
    if (problem !== undefined) notes.push(`supervisord stop: ${problem}`);
    killByMarker([`${SERVER_PY} ${port}`]);
  }
}

// ---------------------------------------------------------------------------------------------
// Part 2: reload at scale.

const scaleName = (i: number) => `s${i}`;

/** A service that only sleeps, with its own held socket; `n` is the argdata a reload changes. */
function scaleService(n: number, sandbox: string | undefined): string {
  return [
    '%TAG ! tag:nuxi.nl,2015:cloudabi/',
    '---',
    `supervise: {start_seconds: 0${sandbox === undefined ? '' : `, sandbox: ${sandbox}`}}`,
    'args:',
    `  n: ${n}`,
    `  listener: !socket {bind: ${HOST}:0}`,
    'command: |',
    '  import time',
    '  time.sleep(1e9)',
    '',
  ].join('\n');
}

/** Kilobytes from a `Key:   123 kB` line of a /proc file. */
function procKb(file: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(file, 'utf8'));
  if (!m) throw new Error(`${file}: no ${key} line`);
  return Number(m[1]);
}

interface StatusJson {
  readonly processes: { name: string; state: string; pid?: number }[];
}

/** Every process's pid from `sockvisorctl status --json`; all `services` must be RUNNING. */
async function runningPids(socket: string, services: number, what: string): Promise<Map<string, number>> {
  const r = await runClient(process.execPath, [CTL, '-s', socket, 'status', '--json'], `sockvisorctl status --json (${what})`);
  let status: StatusJson;
  try {
    status = JSON.parse(r.stdout) as StatusJson;
  } catch {
    throw new Error(`sockvisorctl status --json (${what}): exit ${r.code}, not JSON:\n${r.stdout.slice(0, 500)}\n${r.stderr}`);
  }
  const notRunning = status.processes.filter((p) => p.state !== 'RUNNING' || p.pid === undefined);
  if (status.processes.length !== services || notRunning.length > 0) {
    throw new Error(`${what}: ${status.processes.length} processes, ${notRunning.length} not RUNNING (${notRunning.slice(0, 5).map((p) => `${p.name} ${p.state}`).join(', ')})`);
  }
  return new Map(status.processes.map((p) => [p.name, p.pid!]));
}

/** Exactly `changed` got a new pid; every other process kept its own. Throws otherwise. */
function checkOnlyReplaced(before: Map<string, number>, after: Map<string, number>, changed: string): void {
  const differing = [...after].filter(([name, pid]) => before.get(name) !== pid).map(([name]) => name);
  const gone = [...before.keys()].filter((name) => !after.has(name));
  if (differing.length !== 1 || differing[0] !== changed || gone.length > 0) {
    throw new Error(`reload of ${changed}: expected exactly ${changed} replaced; pids changed: ${differing.slice(0, 10).join(', ') || 'none'}${differing.length > 10 ? ` (+${differing.length - 10})` : ''}; gone: ${gone.join(', ') || 'none'}`);
  }
}

interface ReloadSample {
  readonly service: string;
  readonly loadMs: number;
  readonly planMs: number;
  readonly applyMs: number;
  readonly wallMs: number;
}

interface ScaleRun {
  readonly startSeconds: number;
  readonly rssKb: number;
  readonly rssAfterKb: number;
  readonly memUsedKb: number;
  readonly sandbox: string;
  readonly samples: ReloadSample[];
  readonly notes: string[];
}

/**
 * What the processes reported of their sandbox, with how many said each. A process writes it to
 * its stderr once started, which with start_seconds 0 may come after RUNNING: read at the end.
 */
function sandboxSummary(log: LineLog<DaemonLine>): string {
  const seen = new Map<string, number>();
  for (const e of log.entries) if (e.msg === 'sandbox applied') seen.set(String(e['sandbox']), (seen.get(String(e['sandbox'])) ?? 0) + 1);
  return [...seen].map(([sandbox, n]) => `${sandbox} (reported by ${n} processes)`).join('; ') || 'unknown (no "sandbox applied" line)';
}

/** Rewrites `file` with its `n:` set to `n`: a temp file renamed over it, as editors and deploys do. */
async function editArgdata(file: string, n: number, tmpDir: string): Promise<void> {
  const text = await fs.readFile(file, 'utf8');
  if (!/^ {2}n: \d+$/m.test(text)) throw new Error(`${file}: no "  n: N" line under args`);
  const tmp = path.join(tmpDir, `${path.basename(file)}.tmp`);
  await fs.writeFile(tmp, text.replace(/^ {2}n: \d+$/m, `  n: ${n}`));
  // Outside the services directory, so the daemon never sees a half-written file.
  await fs.rename(tmp, file);
}

async function reloadAtScale(root: string, python: string, services: number, reloads: number, sandbox: string | undefined): Promise<ScaleRun> {
  const dir = path.join(root, 'sockvisord-scale');
  const { config, socket, services: servicesDir } = await writeDaemonConfig(dir, python);
  for (let i = 1; i <= services; i++) await fs.writeFile(path.join(servicesDir, `${scaleName(i)}.yaml`), scaleService(0, sandbox));

  const memBefore = procKb('/proc/meminfo', 'MemAvailable');
  const started = performance.now();
  const daemon = startDaemon(config);
  const notes: string[] = [];
  try {
    // Each entry is tested once, in order, so the test can keep the set of RUNNING processes.
    const running = new Set<string>();
    await daemon.log.waitFor(0, (e) => {
      if (e.msg === 'state' && e.to === 'RUNNING') running.add(String(e.process));
      else if (e.msg === 'state' && e.from === 'RUNNING') running.delete(String(e.process));
      return running.size === services;
    }, `sockvisord: all ${services} services RUNNING`, daemon.exited, START_DEADLINE_MS).catch((e: Error) => {
      throw new Error(`${e.message} (${running.size} were; try fewer with --services, or --sandbox off)`);
    });
    const startSeconds = (performance.now() - started) / 1000;
    const rssKb = procKb(`/proc/${daemon.child.pid}/status`, 'VmRSS');
    const memUsedKb = memBefore - procKb('/proc/meminfo', 'MemAvailable');
    notes.push(...complaints(daemon.log, 0, 'start'));

    const samples: ReloadSample[] = [];
    for (let r = 1; r <= reloads; r++) {
      // Services spread over the set, so no one file (or its cache entry) is favoured.
      const service = scaleName(Math.max(1, Math.round((r * services) / (reloads + 1))));
      const before = await runningPids(socket, services, `before reload ${r}`);
      await editArgdata(path.join(servicesDir, `${service}.yaml`), r, dir);
      const mark = daemon.log.entries.length;
      const { ms: wallMs } = await runChecked(process.execPath, [CTL, '-s', socket, 'reload'], `sockvisorctl reload (${r})`, new RegExp(`^${service}: new generation \\(args[.\\w]*\\)$`, 'm'));
      const done = await daemon.log.waitFor(mark, (e) => e.msg === 'reload done', `reload ${r}: the "reload done" log line`, daemon.exited, DEADLINE_MS);
      const t = done.entry as DaemonLine & { changes: number; failed: number; loadMs: number; planMs: number; applyMs: number };
      if (t.changes !== 1 || t.failed !== 0) throw new Error(`reload ${r}: ${t.changes} changes, ${t.failed} failed (expected 1 change, none failed): ${JSON.stringify(t)}`);
      const after = await runningPids(socket, services, `after reload ${r}`);
      checkOnlyReplaced(before, after, `${service}:0`);
      samples.push({ service, loadMs: t.loadMs, planMs: t.planMs, applyMs: t.applyMs, wallMs });
      notes.push(...complaints(daemon.log, mark, `reload ${r}`));
    }
    const rssAfterKb = procKb(`/proc/${daemon.child.pid}/status`, 'VmRSS');
    return { startSeconds, rssKb, rssAfterKb, memUsedKb, sandbox: sandboxSummary(daemon.log), samples, notes };
  } catch (e) {
    throw daemonFailure(e, daemon);
  } finally {
    await stopDaemon(daemon, notes);
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

function printRestarts(name: string, run: RestartRun, restarts: number): void {
  const l = run.load;
  const kinds = [...l.byKind].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} ${k}`).join(', ');
  console.log(`${name.padEnd(12)} requests ${String(l.requests).padStart(7)}   failed ${String(l.failed).padStart(6)}   restarts ${run.restartMs.length}/${restarts}   restart client p50 ${stats(run.restartMs).median.toFixed(0)} ms   run ${run.seconds.toFixed(1)} s`);
  if (l.failed > 0) {
    console.log(`${''.padEnd(12)} failed by kind: ${kinds}`);
    const per = Array.from({ length: restarts }, (_, i) => l.byRestart.get(i + 1) ?? 0);
    console.log(`${''.padEnd(12)} failed per restart: ${per.join(' ')}; outside any restart: ${l.byRestart.get(0) ?? 0}`);
    for (const ex of l.examples.values()) console.log(`${''.padEnd(12)} e.g. ${ex}`);
  }
}

const pct = (failed: number, requests: number) => `${((100 * failed) / Math.max(requests, 1)).toFixed(3)}%`;
const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;

const { values } = parseArgs({
  options: { services: { type: 'string' }, reloads: { type: 'string' }, restarts: { type: 'string' }, sandbox: { type: 'string' }, python: { type: 'string' }, json: { type: 'string' } },
});
const services = positiveIntFlag(values.services, 'services', 1000);
const reloads = positiveIntFlag(values.reloads, 'reloads', 5);
const restarts = positiveIntFlag(values.restarts, 'restarts', 11);
if (values.sandbox !== undefined && !['strict', 'best-effort', 'off'].includes(values.sandbox)) {
  console.error(`--sandbox expects strict, best-effort or off, got "${values.sandbox}"`);
  process.exit(2);
}
// Debian's interpreter by default: a real binary, which the reload's interpreter check can reuse.
const pythonPath = values.python ?? '/usr/bin/python3';

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sockvisor-reload-'));
// An interrupted bench still leaves no daemon, service, client or temp dir behind.
exitOnInterrupt(`stopping the daemons, their services and the clients, removing ${root}`, () => {
  killEverything();
  rmSync(root, { recursive: true, force: true });
});
try {
  const python = realInterpreter(pythonPath);
  const supervisor = ensureSupervisor();
  const cpus = os.cpus();
  const flags = [
    ...(values.services === undefined ? [] : ['--services', String(services)]),
    ...(values.reloads === undefined ? [] : ['--reloads', String(reloads)]),
    ...(values.restarts === undefined ? [] : ['--restarts', String(restarts)]),
    ...(values.sandbox === undefined ? [] : ['--sandbox', values.sandbox]),
    ...(values.python === undefined ? [] : ['--python', values.python]),
  ];
  console.log(`machine: ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GB, Node ${process.version}, Python ${python.version}, ${os.type()} ${os.release()}`);
  console.log(`command: ${flags.length === 0 ? 'npm run bench:reload' : `npm run bench:reload -- ${flags.join(' ')}`}`);
  console.log(`interpreter: ${pythonPath} (${python.executable}), every service on both supervisors`);
  console.log('');

  // Part 1, one supervisor after the other, never at once.
  const ours = await sockvisordRestarts(root, pythonPath, restarts);
  const theirs = await supervisordRestarts(root, pythonPath, supervisor.supervisord, supervisor.supervisorctl, restarts);
  console.log(`part 1: failed requests across ${restarts} restarts under load`);
  console.log(`load: ${CLIENTS} clients, each a loop of GET / over HTTP/1.0 on a new connection (${REQUEST_TIMEOUT_MS} ms timeout, ${RETRY_GAP_MS} ms pause after a failure), from ${LOAD_MARGIN_MS} ms before the first restart to ${LOAD_MARGIN_MS} ms after the last`);
  console.log(`      a request fails on a connection error, a timeout, or anything but "200" with Content-Length matching the body "${EXPECTED_BODY}"`);
  console.log(`sockvisord:  etc/demo/sockvisor.d/web.yaml on a held ${HOST}:${ours.port} (as in the demo: standby: true, start_seconds 1 s); sandbox: ${ours.sandbox}`);
  console.log(`             ${restarts} x "sockvisorctl -s SOCKET restart web" (generation swap), each after the previous returned`);
  console.log(`supervisord: ${supervisor.version} (${supervisor.supervisord}), [program:web] ${path.basename(pythonPath)} bench/recovery/server.py ${theirs.port} (binds the port itself), startsecs=1`);
  console.log(`             ${restarts} x "supervisorctl -c CONF restart web" (stop, then start), each after the previous returned`);
  console.log('');
  printRestarts('sockvisord', ours, restarts);
  printRestarts('supervisord', theirs, restarts);
  console.log('');
  console.log(`part 1b: failed requests across ${restarts} reloads of a changed service under the same load (on the same daemons, after the restarts)`);
  console.log('sockvisord:  "gen: K" under args rewritten (temp file renamed over web.yaml), "sockvisorctl -s SOCKET reload", until the new generation\'s process is RUNNING');
  console.log('supervisord: the [program:web] command line changed (a trailing argument), "supervisorctl reread" then "supervisorctl update", until web entered RUNNING');
  console.log('');
  printRestarts('sockvisord', ours.reloads, restarts);
  printRestarts('supervisord', theirs.reloads, restarts);
  console.log('');
  console.log(`failed requests across reloads: sockvisord ${ours.reloads.load.failed} of ${ours.reloads.load.requests} (${pct(ours.reloads.load.failed, ours.reloads.load.requests)}), supervisord ${theirs.reloads.load.failed} of ${theirs.reloads.load.requests} (${pct(theirs.reloads.load.failed, theirs.reloads.load.requests)})  ${(ours.reloads.load.failed === 0 ? 'PASS' : 'OVER')} (target: 0 on sockvisord)`);
  console.log('');
  const word = (pass: boolean) => (pass ? 'PASS' : 'OVER');
  console.log(`failed requests: sockvisord ${ours.load.failed} of ${ours.load.requests} (${pct(ours.load.failed, ours.load.requests)}), supervisord ${theirs.load.failed} of ${theirs.load.requests} (${pct(theirs.load.failed, theirs.load.requests)})  ${word(ours.load.failed === 0)} (target: 0 on sockvisord)`);
  console.log('');

  const scale = await reloadAtScale(root, pythonPath, services, reloads, values.sandbox);
  console.log(`part 2: reload with ${services} services`);
  console.log(`services: ${services} x "import time; time.sleep(1e9)", each with its own !socket {bind: ${HOST}:0} and "n: K" under args, supervise: {start_seconds: 0${values.sandbox === undefined ? '' : `, sandbox: ${values.sandbox}`}}`);
  console.log(`          sandbox: ${scale.sandbox}`);
  console.log(`started:  all ${services} RUNNING ${scale.startSeconds.toFixed(1)} s after the daemon was spawned; system memory in use then: +${(scale.memUsedKb / 2 ** 20).toFixed(1)} GB (MemAvailable)`);
  console.log(`measured: ${reloads} reloads, each after one service file's "n:" was rewritten (temp file renamed over it): "sockvisorctl -s SOCKET reload", wall time spawn to exit;`);
  console.log('          loadMs, planMs, applyMs from the daemon\'s "reload done" log line; checked by status --json: exactly that service\'s pid changed');
  console.log('');
  const row = (cells: readonly string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(22) : cell.padStart(11))).join('');
  console.log(row(['', 'ms median', 'ms min', 'ms max']));
  const columns: [string, (s: ReloadSample) => number][] = [
    ['load', (s) => s.loadMs],
    ['plan', (s) => s.planMs],
    ['apply', (s) => s.applyMs],
    ['plan + apply', (s) => s.planMs + s.applyMs],
    ['sockvisorctl reload', (s) => s.wallMs],
  ];
  for (const [label, pick] of columns) {
    const s = stats(scale.samples.map(pick));
    console.log(row([label, s.median.toFixed(1), s.min.toFixed(1), s.max.toFixed(1)]));
  }
  console.log(`per reload (service: load/plan/apply/wall ms): ${scale.samples.map((s) => `${s.service}: ${s.loadMs}/${s.planMs}/${s.applyMs}/${s.wallMs.toFixed(0)}`).join('  ')}`);
  console.log('');
  const planApply = stats(scale.samples.map((s) => s.planMs + s.applyMs)).median;
  console.log(`plan + apply:  ${planApply.toFixed(1)} ms (median)  ${word(planApply <= TARGET_PLAN_APPLY_MS)} (target: at most ${TARGET_PLAN_APPLY_MS} ms)`);
  console.log(`daemon RSS with ${services} services: ${mb(scale.rssKb)} (VmRSS once all were RUNNING; ${mb(scale.rssAfterKb)} after the reloads)`);
  const notes = [...ours.notes, ...theirs.notes, ...scale.notes];
  printNotes(notes);
  const loadJson = (run: RestartRun) => ({ requests: run.load.requests, failed: run.load.failed, seconds: run.seconds, byKind: Object.fromEntries(run.load.byKind), clientMs: stats(run.restartMs) });
  writeJson(values.json, {
    restarts, services, reloads, clients: CLIENTS, python: python.version, supervisord: supervisor.version, sandbox: ours.sandbox,
    restart: { sockvisord: loadJson(ours), supervisord: loadJson(theirs) },
    reload: { sockvisord: loadJson(ours.reloads), supervisord: loadJson(theirs.reloads) },
    scale: { startSeconds: scale.startSeconds, rssKb: scale.rssKb, rssAfterKb: scale.rssAfterKb, sandbox: scale.sandbox, load: stats(scale.samples.map((s) => s.loadMs)), plan: stats(scale.samples.map((s) => s.planMs)), apply: stats(scale.samples.map((s) => s.applyMs)), planApply: stats(scale.samples.map((s) => s.planMs + s.applyMs)), wall: stats(scale.samples.map((s) => s.wallMs)) },
    notes,
  });
} catch (e) {
  console.error(e instanceof Error ? `FAIL: ${e.message}` : e);
  process.exitCode = 1;
} finally {
  killEverything();
  await fs.rm(root, { recursive: true, force: true });
}
