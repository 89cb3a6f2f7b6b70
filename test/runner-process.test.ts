import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { encodeArgdata } from '../src/argdata/encode.js';
import { loadConfig } from '../src/config/load.js';
import { SocketRegistry } from '../src/sockets/registry.js';
import { launch } from '../src/supervise/launch.js';
import { planRunnerLaunch, type LaunchPlan } from '../src/supervise/launch-plan.js';
import { runPythonFuzz } from './fuzz/python-fuzz.js';
import { runPython } from './helpers/python.js';
import { HEADER, ROOT } from './helpers/cli.js';
import { startService, writeService } from './helpers/service.js';
import { portOf } from './helpers/sockets.js';
import { v } from './helpers/values.js';

type TestContext = { after: (fn: () => Promise<void>) => void };

/** Every CPython this machine has that the runner supports: the default one, and 3.8 and 3.13 from pyenv. */
const PYTHONS = ['python3', ...['3.8.18', '3.13.0'].map((ver) => `/root/.pyenv/versions/${ver}/bin/python3`).filter((p) => fs.existsSync(p))];

/** Wraps the runner so that the kernel seems to lack some system calls (see without_syscalls.py). */
const without = (groups: string) => (plan: LaunchPlan): LaunchPlan => ({ ...plan, argv: [plan.argv[0]!, path.join(ROOT, 'test/python/without_syscalls.py'), groups, ...plan.argv] });

/** Starts the runner with a plan for a trivial service, changed by `edit`; returns how it ended. */
async function runPlan(t: TestContext, edit: (plan: LaunchPlan) => LaunchPlan, body = 'command: print("ran")\n') {
  const { file } = await writeService(t, `${HEADER}stderr: !fd stderr\n${body}`);
  const result = await loadConfig({ serviceFiles: [file] });
  assert.ok(result.ok);
  const registry = new SocketRegistry();
  const proc = await launch(edit(planRunnerLaunch(result.services[0]!, { daemonPid: process.pid })), registry);
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => (stdout += d));
  proc.stderr.on('data', (d) => (stderr += d));
  const closed = Promise.all([new Promise((r) => proc.stdout.once('close', r)), new Promise((r) => proc.stderr.once('close', r))]);
  const [code] = await Promise.all([new Promise<number | null>((r) => proc.child.once('exit', (c) => r(c))), closed]);
  return { code, stdout, stderr };
}

describe('runner internals', () => {
  for (const python of PYTHONS) {
    test(`unit tests of its decisions pass under ${python}`, async () => {
      const r = await runPython(python, ['-I', path.join(ROOT, 'test/python/test_runner_units.py')]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^OK$/m);
    });
  }

  test('decoder fuzz: 10,000 random and mutated buffers decode or are rejected cleanly', async () => {
    const stats = await runPythonFuzz(10_000, 20261128);
    assert.deepEqual(stats.failures, []);
    assert.equal(stats.total, 10_000);
    assert.ok(stats.decoded > 100 && stats.rejected > 100, JSON.stringify(stats));
  });
});

