/**
 * How much loadConfig costs on a large services directory, relative to bare `yaml` parsing of the same
 * files, so that the price of checking (tags, typed scalars, supervise keys, host probes) stays visible.
 *
 *   npm run build && npm run bench:config [-- --runs N]
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { formatDiagnostic } from '../src/config/diagnostics.js';
import { loadConfig } from '../src/config/load.js';
import { positiveIntFlag, stats, writeJson } from './common.js';

const FILES = 1000;
const BASE_PORT = 20000;

function serviceFile(i: number, dirs: readonly string[]): string {
  const restart = ['always', 'on-failure', 'never'][i % 3];
  // Every other service gets a second search-path directory, so the !file count varies too.
  const paths = dirs.slice(0, 1 + (i % 2)).map((d) => `  - !file {path: ${d}}`);
  const day = String(1 + (i % 28)).padStart(2, '0');
  return `%TAG ! tag:nuxi.nl,2015:cloudabi/
---
supervise:
  replicas: ${1 + (i % 4)}
  restart: ${restart}
  backoff: {initial: ${100 + (i % 5) * 50}ms, max: ${10 + (i % 20)}s, factor: 2, jitter: 0.${1 + (i % 3)}, reset_after: 60s}
  env:
    SERVICE_ID: "svc-${i}"
    LOG_FORMAT: ${i % 2 === 0 ? 'text' : 'json'}
    TZ: UTC
  stop_timeout: ${3 + (i % 7)}s
stderr: !fd stderr
path:
${paths.join('\n')}
args:
  listener: !socket {bind: 127.0.0.1:${BASE_PORT + i}}
  workers: ${2 + (i % 8)}
  max_body: 0x${(0x10000 + i).toString(16)}
  sample_rate: ${(0.5 + (i % 10) / 20).toFixed(2)}
  verbose: ${i % 3 === 0 ? 'yes' : 'no'}
  deployed: 2016-08-${day}T12:00:00Z
  upstreams:
    - [10.0.${i % 250}.1, ${8000 + (i % 100)}]
    - [10.0.${i % 250}.2, ${8100 + (i % 100)}]
command: |
  import http.server
  import socketserver
  import sys

  class Server(socketserver.BaseServer):
      def __init__(self, sock, handler):
          socketserver.BaseServer.__init__(self, None, handler)
          self.socket = sock

      def fileno(self):
          return self.socket.fileno()

      def get_request(self):
          return self.socket.accept()

  class Handler(http.server.BaseHTTPRequestHandler):
      def do_GET(self):
          self.send_response(200)
          self.end_headers()
          self.wfile.write(b'service ${i} (${restart})\\n')

  Server(sys.argdata['listener'], Handler).serve_forever()
`;
}

async function generate(root: string): Promise<string[]> {
  const dirs = ['lib', 'site-packages'].map((d) => path.join(root, d));
  for (const d of dirs) await fs.mkdir(d);
  const servicesDir = path.join(root, 'sockvisor.d');
  await fs.mkdir(servicesDir);
  await fs.writeFile(path.join(root, 'sockvisor.yaml'), 'services: sockvisor.d\npython: python3\nwatch: false\n');
  const files: string[] = [];
  for (let i = 0; i < FILES; i++) {
    const file = path.join(servicesDir, `svc-${String(i).padStart(4, '0')}.yaml`);
    await fs.writeFile(file, serviceFile(i, dirs));
    files.push(file);
  }
  return files;
}

async function runSockvisor(configFile: string): Promise<number> {
  const start = performance.now();
  const result = await loadConfig({ configFile });
  const elapsed = performance.now() - start;
  if (!result.ok || result.services.length !== FILES) {
    const first = result.diagnostics.slice(0, 10).map(formatDiagnostic).join('\n');
    throw new Error(`loadConfig: ok=${result.ok}, ${result.services.length}/${FILES} services\n${first}`);
  }
  return elapsed;
}

// Sequential reads, as loadConfig does, so the ratio compares parsing work rather than I/O concurrency.
async function runBaseline(files: readonly string[]): Promise<number> {
  const start = performance.now();
  for (const file of files) YAML.parse(await fs.readFile(file, 'utf8'), { logLevel: 'silent' });
  return performance.now() - start;
}


function pythonVersion(): string {
  try {
    return execFileSync('python3', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'python3 not found';
  }
}

const { values } = parseArgs({ options: { runs: { type: 'string' }, json: { type: 'string' } } });
const runs = positiveIntFlag(values.runs, 'runs', 7);

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sockvisor-bench-'));
// An interrupted bench still leaves no temp dir behind.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    rmSync(root, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}
try {
  const files = await generate(root);
  const configFile = path.join(root, 'sockvisor.yaml');

  // The warm-up lets the JIT and the file cache settle, and catches invalid generated files early.
  await runSockvisor(configFile);
  await runBaseline(files);

  const sockvisor: number[] = [];
  const baseline: number[] = [];
  for (let r = 0; r < runs; r++) {
    // Alternating the order keeps drift (thermal, GC debt, cache) from favouring one side.
    if (r % 2 === 0) {
      sockvisor.push(await runSockvisor(configFile));
      baseline.push(await runBaseline(files));
    } else {
      baseline.push(await runBaseline(files));
      sockvisor.push(await runSockvisor(configFile));
    }
  }

  const cpus = os.cpus();
  const command = values.runs === undefined ? 'npm run bench:config' : `npm run bench:config -- --runs ${runs}`;
  console.log(`machine: ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}, ${pythonVersion()}`);
  console.log(`command: ${command}  (${FILES} service files, ${runs} runs after 1 warm-up)`);
  console.log('');
  const row = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(10) : c.padStart(15))).join('');
  console.log(row(['', 'per file ms', 'set ms median', 'set ms min', 'set ms max']));
  const s = stats(sockvisor);
  const b = stats(baseline);
  for (const [name, t] of [['sockvisor', s], ['baseline', b]] as const) {
    console.log(row([name, (t.median / FILES).toFixed(3), t.median.toFixed(1), t.min.toFixed(1), t.max.toFixed(1)]));
  }
  console.log('');
  console.log(`ratio sockvisor/baseline (medians): ${(s.median / b.median).toFixed(2)}x`);
  writeJson(values.json, { files: FILES, runs, sockvisor: s, baseline: b });
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
} finally {
  await fs.rm(root, { recursive: true, force: true });
}
