/**
 * What it costs the daemon to bind-and-listen 1,000 held sockets, next to Node's own
 * net.createServer().listen() for the same 1,000, with the process's fd count and RSS before
 * binding, while holding them, and after closing them all. Any fd left open after closing is a
 * leak and fails the bench.
 *
 *   npm run build && npm run bench:bind [-- --runs N]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parseAddress, socketIdentity } from '../src/config/address.js';
import type { SocketDecl } from '../src/config/spec.js';
import { native } from '../src/sockets/native.js';
import { SocketBindError, SocketRegistry } from '../src/sockets/registry.js';
import { positiveIntFlag, stats, writeJson } from './common.js';

const SOCKETS = 1000;
const SAMPLE_CONNECTS = 20;
const CONNECT_TIMEOUT_MS = 2000;
const HOST = '127.0.0.1';
const MIB = 1024 * 1024;

const fdDir = fs.existsSync('/proc/self/fd') ? '/proc/self/fd' : '/dev/fd';

/** Open descriptors of this process (the directory handle readdir opens is counted every time alike). */
function fdCount(): number {
  return fs.readdirSync(fdDir).length;
}

interface Sample {
  readonly fds: number;
  readonly rss: number;
}

function sample(): Sample {
  return { fds: fdCount(), rss: process.memoryUsage().rss };
}

interface RunResult {
  readonly ms: number;
  readonly before: Sample;
  readonly held: Sample;
  readonly after: Sample;
}

/** The soft open-files limit, as `ulimit -n` reports it; undefined where it cannot be read. */
function openFilesLimit(): number | undefined {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    if (soft !== undefined) return soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    // no /proc: ask a shell, which inherits our limit
  }
  try {
    const text = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    return text === 'unlimited' ? Infinity : Number(text);
  } catch {
    return undefined;
  }
}

function declarations(): SocketDecl[] {
  const written = `${HOST}:0`;
  const address = parseAddress(written);
  if (typeof address === 'string') throw new Error(`parseAddress(${written}): ${address}`);
  const decls: SocketDecl[] = [];
  for (let i = 0; i < SOCKETS; i++) {
    decls.push({
      keyPath: `args.s${i}`,
      pos: { file: 'bench', line: 1, col: 1 },
      mode: 'bind',
      socketType: 'stream',
      backlog: undefined,
      written,
      address,
      identity: socketIdentity(address, 'stream', `bench/s${i}`),
      unixFile: undefined,
    });
  }
  if (new Set(decls.map((d) => d.identity)).size !== SOCKETS) throw new Error('port-0 identities are not unique per declaration');
  return decls;
}

class EmfileError extends Error {}

function emfileMessage(side: string, limit: number | undefined): string {
  const l = limit === undefined ? 'unknown' : String(limit);
  return `${side}: ran out of file descriptors (EMFILE) binding ${SOCKETS} sockets; the open-files limit (ulimit -n) is ${l}. This bench raises nothing: run it with ulimit -n of at least ${SOCKETS + 100}.`;
}

/** Connects to the port and closes again; a held listening socket completes the handshake from its backlog. */
function connectOnce(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const client = net.connect({ host: HOST, port });
    client.setTimeout(CONNECT_TIMEOUT_MS);
    let failure: Error | undefined;
    client.once('connect', () => client.destroy());
    client.once('timeout', () => {
      failure = new Error(`connect to ${HOST}:${port} timed out after ${CONNECT_TIMEOUT_MS} ms`);
      client.destroy();
    });
    client.once('error', (e) => {
      failure = new Error(`connect to ${HOST}:${port}: ${e.message}`);
    });
    client.once('close', () => (failure ? reject(failure) : resolve()));
  });
}

/** Every held socket reports a real bound port, and a sample of them takes a TCP connection. */
async function verifyHeld(registry: SocketRegistry): Promise<void> {
  const held = registry.list();
  if (held.length !== SOCKETS) throw new Error(`sockvisor: registry holds ${held.length} sockets, expected ${SOCKETS}`);
  const ports = new Set<number>();
  for (const socket of held) {
    const local = native.localAddress(socket.fd);
    if (local.family !== 'inet4' || local.host !== HOST || !local.port) {
      throw new Error(`sockvisor: fd ${socket.fd} (${socket.identity}) is not bound to ${HOST} with a port: ${JSON.stringify(local)}`);
    }
    if (socket.bound !== `${HOST}:${local.port}`) throw new Error(`sockvisor: ${socket.identity} says ${socket.bound}, the kernel says port ${local.port}`);
    ports.add(local.port);
  }
  if (ports.size !== SOCKETS) throw new Error(`sockvisor: ${SOCKETS} sockets share ${ports.size} ports`);
  const step = Math.floor(SOCKETS / SAMPLE_CONNECTS);
  const sampled = [...ports].filter((_, i) => i % step === 0).slice(0, SAMPLE_CONNECTS);
  for (const port of sampled) await connectOnce(port);
}

async function runSockvisor(decls: readonly SocketDecl[], limit: number | undefined): Promise<RunResult> {
  const registry = new SocketRegistry();
  const before = sample();
  const start = performance.now();
  try {
    await registry.bindAll(decls);
  } catch (e) {
    if (e instanceof SocketBindError && e.failures.some((f) => /EMFILE|too many open files/i.test(f.message))) {
      throw new EmfileError(emfileMessage('sockvisor', limit));
    }
    throw e;
  }
  const ms = performance.now() - start;
  const held = sample();
  try {
    await verifyHeld(registry);
  } finally {
    registry.closeAll();
  }
  return { ms, before, held, after: sample() };
}

