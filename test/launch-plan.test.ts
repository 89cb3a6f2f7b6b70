import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { decodeArgdata } from '../src/argdata/decode.js';
import type { HostFacts } from '../src/config/host-facts.js';
import { resolveService } from '../src/config/resolve.js';
import { parseServiceFile } from '../src/config/service.js';
import type { ServiceSpec } from '../src/config/spec.js';
import { planRunnerLaunch, RUNNER_PATH } from '../src/supervise/launch-plan.js';
import { HEADER } from './helpers/cli.js';

const facts: HostFacts = {
  pathKind: () => 'directory',
  hostAddresses: (h) => (h === 'db.internal' ? ['10.0.0.5'] : [h]),
  python: () => ({ executable: '/usr/bin/python3.11', version: '3.11.2', stdlib: '/usr/lib/python3.11', dynload: '/usr/lib/python3.11/lib-dynload' }),
  user: () => undefined,
  group: () => undefined,
};

function spec(body: string): ServiceSpec {
  const parsed = parseServiceFile(HEADER + body, 'svc.yaml', 'svc', '/srv/app');
  assert.deepEqual(parsed.diagnostics.filter((d) => d.severity === 'error'), []);
  const resolved = resolveService(parsed.service!, 'python3', facts);
  assert.deepEqual(resolved.diagnostics.filter((d) => d.severity === 'error'), []);
  return { ...resolved.spec!, libraries: ['/usr/lib/x86_64-linux-gnu/libz.so.1.2.13'] };
}

describe('the runner launch plan', () => {
  test('command line: real interpreter, isolation, flag keys as options, runner options', () => {
    const plan = planRunnerLaunch(spec(`supervise: {sandbox: best-effort, stop_signal: INT, preload: [_ssl], env: {A: b}}
dontwritebytecode:
optimize:
command: pass
`), { daemonPid: 4242 });
    assert.deepEqual(plan.argv, [
      '/usr/bin/python3.11', '-I', '-S', '-B', '-O',
      '-c', `import sys; sys.path.insert(0, ${JSON.stringify(path.dirname(RUNNER_PATH))}); import sockvisor_runner; sockvisor_runner.main()`,
      '--daemon-pid', '4242', '--sandbox', 'best-effort', '--stop-signal', 'SIGINT', '--preload', '_ssl',
      '--library', '/usr/lib/x86_64-linux-gnu/libz.so.1.2.13',
    ]);
    assert.deepEqual(plan.env, { A: 'b' });
    assert.equal(plan.cwd, '/');
  });

  test('fd table: document order, one entry per held socket or file, one per connect: declaration', () => {
    const plan = planRunnerLaunch(spec(`stderr: !fd stderr
path: [!file {path: lib}]
args:
  a: !socket {bind: 127.0.0.1:8080}
  again: !socket {bind: "127.0.0.1:8080"}
  db: !socket {connect: "db.internal:5432"}
  db2: !socket {connect: "db.internal:5432"}
  out: !fd stdout
  same_lib: !file {path: lib}
  raw: !fd 9
command: pass
`), { daemonPid: 1 });
    assert.deepEqual(plan.fdTable.map((s) => (s.kind === 'connect' ? `connect ${s.socket.keyPath} ${s.socket.identity}` : JSON.stringify(s))), [
      '{"kind":"stdio","stream":"stderr"}',
      '{"kind":"file","path":"/srv/app/lib"}',
      '{"kind":"held","identity":"tcp:127.0.0.1:8080"}',
      'connect args.db tcp:10.0.0.5:5432',
      'connect args.db2 tcp:10.0.0.5:5432',
      '{"kind":"stdio","stream":"stdout"}',
      '{"kind":"inherit","fd":9}',
    ]);
    const doc = decodeArgdata(plan.argdata);
    assert.ok(doc && doc.type === 'map');
    const args = doc.entries.find(([k]) => k !== null && k.type === 'str' && k.value === 'args')![1];
    assert.ok(args && args.type === 'map');
    const fdIndex = (name: string) => {
      const value = args.entries.find(([k]) => k !== null && k.type === 'str' && k.value === name)![1];
      return value !== null && value.type === 'fd' ? value.index : -1;
    };
    assert.deepEqual(['a', 'again', 'db', 'db2', 'out', 'same_lib', 'raw'].map(fdIndex), [2, 2, 3, 4, 5, 1, 6]);
  });

  test('an LC_CTYPE the operator sets is kept; otherwise the runner drops the coerced one', () => {
    assert.ok(planRunnerLaunch(spec('supervise: {env: {LC_CTYPE: C.UTF-8}}\ncommand: pass\n'), { daemonPid: 1 }).argv.includes('--lc-ctype-given'));
    assert.ok(!planRunnerLaunch(spec('command: pass\n'), { daemonPid: 1 }).argv.includes('--lc-ctype-given'));
  });
});
