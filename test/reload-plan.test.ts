/** The reload plan, case by case: every row of the plan table, combinations and socket moves. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HostFacts } from '../src/config/host-facts.js';
import { resolveService } from '../src/config/resolve.js';
import { parseServiceFile } from '../src/config/service.js';
import type { ServiceSpec } from '../src/config/spec.js';
import { documentDifferences, planReload, type ReloadPlan } from '../src/plan/reload-plan.js';
import { parseYamlDocument } from '../src/config/yaml-document.js';
import { HEADER } from './helpers/cli.js';

function factsWith(overrides: Partial<HostFacts> = {}): HostFacts {
  return {
    pathKind: (p) => (p.startsWith('/usr/bin/') ? 'file' : 'directory'),
    hostAddresses: (h) => (h === 'web.internal' ? ['10.0.0.5'] : [h]),
    python: (name) => ({ executable: name === 'python3.13' ? '/usr/bin/python3.13' : '/usr/bin/python3.11', version: '3.11.2', stdlib: '/usr/lib/python3.11', dynload: undefined }),
    user: (u) => (u === 'www' ? { uid: 80, gid: 80, groups: [80] } : u === 'app' ? { uid: 81, gid: 81, groups: [81] } : undefined),
    group: (g) => (g === 'www' ? 80 : g === 'app' ? 81 : undefined),
    ...overrides,
  };
}

function spec(name: string, body: string, facts = factsWith()): ServiceSpec {
  const parsed = parseServiceFile(HEADER + body, `${name}.yaml`, name, '/srv');
  assert.deepEqual(parsed.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message), []);
  const resolved = resolveService(parsed.service!, 'python3', facts);
  assert.deepEqual(resolved.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message), []);
  return resolved.spec!;
}

const WEB = `supervise:
  replicas: 2
  restart: on-failure
  env: {MODE: prod}
args:
  sock: !socket {bind: 127.0.0.1:8080}
command: serve()
`;

/** The plan as compact rows, for readable assertions. */
function rows(plan: ReloadPlan) {
  return plan.services.map((s) => [s.service, s.action, s.fields.join(' ')]);
}

