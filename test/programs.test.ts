/**
 * Any server program on the held sockets (`supervise.program`), against a real sockvisord:
 * gunicorn, uvicorn and a Node server get their sockets in the systemd convention, serve under the
 * sandbox, which each of them tries to escape from inside (the attack matrix of
 * runner-sandbox.test.ts), and gunicorn is restarted and reloaded under load without losing a
 * request. The programs are in test/fixtures/programs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { HEADER, ROOT, sockvisord, tempDir, writeTree } from './helpers/cli.js';
import { ctl, escape, expectRun, statusPids } from './helpers/ctl.js';
import { DaemonProcess, daemonFiles, eventually, type DaemonFiles } from './helpers/daemon.js';
import { commandPath, pythonImports, requireInstalled, type SkippableContext } from './helpers/installed.js';
import { editAtomically, freePort } from './helpers/reload.js';
import { exchange, portOf } from './helpers/sockets.js';

type TestContext = SkippableContext & { after: (fn: () => Promise<void>) => void; diagnostic: (message: string) => void };

const FIXTURES = path.join(ROOT, 'test/fixtures/programs');
/** Debian's python3-uvicorn is for the system interpreter, which also runs Debian's gunicorn. */
const SYSTEM_PYTHON = '/usr/bin/python3';

function gunicornPath(t: TestContext): string | undefined {
  const found = commandPath('gunicorn');
  return requireInstalled(t, 'gunicorn', found !== undefined, 'apt-get install gunicorn') ? found : undefined;
}

function haveUvicorn(t: TestContext): boolean {
  return requireInstalled(t, 'uvicorn', pythonImports(SYSTEM_PYTHON, 'uvicorn'), 'apt-get install python3-uvicorn');
}

/** The place a program is sandboxed in, and the targets of its escape attempts. */
interface Jail {
  /** The `path:` directory: the program's code (read and execute). */
  readonly appDir: string;
  /** `supervise.writable`. */
  readonly writable: string;
  /** Granted nothing: holds secret.txt, and must stay exactly that. */
  readonly outside: string;
  /** Connections that reached the test's listener. */
  readonly hits: { tcp: number };
  /** A free port the program tries to bind. */
  readonly bindPort: number;
  /** The ATTACK_* variables test/fixtures/programs/attacks.py and server.js read. */
  readonly env: Readonly<Record<string, string>>;
}

