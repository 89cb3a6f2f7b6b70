/**
 * Crash-to-served time: SIGKILL the process serving the demo web.yaml, then keep opening new
 * connections with `GET /` until one gets the complete response. sockvisord (the service on a held
 * socket, start_seconds 0.1) side by side with Debian's supervisord (`supervisor` package; installed
 * with apt-get when `supervisord` is missing) running the same server as a plain program that binds
 * its own socket (bench/recovery/server.py), on the same real interpreter. The two run one after the
 * other, never at once. Targets: sockvisord p50 at most 60 ms, at least 15 times faster than
 * supervisord (p50), and no refused connection.
 *
 *   npm run build && npm run bench:recovery [-- --kills N]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureSupervisor, exitOf, freePort, isOurs, LineLog, positiveIntFlag, printNotes, realInterpreter, sockvisordConfig, stopChild, supervisordConfig, tryKill, writeJson, sockvisordLog } from './common.js';

const DAEMON = fileURLToPath(new URL('../src/cli/sockvisord.js', import.meta.url));
const DEMO_WEB = fileURLToPath(new URL('../../etc/demo/sockvisor.d/web.yaml', import.meta.url));
const SERVER_PY = fileURLToPath(new URL('../../bench/recovery/server.py', import.meta.url));
const HOST = '127.0.0.1';
const REQUEST = `GET / HTTP/1.0\r\nHost: ${HOST}\r\n\r\n`;
const EXPECTED = 'It works!';
/** Per attempt: a connection that waits in a backlog is waiting, not failing, for this long. */
const ATTEMPT_TIMEOUT_MS = 1000;
/** Pause after a failed attempt before the next one. */
const RETRY_GAP_MS = 2;
/** For the service to answer after a kill, and for any expected log line. */
const DEADLINE_MS = 10_000;
const TARGET_P50_MS = 60;
const TARGET_RATIO = 15;

// ---------------------------------------------------------------------------------------------
// Cleanup bookkeeping: every process this bench starts, so that every way out stops it.

/** Supervisor processes (sockvisord, supervisord) still alive. */
const liveSupervisors = new Set<ChildProcess>();
/** The server process each side is running now, with a string its command line must contain. */
const liveServers = new Map<string, { pid: number; marker: string }>();



/** The server's process group (both supervisors start each server as a group leader) and the server. */
function killServer(side: string): void {
  const server = liveServers.get(side);
  if (server === undefined) return;
  if (isOurs(server.pid, server.marker)) {
    tryKill(-server.pid);
    tryKill(server.pid);
  }
  liveServers.delete(side);
}


const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// The client: one GET per new connection, and the loop that runs after each kill.

type Attempt = { readonly ok: true } | { readonly ok: false; readonly code: string };

function attempt(port: number): Promise<Attempt> {
  return new Promise((resolve) => {
    let response = '';
    let done = false;
    const socket = net.connect({ host: HOST, port });
    const finish = (result: Attempt) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false, code: 'TIMEOUT' }), ATTEMPT_TIMEOUT_MS);
    socket.setNoDelay(true);
    socket.once('connect', () => socket.write(REQUEST));
    socket.on('data', (d: Buffer) => (response += d.toString('latin1')));
    socket.once('end', () => {
      if (/^HTTP\/1\.[01] 200 /.test(response) && response.includes(EXPECTED)) finish({ ok: true });
      else finish({ ok: false, code: response === '' ? 'EMPTY' : 'BAD_RESPONSE' });
    });
    socket.once('close', () => finish({ ok: false, code: 'CLOSED' }));
    socket.once('error', (e: NodeJS.ErrnoException) => finish({ ok: false, code: e.code ?? e.message }));
  });
}

interface Recovery {
  /** From just before the kill to the end of the first complete response. */
  readonly ms: number;
  readonly refused: number;
  /** Failed attempts other than ECONNREFUSED, by error code. */
  readonly other: Readonly<Record<string, number>>;
  readonly attempts: number;
}

