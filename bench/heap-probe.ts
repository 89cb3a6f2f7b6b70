/**
 * A probe preloaded into the soak's sockvisord (`node --expose-gc --import heap-probe-preload.js`);
 * never part of the daemon itself. On SIGUSR2 it runs a full garbage collection and prints one JSON line with
 * the memory figures that follow it.
 *
 * Why: V8 runs a full collection only when the old generation nears a limit that starts far
 * above what the daemon keeps. Under the soak's churn (ten processes killed and replaced a
 * second) dead objects pile up in old space for minutes before the first one, so the raw RSS of
 * a 60 s run rises steadily whether or not anything leaks. Compared after a collection, RSS grows
 * only with what the daemon still holds.
 */
import v8 from 'node:v8';

declare const gc: (() => void) | undefined;

export const HEAP_PROBE_SIGNAL = 'SIGUSR2';
export const HEAP_PROBE_MESSAGE = 'heap probe';

export interface HeapProbeRecord {
  readonly msg: typeof HEAP_PROBE_MESSAGE;
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
  /** Per V8 heap space: bytes in use and committed. */
  readonly spaces: Record<string, { readonly used: number; readonly committed: number }>;
}

export function installHeapProbe(): void {
  if (typeof gc !== 'function') throw new Error('heap probe: run node with --expose-gc');
  const collect = gc;
  process.on(HEAP_PROBE_SIGNAL, () => {
    collect();
    const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
    const spaces = Object.fromEntries(
      v8.getHeapSpaceStatistics().map((s) => [s.space_name, { used: s.space_used_size, committed: s.physical_space_size }]),
    );
    const record: HeapProbeRecord = { msg: HEAP_PROBE_MESSAGE, rss, heapUsed, heapTotal, external, arrayBuffers, spaces };
    process.stdout.write(`${JSON.stringify(record)}\n`);
  });
}
