/**
 * `sockvisorctl status` beside `supervisorctl status`, each against its own daemon running the same
 * 50 tiny Python services (`import time; while True: time.sleep(3600)`) on the same real
 * interpreter: sockvisord from this checkout, and Debian's supervisord (`supervisor` package;
 * installed with apt-get when `supervisord` is missing). Both daemons run while the clients are
 * timed; the clients take turns, in rotating order. Measured: the wall time of the whole client
 * process, from spawn to exit. Target: `sockvisorctl -c CONFIG status` at most 0.6 times
 * `supervisorctl -c CONF status` (median).
 *
 *   npm run build && npm run bench:ctl [-- --runs N] [-- --python PATH]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureSupervisor, exitOf, exitOnInterrupt, isOurs, killByMarker, positiveIntFlag, printNotes, realInterpreter, sockvisordConfig, stats, stopChild, supervisordConfig, tryKill, withTimeout, writeJson } from './common.js';

const DAEMON = fileURLToPath(new URL('../src/cli/sockvisord.js', import.meta.url));
const CTL = fileURLToPath(new URL('../src/cli/sockvisorctl.js', import.meta.url));
const SERVICES = 50;
const TARGET_RATIO = 0.6;
/** For the daemons to start all their services, and to stop. */
const DEADLINE_MS = 30_000;
const PROGRAM = 'import time\nwhile True:\n    time.sleep(3600)\n';
const svcName = (i: number) => `svc${String(i).padStart(2, '0')}`;

// ---------------------------------------------------------------------------------------------
// Cleanup bookkeeping: every process this bench starts, so that every way out stops it.

/** The two daemons, while they may be alive. */
const liveDaemons = new Set<ChildProcess>();
/** Service processes the daemons reported, with a string their command line must contain. */
const servicePids = new Map<number, string>();
/** Clients being timed. */
const liveClients = new Set<ChildProcess>();



/** Kills whatever service process is still ours, and its process group. */
function killServices(): number {
  let left = 0;
  for (const [pid, marker] of servicePids) {
    if (isOurs(pid, marker)) {
      left++;
      tryKill(-pid);
      tryKill(pid);
    }
  }
  servicePids.clear();
  return left;
}

/** Command-line markers of service processes: sockvisord's carry `--daemon-pid N`. */
const markers = new Set<string>();

function killEverything(): void {
  for (const child of liveClients) tryKill(child.pid!);
  for (const child of liveDaemons) tryKill(child.pid!);
  killServices();
  // A process spawned just before its daemon was killed, before the line that names it was read.
  killByMarker([root, ...markers]);
}

// ---------------------------------------------------------------------------------------------
// Daemons.



/** A daemon's output, line by line: `until` resolves once `done` says so, or rejects. */
class Output {
  readonly lines: string[] = [];
  private readonly listeners = new Set<() => void>();

  constructor(child: ChildProcess) {
    for (const stream of [child.stdout!, child.stderr!]) {
      readline.createInterface({ input: stream }).on('line', (line) => {
        this.lines.push(line);
        for (const l of this.listeners) l();
      });
    }
  }

