/** Drives test/helpers/socket-holder.ts from a test: a daemon-like process with held sockets. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { ROOT } from './cli.js';

export interface HolderEvent {
  event: 'stdout' | 'stderr' | 'exit' | 'ready';
  pid: number;
  data?: string;
  code?: number | null;
  signal?: string | null;
}

export class Holder {
  readonly pid: number;
  private nextId = 1;
  private readonly pending = new Map<number, (reply: Record<string, unknown>) => void>();
  private readonly events: HolderEvent[] = [];
  private readonly waiters: (() => void)[] = [];
  private readonly exited: Promise<void>;

  private constructor(private readonly proc: ChildProcess) {
    this.pid = proc.pid!;
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as Record<string, unknown>;
      if (typeof msg['id'] === 'number') {
        this.pending.get(msg['id'])?.(msg);
        this.pending.delete(msg['id']);
      } else {
        this.events.push(msg as unknown as HolderEvent);
        for (const wake of this.waiters.splice(0)) wake();
      }
    });
  }

  /** Starts the holder; `extraStdio` adds inherited fds from 3 up, to prove they never reach children. */
  static async start(options: { extraStdio?: (number | 'pipe' | 'ignore')[] } = {}): Promise<Holder> {
    const proc = spawn(process.execPath, [path.join(ROOT, 'dist/test/helpers/socket-holder.js')], {
      stdio: ['pipe', 'pipe', 'inherit', ...(options.extraStdio ?? [])],
    });
    const holder = new Holder(proc);
    await holder.waitFor((e) => e.event === 'ready', 10_000);
    return holder;
  }

  request<T = Record<string, unknown>>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve as (reply: Record<string, unknown>) => void);
      this.proc.stdin!.write(JSON.stringify({ id, op, ...args }) + '\n');
    });
  }

  /** Resolves with the first event matching `predicate`, past or future; rejects at the deadline. */
  async waitFor(predicate: (e: HolderEvent) => boolean, timeoutMs = 10_000): Promise<HolderEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(predicate);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`holder: no matching event within ${timeoutMs} ms; events so far: ${JSON.stringify(this.events).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Everything a child wrote to stdout, once it has exited. */
  async childOutput(pid: number, timeoutMs = 10_000): Promise<{ stdout: string; stderr: string; code: number | null | undefined }> {
    const exit = await this.waitFor((e) => e.event === 'exit' && e.pid === pid, timeoutMs);
    const of = (kind: string) => this.events.filter((e) => e.event === kind && e.pid === pid).map((e) => e.data).join('');
    return { stdout: of('stdout'), stderr: of('stderr'), code: exit.code };
  }

  /** Ends the holder (closing stdin makes it close its sockets and exit) and waits for it. */
  async stop(): Promise<void> {
    this.proc.stdin!.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