async function jail(t: TestContext, fixtures: readonly string[]): Promise<Jail> {
  const appDir = await tempDir(t, 'program-app-');
  for (const name of fixtures) await fs.copyFile(path.join(FIXTURES, name), path.join(appDir, name));
  await fs.writeFile(path.join(appDir, 'granted.txt'), 'granted\n');
  const writable = await tempDir(t, 'program-writable-');
  const outside = await tempDir(t, 'program-outside-');
  await fs.writeFile(path.join(outside, 'secret.txt'), 'secret\n');
  const hits = { tcp: 0 };
  const listener = net.createServer((c) => ((hits.tcp += 1), c.destroy()));
  await new Promise<void>((resolve) => listener.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.after(() => new Promise<void>((resolve) => listener.close(() => resolve())));
  const bindPort = await freePort();
  return {
    appDir, writable, outside, hits, bindPort,
    env: {
      ATTACK_SECRET: path.join(outside, 'secret.txt'),
      ATTACK_FORBIDDEN: path.join(outside, 'forbidden.txt'),
      ATTACK_WRITABLE: path.join(writable, 'attack-written.txt'),
      ATTACK_GRANTED: path.join(appDir, 'granted.txt'),
      ATTACK_TCP_PORT: String((listener.address() as net.AddressInfo).port),
      ATTACK_BIND_PORT: String(bindPort),
    },
  };
}

interface ProgramServiceOptions {
  readonly program: readonly string[];
  readonly appDir: string;
  readonly writable?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** More `supervise:` lines, such as `replicas: 2`. */
  readonly supervise?: readonly string[];
  readonly bind?: string;
  /** More `args:` lines. */
  readonly args?: readonly string[];
}

/** A program service file; every string is written as a JSON (YAML double-quoted) scalar. */
function programService(o: ProgramServiceOptions): string {
  const q = (s: string) => JSON.stringify(s);
  return `${HEADER}supervise:
  program: [${o.program.map(q).join(', ')}]
  writable: [${(o.writable ?? []).map(q).join(', ')}]
  env: {${Object.entries(o.env ?? {}).map(([k, v]) => `${q(k)}: ${q(v)}`).join(', ')}}
${(o.supervise ?? []).map((line) => `  ${line}\n`).join('')}path:
  - !file {path: ${q(o.appDir)}}
args:
  my_socket: !socket {bind: ${q(o.bind ?? '127.0.0.1:0')}}
${(o.args ?? []).map((line) => `  ${line}\n`).join('')}`;
}

/** gunicorn on the app in test/fixtures/programs/wsgi_app.py, loaded in the master (--preload). */
function gunicornProgram(exe: string, j: Jail, options: readonly string[] = []): string[] {
  return [exe, ...options, '--worker-tmp-dir', j.writable, '--chdir', j.appDir, '--pythonpath', j.appDir, '--preload', 'wsgi_app:app'];
}

async function readLog(files: DaemonFiles, service: string, stream: 'stdout' | 'stderr'): Promise<string> {
  return fs.readFile(path.join(files.logsDir, `${service}.${stream}.log`), 'utf8').catch(() => '');
}

/** Waits for these processes to run; on failure the error carries the service's own logs. */
async function waitRunning(daemon: DaemonProcess, service: string, processes: readonly string[]): Promise<void> {
  try {
    for (const name of processes) await daemon.waitForState(name, 'RUNNING', 0, 30_000);
  } catch (e) {
    const logs = `${service}.stdout.log:\n${await readLog(daemon.files, service, 'stdout')}\n${service}.stderr.log:\n${await readLog(daemon.files, service, 'stderr')}`;
    throw new Error(`${(e as Error).message}\n${logs}`);
  }
}

interface HttpResponse {
  readonly status: string;
  readonly body: string;
}

/** One HTTP/1.0 GET, checked: a 200 status line and a body of exactly Content-Length bytes. */
async function httpGet(port: number, target = '/', timeoutMs = 15_000): Promise<HttpResponse> {
  const raw = await exchange({ host: '127.0.0.1', port }, `GET ${target} HTTP/1.0\r\nHost: test\r\n\r\n`, timeoutMs);
  const split = raw.indexOf('\r\n\r\n');
  const status = raw.slice(0, raw.indexOf('\r\n'));
  const length = Number(/\r\ncontent-length: *(\d+)\r\n/i.exec(raw.slice(0, split + 2))?.[1]);
  const body = raw.slice(split + 4);
  if (split === -1 || !/^HTTP\/1\.[01] 200 OK$/.test(status) || Buffer.byteLength(body) !== length) throw new Error(`incomplete response: ${JSON.stringify(raw.slice(0, 300))}`);
  return { status, body };
}

async function getJson<T>(port: number, target = '/'): Promise<T> {
  return JSON.parse((await httpGet(port, target)).body) as T;
}

/** Whether a TCP connection to 127.0.0.1:port is accepted (false: refused). */
function reachable(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNREFUSED' ? resolve(false) : reject(e)));
  });
}

type Expected = string | RegExp;

/** Under the strict sandbox, tried from inside the program. */
const CONTAINED: Readonly<Record<string, Expected>> = {
  'read /etc/shadow': 'denied: EACCES',
  'read a file outside the grants': 'denied: EACCES',
  'read a file in path:': 'ALLOWED',
  'write outside writable': 'denied: EACCES',
  'write in path:': 'denied: EACCES',
  'write in writable': 'ALLOWED',
  // Landlock refuses it, or the empty network namespace has no route: refused either way.
  'tcp connect to the test': /^denied: \S+$/,
  // Refused, or bound in the program's own network namespace, out of everyone's reach (checked
  // from outside below).
  'tcp bind and listen': /^(denied: \S+|ALLOWED)$/,
};

