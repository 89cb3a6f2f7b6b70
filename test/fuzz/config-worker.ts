/**
 * Worker thread that checks fuzzed service files one at a time, so the main thread can give each
 * case a deadline and kill the worker when a case hangs.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';
import { LoadCache } from '../../src/config/load.js';
import { checkLoader, checkPure } from './config-check.js';

export interface WorkRequest {
  readonly n: number;
  readonly bytes: Uint8Array;
  readonly viaLoader: boolean;
}

export interface WorkReply {
  readonly n: number;
  readonly problems: string[];
  readonly hadErrors: boolean;
  readonly planned: boolean;
  readonly loaderOk?: boolean;
  readonly ms: number;
}

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sockvisor-fuzz-config-'));
const cache = new LoadCache();

parentPort!.on('message', (req: WorkRequest | 'close') => {
  if (req === 'close') {
    void fs.rm(dir, { recursive: true, force: true }).then(() => process.exit(0));
    return;
  }
  void (async () => {
    const started = performance.now();
    const text = Buffer.from(req.bytes).toString('utf8');
    const pure = checkPure(text);
    let reply: WorkReply = { n: req.n, ...pure, ms: 0 };
    if (req.viaLoader) {
      const loaded = await checkLoader(req.bytes, dir, cache);
      reply = { ...reply, problems: [...reply.problems, ...loaded.problems], loaderOk: loaded.ok };
    }
    parentPort!.postMessage({ ...reply, ms: performance.now() - started });
  })().catch((e: unknown) => parentPort!.postMessage({ n: req.n, problems: [`worker failed: ${String(e)}`], hadErrors: true, planned: false, ms: 0 }));
});

parentPort!.postMessage('ready');
