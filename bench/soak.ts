/**
 * Soak: a real sockvisord under everything at once for N seconds, then strict checks.
 *
 *   npm run build && npm run soak [-- --seconds N] [--warmup W]
 *
 * N defaults to 60; W, the warm-up before the baseline, to half of N within 2 to 30 s.
 *
 * The daemon runs in a temporary directory with `watch: true`, four HTTP services (2 replicas each,
 * on held sockets at fixed ports, two of them with `standby: true`) and two "logger" services that
 * print numbered lines `SERVICE PID.START SEQ` (flushed per line) with small `max_bytes`, so their logs
 * rotate about once a second. For N seconds, all at once:
 *   - SIGKILLs of RUNNING service processes, about 10 a second (pids from the control protocol's
 *     `status`, which is what `sockvisorctl status --json` prints);
 *   - an argdata edit of the next HTTP service (round robin) every ~2 s, saved atomically (seen by the watcher),
 *     and an explicit `sockvisorctl reload` every ~3 s;
 *   - 8 HTTP/1.0 clients looping over the HTTP services;
 *   - `sockvisorctl status|pid|tail` in a loop.
 * A warm-up round of all of it comes first; the daemon's fd count and RSS are taken after it, once
 * everything is RUNNING again, and compared with the same figures after the run and a settle. RSS
 * is compared right after a full garbage collection at both points (heap-probe.ts says why).
 *
 * Exported as `runSoak` for test/soak.test.ts; run as a script it prints the summary and exits 0
 * when every check passed, 1 otherwise (2 on a bad flag).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { readFileSync, readlinkSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ControlClient } from '../src/control/client.js';
import { block, HEADER } from '../test/helpers/daemon.js';
import { versionedService } from '../test/helpers/reload.js';
import { exitOf, freePort, positiveIntFlag, tryKill, withTimeout } from './common.js';
import { HEAP_PROBE_MESSAGE, HEAP_PROBE_SIGNAL, type HeapProbeRecord } from './heap-probe.js';

const DAEMON = fileURLToPath(new URL('../src/cli/sockvisord.js', import.meta.url));
const CTL = fileURLToPath(new URL('../src/cli/sockvisorctl.js', import.meta.url));
const HEAP_PROBE = new URL('./heap-probe-preload.js', import.meta.url).href;

const WEB_SERVICES = 4;
const WEB_REPLICAS = 2;
const LOGGERS = 2;
const CLIENTS = 8;
const KILLS_PER_SECOND = 10;
const EDIT_EVERY_MS = 2000;
const RELOAD_EVERY_MS = 3000;
/** Logger log files: 16 KiB each; at ~20 KB/s per logger that is a rotation about every second. */
const LOG_MAX_BYTES = 16 * 1024;
/** Enough backups that nothing drops off in a long run (checked: the last one must not exist). */
const LOG_BACKUPS = 1000;
const REQUEST_TIMEOUT_MS = 10_000;
const SETTLE_DEADLINE_MS = 30_000;
const HEAP_PROBE_DEADLINE_MS = 10_000;
const TOLERANCE = 0.1;

export interface SoakOptions {
  readonly seconds: number;
  /** The warm-up before the baseline; defaults to defaultWarmupSeconds(seconds). */
  readonly warmupSeconds?: number;
  /** Progress lines; the summary is returned, not logged. */
  readonly log?: (line: string) => void;
  /** Aborting ends the run early (Ctrl-C); cleanup still happens. */
  readonly signal?: AbortSignal;
}

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface SoakResult {
  readonly passed: boolean;
  readonly checks: Check[];
  readonly summary: string;
  readonly figures: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Service files.

/** The tests' versioned HTTP service: it answers `web1 v3 pid N`, so a stale generation shows. */
function webService(index: number, version: number, port: number): string {
  const standby = index < 2 ? ', standby: true' : '';
  return versionedService(`web${index} v${version}`, `127.0.0.1:${port}`, `replicas: ${WEB_REPLICAS}, start_seconds: 0.3${standby}`);
}

/** Prints `NAME PID SEQ` lines, each flushed at once, so a SIGKILL loses none that was printed. */
function loggerService(name: string): string {
  return `${HEADER}supervise: {restart: always, start_seconds: 0.3, logs: {max_bytes: ${LOG_MAX_BYTES}, backups: ${LOG_BACKUPS}}}
stderr: !fd stderr
command: |
${block(`
import os, sys, time
process = '%d.%d' % (os.getpid(), time.time() * 1000)
n = 0
while True:
    print('${name} %s %d' % (process, n), flush=True)
    n += 1
    time.sleep(0.001)
`)}
`;
}

// ---------------------------------------------------------------------------------------------
// Small process helpers.

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

function procStat(pid: number): { state: string; ppid: number; pgrp: number } | undefined {
  try {
    const m = /^\d+ \(.*\) (\S) (\d+) (\d+)/s.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return m ? { state: m[1]!, ppid: Number(m[2]), pgrp: Number(m[3]) } : undefined;
  } catch {
    return undefined;
  }
}

async function childrenOf(pid: number): Promise<{ pid: number; state: string }[]> {
  const out: { pid: number; state: string }[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = procStat(Number(entry));
    if (s && s.ppid === pid) out.push({ pid: Number(entry), state: s.state });
  }
  return out;
}

async function fdCount(pid: number): Promise<number> {
  return (await fs.readdir(`/proc/${pid}/fd`)).length;
}

/** What each of the daemon's fds is: a path, `pipe:[N]`, or a socket named from /proc/net. */
async function fdTargets(pid: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const sockets = new Map<string, string>();
  for (const [table, kind] of [['tcp', 'tcp'], ['tcp6', 'tcp6'], ['unix', 'unix']] as const) {
    const text = await fs.readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (kind === 'unix' && cols.length >= 7) sockets.set(cols[6]!, `unix ${cols[7] ?? '(unnamed)'} st ${cols[5]}`);
      else if (kind !== 'unix' && cols.length >= 10) sockets.set(cols[9]!, `${kind} ${cols[1]} -> ${cols[2]} st ${cols[3]}`);
    }
  }
  for (const fd of await fs.readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const target = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '(closed)');
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    out.set(fd, inode ? `${target} ${sockets.get(inode) ?? '?'}` : target);
  }
  return out;
}