/** The attack results, and their traces outside: nothing got out, and writable was written. */
async function assertContained(t: TestContext, j: Jail, results: Record<string, string>, expected: Readonly<Record<string, Expected>> = CONTAINED): Promise<void> {
  t.diagnostic(JSON.stringify(results));
  assert.deepEqual(Object.keys(results).sort(), Object.keys(expected).sort(), JSON.stringify(results));
  for (const [name, want] of Object.entries(expected)) {
    if (typeof want === 'string') assert.equal(results[name], want, `${name}; all: ${JSON.stringify(results)}`);
    else assert.match(results[name] ?? '', want, `${name}; all: ${JSON.stringify(results)}`);
  }
  assert.equal(j.hits.tcp, 0, 'a connection reached the test listener');
  assert.equal(await reachable(j.bindPort), false, `something listens on ${j.bindPort}, the port the program tried to bind`);
  assert.match(await fs.readFile(j.env['ATTACK_WRITABLE']!, 'utf8'), /^written by pid \d+\n$/);
  assert.deepEqual(await fs.readdir(j.outside), ['secret.txt'], 'nothing was written outside writable');
  assert.deepEqual((await fs.readdir(j.appDir)).filter((n) => n.startsWith('written-')), [], 'nothing was written in path:');
}

async function startDaemon(t: TestContext, services: Record<string, string>, options: { watch?: boolean } = {}) {
  const files = await daemonFiles(t, services);
  if (options.watch) await fs.writeFile(files.config, (await fs.readFile(files.config, 'utf8')).replace('watch: false', 'watch: true'));
  const daemon = await DaemonProcess.start(t, files);
  return { files, daemon, sock: files.controlSocket };
}

interface WsgiAnswer {
  pid: number;
  ppid: number;
  message: string | null;
  loaded: { pid: number; env: Record<string, string> };
}

