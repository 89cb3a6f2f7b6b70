/** What every bench script shares: summary statistics, flag parsing, and process handling. */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { accessSync, constants as fsConstants, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';

/** Median, min and max of a set of timings. */
export function stats(samples: readonly number[]): { median: number; min: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** A `--name N` flag that must be a positive integer; exits 2 with a message otherwise. */
export function positiveIntFlag(value: string | undefined, name: string, fallback: number): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} expects a positive integer, got "${value}"`);
    process.exit(2);
  }
  return n;
}

// Process handling for the benches that run a supervisor beside sockvisord.

export function tryKill(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Whether pid still runs a command line containing marker, so a reused pid is never signalled. */
export function isOurs(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').includes(marker);
  } catch {
    return false;
  }
}

/** Every process whose command line has one of `marks`: catches one whose pid was never read. */
export function killByMarker(marks: readonly string[]): void {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return;
  }
  for (const entry of entries) if (/^\d+$/.test(entry) && Number(entry) !== process.pid && marks.some((m) => isOurs(Number(entry), m))) tryKill(Number(entry));
}

export function exitOf(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * SIGTERM, `graceMs` for the child's own orderly stop, then SIGKILL. Returns what went wrong, if
 * anything, for the bench's notes.
 */
export async function stopChild(child: ChildProcess, what: string, graceMs: number): Promise<string | undefined> {
  if (child.exitCode !== null || child.signalCode !== null) return undefined;
  const exited = exitOf(child);
  tryKill(child.pid!, 'SIGTERM');
  try {
    await withTimeout(exited, graceMs, `${what} exit after SIGTERM`);
    return undefined;
  } catch (e) {
    tryKill(child.pid!);
    await withTimeout(exited, 5000, `${what} exit after SIGKILL`).catch(() => undefined);
    return (e as Error).message;
  }
}

export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, fsConstants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A sockvisord config with everything (services, socket, pidfile, logs) in `dir`, not watching. */
export function sockvisordConfig(dir: string, python: string, socket = path.join(dir, 'sockvisor.sock')): string {
  return [
    'services: sockvisor.d',
    `python: ${python}`,
    `control: {socket: ${socket}}`,
    `pidfile: ${path.join(dir, 'sockvisord.pid')}`,
    `logs: {dir: ${path.join(dir, 'logs')}}`,
    'log_level: info',
    'watch: false',
    '',
  ].join('\n');
}

/**
 * A supervisord.conf for a bench: everything in `dir`, control socket `socket`, then the given
 * `[program:...]` sections (lines).
 */
export function supervisordConfig(dir: string, socket: string, programs: readonly string[]): string {
  return [
    '[unix_http_server]',
    `file=${socket}`,
    'chmod=0700',
    '',
    '[supervisord]',
    'nodaemon=true',
    `logfile=${path.join(dir, 'supervisord.log')}`,
    `pidfile=${path.join(dir, 'supervisord.pid')}`,
    `childlogdir=${path.join(dir, 'logs')}`,
    'loglevel=info',
    // As root, saying so keeps supervisord from warning that it did not drop privileges.
    ...(process.getuid?.() === 0 ? ['user=root'] : []),
    '',
    '[rpcinterface:supervisor]',
    'supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface',
    '',
    '[supervisorctl]',
    `serverurl=unix://${socket}`,
    '',
    ...programs,
  ].join('\n');
}