/** Tries until one attempt is served; start is the performance.now() the clock runs from. */
async function untilServed(port: number, start: number, what: string): Promise<Recovery> {
  let refused = 0;
  let attempts = 0;
  const other: Record<string, number> = {};
  for (;;) {
    attempts++;
    const result = await attempt(port);
    if (result.ok) return { ms: performance.now() - start, refused, other, attempts };
    if (result.code === 'ECONNREFUSED') refused++;
    else other[result.code] = (other[result.code] ?? 0) + 1;
    if (performance.now() - start > DEADLINE_MS) {
      const errors = [`${refused} ECONNREFUSED`, ...Object.entries(other).map(([c, n]) => `${n} ${c}`)].join(', ');
      throw new Error(`${what}: not served within ${DEADLINE_MS} ms of the kill (${attempts} attempts: ${errors})`);
    }
    await sleep(RETRY_GAP_MS);
  }
}

// ---------------------------------------------------------------------------------------------
// The two sides.

interface SideResult {
  readonly recoveries: Recovery[];
  /** Anything the supervisor did besides the expected restart, one line each. */
  readonly notes: string[];
}

interface StateLine {
  readonly msg: string;
  readonly time: number;
  readonly service?: string;
  readonly from?: string;
  readonly to?: string;
  readonly pid?: number;
  readonly reason?: string;
  readonly sockets?: { key: string; address: string; type: string }[];
  readonly [key: string]: unknown;
}


/** SIGTERM, a grace period for the supervisor's own orderly stop, then SIGKILL. */
async function stopSupervisor(child: ChildProcess, side: string): Promise<string | undefined> {
  let problem = await stopChild(child, side, 15_000);
  liveSupervisors.delete(child);
  // The supervisor stops its server; this only catches one it left behind.
  const server = liveServers.get(side);
  if (server !== undefined && isOurs(server.pid, server.marker)) problem ??= `${side} left its server (pid ${server.pid}) running`;
  killServer(side);
  return problem;
}

/**
 * Each kill hits a supervisor in its steady state, as a crash in production does, not one still
 * busy with the previous restart; both sides get the same pause.
 */
const SETTLE_MS = 500;
const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