describe('gunicorn', () => {
  test('two replicas (two masters) share the socket through LISTEN_FDS and both serve; the environment is the fds and supervise.env', { timeout: 120_000 }, async (t) => {
    const exe = gunicornPath(t);
    if (exe === undefined) return;
    const j = await jail(t, ['wsgi_app.py', 'attacks.py']);
    // LANG keeps gunicorn's CPython from coercing the C locale, which would add LC_CTYPE.
    const env = { LANG: 'C.UTF-8', MESSAGE: 'hello from supervise.env', ...j.env };
    const { daemon, files, sock } = await startDaemon(t, {
      gunicorn: programService({ program: gunicornProgram(exe, j, ['--workers', '1']), appDir: j.appDir, writable: [j.writable], env, supervise: ['replicas: 2'] }),
    });
    await waitRunning(daemon, 'gunicorn', ['gunicorn:0', 'gunicorn:1']);
    const pids = await statusPids(sock);
    const masters = [pids['gunicorn:0']!, pids['gunicorn:1']!];
    assert.equal(new Set(masters).size, 2);
    const port = portOf(daemon.address('gunicorn', 'args.my_socket'));

    // Concurrent requests until each master's worker has answered some.
    const servedBy = new Map<number, number>();
    let requests = 0;
    await eventually(async () => {
      const answers = await Promise.all(Array.from({ length: 8 }, () => getJson<WsgiAnswer>(port, '/')));
      requests += answers.length;
      for (const a of answers) {
        assert.ok(masters.includes(a.ppid), `worker ${a.pid}'s parent ${a.ppid} is one of the replicas ${masters.join(', ')}`);
        assert.equal(a.loaded.pid, a.ppid, 'the app was loaded in the master');
        assert.equal(a.message, env.MESSAGE);
        // gunicorn sets SERVER_SOFTWARE itself when it starts.
        const { SERVER_SOFTWARE: _serverSoftware, ...started } = a.loaded.env;
        assert.deepEqual(started, {
          ...env, LISTEN_FDS: '1', LISTEN_PID: String(a.ppid), LISTEN_FDNAMES: 'my_socket', SOCKVISOR_FDS: '3:my_socket:socket 4:path[0]:dir',
        });
        servedBy.set(a.pid, a.ppid);
      }
      return new Set(servedBy.values()).size === 2;
    }, 30_000, 'both replicas served');
    t.diagnostic(`${requests} requests; workers ${[...servedBy].map(([w, m]) => `${w} (master ${m})`).join(', ')}`);

    // Output is logged as for any service: both masters printed a line when the app loaded.
    await eventually(async () => {
      const log = await readLog(files, 'gunicorn', 'stdout');
      return masters.every((pid) => log.includes(`wsgi app loaded in pid ${pid}\n`));
    }, 10_000, 'both masters logged in gunicorn.stdout.log');

    await assertContained(t, j, await getJson(port, '/attacks'));
  });

  test("the README's gunicorn example, with its directories and port moved, serves from both replicas", { timeout: 120_000 }, async (t) => {
    const exe = gunicornPath(t);
    if (exe === undefined) return;
    const readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('\n## Running any server program\n'));
    const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(example !== undefined && section.startsWith('\n## Running any server program\n'), 'the README has the example');
    const app = await tempDir(t, 'readme-app-');
    const scratch = await tempDir(t, 'readme-scratch-');
    await fs.writeFile(path.join(app, 'app.py'), `import os
def app(environ, start_response):
    body = b'%d' % os.getppid()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
`);
    const moved = example.replaceAll('/srv/app', app).replaceAll('/var/tmp/web', scratch).replace('127.0.0.1:8000', '127.0.0.1:0').replace('/usr/bin/gunicorn', exe);
    assert.notEqual(moved.indexOf(app), -1);
    const { daemon, sock } = await startDaemon(t, { web: moved });
    await waitRunning(daemon, 'web', ['web:0', 'web:1']);
    const port = portOf(daemon.address('web', 'args.web'));
    const masters = Object.values(await statusPids(sock)).map(String).sort();
    assert.equal(masters.length, 2);
    // Each worker answers with its master's pid.
    const servedBy = new Set<string>();
    await eventually(async () => {
      for (const { body } of await Promise.all(Array.from({ length: 8 }, () => httpGet(port)))) servedBy.add(body);
      return servedBy.size >= 2;
    }, 30_000, 'both replicas served');
    assert.deepEqual([...servedBy].sort(), masters);
  });

  test('--bind fd://{fd:my_socket}: 8 clients for 10 s, 5 restarts and 5 saved edits of the program line; every request gets a complete response', { timeout: 180_000 }, async (t) => {
    const exe = gunicornPath(t);
    if (exe === undefined) return;
    const CLIENTS = 8;
    const LOAD_MS = 10_000;
    const ROUNDS = 5;
    const j = await jail(t, ['wsgi_app.py', 'attacks.py']);
    const port = await freePort();
    const program = gunicornProgram(exe, j, ['--bind', 'fd://{fd:my_socket}', '--workers', '2', '--env', 'MESSAGE=It works!']);
    // Edits reach the daemon the way an operator's do: saved files, seen by the watcher.
    const { daemon, files, sock } = await startDaemon(t, {
      gunicorn: programService({ program, appDir: j.appDir, writable: [j.writable], env: { LANG: 'C.UTF-8' }, bind: `127.0.0.1:${port}`, supervise: ['stop_signal: TERM'] }),
    }, { watch: true });
    await waitRunning(daemon, 'gunicorn', ['gunicorn:0']);
    const file = path.join(files.servicesDir, 'gunicorn.yaml');

    const tally = { ok: 0, failed: [] as string[], bodies: new Set<string>() };
    const started = Date.now();
    let operationsDone = false;
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (!operationsDone || Date.now() - started < LOAD_MS) {
        try {
          const { body } = await httpGet(port, '/message');
          if (!/^It works!( edit \d+)?$/.test(body)) throw new Error(`unexpected body ${JSON.stringify(body)}`);
          tally.ok++;
          tally.bodies.add(body);
        } catch (e) {
          tally.failed.push((e as Error).message);
        }
      }
    });

    const pids = new Set<number>();
    const pidOf = async () => Number((await ctl(sock, 'pid', 'gunicorn:0')).stdout.trim());
    pids.add(await pidOf());
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        expectRun(await ctl(sock, 'restart', 'gunicorn'), 0, ['gunicorn:0: restarted'], [], `restart ${round}`);
        pids.add(await pidOf());
        const mark = daemon.records.length;
        await editAtomically(file, (text) => text.replace(/"MESSAGE=It works!( edit \d+)?"/, `"MESSAGE=It works! edit ${round}"`));
        const reload = await daemon.waitFor((r) => r.msg === 'reload done', 30_000, mark);
        assert.deepEqual([reload['changes'], reload['failed']], [1, 0], `edit ${round}`);
        pids.add(await pidOf());
        await eventually(() => tally.bodies.has(`It works! edit ${round}`), 15_000, `edit ${round} served`);
      }
    } finally {
      operationsDone = true;
      await Promise.all(clients);
    }

    assert.deepEqual(tally.failed.slice(0, 10), [], `${tally.failed.length} of ${tally.ok + tally.failed.length} requests failed`);
    assert.equal(pids.size, 1 + 2 * ROUNDS, 'every restart and every edit replaced the process');
    assert.ok(tally.ok > 200, `only ${tally.ok} requests in ${Date.now() - started} ms`);
    assert.ok(Date.now() - started >= LOAD_MS);
    t.diagnostic(`${tally.ok} requests in ${Date.now() - started} ms, 0 failed, ${pids.size} processes`);
  });
});