/** `name` from PATH, or from /usr/bin or /usr/local/bin (a PATH without them, as under some sudo). */
export function findExecutable(name: string): string | undefined {
  return findOnPath(name) ?? [`/usr/bin/${name}`, `/usr/local/bin/${name}`].find((f) => {
    try {
      accessSync(f, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** supervisord and supervisorctl, installing Debian's `supervisor` package first when missing. */
export function ensureSupervisor(): { supervisord: string; supervisorctl: string; version: string } {
  if (findExecutable('supervisord') === undefined || findExecutable('supervisorctl') === undefined) {
    if (process.getuid?.() !== 0) throw new Error('supervisord is not installed and this is not root: run apt-get install -y supervisor');
    console.error("supervisord not found: installing Debian's supervisor package (apt-get install -y supervisor) ...");
    // apt's own output goes to stderr, so stdout stays the bench's report.
    const apt = (args: string[]) => spawnSync('apt-get', args, { stdio: ['ignore', 2, 2], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    let install = apt(['install', '-y', 'supervisor']);
    if (install.status !== 0) {
      // Usually a container whose package lists were never fetched.
      const update = apt(['update']);
      if (update.status !== 0) throw new Error(`apt-get update failed (${update.error?.message ?? `exit ${update.status}`})`);
      install = apt(['install', '-y', 'supervisor']);
    }
    if (install.status !== 0) throw new Error(`apt-get install -y supervisor failed (${install.error?.message ?? `exit ${install.status}`})`);
  }
  const supervisord = findExecutable('supervisord');
  const supervisorctl = findExecutable('supervisorctl');
  if (supervisord === undefined || supervisorctl === undefined) throw new Error('supervisor was installed but supervisord or supervisorctl is not on PATH');
  const v = spawnSync(supervisord, ['--version'], { encoding: 'utf8' });
  return { supervisord, supervisorctl, version: v.status === 0 ? v.stdout.trim() : 'unknown version' };
}

/** The interpreter `name` really is (a pyenv shim resolves to its binary), and its version. */
export function realInterpreter(name: string): { executable: string; version: string } {
  const r = spawnSync(name, ['-c', 'import sys,os;print(os.path.realpath(sys.executable));print(sys.version.split()[0])'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${name} did not run: ${r.error?.message ?? r.stderr}`);
  const [executable, version] = r.stdout.trim().split('\n');
  if (!executable || !version) throw new Error(`${name} printed ${JSON.stringify(r.stdout)}`);
  return { executable, version };
}

/** A TCP port on `host` that was free a moment ago, for a server that binds its own socket. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A supervisor's output, line by line (`parse` turns a line into an entry, or skips it), with
 * waits for an entry that matches.
 */
export class LineLog<T> extends EventEmitter {
  readonly entries: T[] = [];
  private tail = '';

  constructor(streams: readonly Readable[], private readonly parse: (line: string) => T | undefined, readonly raw: string[] = []) {
    super();
    for (const stream of streams) {
      stream.setEncoding('utf8');
      let partial = '';
      stream.on('data', (chunk: string) => {
        partial += chunk;
        let nl: number;
        while ((nl = partial.indexOf('\n')) !== -1) {
          this.add(partial.slice(0, nl));
          partial = partial.slice(nl + 1);
        }
      });
      stream.on('end', () => {
        if (partial) this.add(partial);
        partial = '';
      });
    }
  }

  private add(line: string): void {
    this.raw.push(line);
    this.tail = line;
    const entry = this.parse(line);
    if (entry === undefined) return;
    this.entries.push(entry);
    this.emit('entry');
  }

  /**
   * The first entry at index `from` or later that matches; its index comes with it. `test` sees
   * each entry once, in order, so it may count. Rejects after `deadlineMs`, or once `exited`
   * settles.
   */
  waitFor(from: number, test: (e: T) => boolean, what: string, exited?: Promise<unknown>, deadlineMs = 10_000): Promise<{ entry: T; index: number }> {
    const found = new Promise<{ entry: T; index: number }>((resolve, reject) => {
      const scan = () => {
        for (let i = from; i < this.entries.length; i++) {
          if (test(this.entries[i]!)) {
            this.off('entry', scan);
            resolve({ entry: this.entries[i]!, index: i });
            return;
          }
        }
        from = this.entries.length;
      };
      this.on('entry', scan);
      scan();
      exited?.then(() => {
        this.off('entry', scan);
        reject(new Error(`the supervisor exited while waiting for ${what}; last output line: ${this.tail || '(none)'}`));
      });
    });
    return withTimeout(found, deadlineMs, what);
  }

  /** The last lines of output, for an error message. */
  last(n: number): string {
    return this.raw.slice(-n).join('\n') || '(no output)';
  }
}

/** Things a run noticed on the way (a slow start, a retry), printed after the figures. */
export function printNotes(notes: readonly string[]): void {
  if (notes.length === 0) return;
  console.log('');
  console.log('noticed:');
  for (const n of notes) console.log(`  ${n}`);
}

/**
 * `--json FILE`: the bench's figures, machine-readable, for `npm run bench` (bench/all.ts) to
 * collect. Written only when the flag was given; the printed report is unchanged.
 */
export function writeJson(file: string | undefined, figures: unknown): void {
  if (file === undefined) return;
  writeFileSync(file, `${JSON.stringify(figures, null, 2)}\n`);
}

/** Kilobytes from a `Key:   123 kB` line of a /proc file (VmRSS, MemAvailable, ...). */
export function procKb(file: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(file, 'utf8'));
  if (!m) throw new Error(`${file}: no ${key} line`);
  return Number(m[1]);
}

/** An interrupted bench still leaves no process or temp dir behind: `cleanUp` runs, then it exits 130 or 143. */
export function exitOnInterrupt(what: string, cleanUp: () => void): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`${signal}: ${what}`);
      cleanUp();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

/** A sockvisord child's log: stdout as its JSON records (other lines skipped), stderr as raw lines. */
export function sockvisordLog<T = Record<string, unknown>>(child: ChildProcess): { log: LineLog<T>; stderr: string[] } {
  const log = new LineLog<T>([child.stdout!], (line) => {
    try {
      return JSON.parse(line) as T;
    } catch {
      return undefined;
    }
  });
  const stderr: string[] = [];
  new LineLog([child.stderr!], () => undefined, stderr);
  return { log, stderr };
}
