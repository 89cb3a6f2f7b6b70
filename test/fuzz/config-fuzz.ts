/** Runs the service-file fuzz: fast-check generates cases, a worker thread checks each under a deadline. */
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { caseBytes, configCase, SEEDS, type ConfigCase } from './config-arbitraries.js';
import type { WorkReply } from './config-worker.js';

export interface ConfigFuzzOptions {
  readonly seed: number;
  readonly numRuns: number;
  /** One case in this many also goes through loadConfig on a real file. */
  readonly loadEvery: number;
  /** Deadline of one case through parse + resolve + plan, for files up to 64 KiB; 10 ms more per KiB above. */
  readonly timeoutMs?: number;
  /** Deadline of one case through loadConfig (real host probes, a Python spawn on a cold cache). */
  readonly loaderTimeoutMs?: number;
  readonly log?: (line: string) => void;
  /**
   * Record failures and go on to the end instead of stopping at the first and shrinking it: the
   * long run reports every distinct failure, each with the smallest case that showed it.
   */
  readonly keepGoing?: boolean;
}

export interface FuzzFailure {
  readonly signature: string;
  readonly count: number;
  readonly smallest: ConfigCase;
  readonly bytes: number;
  readonly message: string;
}

export interface ConfigFuzzStats {
  cases: number;
  withErrors: number;
  planned: number;
  viaLoader: number;
  loaderOk: number;
  slowestMs: number;
  hangs: number;
  failures: FuzzFailure[];
}

/** One worker at a time; replaced when a case overruns its deadline. */
class CheckerThread {
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private n = 0;

  private start(): Promise<void> {
    // About the main thread's stack, so deep nesting overflows here where it would in the daemon.
    const worker = new Worker(new URL('./config-worker.js', import.meta.url), { resourceLimits: { stackSizeMb: 1 } });
    this.worker = worker;
    worker.unref();
    return new Promise((resolve, reject) => {
      worker.once('message', (m) => (m === 'ready' ? resolve() : reject(new Error(`unexpected first message ${String(m)}`))));
      worker.once('error', reject);
    });
  }

  async check(bytes: Buffer, viaLoader: boolean, timeoutMs: number): Promise<WorkReply | { hang: true } | { crashed: string }> {
    if (!this.ready) this.ready = this.start();
    await this.ready;
    const worker = this.worker!;
    const n = ++this.n;
    return new Promise((resolve) => {
      const done = (r: WorkReply | { hang: true } | { crashed: string }) => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        resolve(r);
      };
      const onMessage = (m: WorkReply) => m.n === n && done(m);
      const onError = (e: Error) => {
        this.ready = undefined;
        done({ crashed: e.stack ?? e.message });
      };
      const timer = setTimeout(() => {
        this.ready = undefined;
        void worker.terminate();
        done({ hang: true });
      }, timeoutMs);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.postMessage({ n, bytes: new Uint8Array(bytes), viaLoader });
    });
  }

  async close(): Promise<void> {
    if (this.worker && this.ready) {
      const w = this.worker;
      const exited = new Promise((r) => w.once('exit', r));
      w.postMessage('close');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      await w.terminate();
    }
  }
}

export function showCase(c: ConfigCase): string {
  const bytes = caseBytes(c);
  const text = bytes.toString('utf8');
  return `seed file ${SEEDS[c.seed]!.name}, ${bytes.length} bytes, text: ${JSON.stringify(text.length > 1500 ? `${text.slice(0, 1500)}...` : text)}`;
}

/** Throws fast-check's report (seed, path, shrunk counterexample) when a property fails. */
export async function runConfigFuzz(options: ConfigFuzzOptions): Promise<ConfigFuzzStats> {
  const timeoutMs = options.timeoutMs ?? 2000;
  const loaderTimeoutMs = options.loaderTimeoutMs ?? 15_000;
  const stats: ConfigFuzzStats = { cases: 0, withErrors: 0, planned: 0, viaLoader: 0, loaderOk: 0, slowestMs: 0, hangs: 0, failures: [] };
  const failures = new Map<string, FuzzFailure>();
  const thread = new CheckerThread();
  // Warm the loader's caches (Python probe, library probe) so the first sampled case is not slow.
  await thread.check(Buffer.from(SEEDS[0]!.text), true, 60_000);
  let shrinking = false;
  try {
    await fc.assert(
      fc.asyncProperty(configCase(options.loadEvery), async (c) => {
        if (options.keepGoing) {
          try {
            await one(c);
          } catch (e) {
            const message = (e as Error).message;
            const signature = message.split('\n')[0]!.replace(/\d+/g, 'N').replace(/ at svc\.yaml:N:N.*/, '');
            const bytes = caseBytes(c).length;
            const old = failures.get(signature);
            if (!old || bytes < old.bytes) failures.set(signature, { signature, count: (old?.count ?? 0) + 1, smallest: c, bytes, message });
            else failures.set(signature, { ...old, count: old.count + 1 });
            options.log?.(`failure #${[...failures.values()].reduce((n, f) => n + f.count, 0)} at case ${stats.cases}: ${signature}`);
          }
          shrinking = false;
          return;
        }
        await one(c);
      }),
      { seed: options.seed, numRuns: options.numRuns, includeErrorInReport: true },
    );
  } finally {
    await thread.close();
  }
  stats.failures = [...failures.values()];
  return stats;

  async function one(c: ConfigCase): Promise<void> {
    const bytes = caseBytes(c);
    const deadline = (c.viaLoader ? loaderTimeoutMs : timeoutMs) + Math.max(0, Math.ceil((bytes.length - 65536) / 1024)) * 10;
    const r = await thread.check(bytes, c.viaLoader, deadline);
    if (!shrinking) stats.cases++;
    if ('hang' in r) {
      if (!shrinking) stats.hangs++;
      shrinking = true;
      throw new Error(`no answer within ${deadline} ms (a hang?) for ${showCase(c)}`);
    }
    if ('crashed' in r) shrinking = true;
    if ('crashed' in r) throw new Error(`checker thread crashed: ${r.crashed}\nfor ${showCase(c)}`);
    if (!shrinking) {
      if (r.hadErrors) stats.withErrors++;
      if (r.planned) stats.planned++;
      if (c.viaLoader) stats.viaLoader++;
      if (r.loaderOk) stats.loaderOk++;
      stats.slowestMs = Math.max(stats.slowestMs, r.ms);
    }
    if (r.ms > deadline) shrinking = true;
    if (r.ms > deadline) throw new Error(`took ${Math.round(r.ms)} ms, over the ${deadline} ms deadline, for ${showCase(c)}`);
    if (r.problems.length > 0) {
      shrinking = true;
      throw new Error(`${r.problems.join('\n')}\nfor ${showCase(c)}`);
    }
    if (!shrinking && stats.cases % 1000 === 0) options.log?.(`${stats.cases} cases: ${JSON.stringify({ ...stats, failures: undefined })}`);
  }
}
