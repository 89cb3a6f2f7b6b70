/** Program services, pure parts: fd layout, argument templates, grants, and the launch plan. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HostFacts } from '../src/config/host-facts.js';
import { expandFdTemplates, fdEnvironment, programFdLayout, programPrefix } from '../src/config/program.js';
import { resolveService } from '../src/config/resolve.js';
import { parseServiceFile } from '../src/config/service.js';
import type { ServiceSpec } from '../src/config/spec.js';
import { planLaunch } from '../src/supervise/launch-plan.js';
import { HEADER } from './helpers/cli.js';

const FILES = new Set(['/usr/bin/gunicorn', '/usr/bin/node', '/opt/app/server', '/srv/conf.ini', '/etc/ld.so.cache']);
const DIRS = new Set(['/opt/app', '/srv/app', '/var/tmp/scratch', '/usr/lib', '/lib', '/etc/ssl']);

const facts: HostFacts = {
  pathKind: (p) => (FILES.has(p) ? 'file' : DIRS.has(p) ? 'directory' : 'missing'),
  hostAddresses: (h) => [h],
  python: () => ({ executable: '/usr/bin/python3.11', version: '3.11.2', stdlib: '/usr/lib/python3.11', dynload: undefined }),
  user: () => undefined,
  group: () => undefined,
  executable: (name) => (name === 'gunicorn' ? '/usr/bin/gunicorn' : undefined),
};

function resolve(body: string) {
  const parsed = parseServiceFile(HEADER + body, 'svc.yaml', 'svc', '/srv');
  assert.deepEqual(parsed.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message), []);
  return resolveService(parsed.service!, 'python3', facts);
}

function spec(body: string): ServiceSpec {
  const r = resolve(body);
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message), []);
  return r.spec!;
}

function errors(body: string): string[] {
  return resolve(body).diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.pos.line}:${d.pos.col}: ${d.message}`);
}

const GUNICORN = `supervise:
  program: [gunicorn, --bind, "fd://{fd:web}", app:app]
  writable: [/var/tmp/scratch]
path: [!file {path: /srv/app}]
config: !file {path: /srv/conf.ini}
args:
  api: !socket {bind: 127.0.0.1:9001}
  web: !socket {bind: 127.0.0.1:9000}
  again: !socket {bind: 127.0.0.1:9001}
  upstream: !socket {connect: 127.0.0.1:5432}
`;

describe('fd layout and LISTEN_FDS', () => {
  test('announced sockets from 3 in document order, then sockets named by argument, then the rest; one fd per held socket', () => {
    const s = spec(GUNICORN);
    assert.deepEqual(s.program!.fds.map((f) => [f.fd, f.name, f.kind, f.listening]), [
      [3, 'api', 'socket', true],
      [4, 'web', 'socket', false],
      [5, 'path[0]', 'dir', false],
      [6, 'config', 'file', false],
      [7, 'args.upstream', 'socket', false],
    ]);
    assert.deepEqual(fdEnvironment(s.program!.fds), {
      LISTEN_FDS: '1', LISTEN_FDNAMES: 'api', SOCKVISOR_FDS: '3:api:socket 4:web:socket 5:path[0]:dir 6:config:file 7:args.upstream:socket',
    });
  });

  test('without templates every held socket is announced', () => {
    const s = spec('supervise: {program: [/usr/bin/node, /opt/app/server.js]}\npath: [!file {path: /opt/app}]\nargs: {a: !socket {bind: 127.0.0.1:1}, b: !socket {bind: 127.0.0.1:2}}\n');
    assert.deepEqual(fdEnvironment(s.program!.fds).LISTEN_FDNAMES, 'a:b');
    assert.equal(fdEnvironment(s.program!.fds).LISTEN_FDS, '2');
  });

  test('templates expand to fd numbers, by key or key path', () => {
    const layout = programFdLayout(spec(GUNICORN).document, spec(GUNICORN).sockets, spec(GUNICORN).files, ['{fd:web}']);
    assert.deepEqual(expandFdTemplates(['x', 'fd://{fd:web}', '{fd:args.api}/{fd:config}'], layout), { argv: ['x', 'fd://4', '3/6'] });
  });

  test('an unknown or ambiguous name is a config error at the program key', () => {
    assert.deepEqual(errors('supervise:\n  program: [/usr/bin/node, "{fd:nope}"]\nargs: {s: !socket {bind: 127.0.0.1:1}}\n'), [
      '4:12: supervise.program: {fd:nope} names no fd of this service (it has s)',
    ]);
    assert.match(errors('supervise:\n  program: [/usr/bin/node, "{fd:s}"]\nargs: {a: {s: !socket {bind: 127.0.0.1:1}}, b: {s: !socket {bind: 127.0.0.1:2}}}\n')[0]!, /\{fd:s\} is ambiguous: args\.a\.s, args\.b\.s; use the key path/);
  });
});

describe('program and grants', () => {
  test('a bare name is found in PATH; the prefix, library directories and ssl config are granted', () => {
    const s = spec(GUNICORN);
    assert.equal(s.program!.executable, '/usr/bin/gunicorn');
    assert.deepEqual(s.program!.argv, ['gunicorn', '--bind', 'fd://4', 'app:app']);
    assert.deepEqual(s.program!.grants, { exec: ['/srv/app', '/usr', '/usr/lib', '/lib', '/etc/ld.so.cache'], read: ['/srv/conf.ini', '/etc/ssl'], write: ['/var/tmp/scratch'] });
  });

  test('system_grants: false leaves only what the file hands over, and a program outside it is an error', () => {
    assert.deepEqual(errors(`${GUNICORN.replace('writable: [/var/tmp/scratch]', 'system_grants: false')}`), [
      '4:12: supervise.program /usr/bin/gunicorn is not beneath anything the sandbox lets the service execute',
    ]);
    const s = spec('supervise: {program: [/opt/app/server], system_grants: false}\npath: [!file {path: /opt/app}]\n');
    assert.deepEqual(s.program!.grants, { exec: ['/opt/app'], read: [], write: [] });
  });

  test('missing programs and writable directories are errors', () => {
    assert.deepEqual(errors('supervise: {program: [/usr/bin/nope]}\n'), ['3:22: supervise.program /usr/bin/nope: not an existing file']);
    assert.deepEqual(errors('supervise: {program: [nope]}\n'), ['3:22: supervise.program nope: not found in PATH']);
    assert.deepEqual(errors('supervise: {program: [bin/x]}\n'), ['3:22: supervise.program bin/x: write an absolute path or a bare name looked up in PATH']);
    assert.deepEqual(errors('supervise: {program: [/usr/bin/node], writable: [/nowhere]}\n'), ['3:49: supervise.writable /nowhere: not an existing directory']);
  });

  test('the prefix of a program in bin or sbin is its parent', () => {
    assert.equal(programPrefix('/usr/bin/gunicorn'), '/usr');
    assert.equal(programPrefix('/usr/local/sbin/x'), '/usr/local');
    assert.equal(programPrefix('/opt/app/server'), '/opt/app');
  });
});

describe('the launch plan of a program', () => {
  test('the runner sandboxes, places the fds and executes; the environment is the LISTEN_* variables and supervise.env', () => {
    const s = spec(GUNICORN.replace('writable:', 'env: {MODE: prod}\n  stop_signal: INT\n  writable:'));
    const plan = planLaunch(s, { daemonPid: 42, runnerPath: '/r/sockvisor_runner.py' });
    const tail = plan.argv.slice(plan.argv.indexOf('--daemon-pid'));
    assert.deepEqual(tail, [
      '--daemon-pid', '42', '--sandbox', 'strict', '--stop-signal', 'SIGINT', '--fd-order', tail[tail.indexOf('--fd-order') + 1]!,
      '--grant-exec', '/srv/app', '--grant-exec', '/usr', '--grant-exec', '/usr/lib', '--grant-exec', '/lib', '--grant-exec', '/etc/ld.so.cache',
      '--grant-read', '/srv/conf.ini', '--grant-read', '/etc/ssl', '--grant-write', '/var/tmp/scratch',
      '--exec', '/usr/bin/gunicorn', 'gunicorn', '--bind', 'fd://4', 'app:app',
    ]);
    assert.deepEqual(plan.env, { MODE: 'prod', LISTEN_FDS: '1', LISTEN_FDNAMES: 'api', SOCKVISOR_FDS: '3:api:socket 4:web:socket 5:path[0]:dir 6:config:file 7:args.upstream:socket' });
    // --fd-order lists fd table indexes in the program's fd order: table entry order[k] becomes fd 3 + k.
    const order = tail[tail.indexOf('--fd-order') + 1]!.split(',').map(Number);
    const kinds = order.map((i) => plan.fdTable[i]!.kind);
    assert.deepEqual(kinds, ['held', 'held', 'file', 'file', 'connect']);
    assert.deepEqual(order.map((i) => { const e = plan.fdTable[i]!; return e.kind === 'held' ? e.identity : e.kind === 'file' ? e.path : 'connect'; }).slice(0, 4), [
      s.sockets.find((d) => d.keyPath === 'args.api')!.identity, s.sockets.find((d) => d.keyPath === 'args.web')!.identity, '/srv/app', '/srv/conf.ini',
    ]);
  });
});