interface AsgiAnswer {
  pid: number;
  message: string | null;
  loaded: { pid: number; env: Record<string, string> };
}

describe('uvicorn', () => {
  test('--fd {fd:my_socket}: serves an ASGI app on the held socket, inside the sandbox', { timeout: 120_000 }, async (t) => {
    if (!haveUvicorn(t)) return;
    const j = await jail(t, ['asgi_app.py', 'attacks.py']);
    const env = { LANG: 'C.UTF-8', MESSAGE: 'hello from uvicorn', ...j.env };
    const program = [SYSTEM_PYTHON, '-m', 'uvicorn', '--fd', '{fd:my_socket}', '--app-dir', j.appDir, '--no-access-log', 'asgi_app:app'];
    const { daemon, files, sock } = await startDaemon(t, { uvicorn: programService({ program, appDir: j.appDir, writable: [j.writable], env }) });
    await waitRunning(daemon, 'uvicorn', ['uvicorn:0']);
    const pid = (await statusPids(sock))['uvicorn:0']!;
    const port = portOf(daemon.address('uvicorn', 'args.my_socket'));

    const answer = await getJson<AsgiAnswer>(port, '/');
    assert.equal(answer.pid, pid, 'the program kept the pid sockvisord started (the runner executed it)');
    assert.equal(answer.message, env.MESSAGE);
    // A socket the arguments name is handed over by argument only, not announced in LISTEN_FDS as
    // well (docs/service-files.md, Programs); it is fd 3 all the same.
    assert.deepEqual(answer.loaded.env, {
      ...env, LISTEN_FDS: '0', LISTEN_PID: String(pid), LISTEN_FDNAMES: '', SOCKVISOR_FDS: '3:my_socket:socket 4:path[0]:dir',
    });
    await eventually(async () => (await readLog(files, 'uvicorn', 'stdout')).includes(`asgi app loaded in pid ${pid}\n`), 10_000, 'uvicorn.stdout.log');

    await assertContained(t, j, await getJson(port, '/attacks'));
  });
});

