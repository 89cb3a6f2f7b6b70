/** Runs a Python script the way the runner's own tests do: only PATH and the runner's path set. */
import { spawn } from 'node:child_process';
import { RUNNER_PATH } from '../../src/runner-path.js';

export function runPython(python: string, args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, { env: { SOCKVISOR_RUNNER: RUNNER_PATH, PATH: process.env['PATH'] ?? '' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}