async function runSockvisord(root: string, python: string, kills: number, standby: boolean): Promise<SideResult & { sandbox: string; exitMs: number[] }> {
  const dir = path.join(root, standby ? 'sockvisord-standby' : 'sockvisord');
  await fs.mkdir(path.join(dir, 'sockvisor.d'), { recursive: true });
  const configFile = path.join(dir, 'sockvisor.yaml');
  await fs.writeFile(configFile, sockvisordConfig(dir, python));
  const demo = await fs.readFile(DEMO_WEB, 'utf8');
  const bind = /my_socket: !socket \{bind: [^}]*\}/;
  if (!bind.test(demo)) throw new Error(`${DEMO_WEB}: no "my_socket: !socket {bind: ...}" line to give the address`);
  if (!/^supervise:\n/m.test(demo)) throw new Error(`${DEMO_WEB}: no top-level "supervise:" block to add start_seconds to`);
  // The bench decides start_seconds and standby itself, whatever the demo file says.
  const service = demo
    .replace(bind, `my_socket: !socket {bind: ${HOST}:0}`)
    .replace(/^ {2}(start_seconds|standby):.*\n/gm, '')
    .replace(/^supervise:\n/m, `supervise:\n  start_seconds: 0.1\n  standby: ${standby}\n`);
  await fs.writeFile(path.join(dir, 'sockvisor.d', 'web.yaml'), service);

  const daemon = spawn(process.execPath, [DAEMON, 'run', '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  liveSupervisors.add(daemon);
  const exited = exitOf(daemon);
  const { log, stderr } = sockvisordLog<StateLine>(daemon);
  const notes: string[] = [];
  const recoveries: Recovery[] = [];
  const exitMs: number[] = [];
  let sandbox = 'unknown';
  try {
    const loaded = await log.waitFor(0, (e) => e.msg === 'service loaded' && e.service === 'web', 'the "service loaded" line', exited);
    const address = loaded.entry.sockets?.[0]?.address ?? '';
    const port = Number(address.slice(address.lastIndexOf(':') + 1));
    if (!Number.isInteger(port) || port <= 0) throw new Error(`sockvisord: no port in ${JSON.stringify(loaded.entry.sockets)}`);
    const isRunning = (e: StateLine, not?: number) => e.msg === 'state' && e.service === 'web' && e.to === 'RUNNING' && e.pid !== daemon.pid && e.pid !== not;
    let running = await log.waitFor(loaded.index, (e) => isRunning(e), 'the first RUNNING state line', exited);
    const marker = `--daemon-pid ${daemon.pid}`;
    liveServers.set('sockvisord', { pid: running.entry.pid!, marker });
    await untilServed(port, performance.now(), 'sockvisord before the first kill');
    const sandboxLine = log.entries.find((e) => e.msg === 'sandbox applied');
    if (typeof sandboxLine?.['sandbox'] === 'string') sandbox = sandboxLine['sandbox'];

    for (let k = 1; k <= kills; k++) {
      await settle();
      const pid = running.entry.pid!;
      const mark = log.entries.length;
      const killedAt = Date.now();
      const start = performance.now();
      process.kill(pid, 'SIGKILL');
      recoveries.push(await untilServed(port, start, `sockvisord kill ${k} (pid ${pid})`));
      running = await log.waitFor(mark, (e) => isRunning(e, pid), `sockvisord kill ${k}: RUNNING with a new pid`, exited);
      liveServers.set('sockvisord', { pid: running.entry.pid!, marker });
      // Expected: RUNNING -> STARTING (the exit, restarted at once), then STARTING -> RUNNING.
      const states = log.entries.slice(mark, running.index + 1).filter((e) => e.msg === 'state' && e.service === 'web');
      const seen = states.map((e) => `${e.from}->${e.to}`).join(', ');
      if (seen !== 'RUNNING->STARTING, STARTING->RUNNING') notes.push(`kill ${k}: states ${seen}`);
      const exitLine = states.find((e) => e.from === 'RUNNING');
      if (exitLine !== undefined) exitMs.push(exitLine.time - killedAt);
      for (const e of log.entries.slice(mark, running.index + 1)) if (e['level'] !== undefined && Number(e['level']) >= 40) notes.push(`kill ${k}: ${JSON.stringify(e)}`);
    }
  } catch (e) {
    throw new Error(`${(e as Error).message}\nsockvisord stdout (last lines):\n${log.last(10)}\nsockvisord stderr:\n${stderr.join('\n') || '(empty)'}`);
  } finally {
    const problem = await stopSupervisor(daemon, 'sockvisord');
    if (problem !== undefined) notes.push(`stop: ${problem}`);
  }
  return { recoveries, notes, sandbox, exitMs };
}


interface SupervisordLine {
  readonly text: string;
  readonly spawnedPid?: number;
  readonly runningState?: boolean;
}

async function runSupervisord(root: string, python: string, supervisord: string, kills: number): Promise<SideResult> {
  const dir = path.join(root, 'supervisord');
  await fs.mkdir(path.join(dir, 'logs'), { recursive: true });
  const port = await freePort();
  const configFile = path.join(dir, 'supervisord.conf');
  await fs.writeFile(configFile, supervisordConfig(dir, path.join(dir, 'supervisor.sock'), [
    '[program:web]',
    `command=${python} ${SERVER_PY} ${port}`,
    'autostart=true',
    'autorestart=true',
    'startsecs=0',
    'startretries=100',
    'stopsignal=TERM',
    'stopwaitsecs=5',
    `stdout_logfile=${path.join(dir, 'logs', 'web.stdout.log')}`,
    `stderr_logfile=${path.join(dir, 'logs', 'web.stderr.log')}`,
    '',
  ]));

  const daemon = spawn(supervisord, ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  liveSupervisors.add(daemon);
  const exited = exitOf(daemon);
  // With nodaemon=true, supervisord also writes its log to stdout.
  const log = new LineLog<SupervisordLine>([daemon.stdout!, daemon.stderr!], (text) => {
    const spawned = /spawned: 'web' with pid (\d+)/.exec(text);
    return { text, ...(spawned ? { spawnedPid: Number(spawned[1]) } : {}), ...(/success: web entered RUNNING state/.test(text) ? { runningState: true } : {}) };
  });
  const notes: string[] = [];
  const recoveries: Recovery[] = [];
  const marker = `${SERVER_PY} ${port}`;
  try {
    let spawned = await log.waitFor(0, (e) => e.spawnedPid !== undefined, 'supervisord: "spawned: \'web\' with pid N"', exited);
    liveServers.set('supervisord', { pid: spawned.entry.spawnedPid!, marker });
    await log.waitFor(spawned.index, (e) => e.runningState === true, 'supervisord: web entered RUNNING', exited);
    await untilServed(port, performance.now(), 'supervisord before the first kill');

    for (let k = 1; k <= kills; k++) {
      await settle();
      const pid = spawned.entry.spawnedPid!;
      const mark = log.entries.length;
      const start = performance.now();
      process.kill(pid, 'SIGKILL');
      recoveries.push(await untilServed(port, start, `supervisord kill ${k} (pid ${pid})`));
      spawned = await log.waitFor(mark, (e) => e.spawnedPid !== undefined && e.spawnedPid !== pid, `supervisord kill ${k}: a new pid`, exited);
      liveServers.set('supervisord', { pid: spawned.entry.spawnedPid!, marker });
      await log.waitFor(spawned.index, (e) => e.runningState === true, `supervisord kill ${k}: web entered RUNNING`, exited);
      for (const e of log.entries.slice(mark)) if (/ (CRIT|ERRO) /.test(e.text)) notes.push(`kill ${k}: ${e.text}`);
    }
  } catch (e) {
    throw new Error(`${(e as Error).message}\nsupervisord output (last lines):\n${log.last(10)}`);
  } finally {
    const problem = await stopSupervisor(daemon, 'supervisord');
    if (problem !== undefined) notes.push(`stop: ${problem}`);
  }
  return { recoveries, notes };
}

// ---------------------------------------------------------------------------------------------
// Report.

/** Nearest-rank percentile: the smallest sample with at least q of all samples at or below it. */
function percentile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

function summary(side: SideResult) {
  const ms = side.recoveries.map((r) => r.ms);
  const other: Record<string, number> = {};
  for (const r of side.recoveries) for (const [code, n] of Object.entries(r.other)) other[code] = (other[code] ?? 0) + n;
  return {
    p50: percentile(ms, 0.5), p90: percentile(ms, 0.9), max: Math.max(...ms), min: Math.min(...ms),
    refused: side.recoveries.reduce((n, r) => n + r.refused, 0),
    otherTotal: Object.values(other).reduce((a, b) => a + b, 0),
    other,
    attempts: side.recoveries.reduce((n, r) => n + r.attempts, 0),
  };
}

// --python picks the interpreter both sides run (default: python3 from PATH, resolved).
const { values } = parseArgs({ options: { kills: { type: 'string' }, python: { type: 'string' }, json: { type: 'string' } } });
const kills = positiveIntFlag(values.kills, 'kills', 20);

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sockvisor-recovery-'));
// An interrupted bench still leaves no supervisor, server or temp dir behind.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of liveSupervisors) tryKill(child.pid!);
    for (const side of [...liveServers.keys()]) killServer(side);
    rmSync(root, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}
try {
  const python = realInterpreter(values.python ?? 'python3');
  const { supervisord, version: supervisordVersion } = ensureSupervisor();
  // The headline is sockvisord with `standby: true`, its setting for the fastest recovery; the
  // cold row (a fresh interpreter per crash) is shown beside it.
  const ours = await runSockvisord(root, python.executable, kills, true);
  const cold = await runSockvisord(root, python.executable, kills, false);
  const theirs = await runSupervisord(root, python.executable, supervisord, kills);
  const s = summary(ours);
  const c = summary(cold);
  const t = summary(theirs);

  const cpus = os.cpus();
  const flags = [...(values.kills === undefined ? [] : ['--kills', String(kills)]), ...(values.python === undefined ? [] : ['--python', values.python])];
  const command = flags.length === 0 ? 'npm run bench:recovery' : `npm run bench:recovery -- ${flags.join(' ')}`;
  console.log(`machine: ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}, Python ${python.version}, ${os.type()} ${os.release()}`);
  console.log(`command: ${command}  (${kills} kills each; sockvisord with standby, sockvisord cold, then supervisord, never at once)`);
  console.log(`interpreter: ${python.executable} (both sides)`);
  console.log(`sockvisord:  this checkout, etc/demo/sockvisor.d/web.yaml on a held ${HOST}:0 socket, supervise: {start_seconds: 0.1, standby: true|false}; sandbox: ${ours.sandbox}`);
  console.log(`supervisord: ${supervisordVersion} (${supervisord}), [program:web] ${path.basename(python.executable)} bench/recovery/server.py PORT (binds ${HOST}:PORT itself, SO_REUSEADDR), autorestart=true startsecs=0`);
  console.log(`measured: SIGKILL to the serving process, then GET / on a new connection (${ATTEMPT_TIMEOUT_MS} ms timeout each, ${RETRY_GAP_MS} ms after a failure) until a complete 200 "${EXPECTED}"`);
  console.log(`          crash-to-served = the kill until the end of that response; the next kill waits for the supervisor to report the new pid, then ${SETTLE_MS} ms`);
  console.log('');
  const row = (cells: readonly string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(18) : cell.padStart(11))).join('');
  console.log(row(['', 'ms p50', 'ms p90', 'ms max', 'ms min', 'refused', 'other fail', 'attempts']));
  const sides = [['sockvisord standby', s], ['sockvisord cold', c], ['supervisord', t]] as const;
  for (const [name, x] of sides) {
    console.log(row([name, x.p50.toFixed(1), x.p90.toFixed(1), x.max.toFixed(1), x.min.toFixed(1), String(x.refused), String(x.otherTotal), String(x.attempts)]));
  }
  for (const [name, x] of sides) {
    if (x.otherTotal > 0) console.log(`${name} other failures: ${Object.entries(x.other).map(([c, n]) => `${n} ${c}`).join(', ')}`);
  }
  console.log('');
  console.log(`sockvisord standby per kill (ms/refused): ${ours.recoveries.map((r) => `${r.ms.toFixed(0)}/${r.refused}`).join(' ')}`);
  console.log(`sockvisord cold per kill (ms/refused): ${cold.recoveries.map((r) => `${r.ms.toFixed(0)}/${r.refused}`).join(' ')}`);
  console.log(`supervisord per kill (ms/refused): ${theirs.recoveries.map((r) => `${r.ms.toFixed(0)}/${r.refused}`).join(' ')}`);
  if (ours.exitMs.length > 0) {
    console.log(`sockvisord: kill until its "RUNNING -> STARTING" line (exit seen, restart begun), p50 ${percentile(ours.exitMs, 0.5)} ms, max ${Math.max(...ours.exitMs)} ms (log clock, 1 ms resolution)`);
  }
  console.log('');
  const ratio = t.p50 / s.p50;
  const word = (pass: boolean) => (pass ? 'PASS' : 'OVER');
  console.log(`sockvisord p50:                   ${s.p50.toFixed(1)} ms  ${word(s.p50 <= TARGET_P50_MS)} (target: at most ${TARGET_P50_MS} ms)`);
  console.log(`ratio supervisord / sockvisord:   ${ratio.toFixed(1)}x (p50)  ${word(ratio >= TARGET_RATIO)} (target: at least ${TARGET_RATIO}x)`);
  console.log(`sockvisord refused connections:   ${s.refused + c.refused}  ${word(s.refused + c.refused === 0)} (target: 0, standby and cold; supervisord: ${t.refused}; other failed attempts: sockvisord ${s.otherTotal + c.otherTotal}, supervisord ${t.otherTotal})`);
  console.log(`cold start, for reference:        p50 ${c.p50.toFixed(1)} ms, ${(t.p50 / c.p50).toFixed(1)}x faster than supervisord`);
  const notes = [...ours.notes.map((n) => `sockvisord standby ${n}`), ...cold.notes.map((n) => `sockvisord cold ${n}`), ...theirs.notes.map((n) => `supervisord ${n}`)];
  printNotes(notes);
  console.log('');
  console.log('percentiles are nearest-rank over all kills; p50 and p90 are measured samples');
  writeJson(values.json, { kills, python: python.version, supervisord: supervisordVersion, standby: s, cold: c, supervisordSide: t, notes });
} catch (e) {
  console.error(e instanceof Error ? `FAIL: ${e.message}` : e);
  process.exitCode = 1;
} finally {
  for (const child of liveSupervisors) tryKill(child.pid!);
  for (const side of [...liveServers.keys()]) killServer(side);
  await fs.rm(root, { recursive: true, force: true });
}
