/** The runner's argdata decoder fuzz (test/python/fuzz_argdata.py), with a given count and seed. */
import path from 'node:path';
import { encodeArgdata } from '../../src/argdata/encode.js';
import { loadConfig } from '../../src/config/load.js';
import { planRunnerLaunch } from '../../src/supervise/launch-plan.js';
import { ROOT, SEED } from '../helpers/cli.js';
import { runPython } from '../helpers/python.js';
import { v } from '../helpers/values.js';

export interface PythonFuzzStats {
  readonly total: number;
  readonly decoded: number;
  readonly rejected: number;
  readonly failures: unknown[];
}

/** Valid argdata to mutate: hand-built corner cases and a real service's document. */
async function seedBuffers(): Promise<Uint8Array[]> {
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
  const r = await runPython(python, ['-I', path.join(ROOT, 'test/python/fuzz_argdata.py'), String(count), String(seed)], input);
  if (r.code !== 0) throw new Error(`fuzz_argdata.py exited with ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as PythonFuzzStats;
}
