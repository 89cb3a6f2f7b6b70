/** Runs one service file through the real loader, launch plan and runner, as the daemon will. */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import type { ServiceSpec } from '../../src/config/spec.js';
import { native } from '../../src/sockets/native.js';
import { SocketRegistry } from '../../src/sockets/registry.js';
import { launch, type LaunchedProcess } from '../../src/supervise/launch.js';
import { planRunnerLaunch } from '../../src/supervise/launch-plan.js';
import { tempDir } from './cli.js';

export interface RunningService {
  readonly spec: ServiceSpec;
  readonly proc: LaunchedProcess;
  readonly registry: SocketRegistry;
  /** The bound address of each held socket, by key path: `args.my_socket` -> `127.0.0.1:41234`. */
  readonly bound: ReadonlyMap<string, string>;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit status, or the signal name. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once stderr or stdout contains `text`; rejects at the deadline with what arrived. */
  waitForOutput(stream: 'stdout' | 'stderr', text: string, timeoutMs?: number): Promise<void>;
}

type TestContext = { after: (fn: () => Promise<void>) => void };

// This process stands in for the daemon, which marks whatever it inherited close-on-exec.
native.cloexecFrom(3);

export async function writeService(t: TestContext, yaml: string, extraFiles: Record<string, string> = {}): Promise<{ dir: string; file: string }> {
  const dir = await tempDir(t);
  const file = path.join(dir, 'svc.yaml');
  await fs.writeFile(file, yaml);
  for (const [name, text] of Object.entries(extraFiles)) {
    await fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fs.writeFile(path.join(dir, name), text);
  }
  return { dir, file };
}

export async function startService(t: TestContext, file: string): Promise<RunningService> {
  const result = await loadConfig({ serviceFiles: [file] });
  assert.ok(result.ok, result.diagnostics.map((d) => `${d.pos.file}:${d.pos.line}:${d.pos.col}: ${d.message}`).join('\n'));
  const spec = result.services[0]!;
  const registry = new SocketRegistry();
  await registry.bindAll(spec.sockets);
  const proc = await launch(planRunnerLaunch(spec, { daemonPid: process.pid }), registry, {});
  const out = { stdout: '', stderr: '' };
  const waiters: (() => void)[] = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  proc.stdout.on('data', (d: Buffer) => ((out.stdout += d.toString()), wake()));
  proc.stderr.on('data', (d: Buffer) => ((out.stderr += d.toString()), wake()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  // Both pipes drained, so the output is complete once `exited` resolves and a tick passes.
  const drained = Promise.all([new Promise((r) => proc.stdout.once('close', r)), new Promise((r) => proc.stderr.once('close', r))]);
  t.after(async () => {
    try {
      process.kill(-proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
    registry.closeAll();
  });
  const bound = new Map(spec.sockets.map((s) => [s.keyPath, registry.get(s.identity)?.bound ?? '']));
  return {
    spec, proc, registry, bound,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    exited: exited.then(async (r) => (await drained, r)),
    async waitForOutput(stream, text, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!out[stream].includes(text)) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no "${text}" on ${stream} within ${timeoutMs} ms; stdout: ${out.stdout}\nstderr: ${out.stderr}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => (clearTimeout(timer), resolve()));
        });
      }
    },
  };
}