  until(done: () => boolean, what: string, exited: Promise<void>): Promise<void> {
    return withTimeout(
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (done()) {
            this.listeners.delete(check);
            resolve();
          }
        };
        this.listeners.add(check);
        check();
        void exited.then(() => {
          this.listeners.delete(check);
          reject(new Error(`the daemon exited while waiting for ${what}; its last lines:\n${this.last(10)}`));
        });
      }),
      DEADLINE_MS,
      what,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nlast output lines:\n${this.last(10)}`);
    });
  }

  last(n: number): string {
    return this.lines.slice(-n).join('\n') || '(none)';
  }
}

/** SIGTERM, a grace period for the daemon's orderly stop, then SIGKILL. Returns a problem, if any. */
async function stopDaemon(child: ChildProcess, name: string): Promise<string | undefined> {
  const problem = await stopChild(child, name, DEADLINE_MS);
  liveDaemons.delete(child);
  return problem;
}

interface Side {
  readonly name: string;
  readonly daemon: ChildProcess;
  readonly version: string;
}

async function startSockvisord(root: string, python: string): Promise<Side & { config: string; socket: string }> {
  const dir = path.join(root, 'sockvisord');
  await fs.mkdir(path.join(dir, 'sockvisor.d'), { recursive: true });
  const config = path.join(dir, 'sockvisor.yaml');
  const socket = path.join(dir, 'sockvisor.sock');
  await fs.writeFile(config, sockvisordConfig(dir, python, socket));
  const body = PROGRAM.trimEnd().split('\n').map((l) => `  ${l}`).join('\n');
  for (let i = 0; i < SERVICES; i++) {
    await fs.writeFile(path.join(dir, 'sockvisor.d', `${svcName(i)}.yaml`), `%TAG ! tag:nuxi.nl,2015:cloudabi/\n---\nsupervise: {start_seconds: 0.1}\nstderr: !fd stderr\ncommand: |\n${body}\n`);
  }

  const daemon = spawn(process.execPath, [DAEMON, 'run', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  liveDaemons.add(daemon);
  const output = new Output(daemon);
  const running = new Set<string>();
  const marker = `--daemon-pid ${daemon.pid} `;
  markers.add(marker);
  let seen = 0;
  const scan = () => {
    for (const line of output.lines.slice(seen)) {
      seen++;
      let r: Record<string, unknown>;
      try {
        r = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (r['msg'] === 'state' && typeof r['pid'] === 'number') servicePids.set(r['pid'], marker);
      if (r['msg'] === 'state' && r['to'] === 'RUNNING') running.add(String(r['process']));
      if (r['msg'] === 'state' && r['from'] === 'RUNNING') running.delete(String(r['process']));
    }
    return running.size === SERVICES;
  };
  await output.until(scan, `sockvisord: all ${SERVICES} services RUNNING`, exitOf(daemon));
  return { name: 'sockvisord', daemon, version: `sockvisord ${readVersion()} (this checkout)`, config, socket };
}

function readVersion(): string {
  const pkg = fileURLToPath(new URL('../../package.json', import.meta.url));
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

async function startSupervisord(root: string, python: string, supervisord: string, version: string): Promise<Side & { config: string }> {
  const dir = path.join(root, 'supervisord');
  await fs.mkdir(path.join(dir, 'logs'), { recursive: true });
  const script = path.join(dir, 'svc.py');
  await fs.writeFile(script, PROGRAM);
  const config = path.join(dir, 'supervisord.conf');
  const socket = path.join(dir, 'supervisor.sock');
  const programs: string[] = [];
  for (let i = 0; i < SERVICES; i++) {
    programs.push(`[program:${svcName(i)}]`, `command=${python} ${script}`, 'autostart=true', 'autorestart=true', 'startsecs=1', 'stopsignal=TERM', 'stopwaitsecs=5', '');
  }
  await fs.writeFile(config, supervisordConfig(dir, socket, [...programs,
  ]));

  const daemon = spawn(supervisord, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  liveDaemons.add(daemon);
  const output = new Output(daemon);
  const running = new Set<string>();
  let seen = 0;
  const scan = () => {
    for (const line of output.lines.slice(seen)) {
      seen++;
      const spawned = /spawned: '(svc\d+)' with pid (\d+)/.exec(line);
      if (spawned) servicePids.set(Number(spawned[2]), script);
      const success = /success: (svc\d+) entered RUNNING state/.exec(line);
      if (success) running.add(success[1]!);
    }
    return running.size === SERVICES;
  };
  await output.until(scan, `supervisord: all ${SERVICES} programs RUNNING`, exitOf(daemon));
  return { name: 'supervisord', daemon, version: `supervisord ${version} (${supervisord})`, config };
}

// ---------------------------------------------------------------------------------------------
// Clients.

interface Client {
  readonly label: string;
  readonly file: string;
  readonly args: readonly string[];
  /** A line every RUNNING process gets in this client's status output; none: not a status client. */
  readonly running?: RegExp;
}

/** One client run: wall time from spawn to exit, and a check of what it printed. */
function timeClient(client: Client): Promise<number> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let ms = 0;
    const start = performance.now();
    const child = spawn(client.file, client.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    liveClients.add(child);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('exit', () => (ms = performance.now() - start));
    child.once('error', (e) => {
      liveClients.delete(child);
      reject(new Error(`${client.label}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      liveClients.delete(child);
      const running = client.running ? stdout.split('\n').filter((l) => client.running!.test(l)).length : SERVICES;
      if (code !== 0 || running !== SERVICES) {
        reject(new Error(`${client.label}: exit ${code ?? signal}, ${running}/${SERVICES} RUNNING lines\nstdout:\n${stdout.slice(0, 2000)}\nstderr:\n${stderr}`));
        return;
      }
      resolve(ms);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Main.