describe('one service, one change', () => {
  test('nothing changed: nothing to do, not even for new positions or comments', () => {
    const plan = planReload([spec('web', WEB)], [spec('web', `# a comment moves every line\n\n${WEB}`)]);
    assert.deepEqual(plan.services, []);
    assert.deepEqual(plan.unchanged, ['web']);
    assert.deepEqual(plan.bind, []);
    assert.deepEqual(plan.close, []);
  });

  test('a new service: its sockets are bound, then it is started', () => {
    const api = spec('api', 'args: {s: !socket {bind: 127.0.0.1:9000}}\ncommand: x\n');
    const plan = planReload([spec('web', WEB)], [spec('web', WEB), api]);
    assert.deepEqual(rows(plan), [['api', 'add', '']]);
    assert.deepEqual(plan.bind.map((d) => d.written), ['127.0.0.1:9000']);
    assert.deepEqual(plan.unchanged, ['web']);
  });

  test('a removed service: stopped, and its sockets closed', () => {
    const api = spec('api', 'args: {s: !socket {bind: 127.0.0.1:9000}}\ncommand: x\n');
    const plan = planReload([spec('web', WEB), api], [spec('web', WEB)]);
    assert.deepEqual(rows(plan), [['api', 'remove', '']]);
    assert.deepEqual(plan.close.map((d) => d.written), ['127.0.0.1:9000']);
    assert.deepEqual(plan.bind, []);
  });

  test('a removed service whose socket another service still declares: the socket stays', () => {
    const shared = 'args: {s: !socket {bind: 127.0.0.1:8080}}\ncommand: x\n';
    const plan = planReload([spec('web', WEB), spec('api', shared)], [spec('web', WEB)]);
    assert.deepEqual(rows(plan), [['api', 'remove', '']]);
    assert.deepEqual(plan.close, []);
  });

  test('only replicas: scaled in place', () => {
    const plan = planReload([spec('web', WEB)], [spec('web', WEB.replace('replicas: 2', 'replicas: 5'))]);
    assert.deepEqual(rows(plan), [['web', 'scale', 'supervise.replicas']]);
    assert.deepEqual(plan.services[0]!.replicas, { from: 2, to: 5 });
    assert.deepEqual([plan.bind, plan.close], [[], []]);
  });

  const live: [string, string][] = [
    ['supervise.restart', 'restart: always'],
    ['supervise.backoff', 'backoff: {initial: 1s}'],
    ['supervise.start_retries', 'start_retries: 9'],
    ['supervise.start_seconds', 'start_seconds: 3'],
    ['supervise.stop_timeout', 'stop_timeout: 30s'],
    ['supervise.logs', 'logs: {max_bytes: 1MB}'],
    ['supervise.autostart', 'autostart: false'],
    ['supervise.standby', 'standby: true'],
  ];
  for (const [field, line] of live) {
    test(`only ${field}: applied without a restart`, () => {
      const edited = line.startsWith('restart:') ? WEB.replace('restart: on-failure', line) : WEB.replace('supervise:\n', `supervise:\n  ${line}\n`);
      const plan = planReload([spec('web', WEB)], [spec('web', edited)]);
      assert.deepEqual(rows(plan), [['web', 'update', field]]);
    });
  }

  const visible: [string, string, string][] = [
    ['the command (argdata)', 'command', 'command: serve(debug=True)'],
    ['a nested argdata value', 'args.extra', 'args:\n  sock: !socket {bind: 127.0.0.1:8080}\n  extra: 1'],
    ['supervise.env', 'supervise.env', 'env: {MODE: staging}'],
    ['supervise.user', 'supervise.user', 'user: www'],
    ['supervise.group', 'supervise.group', 'group: www'],
    ['supervise.directory', 'supervise.directory', 'directory: /srv'],
    ['supervise.sandbox', 'supervise.sandbox', 'sandbox: best-effort'],
    ['supervise.preload', 'supervise.preload', 'preload: [_ssl]'],
    ['supervise.stop_signal', 'supervise.stop_signal', 'stop_signal: INT'],
    ['supervise.python', 'supervise.python', 'python: python3.13'],
    ['supervise.program', 'supervise.program', 'program: [/usr/bin/env, true]'],
    ['supervise.writable', 'supervise.writable', 'writable: [/srv]'],
    ['supervise.system_grants', 'supervise.system_grants', 'system_grants: false'],
  ];
  for (const [what, field, line] of visible) {
    test(`${what}: a new generation`, () => {
      let edited: string;
      if (line.startsWith('command:')) edited = WEB.replace('command: serve()', line);
      else if (line.startsWith('args:')) edited = WEB.replace('args:\n  sock: !socket {bind: 127.0.0.1:8080}', line);
      else if (line.startsWith('env:')) edited = WEB.replace('env: {MODE: prod}', line);
      else edited = WEB.replace('supervise:\n', `supervise:\n  ${line}\n`);
      const plan = planReload([spec('web', WEB)], [spec('web', edited)]);
      assert.equal(plan.services.length, 1);
      assert.equal(plan.services[0]!.action, 'swap');
      assert.ok(plan.services[0]!.fields.includes(field), `${field} in ${plan.services[0]!.fields.join(', ')}`);
      assert.deepEqual([plan.bind, plan.close], [[], []]);
    });
  }

  test('a socket address: the new one is bound first, the swap moves onto it, the old one closes', () => {
    const plan = planReload([spec('web', WEB)], [spec('web', WEB.replace('127.0.0.1:8080', '127.0.0.1:8081'))]);
    assert.deepEqual(rows(plan), [['web', 'swap', 'args.sock']]);
    assert.deepEqual(plan.services[0]!.moves, [{ key: 'args.sock', from: '127.0.0.1:8080', to: '127.0.0.1:8081' }]);
    assert.deepEqual(plan.bind.map((d) => d.written), ['127.0.0.1:8081']);
    assert.deepEqual(plan.close.map((d) => d.written), ['127.0.0.1:8080']);
  });

  test('a socket type change at the same address is a move too', () => {
    const unix = 'args: {s: !socket {bind: /run/app.sock}}\ncommand: x\n';
    const plan = planReload([spec('app', unix)], [spec('app', unix.replace('{bind: /run/app.sock}', '{bind: /run/app.sock, type: seqpacket}'))]);
    assert.equal(plan.services[0]!.action, 'swap');
    assert.equal(plan.bind.length, 1);
    assert.equal(plan.close.length, 1);
  });
});

