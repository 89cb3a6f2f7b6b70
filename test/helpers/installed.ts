/**
 * Tests that need a system package: on a developer's machine without it they are skipped with a
 * message that says how to install it; with CI set (.ci/run installs it) a missing one fails.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

export type SkippableContext = { skip: (message?: string) => void };

/** Whether `what` is there; if not, fails under CI and skips the test otherwise. */
export function requireInstalled(t: SkippableContext, what: string, installed: boolean, install: string): boolean {
  if (installed) return true;
  const message = `${what} is not installed: ${install}`;
  if (process.env['CI']) assert.fail(message);
  t.skip(message);
  return false;
}

/**
 * The absolute path of a command found in PATH, as `command -v` finds it, then in the sbin
 * directories (makewhatis lives there and is not in every PATH); undefined if none.
 */
export function commandPath(command: string): string | undefined {
  const r = spawnSync('sh', ['-c', 'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v "$1"', 'sh', command], { encoding: 'utf8' });
  const found = r.stdout.trim();
  return r.status === 0 && found.startsWith('/') ? found : undefined;
}

/** A command's path, or undefined after skipping the test (or failing it under CI) if it is missing. */
export function requireCommand(t: SkippableContext, command: string, install: string): string | undefined {
  const found = commandPath(command);
  return requireInstalled(t, command, found !== undefined, install) ? found : undefined;
}

/** Whether `python` can import `module`. */
export function pythonImports(python: string, module: string): boolean {
  return spawnSync(python, ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0;
}
