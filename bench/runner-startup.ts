/**
 * How long the runner takes to bring up the seed's web.yaml, from launch() until the child's first
 * accept() has answered a request already waiting in the held socket's backlog, next to the bare
 * interpreter importing the same modules (`python3 -I -c "import http.server, socketserver"`) on the
 * same real interpreter. Once with the default strict sandbox and once with `sandbox: off`, so the
 * sandbox's share is visible. Target: the strict runner at most 1.3 times the baseline.
 *
 *   npm run build && npm run bench:runner [-- --runs N]
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { formatDiagnostic } from '../src/config/diagnostics.js';
import { loadConfig } from '../src/config/load.js';
import type { ServiceSpec } from '../src/config/spec.js';
import { native } from '../src/sockets/native.js';
import { SocketRegistry } from '../src/sockets/registry.js';
import { launch, type LaunchedProcess } from '../src/supervise/launch.js';
import { planRunnerLaunch } from '../src/supervise/launch-plan.js';
import { positiveIntFlag, stats, writeJson } from './common.js';

const SEED_WEB = new URL('../../test/fixtures/seed/web.yaml', import.meta.url);
const HOST = '127.0.0.1';
const REQUEST = 'GET / HTTP/1.0\r\n\r\n';
const EXPECTED = 'It works!';
const BASELINE_CODE = 'import http.server, socketserver';
const TARGET = 1.3;
const TIMEOUT_MS = 10_000;

// This process stands in for the daemon, which marks whatever it inherited close-on-exec.
native.cloexecFrom(3);

/** Process groups of runner children and pids of baseline children still alive, for a signal on the way out. */
const liveGroups = new Set<number>();
const livePids = new Set<number>();

function tryKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

async function loadSpec(file: string): Promise<ServiceSpec> {
  const result = await loadConfig({ serviceFiles: [file] });
  if (!result.ok || result.services.length !== 1) {
    throw new Error(`loadConfig(${file}): ok=${result.ok}, ${result.services.length} services\n${result.diagnostics.map(formatDiagnostic).join('\n')}`);
  }
  const spec = result.services[0]!;
  if (spec.python === undefined) throw new Error(`${file}: no interpreter resolved`);
  return spec;
}

function heldPort(spec: ServiceSpec, registry: SocketRegistry): number {
  const decl = spec.sockets[0];
  const bound = decl === undefined ? undefined : registry.get(decl.identity)?.bound;
  const port = Number(bound?.slice(bound.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port <= 0) throw new Error(`${spec.file}: no held port (bound: ${bound})`);
  return port;
}

/** A connected client whose request already waits for the server's accept(). */
function connectAndSend(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const client = net.connect({ host: HOST, port });
    client.once('error', reject);
    client.once('connect', () => {
      client.off('error', reject);
      client.write(REQUEST, (e) => (e ? (client.destroy(), reject(e)) : resolve(client)));
    });
  });
}

/** Milliseconds from launch() to the first response byte; the response is checked in full. */
async function runRunner(label: string, spec: ServiceSpec, registry: SocketRegistry, port: number): Promise<number> {
  const client = await connectAndSend(port);
  let response = '';
  let stderr = '';
  let proc: LaunchedProcess | undefined;
  let exited: Promise<unknown> | undefined;
  let failure: unknown;
  let ms = 0;
  try {
    // Everything the client sees, attached before launching so nothing races the clock.
    let start = 0;
    const firstByte = new Promise<number>((resolve, reject) => {
      client.once('data', () => resolve(performance.now() - start));
      client.once('error', reject);
      client.once('close', () => reject(new Error('the connection closed without a response byte')));
    });
    firstByte.catch(() => undefined);
    const ended = new Promise<void>((resolve, reject) => {
      client.on('data', (d: Buffer) => (response += d.toString('latin1')));
      client.once('end', () => resolve());
      client.once('error', reject);
    });
    ended.catch(() => undefined);

    start = performance.now();
    proc = await launch(planRunnerLaunch(spec, { daemonPid: process.pid }), registry);
    liveGroups.add(proc.pid);
    const child = proc.child;
    exited = child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise((resolve) => child.once('exit', resolve));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.stdout.resume();

    ms = await withTimeout(firstByte, TIMEOUT_MS, 'the first response byte');
    await withTimeout(ended, TIMEOUT_MS, 'the end of the response');
    if (!response.includes(EXPECTED)) throw new Error(`the response lacks "${EXPECTED}": ${JSON.stringify(response)}`);
  } catch (e) {
    failure = e;
  } finally {
    if (proc !== undefined) {
      tryKill(-proc.pid);
      await withTimeout(exited!, TIMEOUT_MS, `exit of runner pid ${proc.pid}`).catch((e: Error) => {
        failure ??= e;
      });
      liveGroups.delete(proc.pid);
      // stderr reaches EOF once the whole group is gone; a short wait keeps a failure's message complete.
      const stderrStream = proc.stderr;
      await withTimeout(new Promise((r) => (stderrStream.readableEnded ? r(undefined) : stderrStream.once('close', r))), 1000, 'stderr EOF').catch(() => undefined);
      proc.stdout.destroy();
      proc.stderr.destroy();
    }
    client.destroy();
  }
  if (failure !== undefined) {
    const message = failure instanceof Error ? failure.message : String(failure);
    throw new Error(`${label}: ${message}\nchild stderr:\n${stderr || '(empty)'}`);
  }
  return ms;
}

