/**
 * Property-based fuzz of the service-file pipeline (short, fixed seed; `npm run fuzz` runs 10,000
 * cases with any seed). Mutated service files must give specs or diagnostics with in-range
 * positions, never throw, never hang, and plan a launch whenever they have no errors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runConfigFuzz } from './fuzz/config-fuzz.js';

const SEED = 20261129;

test(`service file fuzz: 300 mutated files, seed ${SEED}`, async (t) => {
  const started = Date.now();
  const stats = await runConfigFuzz({ seed: SEED, numRuns: 300, loadEvery: 20 });
  t.diagnostic(`seed ${SEED}: ${JSON.stringify(stats)} in ${Date.now() - started} ms`);
  assert.equal(stats.cases, 300);
  // The mutations must leave some files valid and break others, or the fuzz tests little.
  assert.ok(stats.planned > 10 && stats.withErrors > 100, JSON.stringify(stats));
  assert.ok(stats.viaLoader > 5, JSON.stringify(stats));
});
