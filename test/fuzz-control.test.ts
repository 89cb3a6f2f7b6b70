/**
 * Property-based fuzz of the control protocol against a real daemon (short, fixed seed; `npm run
 * fuzz` runs longer with any seed): random well-formed requests, malformed lines, random bytes,
 * huge and truncated frames. The daemon must answer every well-formed request with a well-formed
 * frame, refuse the rest as documented, stay up, and answer `status` after every batch.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzzDaemon, severeRecords } from './fuzz/daemon.js';
import { runControlFuzz } from './fuzz/control-fuzz.js';

const SEED = 20261129;

test(`control protocol fuzz: 60 batches, seed ${SEED}`, async (t) => {
  const d = await fuzzDaemon(t);
  const started = Date.now();
  const stats = await runControlFuzz({ seed: SEED, numRuns: 60, socketPath: d.files.controlSocket, alive: () => d.proc.exitCode === null && d.proc.signalCode === null });
  t.diagnostic(`seed ${SEED}: ${JSON.stringify(stats)} in ${Date.now() - started} ms`);
  assert.equal(d.proc.exitCode, null, `the daemon exited: ${d.stderr}`);
  assert.ok(stats.requests > 50 && stats.fatal > 5, JSON.stringify(stats));
  const severe = severeRecords(d);
  if (severe.length > 0) t.diagnostic(`daemon error records: ${severe.slice(0, 5).join('\n')}`);
});