/** Pipes the daemon holds whose other end no other process holds (a dead child's pipe not closed). */
async function orphanPipes(pid: number, targets: Map<string, string>): Promise<string[]> {
  const mine = new Set([...targets.values()].filter((t) => t.startsWith('pipe:')));
  const elsewhere = new Set<string>();
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === pid) continue;
    for (const fd of await fs.readdir(`/proc/${entry}/fd`).catch(() => [] as string[])) {
      const t = await fs.readlink(`/proc/${entry}/fd/${fd}`).catch(() => '');
      if (mine.has(t)) elsewhere.add(t);
    }
  }
  return [...targets].filter(([, t]) => t.startsWith('pipe:') && !elsewhere.has(t)).map(([fd, t]) => `${fd}:${t}`);
}

/** Fds by kind, for the report: pipe, socket, anon_inode, file. */
function fdKinds(targets: Map<string, string>): string {
  const kinds = new Map<string, number>();
  for (const t of targets.values()) {
    const kind = t.startsWith('pipe:') ? 'pipe' : t.startsWith('socket:') ? t.split(' ')[1] ?? 'socket' : t.startsWith('anon_inode:') ? t : t.startsWith('/') ? 'file' : t;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  return [...kinds].sort().map(([k, n]) => `${n} ${k}`).join(', ');
}

const kib = (bytes: number): number => Math.round(bytes / 1024);

async function rssKiB(pid: number): Promise<number> {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(await fs.readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

function wcharOf(pid: number): number | undefined {
  try {
    const m = /^wchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

interface CtlResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

// ---------------------------------------------------------------------------------------------
// The run.

interface StatusProcess {
  name: string;
  service: string;
  state: string;
  pid: number;
}

interface Kill {
  at: number;
  pid: number;
  process: string;
  service: string;
  /** HTTP requests in flight on the service's port when the signal was sent. */
  inFlight: number;
  /** What its stdout and stderr were (pipe inodes), to name a pipe the daemon keeps after it. */
  pipes: string[];
  /** For a logger: bytes it had written (wchar) while stopped just before the kill. */
  wchar?: number;
}

interface Failure {
  port: number;
  start: number;
  end: number;
  kind: string;
  detail: string;
}

/**
 * Half the run, from 2 to 30 s. Under the soak's churn the daemon's RSS climbs for its first few
 * minutes, then levels off: V8 compiles the hot paths, its heap pages and the C library's malloc
 * arenas reach their working size. One 300 s run went from 90.7 MB after a 5 s warm-up to 103 MB
 * at about 160 s and stayed there, while the live JS heap grew only by compiled code. Compared
 * with a baseline taken that early, the check would measure start-up, not leaks.
 */
export function defaultWarmupSeconds(seconds: number): number {
  return Math.min(30, Math.max(2, Math.round(seconds / 2)));
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const log = options.log ?? (() => undefined);
  const seconds = options.seconds;
  const external = options.signal;
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sockvisor-soak-'));
  const files = {
    config: path.join(root, 'sockvisor.yaml'), servicesDir: path.join(root, 'sockvisor.d'), logsDir: path.join(root, 'logs'),
    pidfile: path.join(root, 'sockvisord.pid'), controlSocket: path.join(root, 'ctl.sock'),
  };
  const ctlChildren = new Set<ChildProcess>();
  const seenPids = new Set<number>();
  let daemon: ChildProcess | undefined;
  let client: ControlClient | undefined;
  const records: Record<string, unknown>[] = [];
  let daemonStderr = '';
  const notes: string[] = [];

  const ctl = (...args: string[]): Promise<CtlResult> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [CTL, '-s', files.controlSocket, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      ctlChildren.add(child);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => tryKill(child.pid!), 30_000);
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        ctlChildren.delete(child);
        resolve({ code, signal, stdout, stderr });
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        ctlChildren.delete(child);
        resolve({ code: null, signal: null, stdout, stderr: stderr + e.message });
      });
    });

  try {
    // --- set up ---
    const ports: number[] = [];
    while (ports.length < WEB_SERVICES) {
      const p = await freePort();
      if (!ports.includes(p)) ports.push(p);
    }
    const versions = ports.map(() => 0);
    await fs.mkdir(files.servicesDir);
    await fs.writeFile(
      files.config,
      `services: sockvisor.d\ncontrol: {socket: ctl.sock}\npidfile: sockvisord.pid\nlogs: {dir: logs, max_bytes: 64KB, backups: 50}\nwatch: true\n`,
    );
    const webFile = (i: number) => path.join(files.servicesDir, `web${i}.yaml`);
    for (let i = 0; i < WEB_SERVICES; i++) await fs.writeFile(webFile(i), webService(i, 0, ports[i]!));
    const loggerNames = Array.from({ length: LOGGERS }, (_, i) => `logger${i}`);
    for (const name of loggerNames) await fs.writeFile(path.join(files.servicesDir, `${name}.yaml`), loggerService(name));
    const serviceOfPort = new Map(ports.map((p, i) => [p, `web${i}`]));
    const portOfService = new Map(ports.map((p, i) => [`web${i}`, p]));
    const expectedProcesses = WEB_SERVICES * WEB_REPLICAS + LOGGERS;

    // The young generation at its full size from the start: V8 otherwise grows it from 1 MiB to
    // 16 MiB per semi-space under a high allocation rate, some 30 MB of RSS that comes and goes
    // with the load, not with what the daemon keeps. Old space, where a leak shows, is untouched.
    // The heap probe collects all garbage on a signal, for the RSS check (see heap-probe.ts).
    daemon = spawn(
      process.execPath,
      ['--min-semi-space-size=16', '--max-semi-space-size=16', '--expose-gc', '--import', HEAP_PROBE, DAEMON, 'run', '-c', files.config],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const daemonPid = daemon.pid!;
    const daemonExit = exitOf(daemon);
    let daemonGone = false;
    void daemonExit.then(() => (daemonGone = true));
    readline.createInterface({ input: daemon.stdout! }).on('line', (line) => {
      let r: Record<string, unknown>;
      try {
        r = JSON.parse(line) as Record<string, unknown>;
      } catch {
        r = { msg: line };
      }
      records.push(r);
      if (r['msg'] === 'state' && typeof r['pid'] === 'number') seenPids.add(r['pid']);
    });
    daemon.stderr!.on('data', (d: Buffer) => (daemonStderr += d.toString()));
    await withTimeout(
      (async () => {
        while (!records.some((r) => r['msg'] === 'sockvisord started')) {
          if (daemonGone) throw new Error(`sockvisord exited at start: ${daemonStderr}`);
          await sleep(20);
        }
      })(),
      15_000,
      'sockvisord started',
    );
    client = await ControlClient.connect(files.controlSocket);
    let lastStatus: StatusProcess[] = [];
    const status = async (): Promise<StatusProcess[]> => {
      const answer = await client!.request<{ processes: StatusProcess[] }>('status', {});
      for (const p of answer.processes) if (p.pid > 0) seenPids.add(p.pid);
      lastStatus = answer.processes;
      return answer.processes;
    };

    /** Polls until every process is RUNNING, no child is a zombie, and the fd count holds still. */
    const settle = async (what: string): Promise<{ ok: boolean; detail: string; fds: number; rss: number; targets: Map<string, string>; orphans: number }> => {
      const deadline = Date.now() + SETTLE_DEADLINE_MS;
      let last = '';
      let previousFds = -1;
      let stableSince = 0;
      for (;;) {
        const ps = await status();
        const notRunning = ps.filter((p) => p.state !== 'RUNNING');
        const zombies = (await childrenOf(daemonPid)).filter((c) => c.state === 'Z');
        const fds = await fdCount(daemonPid);
        const good = ps.length === expectedProcesses && notRunning.length === 0 && zombies.length === 0;
        if (good && fds === previousFds) {
          if (Date.now() - stableSince >= 500) {
            const targets = await fdTargets(daemonPid);
            return { ok: true, detail: '', fds, rss: await rssKiB(daemonPid), targets, orphans: (await orphanPipes(daemonPid, targets)).length };
          }
        } else stableSince = Date.now();
        previousFds = good ? fds : -1;
        last = `${ps.length} processes; not RUNNING: ${notRunning.map((p) => `${p.name}=${p.state}`).join(' ') || 'none'}; zombies: ${zombies.map((z) => z.pid).join(' ') || 'none'}; fds ${fds}`;
        if (Date.now() > deadline) return { ok: false, detail: `${what}: not settled within ${SETTLE_DEADLINE_MS} ms: ${last}`, fds, rss: await rssKiB(daemonPid), targets: await fdTargets(daemonPid), orphans: -1 };
        await sleep(100);
      }
    };

    /** The daemon's memory right after a full garbage collection. */
    const collectedMemory = async (): Promise<HeapProbeRecord> => {
      const seen = records.length;
      process.kill(daemonPid, HEAP_PROBE_SIGNAL);
      const deadline = Date.now() + HEAP_PROBE_DEADLINE_MS;
      for (;;) {
        const answer = records.slice(seen).find((r) => r['msg'] === HEAP_PROBE_MESSAGE);
        if (answer) return answer as unknown as HeapProbeRecord;
        if (daemonGone || Date.now() > deadline) throw new Error(`no "${HEAP_PROBE_MESSAGE}" from sockvisord within ${HEAP_PROBE_DEADLINE_MS} ms of ${HEAP_PROBE_SIGNAL}`);
        await sleep(20);
      }
    };

    const first = await settle('start');
    if (!first.ok) throw new Error(first.detail);
    log(`sockvisord ${daemonPid} up: ${expectedProcesses} processes RUNNING, ports ${ports.join(' ')}`);

    // --- the activities ---
    const tally = {
      kills: [] as Kill[],
      killSkips: 0,
      edits: 0,
      reloads: 0,
      reloadErrors: [] as string[],
      requests: 0,
      ok: 0,
      failures: [] as Failure[],
      ctlCalls: 0,
      ctlErrors: [] as string[],
      statusErrors: [] as string[],
    };
    const rssSamples: number[] = [];
    const pipeOwners = new Map<string, string>();

    const inFlight = new Map<number, number>(ports.map((p) => [p, 0]));

    const request = (port: number): Promise<void> =>
      new Promise((resolve) => {
        const start = Date.now();
        inFlight.set(port, inFlight.get(port)! + 1);
        tally.requests++;
        const socket = net.connect({ host: '127.0.0.1', port });
        const chunks: Buffer[] = [];
        let done = false;
        const finish = (kind: string | undefined, detail = '') => {
          if (done) return;
          done = true;
          socket.destroy();
          inFlight.set(port, inFlight.get(port)! - 1);
          if (kind === undefined) tally.ok++;
          else tally.failures.push({ port, start, end: Date.now(), kind, detail });
          resolve();
        };
        socket.setTimeout(REQUEST_TIMEOUT_MS, () => finish('timeout'));
        socket.on('connect', () => socket.write('GET / HTTP/1.0\r\nHost: soak\r\n\r\n'));
        socket.on('data', (d) => chunks.push(d));
        socket.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          const m = /^HTTP\/1\.0 200 OK\r\n\r\n(web\d+) v(\d+) pid \d+\n$/.exec(text);
          if (!m || m[1] !== serviceOfPort.get(port)) finish(text === '' ? 'empty response' : 'incomplete response', JSON.stringify(text.slice(0, 100)));
          else finish(undefined);
        });
        socket.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? 'error', e.message));
      });

    const killOne = async (): Promise<void> => {
      let ps: StatusProcess[];
      try {
        ps = await status();
      } catch (e) {
        tally.statusErrors.push((e as Error).message);
        return;
      }
      const killed = new Set(tally.kills.map((k) => k.pid));
      // Only RUNNING processes: a kill while STARTING is an early exit, and enough of those in a
      // row make a service FATAL by design, which is not what this soak is about.
      const candidates = ps.filter((p) => p.state === 'RUNNING' && p.pid > 0 && !killed.has(p.pid) && procStat(p.pid)?.ppid === daemonPid);
      const victim = candidates[Math.floor(Math.random() * candidates.length)];
      if (!victim) {
        tally.killSkips++;
        return;
      }
      const port = portOfService.get(victim.service);
      let wchar: number | undefined;
      if (victim.service.startsWith('logger')) {
        // Stopped, its write count cannot move before the kill: the check compares it with what
        // reached the log.
        tryKill(victim.pid, 'SIGSTOP');
        for (let i = 0; i < 50 && procStat(victim.pid)?.state !== 'T'; i++) await sleep(2);
        wchar = procStat(victim.pid)?.state === 'T' ? wcharOf(victim.pid) : undefined;
      }
      const pipes = [1, 2].map((fd) => {
        try {
          return readlinkSync(`/proc/${victim.pid}/fd/${fd}`);
        } catch {
          return '?';
        }
      });
      const kill: Kill = { at: Date.now(), pid: victim.pid, process: victim.name, service: victim.service, inFlight: port === undefined ? 0 : inFlight.get(port)!, pipes };
      if (wchar !== undefined) kill.wchar = wchar;
      tally.kills.push(kill);
      tryKill(victim.pid, 'SIGKILL');
    };

    const edit = async (): Promise<void> => {
      // Round robin, so that even a short run edits every service (the standby ones included).
      const i = tally.edits % WEB_SERVICES;
      versions[i]! += 1;
      const file = webFile(i);
      const temp = path.join(root, `.web${i}.yaml.tmp`);
      await fs.writeFile(temp, webService(i, versions[i]!, ports[i]!));
      await fs.rename(temp, file);
      tally.edits++;
    };

    const reload = async (): Promise<void> => {
      const r = await ctl('reload');
      tally.reloads++;
      if (r.code !== 0) tally.reloadErrors.push(`exit ${r.code ?? r.signal}: ${(r.stdout + r.stderr).trim().slice(0, 300)}`);
    };

    const ctlRound = async (): Promise<void> => {
      for (const args of [['status'], ['status', '--json'], ['pid'], ['pid', 'web0:1'], ['tail', 'logger0'], ['tail', 'logger1', 'stderr']]) {
        const r = await ctl(...args);
        tally.ctlCalls++;
        // `status` exits 3 while a killed process is being replaced, `pid NAME` may exit 1 then;
        // unreachable (4), a crash or a signal are errors.
        const fine = r.code === 0 || (args[0] === 'status' && r.code === 3) || (args[0] === 'pid' && args.length > 1 && r.code === 1);
        if (!fine) tally.ctlErrors.push(`${args.join(' ')}: exit ${r.code ?? r.signal}: ${(r.stdout + r.stderr).trim().slice(0, 200)}`);
        if (args[0] === 'status' && args[1] === '--json' && r.code !== null && r.code !== 4) {
          try {
            JSON.parse(r.stdout);
          } catch {
            tally.ctlErrors.push(`status --json printed no JSON: ${r.stdout.slice(0, 200)}`);
          }
        }
      }
    };

    /** Runs every activity for `ms` (and at least one round of each); resolves when all stopped. */
    const activities = async (ms: number): Promise<void> => {
      const until = Date.now() + ms;
      const stop = new AbortController();
      setMaxListeners(64, stop.signal);
      const onAbort = () => stop.abort();
      external?.addEventListener('abort', onAbort, { once: true });
      if (external?.aborted) stop.abort();
      const timer = setTimeout(() => stop.abort(), ms);
      const going = () => !stop.signal.aborted && Date.now() < until;
      /** `fn` at a steady rate, catching up after a slow call (the kills keep their rate). */
      const steady = async (everyMs: number, fn: () => Promise<void>) => {
        const start = Date.now();
        for (let n = 1; going(); n++) {
          await fn();
          await sleep(Math.max(0, start + n * everyMs - Date.now()), stop.signal);
        }
      };
      /** Which child held which pipe, so a pipe the daemon keeps after its child is gone can be named. */
      const pipeScan = async () => {
        const named = new Map(lastStatus.map((p) => [p.pid, p.name]));
        for (const c of await childrenOf(daemonPid)) {
          for (const fd of await fs.readdir(`/proc/${c.pid}/fd`).catch(() => [] as string[])) {
            const t = await fs.readlink(`/proc/${c.pid}/fd/${fd}`).catch(() => '');
            if (t.startsWith('pipe:') && !pipeOwners.has(t)) pipeOwners.set(t, `pid ${c.pid} ${named.get(c.pid) ?? '(not in status: standby?)'} fd ${fd}`);
          }
        }
      };
      const rss = async () => {
        rssSamples.push(await rssKiB(daemonPid).catch(() => NaN));
      };
      const loop = async (everyMs: number, fn: () => Promise<void>) => {
        do {
          const t0 = Date.now();
          await fn();
          await sleep(Math.max(0, everyMs * (0.5 + Math.random()) - (Date.now() - t0)), stop.signal);
        } while (going());
      };
      try {
        await Promise.all([
          steady(1000 / KILLS_PER_SECOND, killOne),
          steady(1000, rss),
          steady(150, pipeScan),
          loop(EDIT_EVERY_MS, edit),
          loop(RELOAD_EVERY_MS, reload),
          loop(0, ctlRound),
          ...Array.from({ length: CLIENTS }, () => loop(0, () => request(ports[Math.floor(Math.random() * ports.length)]!))),
        ]);
      } finally {
        clearTimeout(timer);
        external?.removeEventListener('abort', onAbort);
      }
    };

    // --- warm-up, baseline, run, settle ---
    const warmupMs = Math.round((options.warmupSeconds ?? defaultWarmupSeconds(seconds)) * 1000);
    log(`warm-up: ${warmupMs} ms of every activity`);
    await activities(warmupMs);
    if (external?.aborted) throw new Error('interrupted');
    const killsInWarmup = tally.kills.length;
    const failuresInWarmup = tally.failures.length;
    // A last reload applies any edit whose swap a kill got in the way of.
    await reload();
    const base = await settle('after warm-up');
    if (!base.ok) throw new Error(base.detail);
    const baseMemory = await collectedMemory();
    log(`baseline after warm-up and settle: ${base.fds} fds, RSS ${base.rss} KiB, ${kib(baseMemory.rss)} KiB after a full collection`);

    const t0 = Date.now();
    rssSamples.length = 0;
    log(`soak: ${seconds} s`);
    await activities(seconds * 1000);
    const ranMs = Date.now() - t0;
    if (external?.aborted) throw new Error('interrupted');
    await reload();
    const end = await settle('after the run');
    const endMemory = end.ok ? await collectedMemory() : undefined;
    const checks: Check[] = [];
    const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });

    // Every service RUNNING, and sockvisorctl agrees.
    const final = await ctl('status', '--json');
    let finalProcesses: StatusProcess[] = [];
    try {
      finalProcesses = (JSON.parse(final.stdout) as { processes: StatusProcess[] }).processes;
    } catch {
      // reported below
    }
    const notRunning = finalProcesses.filter((p) => p.state !== 'RUNNING');
    check(
      'every process RUNNING (sockvisorctl status --json)',
      end.ok && final.code === 0 && finalProcesses.length === expectedProcesses && notRunning.length === 0,
      `${finalProcesses.length} of ${expectedProcesses} listed; exit ${final.code}; not RUNNING: ${notRunning.map((p) => `${p.name}=${p.state}`).join(' ') || 'none'}${end.ok ? '' : `; ${end.detail}`}`,
    );
    const zombies = (await childrenOf(daemonPid)).filter((c) => c.state === 'Z');
    check('no zombie child of the daemon', zombies.length === 0, zombies.length ? `zombies: ${zombies.map((z) => z.pid).join(' ')}` : 'none');
    const within = (a: number, b: number) => Math.abs(b - a) <= a * TOLERANCE;
    const endOrphans = await orphanPipes(daemonPid, end.targets);
    notes.push(`daemon fds by kind: baseline ${fdKinds(base.targets)}; end ${fdKinds(end.targets)}`);
    const owner = (t: string) => {
      const pipe = t.slice(t.indexOf(':') + 1);
      const k = tally.kills.find((x) => x.pipes.includes(pipe));
      const flags = (() => {
        try {
          return Number.parseInt(/^flags:\s+(\d+)/m.exec(readFileSync(`/proc/${daemonPid}/fdinfo/${t.slice(0, t.indexOf(':'))}`, 'utf8'))?.[1] ?? '0', 8) & 3 ? 'write end' : 'read end';
        } catch {
          return '?';
        }
      })();
      return ` (${flags}; ${k ? `${k.process} pid ${k.pid}, ${k.pipes.indexOf(pipe) === 0 ? 'stdout' : 'stderr'}, killed ${new Date(k.at).toISOString().slice(11, 23)}` : pipeOwners.get(pipe) ?? 'no child seen holding it'})`;
    };
    // A pipe whose both ends the daemon holds is its own (libuv's signal and wakeup pipes); one
    // end alone, with nobody at the other, is a leak: a dead child's pipe never closed.
    const pairOf = (list: string[]) => {
      const count = new Map<string, number>();
      for (const o of list) count.set(o.slice(o.indexOf(':') + 1), (count.get(o.slice(o.indexOf(':') + 1)) ?? 0) + 1);
      return list.filter((o) => count.get(o.slice(o.indexOf(':') + 1)) === 1);
    };
    const leaked = pairOf(endOrphans);
    check(
      'no pipe end left in the daemon after its process is gone',
      leaked.length === 0,
      `${leaked.length} single pipe ends with nobody at the other end (${base.orphans} pipe fds with no other holder at the baseline, ${endOrphans.length} at the end, own pairs included)${leaked.length ? `: ${leaked.slice(0, 12).map((o) => o + owner(o)).join(', ')}` : ''}`,
    );
    const fdDiff = [...end.targets].filter(([fd, target]) => base.targets.get(fd) !== target).map(([fd, target]) => `${fd}: ${target}`);
    const fdGone = [...base.targets].filter(([fd]) => !end.targets.has(fd)).map(([fd, target]) => `${fd}: ${target}`);
    check(
      'daemon fd count within 10 % of the baseline',
      within(base.fds, end.fds),
      `${base.fds} -> ${end.fds}${within(base.fds, end.fds) ? '' : `; new or changed at the end: ${fdDiff.join(', ') || 'none'}; gone: ${fdGone.join(', ') || 'none'}`}`,
    );
    const [baseRss, endRss] = [kib(baseMemory.rss), endMemory ? kib(endMemory.rss) : NaN];
    check(
      'daemon RSS within 10 % of the baseline, each taken after a full collection',
      within(baseRss, endRss),
      `${baseRss} KiB -> ${endRss} KiB; V8 heap in use ${kib(baseMemory.heapUsed)} -> ${endMemory ? kib(endMemory.heapUsed) : NaN} KiB; before the collections ${base.rss} -> ${end.rss} KiB`,
    );

    // Every edit served: the last version of each service answers (the sockets never moved).
    const served: string[] = [];
    for (let i = 0; i < WEB_SERVICES; i++) {
      const body = await new Promise<string>((resolve) => {
        const socket = net.connect({ host: '127.0.0.1', port: ports[i]! });
        let text = '';
        socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
        socket.on('connect', () => socket.write('GET / HTTP/1.0\r\n\r\n'));
        socket.on('data', (d) => (text += d.toString()));
        socket.on('close', () => resolve(text));
        socket.on('error', () => undefined);
      });
      served.push(/(web\d+ v\d+)/.exec(body)?.[1] ?? JSON.stringify(body.slice(0, 60)));
    }
    const wanted = versions.map((v, i) => `web${i} v${v}`);
    check('each HTTP service serves its last edit', served.join(',') === wanted.join(','), `served ${served.join(', ')}; last edits ${wanted.join(', ')}`);

    // Requests. ECONNREFUSED never: the sockets are held. Any other failure must be a connection
    // a killed process had accepted: the bound is that each failure's port had a kill of one of
    // its processes while that request was open, and that there are no more failures than the
    // requests that were in flight on the killed processes' ports at the kill instants (an
    // over-count, since a request in flight on the port may be held by the other replica or not
    // yet accepted, so the bound is loose on the high side but never lets an unexplained failure
    // through: the per-failure attribution is the strict part). A timeout is never excused.
    const killsByService = new Map<string, Kill[]>();
    for (const k of tally.kills) killsByService.set(k.service, [...(killsByService.get(k.service) ?? []), k]);
    const refused = tally.failures.filter((f) => f.kind === 'ECONNREFUSED');
    const unexplained = tally.failures.filter((f) => {
      if (f.kind === 'ECONNREFUSED' || f.kind === 'timeout') return true;
      const kills = killsByService.get(serviceOfPort.get(f.port)!) ?? [];
      return !kills.some((k) => k.at >= f.start - 5 && k.at <= f.end + 5);
    });
    const boundInFlight = tally.kills.reduce((n, k) => n + k.inFlight, 0);
    // For an unexplained failure, what the daemon logged about that service around it.
    for (const f of unexplained.slice(0, 3)) {
      const service = serviceOfPort.get(f.port);
      const around = records.filter((r) => r['service'] === service && typeof r['time'] === 'number' && (r['time'] as number) >= f.start - 1500 && (r['time'] as number) <= f.end + 1500);
      notes.push(
        `unexplained ${f.kind} on ${service} (${new Date(f.start).toISOString().slice(11, 23)} to ${new Date(f.end).toISOString().slice(11, 23)}); daemon log for ${service} around it: ` +
          (around.map((r) => `${new Date(r['time'] as number).toISOString().slice(11, 23)} ${r['msg']} ${['process', 'generation', 'from', 'to', 'pid', 'reason'].filter((k) => r[k] !== undefined).map((k) => `${k}=${String(r[k])}`).join(' ')}`).join(' | ') || 'nothing'),
      );
      const nearKills = tally.kills.filter((k) => Math.abs(k.at - f.start) < 1500).map((k) => `${k.process}@${new Date(k.at).toISOString().slice(11, 23)}`);
      notes.push(`  kills within 1.5 s of it: ${nearKills.join(' ') || 'none'}`);
    }
    const byKind = new Map<string, number>();
    for (const f of tally.failures) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
    const kinds = [...byKind].map(([k, n]) => `${n} ${k}`).join(', ') || 'none';
    check('no refused connection', refused.length === 0, `${refused.length} ECONNREFUSED of ${tally.requests} requests`);
    check(
      'every failed request attributable to a kill',
      unexplained.length === 0 && tally.failures.length <= boundInFlight,
      `${tally.failures.length} failed (${kinds}); ${unexplained.length} with no kill of their service while open${unexplained.length ? ` (first: ${JSON.stringify(unexplained[0])})` : ''}; bound ${boundInFlight} requests in flight at kills`,
    );
    check('HTTP clients made progress', tally.ok > seconds * 20, `${tally.ok} complete responses`);

    check('every sockvisorctl call reached the daemon and worked', tally.ctlErrors.length === 0 && tally.statusErrors.length === 0, `${tally.ctlCalls} calls; ${tally.ctlErrors.length + tally.statusErrors.length} errors${tally.ctlErrors[0] ? `; first: ${tally.ctlErrors[0]}` : ''}${tally.statusErrors[0] ? `; status: ${tally.statusErrors[0]}` : ''}`);

    // Stop the daemon: it writes out everything in the pipes before it exits.
    client.close();
    client = undefined;
    tryKill(daemonPid, 'SIGTERM');
    await withTimeout(daemonExit, 30_000, 'sockvisord exit after SIGTERM');
    check('sockvisord stopped cleanly on SIGTERM', daemon.exitCode === 0, `exit ${daemon.exitCode ?? daemon.signalCode}`);

    // Logs: every logger process's lines, oldest file first, must be 0, 1, 2, ... each once.
    const logResult = await checkLoggerLogs(files.logsDir, loggerNames, tally.kills);
    check('logger logs: every line once, in order, none lost (across rotation)', logResult.problems.length === 0, `${logResult.summary}${logResult.problems.length ? `; ${logResult.problems.slice(0, 5).join('; ')}` : ''}`);
    notes.push(...logResult.notes);
    check('no logger log dropped off (backups never ran out)', !logResult.droppedOff, logResult.droppedOff ? `a .${LOG_BACKUPS} backup exists` : `highest backup .${logResult.highestBackup}`);

    const failed = checks.filter((c) => !c.ok);
    const reloadsDone = records.filter((r) => r['msg'] === 'reload done').length;
    const figures = {
      seconds, ranMs, warmupMs, kills: tally.kills.length - killsInWarmup, killsTotal: tally.kills.length, killSkips: tally.killSkips,
      edits: tally.edits, ctlReloads: tally.reloads, reloadErrors: tally.reloadErrors, reloadsDone, requests: tally.requests, ok: tally.ok,
      failures: tally.failures.length, failuresInWarmup, failureKinds: kinds, boundInFlight, rotations: logResult.rotations, loggerLines: logResult.lines,
      loggerPids: logResult.pids, ctlCalls: tally.ctlCalls, rssSamples, fds: [base.fds, end.fds], rssKiB: [base.rss, end.rss],
      collectedRssKiB: [baseRss, endRss], heapUsedKiB: [kib(baseMemory.heapUsed), endMemory ? kib(endMemory.heapUsed) : NaN],
    };
    const summary = [
      `soak: ${seconds} s requested, ${(ranMs / 1000).toFixed(1)} s run after a ${warmupMs / 1000} s warm-up (figures include the warm-up unless said)`,
      `machine: ${os.cpus().length} cores, Node ${process.version}`,
      `services: ${WEB_SERVICES} HTTP x ${WEB_REPLICAS} replicas (web0, web1 with standby), ${LOGGERS} loggers (max_bytes ${LOG_MAX_BYTES}, backups ${LOG_BACKUPS})`,
      `kills: ${tally.kills.length} SIGKILLs (${tally.kills.length - killsInWarmup} in the run, ${((tally.kills.length - killsInWarmup) / (ranMs / 1000)).toFixed(1)}/s; ${tally.kills.filter((k) => k.service.startsWith('logger')).length} of loggers); ${tally.killSkips} ticks found nothing RUNNING to kill`,
      `edits: ${tally.edits} argdata edits saved atomically; reloads: ${tally.reloads} sockvisorctl reload (${tally.reloadErrors.length} exited non-zero), ${reloadsDone} "reload done" in the daemon log`,
      `requests: ${tally.requests}, ${tally.ok} complete, ${tally.failures.length} failed (${kinds}; ${failuresInWarmup} in the warm-up); bound: ${boundInFlight} in flight at kill instants`,
      `logs: ${logResult.rotations} rotations, ${logResult.lines} logger lines from ${logResult.pids} processes`,
      `sockvisorctl: ${tally.ctlCalls} calls (status, status --json, pid, pid web0:1, tail)`,
      `daemon fds: ${base.fds} -> ${end.fds}; RSS: ${base.rss} -> ${end.rss} KiB, after a full collection ${baseRss} -> ${endRss} KiB (baseline taken after the warm-up, once everything was RUNNING again; end after the run and a settle)`,
      `daemon RSS during the run, once a second (KiB): ${rssSamples.join(' ')}`,
      ...(tally.reloadErrors.length ? [`reload errors: ${tally.reloadErrors.slice(0, 3).join(' | ')}`] : []),
      ...notes,
      '',
      ...checks.map((c) => `${c.ok ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`),
      '',
      failed.length === 0 ? 'PASS: every check passed' : `FAIL: ${failed.length} check(s) failed: ${failed.map((c) => c.name).join('; ')}`,
    ].join('\n');
    return { passed: failed.length === 0, checks, summary, figures };
  } finally {
    client?.close();
    for (const child of ctlChildren) tryKill(child.pid!);
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      tryKill(daemon.pid!, 'SIGTERM');
      await withTimeout(exitOf(daemon), 15_000, 'sockvisord exit').catch(() => {
        tryKill(daemon!.pid!, 'SIGKILL');
        return withTimeout(exitOf(daemon!), 5000, 'sockvisord exit after SIGKILL').catch(() => undefined);
      });
    }
    // Anything left in a service's process group (the daemon kills them; this is the backstop).
    for (const pid of seenPids) if (procStat(pid)?.pgrp === pid) tryKill(-pid, 'SIGKILL');
    await fs.rm(root, { recursive: true, force: true });
  }
}