interface NodeAnswer {
  pid: number;
  listenPidIsMine: boolean;
  listenFdsIsOne: boolean;
  env: Record<string, string>;
}

/** server.js in a path: directory that marks it CommonJS, and a greeting handed in as a !file. */
async function nodeJail(t: TestContext) {
  const j = await jail(t, ['server.js']);
  await fs.writeFile(path.join(j.appDir, 'package.json'), '{"type": "commonjs"}\n');
  const handed = await tempDir(t, 'program-handed-');
  await writeTree(handed, { 'greeting.txt': 'hello from a !file\n', 'sibling.txt': 'not handed in\n' });
  const env = { ...j.env, ATTACK_HANDED: path.join(handed, 'greeting.txt'), ATTACK_SIBLING: path.join(handed, 'sibling.txt') };
  const service = (supervise: string[] = []) => programService({
    program: [process.execPath, path.join(j.appDir, 'server.js')], appDir: j.appDir, writable: [j.writable], env, supervise,
    args: [`greeting: !file {path: ${JSON.stringify(env.ATTACK_HANDED)}}`],
  });
  return { j, env, service };
}

describe('a Node server', () => {
  test('checks LISTEN_PID and LISTEN_FDS itself, serves fd 3, and stays inside the sandbox', { timeout: 120_000 }, async (t) => {
    const { j, env, service } = await nodeJail(t);
    const { daemon, files, sock } = await startDaemon(t, { node: service() });
    await waitRunning(daemon, 'node', ['node:0']);
    const pid = (await statusPids(sock))['node:0']!;
    const port = portOf(daemon.address('node', 'args.my_socket'));

    const saw = await getJson<NodeAnswer>(port, '/');
    assert.equal(saw.pid, pid);
    assert.equal(saw.listenPidIsMine, true);
    assert.equal(saw.listenFdsIsOne, true);
    assert.deepEqual(saw.env, {
      ...env, LISTEN_FDS: '1', LISTEN_PID: String(pid), LISTEN_FDNAMES: 'my_socket',
      SOCKVISOR_FDS: '3:my_socket:socket 4:path[0]:dir 5:args.greeting:file',
    });
    await eventually(async () => (await readLog(files, 'node', 'stdout')).includes(`node server on fd 3 in pid ${pid}\n`), 10_000, 'node.stdout.log');

    await assertContained(t, j, await getJson(port, '/attacks'), {
      ...CONTAINED,
      'read the handed-in !file by path': 'ALLOWED',
      'read the handed-in !file through its fd': 'ALLOWED',
      'read a file next to the handed-in !file': 'denied: EACCES',
    });
  });

  test('sandbox: off lets the same attempts through, so the matrix can tell', { timeout: 120_000 }, async (t) => {
    const { j, service } = await nodeJail(t);
    const { daemon } = await startDaemon(t, { node: service(['sandbox: off']) });
    await waitRunning(daemon, 'node', ['node:0']);
    const port = portOf(daemon.address('node', 'args.my_socket'));
    const results = await getJson<Record<string, string>>(port, '/attacks');
    t.diagnostic(JSON.stringify(results));
    for (const name of ['read a file outside the grants', 'write outside writable', 'write in path:', 'tcp connect to the test', 'tcp bind and listen', 'read a file next to the handed-in !file']) {
      assert.equal(results[name], 'ALLOWED', `${name}; all: ${JSON.stringify(results)}`);
    }
    assert.equal(j.hits.tcp, 1);
    assert.equal(await reachable(j.bindPort), true);
  });
});

