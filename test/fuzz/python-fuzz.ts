/** The runner's argdata decoder fuzz (test/python/fuzz_argdata.py), with a given count and seed. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { encodeArgdata } from '../../src/argdata/encode.js';
import { loadConfig } from '../../src/config/load.js';
import { planRunnerLaunch, RUNNER_PATH } from '../../src/supervise/launch-plan.js';
import { ROOT, SEED } from '../helpers/cli.js';
import { v } from '../helpers/values.js';

export interface PythonFuzzStats {
  readonly total: number;
  readonly decoded: number;
  readonly rejected: number;
  readonly failures: unknown[];
}

/** Valid argdata to mutate: hand-built corner cases and a real service's document. */
export async function seedBuffers(): Promise<Uint8Array[]> {
  const seeds: Uint8Array[] = [
    encodeArgdata(v.seq(v.int(0n), v.bool(true), v.str('A')), () => 0).bytes,
    encodeArgdata(v.map([v.str('a'), v.seq(v.float(1.5), v.null(), v.binary([1, 2, 3]))], [v.int(-129n), v.timestamp(1n)]), () => 0).bytes,
    encodeArgdata(v.map([v.fd(5), v.fd(6)], [v.str('nested'), v.map([v.seq(v.int(1n)), v.str('key is a seq')])]), (n) => n).bytes,
  ];
  const loaded = await loadConfig({ serviceFiles: [path.join(SEED, 'hello.yaml')] });
  seeds.push(planRunnerLaunch(loaded.services[0]!, { daemonPid: 1 }).argdata);
  return seeds;
}

export async function runPythonFuzz(count: number, seed: number, python = 'python3'): Promise<PythonFuzzStats> {
  const input = (await seedBuffers()).map((s) => Buffer.from(s).toString('hex')).join('\n') + '\n';
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(python, ['-I', path.join(ROOT, 'test/python/fuzz_argdata.py'), String(count), String(seed)], {
      env: { SOCKVISOR_RUNNER: RUNNER_PATH, PATH: process.env['PATH'] ?? '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
  if (r.code !== 0) throw new Error(`fuzz_argdata.py exited with ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as PythonFuzzStats;
}