function listen(server: net.Server): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen({ host: HOST, port: 0 }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Node's own way, one listen at a time as bindAll does them: create, listen, await 'listening'. */
async function runBaseline(limit: number | undefined): Promise<RunResult> {
  const servers: net.Server[] = [];
  const before = sample();
  const start = performance.now();
  let ms: number;
  let held: Sample;
  try {
    for (let i = 0; i < SOCKETS; i++) {
      const server = net.createServer();
      try {
        await listen(server);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EMFILE') throw new EmfileError(emfileMessage('baseline', limit));
        throw e;
      }
      servers.push(server);
    }
    ms = performance.now() - start;
    held = sample();
    for (const server of servers) {
      const address = server.address();
      if (address === null || typeof address === 'string' || address.port === 0) throw new Error(`baseline: a server is not listening: ${JSON.stringify(address)}`);
    }
  } finally {
    await Promise.all(servers.map(closeServer));
  }
  return { ms, before, held, after: sample() };
}

/**
 * libuv opens one reserve fd (/dev/null) per event loop when the first stream handle is made, for
 * its EMFILE trick, and keeps it for the life of the process. Making that happen before the first
 * sample keeps it from showing up as a leak of whichever side runs first.
 */
async function primeLibuv(): Promise<void> {
  const server = net.createServer();
  await listen(server);
  await closeServer(server);
}


const { values } = parseArgs({ options: { runs: { type: 'string' }, json: { type: 'string' } } });
const runs = positiveIntFlag(values.runs, 'runs', 5);

const limit = openFilesLimit();
const limitText = limit === undefined ? 'unknown' : String(limit);

try {
  const decls = declarations();
  const leaks: string[] = [];
  const check = (side: string, label: string, r: RunResult) => {
    if (r.after.fds !== r.before.fds) leaks.push(`${side} (${label}): ${r.before.fds} fds before binding, ${r.after.fds} after closing all ${SOCKETS}`);
    return r;
  };

  await primeLibuv();
  // The warm-up settles the JIT and catches a broken setup (EMFILE, unverifiable sockets) early.
  check('sockvisor', 'warm-up', await runSockvisor(decls, limit));
  check('baseline', 'warm-up', await runBaseline(limit));

  const sockvisor: RunResult[] = [];
  const baseline: RunResult[] = [];
  for (let r = 0; r < runs; r++) {
    // Alternating the order keeps drift (GC debt, TIME_WAIT, allocator state) from favouring one side.
    if (r % 2 === 0) {
      sockvisor.push(check('sockvisor', `run ${r + 1}`, await runSockvisor(decls, limit)));
      baseline.push(check('baseline', `run ${r + 1}`, await runBaseline(limit)));
    } else {
      baseline.push(check('baseline', `run ${r + 1}`, await runBaseline(limit)));
      sockvisor.push(check('sockvisor', `run ${r + 1}`, await runSockvisor(decls, limit)));
    }
  }

  const cpus = os.cpus();
  const command = values.runs === undefined ? 'npm run bench:bind' : `npm run bench:bind -- --runs ${runs}`;
  console.log(`machine: ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}, ${os.type()} ${os.release()}, ulimit -n ${limitText}`);
  console.log(`command: ${command}  (${SOCKETS} TCP sockets on ${HOST}:0, ${runs} runs after 1 warm-up each)`);
  console.log('');
  const row = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(22) : c.padStart(15))).join('');
  console.log(`bind-and-listen ${SOCKETS} sockets`);
  console.log(row(['', 'per socket µs', 'ms median', 'ms min', 'ms max']));
  const s = stats(sockvisor.map((r) => r.ms));
  const b = stats(baseline.map((r) => r.ms));
  for (const [name, t] of [['sockvisor bindAll', s], ['baseline net.listen', b]] as const) {
    console.log(row([name, ((t.median * 1000) / SOCKETS).toFixed(1), t.median.toFixed(1), t.min.toFixed(1), t.max.toFixed(1)]));
  }
  console.log('');
  console.log(`ratio sockvisor/baseline (medians): ${(s.median / b.median).toFixed(2)}x`);
  console.log('');
  console.log(`process fds and RSS (median over runs)`);
  console.log(row(['', 'before', `${SOCKETS} held`, 'after close']));
  const med = (rs: readonly RunResult[], pick: (r: RunResult) => number) => stats(rs.map(pick)).median;
  for (const [name, rs] of [['sockvisor', sockvisor], ['baseline', baseline]] as const) {
    console.log(row([`${name} fds`, ...[med(rs, (r) => r.before.fds), med(rs, (r) => r.held.fds), med(rs, (r) => r.after.fds)].map((n) => String(n))]));
    console.log(row([`${name} RSS MiB`, ...[med(rs, (r) => r.before.rss), med(rs, (r) => r.held.rss), med(rs, (r) => r.after.rss)].map((n) => (n / MIB).toFixed(1))]));
  }
  console.log('');
  console.log(`checked every run: ${SOCKETS}/${SOCKETS} held sockets report a distinct non-zero port on ${HOST}; ${SAMPLE_CONNECTS} sampled connects succeeded`);
  if (leaks.length > 0) {
    console.error(`FAIL: file descriptors leaked:\n  ${leaks.join('\n  ')}`);
    process.exitCode = 1;
  } else {
    console.log(`no fd leak: the fd count after closing equals the count before, on both sides, in all ${runs + 1} runs each`);
    writeJson(values.json, { sockets: SOCKETS, runs, sockvisor: s, baseline: b, fds: { before: med(sockvisor, (r) => r.before.fds), held: med(sockvisor, (r) => r.held.fds), after: med(sockvisor, (r) => r.after.fds) } });
  }
} catch (e) {
  console.error(e instanceof Error ? `FAIL: ${e.message}` : e);
  process.exitCode = 1;
}
