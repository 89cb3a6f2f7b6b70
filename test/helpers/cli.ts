import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root, found from the compiled test's location (dist/test/helpers). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const SOCKVISORD = path.join(ROOT, 'dist/src/cli/sockvisord.js');
export const SEED = path.join(ROOT, 'test/fixtures/seed');

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion with a deadline, so a hung child fails the test instead of the run. */
export function run(file: string, args: readonly string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: options.cwd ?? ROOT, timeout: options.timeoutMs ?? 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`));
        return;
      }
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

export function sockvisord(args: readonly string[], options: { cwd?: string } = {}): Promise<RunResult> {
  return run(process.execPath, [SOCKVISORD, ...args], options);
}

/** A temporary directory removed when the returned disposer runs. */
export async function tempDir(t: { after: (fn: () => Promise<void>) => void }, prefix = 'sockvisor-test-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes files given as `{relative path: text}` under `dir`. */
export async function writeTree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fs.writeFile(path.join(dir, name), text);
  }
}

export const HEADER = '%TAG ! tag:nuxi.nl,2015:cloudabi/\n---\n';

/**
 * A sockvisorctl that user `nobody` can run: this checkout's when nobody can read it, otherwise a
 * copy (the client, package.json and commander) in a world-readable temporary directory, since a
 * checkout under a 0700 directory is out of nobody's reach.
 */
export async function clientForNobody(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const ctl = path.join(ROOT, 'dist/src/cli/sockvisorctl.js');
  const probe = await run('runuser', ['-u', 'nobody', '--', process.execPath, ctl, '--version']).catch(() => ({ code: -1 }));
  if (probe.code === 0) return ctl;
  const dir = await tempDir(t, 'sockvisorctl-nobody-');
  await fs.cp(path.join(ROOT, 'dist/src'), path.join(dir, 'dist/src'), { recursive: true });
  await fs.cp(path.join(ROOT, 'node_modules/commander'), path.join(dir, 'node_modules/commander'), { recursive: true });
  await fs.copyFile(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  await run('chmod', ['-R', 'a+rX', dir]);
  return path.join(dir, 'dist/src/cli/sockvisorctl.js');
}