describe('the runner process', () => {
  test('corrupt argdata ends it with exit 127 and one line, never a traceback', async (t) => {
    const corrupt = ['07 85 05', '08 41', '08 ff 00', '0a', '07 00', '06 81 05', '07 84 03 00 00 00', '07 81'];
    for (const hex of corrupt) {
      const r = await runPlan(t, (plan) => ({ ...plan, argdata: Buffer.from(hex.replace(/ /g, ''), 'hex') }));
      assert.equal(r.code, 127, hex);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^argdata: .* at byte offset \d+\n$/, `${hex}: ${r.stderr}`);
    }
  });

  test('a document that is not a map, or a path that is not directories, is refused the same way', async (t) => {
    let r = await runPlan(t, (plan) => ({ ...plan, argdata: encodeArgdata(v.seq(), () => 0).bytes }));
    assert.deepEqual([r.code, r.stderr], [127, 'argdata: the document is not a map\n']);
    r = await runPlan(t, (plan) => ({ ...plan, argdata: encodeArgdata(v.map([v.str('path'), v.seq(v.str('/usr/lib'))]), () => 0).bytes }));
    assert.deepEqual([r.code, r.stderr], [127, 'path must be a list of directories\n']);
  });

  test('strict refuses to start where Landlock is missing; best-effort starts and says so', async (t) => {
    if (!['x64', 'arm64'].includes(process.arch)) {
      t.skip('the Landlock-less stand-in kernel is a seccomp filter for x86_64 and aarch64 only');
      return;
    }
    const withoutLandlock = without('landlock');
    const strict = await runPlan(t, withoutLandlock);
    assert.equal(strict.code, 127);
    assert.equal(strict.stdout, '');
    assert.match(strict.stderr, /^sandbox: strict mode, but landlock \(Function not implemented\) could not be applied; use sandbox: best-effort to run without it\n$/);

    const bestEffort = await runPlan(t, withoutLandlock, 'supervise: {sandbox: best-effort}\ncommand: print("ran")\n');
    assert.equal(bestEffort.code, 0, bestEffort.stderr);
    assert.equal(bestEffort.stdout, 'ran\n');
    assert.match(bestEffort.stderr, /^sandbox: netns, no_new_privs, pdeathsig; missing: landlock \(Function not implemented\)\n$/);
  });

  test('where no network namespace can be made, a seccomp filter refuses new inet sockets', async (t) => {
    if (!['x64', 'arm64'].includes(process.arch)) {
      t.skip('the namespace-less stand-in kernel is a seccomp filter for x86_64 and aarch64 only');
      return;
    }
    const code = `import socket
for family, kind in ((socket.AF_INET, socket.SOCK_DGRAM), (socket.AF_INET6, socket.SOCK_DGRAM), (socket.AF_INET, socket.SOCK_STREAM)):
    try:
        socket.socket(family, kind)
        print('ALLOWED')
    except OSError as e:
        print('denied', e.errno)
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
print('unix ok')`;
    const r = await runPlan(t, without('unshare'), `path: [!file {path: /usr/local/x86_64-unknown-cloudabi/lib/python3.6}]\ncommand: |\n${code.split('\n').map((l) => `  ${l}`).join('\n')}\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'denied 13\ndenied 13\ndenied 13\nunix ok\n');
    assert.match(r.stderr, /^sandbox: landlock abi \d+ \(fs, tcp, scope\), seccomp \(no new inet sockets\), no_new_privs, pdeathsig\n/);
  });

  test('the environment is exactly supervise.env, and the daemon pid is checked', async (t) => {
    const r = await runPlan(t, (plan) => plan, 'supervise: {env: {GREETING: hi, PORT: 8080}}\ncommand: |\n  import os\n  print(sorted(os.environ.items()))\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "[('GREETING', 'hi'), ('PORT', '8080')]\n");
    const given = await runPlan(t, (plan) => plan, 'supervise: {env: {LC_CTYPE: C.UTF-8}}\ncommand: |\n  import os\n  print(sorted(os.environ.items()))\n');
    assert.equal(given.stdout, "[('LC_CTYPE', 'C.UTF-8')]\n", 'an LC_CTYPE the operator gave stays');
    const orphan = await runPlan(t, (plan) => ({ ...plan, argv: plan.argv.map((a, i) => (plan.argv[i - 1] === '--daemon-pid' ? '1' : a)) }));
    assert.equal(orphan.code, 127);
    assert.equal(orphan.stderr, 'sockvisord (pid 1) is gone; not starting\n');
  });
});

describe('threads under the sandbox', () => {
  test('a daemon thread still running at exit does not abort the process (glibc loads its unwinder then)', async (t) => {
    const body = `command: |
  import threading, time
  def spin():
      while True:
          time.sleep(0.001)
  threading.Thread(target=spin, daemon=True).start()
  time.sleep(0.05)
  print('bye')
`;
    const r = await runPlan(t, (plan) => plan, body);
    assert.equal(r.stdout, 'bye\n');
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /libgcc_s/);
  });
});

describe('graceful stop', () => {
  // ThreadingHTTPServer sets daemon_threads, whose threads would die with the process.
  for (const daemonThreads of [false, true]) test(`the stop signal finishes requests in flight, accepts no new ones, and exits 0 (daemon_threads ${daemonThreads})`, async (t) => {
    const code = `import socketserver, sys, time
class Server(socketserver.ThreadingMixIn, socketserver.BaseServer):
    daemon_threads = ${daemonThreads ? 'True' : 'False'}
    def __init__(self, sock, handler):
        socketserver.BaseServer.__init__(self, None, handler)
        self.socket = sock
    def fileno(self):
        return self.socket.fileno()
    def get_request(self):
        return self.socket.accept()
class Slow(socketserver.StreamRequestHandler):
    def handle(self):
        name = self.rfile.readline().strip()
        print('handling', name.decode(), flush=True)
        time.sleep(1)
        self.wfile.write(b'done ' + name + b'\\n')
Server(sys.argdata['listener'], Slow).serve_forever()
print('stopped serving', flush=True)`;
    const { file } = await writeService(t, `${HEADER}stderr: !fd stderr
path: [!file {path: /usr/local/x86_64-unknown-cloudabi/lib/python3.6}]
args:
  listener: !socket {bind: 127.0.0.1:0}
command: |
${code.split('\n').map((l) => `  ${l}`).join('\n')}
`);
    const svc = await startService(t, file);
    const port = portOf(svc.bound.get('args.listener')!);
    const request = (name: string) => new Promise<string>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(`${name}\n`));
      let answer = '';
      socket.on('data', (d) => (answer += d));
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
      t.after(async () => void socket.destroy());
    });
    const inFlight = ['a', 'b', 'c', 'd', 'e'].map(request);
    for (const name of ['a', 'b', 'c', 'd', 'e']) await svc.waitForOutput('stdout', `handling ${name}\n`);
    process.kill(svc.proc.pid, 'SIGTERM');
    assert.deepEqual(await Promise.all(inFlight), ['done a\n', 'done b\n', 'done c\n', 'done d\n', 'done e\n']);
    assert.deepEqual(await svc.exited, { code: 0, signal: null }, svc.stderr());
    assert.match(svc.stdout(), /stopped serving\n$/);

    // A connection made after the stop waits in the held socket's backlog for the next process.
    const late = request('late');
    const proc = await launch(planRunnerLaunch(svc.spec, { daemonPid: process.pid }), svc.registry);
    const nextExit = new Promise((resolve) => proc.child.once('exit', resolve));
    t.after(async () => {
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await nextExit;
    });
    assert.equal(await late, 'done late\n');
  });
});
