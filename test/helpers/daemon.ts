/** Runs a real sockvisord in a temporary directory and reads its JSON log as events. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { HEADER, SOCKVISORD, tempDir } from './cli.js';

export { HEADER };

export type LogRecord = Record<string, unknown> & { msg: string };

type TestContext = { after: (fn: () => Promise<void>) => void };

export interface DaemonFiles {
  readonly dir: string;
  readonly config: string;
  readonly servicesDir: string;
  readonly logsDir: string;
  readonly pidfile: string;
  readonly controlSocket: string;
}

/** A daemon config in a fresh directory, with everything (logs, pidfile, socket) inside it. */
export async function daemonFiles(t: TestContext, services: Record<string, string>, extraConfig = ''): Promise<DaemonFiles> {
  const dir = await tempDir(t, 'sockvisord-test-');
  const files = {
    dir, config: path.join(dir, 'sockvisor.yaml'), servicesDir: path.join(dir, 'sockvisor.d'), logsDir: path.join(dir, 'logs'),
    pidfile: path.join(dir, 'sockvisord.pid'), controlSocket: path.join(dir, 'ctl.sock'),
  };
  await fs.mkdir(files.servicesDir);
  await fs.writeFile(files.config, `services: sockvisor.d\ncontrol: {socket: ctl.sock}\npidfile: sockvisord.pid\nlogs: {dir: logs}\nwatch: false\n${extraConfig}`);
  for (const [name, text] of Object.entries(services)) await fs.writeFile(path.join(files.servicesDir, `${name}.yaml`), text);
  return files;
}

export class DaemonProcess {
  readonly records: LogRecord[] = [];
  stderr = '';
  private readonly waiters: (() => void)[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly proc: ChildProcess, readonly files: DaemonFiles) {
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        this.records.push(JSON.parse(line) as LogRecord);
      } catch {
        this.records.push({ msg: line });
      }
      this.wake();
    });
    proc.stderr!.on('data', (d: Buffer) => ((this.stderr += d.toString()), this.wake()));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Starts the daemon; with `ready`, waits for its "sockvisord started" line. */
  static async start(t: TestContext, files: DaemonFiles, options: { ready?: boolean; args?: string[] } = {}): Promise<DaemonProcess> {
    const proc = spawn(process.execPath, [SOCKVISORD, 'run', '-c', files.config, ...(options.args ?? [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    const daemon = new DaemonProcess(proc, files);
    t.after(() => daemon.kill());
    if (options.ready !== false) await daemon.waitFor((r) => r.msg === 'sockvisord started', 15_000);
    return daemon;
  }

  /** The first record, past or future, that matches; rejects at the deadline with the log so far. */
  async waitFor(predicate: (r: LogRecord) => boolean, timeoutMs = 15_000, from = 0): Promise<LogRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.records.slice(from).find(predicate);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching daemon log line within ${timeoutMs} ms; stderr: ${this.stderr}\nlog tail: ${this.records.slice(-15).map((r) => JSON.stringify(r)).join('\n')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  /** Waits for `process` to reach `state` after log position `from`; returns that record. */
  waitForState(process: string, state: string, from = 0, timeoutMs = 15_000): Promise<LogRecord> {
    return this.waitFor((r) => r.msg === 'state' && r['process'] === process && r['to'] === state, timeoutMs, from);
  }

  /** The held address of a service's socket, as the daemon logged it at start. */
  address(service: string, key: string): string {
    const loaded = this.records.find((r) => r.msg === 'service loaded' && r['service'] === service);
    const socket = (loaded?.['sockets'] as { key: string; address: string }[] | undefined)?.find((s) => s.key === key);
    if (!socket) throw new Error(`no socket ${key} for ${service}`);
    return socket.address;
  }

  states(process: string): LogRecord[] {
    return this.records.filter((r) => r.msg === 'state' && r['process'] === process);
  }

  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.proc.kill('SIGTERM');
    return this.exited;
  }

  /** Test cleanup: the daemon, and any process it left behind in its children's groups. */
  async kill(): Promise<void> {
    const pids = new Set(this.records.filter((r) => typeof r['pid'] === 'number' && r.msg === 'state').map((r) => r['pid'] as number));
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
    for (const pid of pids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

/** Children of `pid`, from /proc. */
export async function childrenOf(pid: number): Promise<{ pid: number; state: string }[]> {
  const out: { pid: number; state: string }[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const m = /^\d+ \(.*\) (\S) (\d+)/s.exec(stat);
    if (m && Number(m[2]) === pid) out.push({ pid: Number(entry), state: m[1]! });
  }
  return out;
}

export async function alive(pid: number): Promise<boolean> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && !/^\d+ \(.*\) Z/s.test(stat);
}

/** Polls `check` until it holds or the deadline passes; for effects the OS gives no event for. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Python source indented for a `command: |` block. */
export function block(code: string): string {
  return code.trim().split('\n').map((l) => `  ${l}`).join('\n');
}

/**
 * Python for a small HTTP/1.0 server on the held socket `listener`: one thread per request, so a
 * slow client does not hold up the others. `reply` is a bytes expression for the response body.
 */
export function heldSocketServer(reply: string): string {
  return block(`
import os, socketserver, sys
class Server(socketserver.ThreadingMixIn, socketserver.BaseServer):
    daemon_threads = True
    def __init__(self, sock, handler):
        socketserver.BaseServer.__init__(self, None, handler)
        self.socket = sock
    def fileno(self):
        return self.socket.fileno()
    def get_request(self):
        return self.socket.accept()
    def shutdown_request(self, request):
        request.close()
class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        self.rfile.readline()
        self.wfile.write(${reply})
Server(sys.argdata['listener'], Handler).serve_forever()
`);
}

/** A service on a port-0 socket that answers `pid N` and closes. */
export function webService(supervise: string): string {
  return `${HEADER}supervise: {${supervise}}
stderr: !fd stderr
path: [!file {path: /usr/local/x86_64-unknown-cloudabi/lib/python3.6}]
args:
  listener: !socket {bind: 127.0.0.1:0}
command: |
${heldSocketServer("b'HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\npid %d\\n' % os.getpid()")}
`;
}