describe('sockvisord check on program services', () => {
  /** A service file whose program line is line 4; its value starts at column 12. */
  const withProgram = (program: string, extra = '') => `${HEADER}supervise:
  program: ${program}
${extra}args:
  my_socket: !socket {bind: 127.0.0.1:0}
`;

  test('{fd:nope} is an error at the program line that names nope; {fd:my_socket} and {fd:args.my_socket} are fine', async (t) => {
    const dir = await tempDir(t);
    const bad = path.join(dir, 'bad.yaml');
    await writeTree(dir, {
      'bad.yaml': withProgram('[sh, -c, "exec true {fd:nope}"]'),
      'good.yaml': withProgram('[sh, -c, "exec true {fd:my_socket} {fd:args.my_socket}"]'),
    });
    const r = await sockvisord(['check', bad]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^${escape(bad)}:4:12: error: .*\\{fd:nope\\}`, 'm'), r.stdout);
    assert.match(r.stdout, /^1 service, 1 error/m, r.stdout);

    const good = await sockvisord(['check', '--json', path.join(dir, 'good.yaml')]);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    const [service] = (JSON.parse(good.stdout) as { services: { program: string[]; executable: string }[] }).services;
    assert.deepEqual(service!.program.slice(1), ['-c', 'exec true 3 3']);
    assert.equal(service!.executable, commandPath('sh'), 'a bare name is looked up in PATH at load');
  });

  test('grants: path: and the system directories to execute, writable to write; system_grants: false leaves only path:', async (t) => {
    const dir = await tempDir(t);
    const app = path.join(dir, 'app');
    const scratch = path.join(dir, 'scratch');
    await fs.mkdir(scratch);
    await writeTree(dir, { 'app/server': '#!/bin/sh\n', 'conf.ini': '[x]\n' });
    const service = (program: string, supervise: string) => `${HEADER}supervise:
  program: [${JSON.stringify(program)}]
  writable: [${JSON.stringify(scratch)}]
${supervise}path:
  - !file {path: ${JSON.stringify(app)}}
args:
  my_socket: !socket {bind: 127.0.0.1:0}
  conf: !file {path: ${JSON.stringify(path.join(dir, 'conf.ini'))}}
`;
    await writeTree(dir, {
      'system.yaml': service(process.execPath, ''),
      'own.yaml': service(path.join(app, 'server'), '  system_grants: false\n'),
      'unreachable.yaml': service(process.execPath, '  system_grants: false\n'),
    });
    type Grants = { exec: string[]; read: string[]; write: string[] };
    const grantsOf = async (name: string): Promise<Grants> => {
      const r = await sockvisord(['check', '--json', path.join(dir, name)]);
      assert.equal(r.code, 0, `${name}: ${r.stdout}${r.stderr}`);
      return (JSON.parse(r.stdout) as { services: { grants: Grants }[] }).services[0]!.grants;
    };
    const exists = async (p: string) => fs.stat(p).then(() => true, () => false);
    const system = await grantsOf('system.yaml');
    const prefix = path.dirname(path.dirname(process.execPath));
    for (const grant of [app, prefix, '/usr/lib', '/lib', '/lib64', '/usr/lib64', '/usr/local/lib', '/etc/ld.so.cache']) {
      if (grant === app || grant === prefix || (await exists(grant))) assert.ok(system.exec.includes(grant), `read+execute ${grant}: ${JSON.stringify(system)}`);
    }
    assert.ok(system.read.includes(path.join(dir, 'conf.ini')), JSON.stringify(system));
    assert.deepEqual(system.write, [scratch]);
    for (const secret of ['/etc', '/etc/shadow', '/', dir]) {
      assert.ok(![...system.exec, ...system.read, ...system.write].includes(secret), `${secret} is granted: ${JSON.stringify(system)}`);
    }

    const own = await grantsOf('own.yaml');
    assert.deepEqual(own, { exec: [app], read: [path.join(dir, 'conf.ini')], write: [scratch] });

    // Without the system grants, a program outside path: could not even be executed.
    const r = await sockvisord(['check', path.join(dir, 'unreachable.yaml')]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, new RegExp(`unreachable\\.yaml:4:12: error: .*${escape(process.execPath)}`), r.stdout);
  });
});