describe('same text, other facts', () => {
  test('a host name that now resolves elsewhere moves the socket', () => {
    const text = 'args: {s: !socket {bind: "web.internal:80"}}\ncommand: x\n';
    const before = spec('web', text);
    const after = spec('web', text, factsWith({ hostAddresses: () => ['10.0.0.6'] }));
    const plan = planReload([before], [after]);
    assert.deepEqual(rows(plan), [['web', 'swap', 'args.s']]);
    assert.equal(plan.bind.length, 1);
    assert.equal(plan.close.length, 1);
  });

  test('an interpreter that resolves to another executable', () => {
    const after = spec('web', WEB, factsWith({ python: () => ({ executable: '/opt/python/bin/python3.11', version: '3.11.9', stdlib: '/usr/lib/python3.11', dynload: undefined }) }));
    assert.deepEqual(rows(planReload([spec('web', WEB)], [after])), [['web', 'swap', 'python']]);
  });

  test('a user whose uid changed', () => {
    const text = WEB.replace('supervise:\n', 'supervise:\n  user: www\n');
    const after = spec('web', text, factsWith({ user: () => ({ uid: 90, gid: 90, groups: [90] }) }));
    assert.deepEqual(rows(planReload([spec('web', text)], [after])), [['web', 'swap', 'user']]);
  });

  test('extension modules that now load other libraries', () => {
    const before = { ...spec('web', WEB), libraries: ['/usr/lib/libz.so.1.2.13'] };
    const after = { ...spec('web', WEB), libraries: ['/usr/lib/libz.so.1.3'] };
    assert.deepEqual(rows(planReload([before], [after])), [['web', 'swap', 'libraries']]);
  });
});