const { values } = parseArgs({ options: { runs: { type: 'string' }, python: { type: 'string' }, json: { type: 'string' } } });
const runs = positiveIntFlag(values.runs, 'runs', 20);

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sockvisor-bench-ctl-'));
// An interrupted bench still leaves no daemon, service, client or temp dir behind.
exitOnInterrupt(`stopping the daemons and their services, removing ${root}`, () => {
  killEverything();
  rmSync(root, { recursive: true, force: true });
});
const notes: string[] = [];
try {
  const python = realInterpreter(values.python ?? 'python3');
  const supervisor = ensureSupervisor();
  // One after the other, so neither start-up slows the other; both then run during the timing.
  const ours = await startSockvisord(root, python.executable);
  const theirs = await startSupervisord(root, python.executable, supervisor.supervisord, supervisor.version);

  const clients: Client[] = [
    { label: 'sockvisorctl -c CONFIG status', file: process.execPath, args: [CTL, '-c', ours.config, 'status'], running: /^svc\d\d:0 +RUNNING +pid \d+, uptime / },
    { label: 'sockvisorctl -s SOCKET status', file: process.execPath, args: [CTL, '-s', ours.socket, 'status'], running: /^svc\d\d:0 +RUNNING +pid \d+, uptime / },
    { label: 'supervisorctl -c CONF status', file: supervisor.supervisorctl, args: ['-c', theirs.config, 'status'], running: /^svc\d\d +RUNNING +pid \d+, uptime / },
  ];
  // Node's own start-up, for reference: the floor under any Node client.
  const nodeFloor: Client = { label: 'node -e 0 (reference)', file: process.execPath, args: ['-e', '0'] };
  const all = [...clients, nodeFloor];

  // The warm-up fills the file cache and checks every client's output once.
  for (const c of all) await timeClient(c);
  const samples = new Map<Client, number[]>(all.map((c) => [c, []]));
  for (let r = 0; r < runs; r++) {
    // Rotating the order keeps drift (thermal, cache, the daemons' own timers) from favouring one client.
    for (let k = 0; k < all.length; k++) {
      const c = all[(r + k) % all.length]!;
      samples.get(c)!.push(await timeClient(c));
    }
  }

  const problems = await Promise.all([stopDaemon(ours.daemon, 'sockvisord'), stopDaemon(theirs.daemon, 'supervisord')]);
  for (const p of problems) if (p !== undefined) notes.push(`stop: ${p}`);
  const left = killServices();
  if (left > 0) notes.push(`${left} service process(es) outlived their daemon and were killed`);

  const cpus = os.cpus();
  const flags = [...(values.runs === undefined ? [] : ['--runs', String(runs)]), ...(values.python === undefined ? [] : ['--python', values.python])];
  const command = flags.length === 0 ? 'npm run bench:ctl' : `npm run bench:ctl -- ${flags.join(' ')}`;
  console.log(`machine: ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}, Python ${python.version}, ${os.type()} ${os.release()}`);
  console.log(`command: ${command}  (${SERVICES} services on each daemon, ${runs} runs per client after 1 warm-up, rotating order)`);
  console.log(`interpreter: ${python.executable} (both daemons' services: import time; while True: time.sleep(3600))`);
  console.log(`sockvisord:  ${ours.version}, ${SERVICES} service files, start_seconds 0.1; client: node ${path.relative(process.cwd(), CTL) || CTL}`);
  console.log(`supervisord: ${theirs.version}, ${SERVICES} [program:svcNN] ${path.basename(python.executable)} svc.py; client: ${supervisor.supervisorctl}`);
  console.log('measured: wall time of the whole client process, spawn to exit, output checked (exit 0, 50 RUNNING lines)');
  console.log('');
  const row = (cells: readonly string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(32) : cell.padStart(12))).join('');
  const base = stats(samples.get(clients[2]!)!);
  console.log(row(['', 'ms median', 'ms min', 'ms max', 'vs supctl']));
  for (const c of all) {
    const s = stats(samples.get(c)!);
    console.log(row([c.label, s.median.toFixed(1), s.min.toFixed(1), s.max.toFixed(1), `${(s.median / base.median).toFixed(2)}x`]));
  }
  console.log('');
  const word = (pass: boolean) => (pass ? 'PASS' : 'OVER');
  for (const c of clients.slice(0, 2)) {
    const ratio = stats(samples.get(c)!).median / base.median;
    console.log(`${`${c.label.replace(' status', '')} / supervisorctl:`.padEnd(44)}${ratio.toFixed(2)}x (medians)  ${word(ratio <= TARGET_RATIO)} (target: at most ${TARGET_RATIO}x)`);
  }
  printNotes(notes);
  writeJson(values.json, { runs, services: SERVICES, supervisord: supervisor.version, clients: all.map((c) => ({ label: c.label, ...stats(samples.get(c)!) })), notes });
} catch (e) {
  console.error(e instanceof Error ? `FAIL: ${e.message}` : e);
  process.exitCode = 1;
} finally {
  for (const child of [...liveDaemons]) await stopDaemon(child, child.spawnfile.includes('supervisord') ? 'supervisord' : 'sockvisord');
  killEverything();
  await fs.rm(root, { recursive: true, force: true });
}