/**
 * Reads every logger's stdout log, oldest backup first, and checks each process's numbers: they
 * must run 0, 1, 2, ... with no gap, repeat or reordering. For a process killed by the soak, the
 * bytes it had written when it was stopped just before its SIGKILL (wchar) must all be in the log:
 * what it wrote besides its lines (the runner's sandbox report on stderr) is the same for every
 * process, so the difference must be the same constant for all of them.
 */
async function checkLoggerLogs(logsDir: string, loggers: readonly string[], kills: readonly Kill[]) {
  const names = await fs.readdir(logsDir);
  const problems: string[] = [];
  const notes: string[] = [];
  let rotations = 0;
  let lines = 0;
  let highestBackup = 0;
  let droppedOff = false;
  // A process is its pid and its start time (ms): in a long run the kernel hands a pid out again.
  const next = new Map<string, number>();
  const bytes = new Map<string, number>();
  const startsOfPid = new Map<number, number[]>();
  for (const logger of loggers) {
    const base = `${logger}.stdout.log`;
    const backups = names.filter((n) => n.startsWith(`${base}.`)).map((n) => Number(n.slice(base.length + 1))).filter((n) => Number.isInteger(n)).sort((a, b) => b - a);
    rotations += names.filter((n) => n.startsWith(`${logger}.`) && /\.log\.\d+$/.test(n)).length;
    highestBackup = Math.max(highestBackup, backups[0] ?? 0);
    if (backups.includes(LOG_BACKUPS)) droppedOff = true;
    for (let i = 1; i <= (backups[0] ?? 0); i++) if (!backups.includes(i)) problems.push(`${base}.${i} missing`);
    for (const file of [...backups.map((n) => `${base}.${n}`), base]) {
      const text = await fs.readFile(path.join(logsDir, file), 'utf8').catch(() => '');
      if (text === '') continue;
      if (!text.endsWith('\n')) problems.push(`${file} does not end on a line boundary`);
      for (const line of text.replace(/\n$/, '').split('\n')) {
        if (line.startsWith('sandbox: ')) continue;
        const m = /^(logger\d+) ((\d+)\.(\d+)) (\d+)$/.exec(line);
        if (!m || m[1] !== logger) {
          problems.push(`${file}: not a whole line of ${logger}: ${JSON.stringify(line.slice(0, 80))}`);
          continue;
        }
        lines++;
        const writer = m[2]!;
        const seq = Number(m[5]);
        const want = next.get(writer) ?? 0;
        if (want === 0 && seq === 0) startsOfPid.set(Number(m[3]), [...(startsOfPid.get(Number(m[3])) ?? []), Number(m[4])]);
        if (seq !== want) problems.push(`${file}: process ${writer}: ${seq} where ${want} was due (${seq < want ? 'repeat or reorder' : `${seq - want} lost`})`);
        next.set(writer, Math.max(want, seq + 1));
        bytes.set(writer, (bytes.get(writer) ?? 0) + Buffer.byteLength(line) + 1);
      }
    }
  }
  // Lines written but not in the log: wchar minus the logged bytes, one constant for every kill.
  const extras = new Map<number, number[]>();
  for (const k of kills) {
    if (k.wchar === undefined) continue;
    const started = Math.max(...(startsOfPid.get(k.pid) ?? []).filter((t) => t <= k.at));
    const extra = k.wchar - (bytes.get(`${k.pid}.${started}`) ?? 0);
    extras.set(extra, [...(extras.get(extra) ?? []), k.pid]);
  }
  if (extras.size > 1) {
    const common = [...extras].sort((a, b) => b[1].length - a[1].length)[0]![0];
    // More written than logged is a loss; less (seen once: a process whose runner report was not
    // counted in its wchar) cannot hide a lost line, so it is only noted.
    for (const [extra, pids] of extras) {
      if (extra > common) problems.push(`pids ${pids.slice(0, 5).join(' ')} wrote ${extra - common} bytes more than reached the log`);
      else if (extra < common) notes.push(`pids ${pids.slice(0, 5).join(' ')}: ${common - extra} bytes fewer written than the others' non-line bytes (not a loss)`);
    }
  }
  const stoppedKills = kills.filter((k) => k.wchar !== undefined).length;
  const summary = `${lines} lines from ${next.size} processes in ${rotations + loggers.length} files; ${stoppedKills} killed loggers with a write count, non-line bytes ${[...extras.keys()].join('/') || 'n/a'}`;
  return { problems, notes, rotations, lines, pids: next.size, highestBackup, droppedOff, summary };
}

// ---------------------------------------------------------------------------------------------
// As a script.

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const { values } = parseArgs({ options: { seconds: { type: 'string' }, warmup: { type: 'string' } }, strict: true });
  const seconds = positiveIntFlag(values.seconds, 'seconds', 60);
  const warmupSeconds = positiveIntFlag(values.warmup, 'warmup', defaultWarmupSeconds(seconds));
  const abort = new AbortController();
  let interrupted = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted++;
    if (interrupted > 1) process.exit(130);
    console.error(`${sig}: stopping and cleaning up ...`);
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await runSoak({ seconds, warmupSeconds, log: (line) => console.error(line), signal: abort.signal });
    console.log(result.summary);
    process.exitCode = result.passed ? 0 : 1;
  } catch (e) {
    console.error(abort.signal.aborted ? 'interrupted: every process stopped, temporary directory removed' : `FAIL: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = abort.signal.aborted ? 130 : 1;
  }
}
