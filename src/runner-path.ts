import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bundled Python runner, shipped beside dist/ in the package. */
export const RUNNER_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../python/sockvisor_runner.py');

/**
 * How the interpreter is told to run the runner: `-c` with a two-line bootstrap that imports it
 * as a module, so its bytecode comes from __pycache__ instead of being compiled on every start
 * (a script given by path never is). The arguments that follow go to the runner.
 */
export function runnerInvocation(runnerPath: string = RUNNER_PATH): string[] {
  const dir = JSON.stringify(path.dirname(runnerPath));
  const module = path.basename(runnerPath, '.py');
  return ['-c', `import sys; sys.path.insert(0, ${dir}); import ${module}; ${module}.main()`];
}
