/**
 * The long fuzz run (`npm run fuzz`): the service-file fuzz (10,000 cases), the control protocol
 * fuzz against a real daemon, and the runner's argdata decoder fuzz (10,000 buffers), all from one
 * seed, printed first so a failure can be replayed with `npm run fuzz -- --seed N`.
 *
 * Options: --seed N, --config-runs N, --control-runs N, --python-runs N, --only config|control|python
 * (repeatable), --stop-at-first (config: shrink the first failure instead of listing them all).
 */
import { parseArgs } from 'node:util';
import { runConfigFuzz, showCase } from './config-fuzz.js';
import { runControlFuzz } from './control-fuzz.js';
import { fuzzDaemon, severeRecords } from './daemon.js';
import { runPythonFuzz } from './python-fuzz.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    'config-runs': { type: 'string', default: '10000' },
    'control-runs': { type: 'string', default: '500' },
    'python-runs': { type: 'string', default: '10000' },
    only: { type: 'string', multiple: true },
    'stop-at-first': { type: 'boolean', default: false },
  },
});

const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 2 ** 31;
if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer, not ${values.seed}`);
const only = new Set(values.only ?? ['config', 'control', 'python']);
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
const results: { part: string; ok: boolean; ms: number; summary: string }[] = [];

async function part(name: string, fn: () => Promise<string>): Promise<void> {
  if (!only.has(name)) return;
  log(`${name}: starting (seed ${seed})`);
  const started = Date.now();
  try {
    const summary = await fn();
    results.push({ part: name, ok: true, ms: Date.now() - started, summary });
    log(`${name}: passed in ${Date.now() - started} ms: ${summary}`);
  } catch (e) {
    results.push({ part: name, ok: false, ms: Date.now() - started, summary: (e as Error).message.split('\n')[0]! });
    log(`${name}: FAILED in ${Date.now() - started} ms (seed ${seed})\n${(e as Error).message}`);
  }
}

console.log(`fuzz seed ${seed} (replay with: npm run fuzz -- --seed ${seed})`);

await part('config', async () => {
  const stopAtFirst = values['stop-at-first'];
  const stats = await runConfigFuzz({ seed, numRuns: Number(values['config-runs']), loadEvery: 20, keepGoing: !stopAtFirst, log });
  const { failures, ...counts } = stats;
  if (failures.length > 0) {
    const lines = failures.map((f, i) => `#${i + 1} (${f.count}x) ${f.signature}\n  smallest case (${f.bytes} bytes): ${JSON.stringify(f.smallest)}\n  ${showCase(f.smallest).slice(0, 600)}\n  ${f.message.split('\n').slice(0, 3).join('\n  ')}`);
    throw new Error(`${failures.length} distinct failures in ${counts.cases} cases ${JSON.stringify(counts)}\n${lines.join('\n')}\n(replay one with --only config --stop-at-first --seed ${seed} to shrink the first)`);
  }
  return JSON.stringify(counts);
});

await part('control', async () => {
  const cleanups: (() => Promise<void>)[] = [];
  const t = { after: (fn: () => Promise<void>) => void cleanups.push(fn) };
  try {
    const d = await fuzzDaemon(t);
    const stats = await runControlFuzz({ seed, numRuns: Number(values['control-runs']), socketPath: d.files.controlSocket, alive: () => d.proc.exitCode === null && d.proc.signalCode === null, log });
    const severe = severeRecords(d);
    return `${JSON.stringify(stats)}; daemon error-level log records: ${severe.length}${severe.length > 0 ? `\n${severe.slice(0, 5).join('\n')}` : ''}`;
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
});

await part('python', async () => {
  const stats = await runPythonFuzz(Number(values['python-runs']), seed);
  if (stats.failures.length > 0) throw new Error(`decoder failures: ${JSON.stringify(stats.failures).slice(0, 4000)}`);
  return JSON.stringify({ total: stats.total, decoded: stats.decoded, rejected: stats.rejected });
});

console.log(`\nfuzz seed ${seed}: ${results.map((r) => `${r.part} ${r.ok ? 'ok' : 'FAILED'} (${(r.ms / 1000).toFixed(1)} s)`).join(', ')}`);
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