describe('combinations', () => {
  test('replicas and a process-visible field: one swap to the new replica count', () => {
    const edited = WEB.replace('replicas: 2', 'replicas: 3').replace('MODE: prod', 'MODE: test');
    const plan = planReload([spec('web', WEB)], [spec('web', edited)]);
    assert.deepEqual(rows(plan), [['web', 'swap', 'supervise.env supervise.replicas']]);
    assert.deepEqual(plan.services[0]!.replicas, { from: 2, to: 3 });
  });

  test('replicas and live fields: scaled, with the live fields applied', () => {
    const edited = WEB.replace('replicas: 2', 'replicas: 1').replace('restart: on-failure', 'restart: always');
    assert.deepEqual(rows(planReload([spec('web', WEB)], [spec('web', edited)])), [['web', 'scale', 'supervise.replicas supervise.restart']]);
  });

  test('a process-visible field and live fields: a swap names them all', () => {
    const edited = WEB.replace('restart: on-failure', 'restart: always').replace('command: serve()', 'command: serve(2)');
    assert.deepEqual(rows(planReload([spec('web', WEB)], [spec('web', edited)])), [['web', 'swap', 'command supervise.restart']]);
  });

  test('several services at once, each with its own action, in config order then removals', () => {
    const base = (port: number, extra = '') => `supervise: {restart: on-failure${extra}}\nargs: {s: !socket {bind: 127.0.0.1:${port}}}\ncommand: x\n`;
    const running = [spec('a', base(9001)), spec('b', base(9002)), spec('c', base(9003)), spec('d', base(9004)), spec('e', base(9005))];
    const next = [
      spec('a', base(9001)),
      spec('b', base(9002, ', replicas: 3')),
      spec('c', base(9003, ', backoff: {initial: 1s}')),
      spec('d', base(9004).replace('command: x', 'command: z')),
      spec('f', base(9006)),
    ];
    const plan = planReload(running, next);
    assert.deepEqual(rows(plan), [
      ['b', 'scale', 'supervise.replicas'],
      ['c', 'update', 'supervise.backoff'],
      ['d', 'swap', 'command'],
      ['f', 'add', ''],
      ['e', 'remove', ''],
    ]);
    assert.deepEqual(plan.unchanged, ['a']);
    assert.deepEqual(plan.bind.map((d) => d.written), ['127.0.0.1:9006']);
    assert.deepEqual(plan.close.map((d) => d.written), ['127.0.0.1:9005']);
  });

  test('two services trade addresses: nothing to bind or close, both swap', () => {
    const on = (port: number) => `args: {s: !socket {bind: 127.0.0.1:${port}}}\ncommand: x\n`;
    const plan = planReload([spec('a', on(9001)), spec('b', on(9002))], [spec('a', on(9002)), spec('b', on(9001))]);
    assert.deepEqual(rows(plan), [['a', 'swap', 'args.s'], ['b', 'swap', 'args.s']]);
    assert.deepEqual([plan.bind, plan.close], [[], []]);
  });

  test('a service moves away while a new one takes its old address: the socket is kept', () => {
    const on = (port: number) => `args: {s: !socket {bind: 127.0.0.1:${port}}}\ncommand: x\n`;
    const plan = planReload([spec('a', on(9001))], [spec('a', on(9002)), spec('b', on(9001))]);
    assert.deepEqual(rows(plan), [['a', 'swap', 'args.s'], ['b', 'add', '']]);
    assert.deepEqual(plan.bind.map((d) => d.written), ['127.0.0.1:9002']);
    assert.deepEqual(plan.close, []);
  });

  test('a renamed service file: the new name is added on the same held socket, the old name removed', () => {
    const on = 'args: {s: !socket {bind: 127.0.0.1:9001}}\ncommand: x\n';
    const plan = planReload([spec('old', on)], [spec('new', on)]);
    assert.deepEqual(rows(plan), [['new', 'add', ''], ['old', 'remove', '']]);
    assert.deepEqual([plan.bind, plan.close], [[], []]);
  });

  test('two new services declaring one address: bound once', () => {
    const on = 'args: {s: !socket {bind: 127.0.0.1:9001}}\ncommand: x\n';
    const plan = planReload([], [spec('a', on), spec('b', on)]);
    assert.equal(plan.bind.length, 1);
  });

  test('a port-0 socket keeps its identity (and so its port) across edits of its service', () => {
    const on = 'args: {s: !socket {bind: 127.0.0.1:0}}\ncommand: x\n';
    const plan = planReload([spec('a', on)], [spec('a', `# moved down\n${on.replace('command: x', 'command: z')}`)]);
    assert.deepEqual(rows(plan), [['a', 'swap', 'command']]);
    assert.deepEqual([plan.bind, plan.close], [[], []]);
  });
});

describe('document differences', () => {
  const doc = (text: string) => parseYamlDocument(HEADER + text, 'x.yaml').value!;
  test('name the deepest differing key, list items by index', () => {
    assert.deepEqual(documentDifferences(doc('a: {b: 1, c: 2}\nl: [1, 2]\n'), doc('a: {b: 1, c: 3}\nl: [1, 5]\n')), ['a.c', 'l[1]']);
    assert.deepEqual(documentDifferences(doc('a: 1\n'), doc('a: 1\nb: 2\n')), ['b']);
    assert.deepEqual(documentDifferences(doc('l: [1]\n'), doc('l: [1, 2]\n')), ['l']);
    assert.deepEqual(documentDifferences(doc('a: "1"\n'), doc('a: 1\n')), ['a']);
    assert.deepEqual(documentDifferences(doc('a: 1\n'), doc('a:    1 # same\n')), []);
  });
});
