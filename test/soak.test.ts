/**
 * A 10-second soak of a real sockvisord (bench/soak.ts): SIGKILLs, argdata edits and reloads,
 * log rotation, 8 HTTP clients and sockvisorctl calls all at once, then every check of the soak.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSoak } from '../bench/soak.js';

test('soak for 10 s: every service RUNNING, no zombie, fds and RSS steady, no refused connection, no unexplained failure, no log line lost', { timeout: 120_000 }, async (t) => {
  const result = await runSoak({ seconds: 10, log: (line) => t.diagnostic(line) });
  const failed = result.checks.filter((c) => !c.ok);
  assert.deepEqual(
    failed.map((c) => `${c.name}: ${c.detail}`),
    [],
    `soak failed:\n${result.summary}`,
  );
  assert.ok(result.checks.length >= 10, `every check ran:\n${result.summary}`);
  for (const line of result.summary.split('\n')) t.diagnostic(line);
});