/** Milliseconds from spawn() to the interpreter's exit after importing what web.yaml imports. */
async function runBaseline(executable: string): Promise<number> {
  let stderr = '';
  const start = performance.now();
  const child = spawn(executable, ['-I', '-c', BASELINE_CODE], { env: {}, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal, ms: performance.now() - start }));
  });
  const stderrClosed = new Promise((r) => child.stderr!.once('close', r));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  if (child.pid !== undefined) livePids.add(child.pid);
  try {
    const r = await withTimeout(exited, TIMEOUT_MS, `exit of ${executable} -I -c "${BASELINE_CODE}"`);
    if (r.code !== 0) {
      await withTimeout(stderrClosed, 1000, 'stderr EOF').catch(() => undefined);
      throw new Error(`baseline: ${executable} exited with ${r.code ?? r.signal}\nstderr:\n${stderr || '(empty)'}`);
    }
    return r.ms;
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      tryKill(child.pid!);
      await withTimeout(exited, TIMEOUT_MS, 'exit after SIGKILL').catch(() => undefined);
    }
    if (child.pid !== undefined) livePids.delete(child.pid);
    child.stderr!.destroy();
  }
}


const { values } = parseArgs({ options: { runs: { type: 'string' }, json: { type: 'string' } } });
const runs = positiveIntFlag(values.runs, 'runs', 20);

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sockvisor-bench-'));
const registry = new SocketRegistry();
// An interrupted bench still leaves no child, held socket or temp dir behind.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const pgid of liveGroups) tryKill(-pgid);
    for (const pid of livePids) tryKill(pid);
    registry.closeAll();
    rmSync(root, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}
try {
  const seed = await fs.readFile(SEED_WEB, 'utf8');
  if (!seed.includes('my_socket: !socket\n')) throw new Error(`${SEED_WEB.pathname}: no "my_socket: !socket" line to give an address`);
  const strictText = seed.replace('my_socket: !socket', `my_socket: !socket {bind: ${HOST}:0}`);
  if (!strictText.includes('\nstderr: ')) throw new Error(`${SEED_WEB.pathname}: no top-level "stderr:" line to put supervise: before`);
  const offText = strictText.replace('\nstderr: ', '\nsupervise: {sandbox: "off"}\nstderr: ');
  const strictFile = path.join(root, 'web.yaml');
  const offFile = path.join(root, 'web-nosandbox.yaml');
  await fs.writeFile(strictFile, strictText);
  await fs.writeFile(offFile, offText);

  // Loaded and bound once, outside the timing: the daemon holds the socket across every start.
  const strict = await loadSpec(strictFile);
  const off = await loadSpec(offFile);
  if (strict.supervise.sandbox !== 'strict' || off.supervise.sandbox !== 'off') {
    throw new Error(`sandbox modes are ${strict.supervise.sandbox} and ${off.supervise.sandbox}, expected strict and off`);
  }
  await registry.bindAll([...strict.sockets, ...off.sockets]);
  const strictPort = heldPort(strict, registry);
  const offPort = heldPort(off, registry);
  const python = strict.python!;

  const sides = [
    { name: 'runner, sandbox strict', run: () => runRunner('runner (strict)', strict, registry, strictPort), samples: [] as number[] },
    { name: 'runner, sandbox off', run: () => runRunner('runner (off)', off, registry, offPort), samples: [] as number[] },
    { name: 'baseline python3 -I -c', run: () => runBaseline(python.executable), samples: [] as number[] },
  ];

  // The warm-up fills the page cache and catches a broken setup (sandbox, interpreter) early.
  for (const side of sides) await side.run();
  for (let r = 0; r < runs; r++) {
    // Rotating the order keeps drift (thermal, cache, TIME_WAIT) from favouring one side.
    for (let i = 0; i < sides.length; i++) {
      const side = sides[(r + i) % sides.length]!;
      side.samples.push(await side.run());
    }
  }

  const cpus = os.cpus();
  const command = values.runs === undefined ? 'npm run bench:runner' : `npm run bench:runner -- --runs ${runs}`;
  console.log(`machine: ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}, Python ${python.version}, ${os.type()} ${os.release()}`);
  console.log(`command: ${command}  (${runs} runs after 1 warm-up each, order rotated)`);
  console.log(`interpreter: ${python.executable}`);
  console.log(`runner:   launch() until the first response byte to a request already in the held socket's backlog (seed web.yaml, bind ${HOST}:0)`);
  console.log(`baseline: spawn() until exit of ${python.executable} -I -c "${BASELINE_CODE}", empty environment`);
  console.log('');
  const row = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(24) : c.padStart(12))).join('');
  console.log(row(['', 'ms median', 'ms min', 'ms max']));
  const [s, o, b] = sides.map((side) => stats(side.samples)) as [ReturnType<typeof stats>, ReturnType<typeof stats>, ReturnType<typeof stats>];
  for (const [side, t] of [[sides[0]!, s], [sides[1]!, o], [sides[2]!, b]] as const) {
    console.log(row([side.name, t.median.toFixed(1), t.min.toFixed(1), t.max.toFixed(1)]));
  }
  console.log('');
  const strictRatio = s.median / b.median;
  const offRatio = o.median / b.median;
  console.log(`ratio runner strict / baseline (medians): ${strictRatio.toFixed(2)}x  ${strictRatio <= TARGET ? 'PASS' : 'OVER'} (target: at most ${TARGET}x)`);
  console.log(`ratio runner off / baseline (medians):    ${offRatio.toFixed(2)}x`);
  console.log(`sandbox cost (strict - off, medians):     ${(s.median - o.median).toFixed(1)} ms`);
  console.log('');
  console.log(`checked every run: the runner answered "${EXPECTED}"; the baseline exited 0`);
  writeJson(values.json, { runs, python: python.version, strict: s, off: o, baseline: b, baselineCode: BASELINE_CODE });
} catch (e) {
  console.error(e instanceof Error ? `FAIL: ${e.message}` : e);
  process.exitCode = 1;
} finally {
  registry.closeAll();
  await fs.rm(root, { recursive: true, force: true });
}
