import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  EXIT,
  describeProcess,
  formatActionResults,
  formatAvail,
  formatChanges,
  formatConfigLine,
  formatPid,
  formatProcessLine,
  formatSocketLines,
  formatStatus,
  formatUptime,
  nameColumnWidth,
  namesForCompletion,
  type ProcessInfo,
} from '../src/cli/ctl-format.js';
import { completeLine, loadHistory, saveHistory, ShellSyntaxError, splitForCompletion, splitShellWords } from '../src/cli/ctl-shell.js';
import { DEFAULT_CONTROL_SOCKET, defaultConfigFile, locateControlSocket } from '../src/control/client.js';
import { defaultConfigPath, defaultDaemonConfig } from '../src/config/daemon-config.js';

const proc = (name: string, state: string, extra: Partial<ProcessInfo> = {}): ProcessInfo => ({
  name,
  service: name.split(':')[0]!,
  state,
  pid: 0,
  uptime: 0,
  description: '',
  sockets: [],
  ...extra,
});

describe('formatUptime', () => {
  test('H:MM:SS', () => {
    assert.equal(formatUptime(0), '0:00:00');
    assert.equal(formatUptime(59), '0:00:59');
    assert.equal(formatUptime(302), '0:05:02');
    assert.equal(formatUptime(3600), '1:00:00');
    assert.equal(formatUptime(3661.9), '1:01:01');
  });
  test('hours go past 24', () => {
    assert.equal(formatUptime(100 * 3600 + 7), '100:00:07');
  });
  test('nonsense is zero', () => {
    assert.equal(formatUptime(-5), '0:00:00');
    assert.equal(formatUptime(Number.NaN), '0:00:00');
  });
});

describe('status lines', () => {
  const col = (s: string) => s.padEnd(33);
  test('every state', () => {
    const rows: [ProcessInfo, string][] = [
      [proc('web:0', 'RUNNING', { pid: 4711, uptime: 302 }), `${col('web:0')}RUNNING   pid 4711, uptime 0:05:02`],
      [proc('web:1', 'STARTING', { pid: 4712, description: 'pid 4712, uptime 0:00:01' }), `${col('web:1')}STARTING  pid 4712, uptime 0:00:01`],
      [proc('web:2', 'BACKOFF', { description: 'Exited too quickly (process log may have details)' }), `${col('web:2')}BACKOFF   Exited too quickly (process log may have details)`],
      [proc('web:3', 'STOPPING', { pid: 9, description: 'pid 9, uptime 0:00:03' }), `${col('web:3')}STOPPING  pid 9, uptime 0:00:03`],
      [proc('api', 'STOPPED', { description: 'Not started' }), `${col('api')}STOPPED   Not started`],
      [proc('job', 'EXITED', { description: 'exit status 2' }), `${col('job')}EXITED    exit status 2`],
      [proc('bad', 'FATAL', { description: 'could not start: ENOENT' }), `${col('bad')}FATAL     could not start: ENOENT`],
    ];
    for (const [p, line] of rows) assert.equal(formatProcessLine(p, 33), line);
  });
  test('supervisorctl words when the daemon sends no description', () => {
    assert.equal(describeProcess(proc('a', 'STOPPED')), 'Not started');
    assert.equal(describeProcess(proc('a', 'BACKOFF')), 'Exited too quickly (process log may have details)');
    assert.equal(describeProcess(proc('a', 'FATAL')), 'Exited too quickly (process log may have details)');
    assert.equal(describeProcess(proc('a', 'EXITED')), '');
    assert.equal(formatProcessLine(proc('a', 'EXITED'), 33), `${col('a')}EXITED`, 'no trailing blanks');
  });
  test('running: pid and uptime from the numbers', () => {
    assert.equal(describeProcess(proc('a', 'RUNNING', { pid: 1, uptime: 90061, description: 'stale' })), 'pid 1, uptime 25:01:01');
  });
  test('a long name widens the name column to one past it', () => {
    const long = 'a-very-long-service-name-indeed-yes:12';
    assert.equal(nameColumnWidth(['web:0', long]), long.length + 1);
    const { lines } = formatStatus({ processes: [proc('web:0', 'RUNNING', { pid: 1, uptime: 1 }), proc(long, 'STOPPED', { description: 'Not started' })] });
    assert.equal(lines[0], `${'web:0'.padEnd(long.length + 1)}RUNNING   pid 1, uptime 0:00:01`);
    assert.equal(lines[1], `${long} STOPPED   Not started`);
    assert.equal(lines[0]!.indexOf('RUNNING'), lines[1]!.indexOf('STOPPED'));
  });
});

describe('sockets and config lines', () => {
  test('one line per service, sockets once each', () => {
    const processes = [
      proc('web:0', 'RUNNING', { sockets: ['127.0.0.1:8080', '[::1]:8080'] }),
      proc('web:1', 'RUNNING', { sockets: ['127.0.0.1:8080', '[::1]:8080'] }),
      proc('api', 'STOPPED', { sockets: [{ address: '/run/api.sock', key: 'args.my_socket' }] }),
      proc('job', 'EXITED', { sockets: [] }),
    ];
    assert.deepEqual(formatSocketLines(processes), ['web sockets: 127.0.0.1:8080, [::1]:8080', 'api sockets: /run/api.sock (args.my_socket)']);
  });
  test('config failure: the first error and how many more', () => {
    assert.equal(formatConfigLine({ ok: true, at: 1, errors: [] }), undefined);
    assert.equal(formatConfigLine(undefined), undefined);
    assert.equal(formatConfigLine({ ok: false, at: 1, errors: ['web.yaml:3:5: error: bad'] }), 'config: last load failed: web.yaml:3:5: error: bad');
    assert.equal(formatConfigLine({ ok: false, at: 1, errors: ['e1', 'e2', 'e3'] }), 'config: last load failed: e1 (2 more)');
    assert.equal(formatConfigLine({ ok: false, at: 1, errors: [] }), 'config: last load failed');
  });
  test('the whole status: unknown names first, then processes, sockets, config', () => {
    const f = formatStatus({
      processes: [proc('web:0', 'RUNNING', { pid: 5, uptime: 5, sockets: ['0.0.0.0:80'] })],
      unknown: ['wbe'],
      config: { ok: false, at: 0, errors: ['boom'] },
    });
    assert.deepEqual(f.lines, ['wbe: ERROR (no such process)', `${'web:0'.padEnd(33)}RUNNING   pid 5, uptime 0:00:05`, 'web sockets: 0.0.0.0:80', 'config: last load failed: boom']);
  });
});

describe('status exit codes', () => {
  test('0 all running, 3 one not running, 4 an unknown name', () => {
    assert.equal(formatStatus({ processes: [proc('a', 'RUNNING', { pid: 1 })], unknown: [] }).exitCode, EXIT.OK);
    assert.equal(formatStatus({ processes: [] }).exitCode, EXIT.OK);
    for (const s of ['STARTING', 'BACKOFF', 'STOPPED', 'STOPPING', 'EXITED', 'FATAL']) {
      assert.equal(formatStatus({ processes: [proc('a', 'RUNNING', { pid: 1 }), proc('b', s)] }).exitCode, 3, s);
    }
    assert.equal(formatStatus({ processes: [proc('b', 'STOPPED')], unknown: ['x'] }).exitCode, 4);
  });
});

describe('action results', () => {
  test('successes in supervisorctl words', () => {
    const f = formatActionResults({ results: [{ name: 'web:0', ok: true }, { name: 'web:1', ok: true }], unknown: [] }, 'started');
    assert.deepEqual(f, { lines: ['web:0: started', 'web:1: started'], exitCode: 0 });
    assert.deepEqual(formatActionResults({ results: [{ name: 'web', ok: true }] }, 'cleared').lines, ['web: cleared']);
  });
  test('failures and unknown names exit 1', () => {
    const f = formatActionResults({ results: [{ name: 'web:0', ok: false, error: 'not running' }, { name: 'web:1', ok: true }], unknown: ['nope'] }, 'stopped');
    assert.deepEqual(f.lines, ['nope: ERROR (no such process)', 'web:0: ERROR (not running)', 'web:1: stopped']);
    assert.equal(f.exitCode, EXIT.FAILED);
    assert.equal(formatActionResults({ results: [], unknown: ['x'] }, 'signalled').exitCode, EXIT.FAILED);
    assert.deepEqual(formatActionResults({ results: [{ name: 'a', ok: false }] }, 'restarted').lines, ['a: ERROR (failed)']);
  });
});

describe('pid', () => {
  test("the daemon's pid", () => {
    assert.deepEqual(formatPid({ pid: 1234 }), { lines: ['1234'], exitCode: 0 });
  });
  test('one process: the bare pid; not running exits 7', () => {
    assert.deepEqual(formatPid({ pids: [{ name: 'web:0', pid: 4711 }], unknown: [] }), { lines: ['4711'], exitCode: 0 });
    assert.deepEqual(formatPid({ pids: [{ name: 'web:0', pid: 0 }], unknown: [] }), { lines: ['0'], exitCode: EXIT.NOT_RUNNING });
  });
  test('several processes are named; unknown exits 1', () => {
    const f = formatPid({ pids: [{ name: 'web:0', pid: 1 }, { name: 'web:1', pid: 2 }], unknown: [] });
    assert.deepEqual(f.lines, [`${'web:0'.padEnd(33)}1`, `${'web:1'.padEnd(33)}2`]);
    assert.deepEqual(formatPid({ pids: [], unknown: ['x'] }), { lines: ['x: ERROR (no such process)'], exitCode: EXIT.FAILED });
  });
});

describe('avail', () => {
  test('name, in use, auto, replicas', () => {
    const f = formatAvail({
      services: [
        { name: 'web', replicas: 2, autostart: true, inUse: true },
        { name: 'api', replicas: 1, autostart: false, inUse: false },
      ],
    });
    assert.deepEqual(f.lines, [`${'web'.padEnd(33)}in use    auto      2 replicas`, `${'api'.padEnd(33)}avail     manual    1 replica`]);
  });
});

describe('reread and reload', () => {
  test('one line per change, with what caused it', () => {
    const f = formatChanges({
      ok: true,
      errors: [],
      changes: [
        { service: 'web', action: 'swap', fields: ['command', 'supervise.env'] },
        { service: 'api', action: 'add', fields: [] },
        { service: 'db', action: 'scale', fields: ['supervise.replicas'], replicas: { from: 2, to: 4 } },
        { service: 'q', action: 'update', fields: ['supervise.restart'] },
        { service: 'edge', action: 'swap', fields: ['args.sock'], moves: [{ key: 'args.sock', from: '127.0.0.1:8080', to: '127.0.0.1:8081' }] },
        { service: 'old', action: 'remove', fields: [] },
      ],
    });
    assert.deepEqual(f, {
      lines: [
        'web: new generation (command, supervise.env)',
        'api: added',
        'db: scaled 2 -> 4 (supervise.replicas)',
        'q: updated in place (supervise.restart)',
        'edge: new generation, socket 127.0.0.1:8080 -> 127.0.0.1:8081 (args.sock)',
        'old: removed',
      ],
      exitCode: 0,
    });
  });
  test('no changes', () => {
    assert.deepEqual(formatChanges({ ok: true, errors: [], changes: [] }), { lines: ['No config updates to processes'], exitCode: 0 });
  });
  test('a config that does not load', () => {
    const f = formatChanges({ ok: false, errors: ['a.yaml:1:1: error: x', 'b.yaml:2:2: error: y'], changes: [] });
    assert.deepEqual(f.lines, ['ERROR (the config did not load: 2 errors; nothing changed)', '  a.yaml:1:1: error: x', '  b.yaml:2:2: error: y']);
    assert.equal(f.exitCode, EXIT.FAILED);
  });
  test('a socket that cannot be bound', () => {
    const f = formatChanges({ ok: false, failedAt: 'bind', errors: ['web.yaml:5:9: error: 127.0.0.1:80: address in use'], changes: [] });
    assert.deepEqual(f.lines, ['ERROR (a socket could not be bound: 1 error; nothing changed)', '  web.yaml:5:9: error: 127.0.0.1:80: address in use']);
    assert.equal(f.exitCode, EXIT.FAILED);
  });
  test('a swap that failed: its line says so, the others are listed, exit 1', () => {
    const f = formatChanges({
      ok: false,
      errors: ['web: swap failed, kept generation 1: Exited too quickly; exit status 3'],
      changes: [
        { service: 'web', action: 'swap', fields: ['command'], error: 'swap failed, kept generation 1: Exited too quickly; exit status 3' },
        { service: 'api', action: 'add', fields: [] },
      ],
    });
    assert.deepEqual(f, { lines: ['web: ERROR (swap failed, kept generation 1: Exited too quickly; exit status 3)', 'api: added'], exitCode: EXIT.FAILED });
  });
});

describe('shell words', () => {
  test('whitespace separates', () => {
    assert.deepEqual(splitShellWords('  status   web:0\tapi '), ['status', 'web:0', 'api']);
    assert.deepEqual(splitShellWords(''), []);
    assert.deepEqual(splitShellWords('   '), []);
  });
  test('quotes', () => {
    assert.deepEqual(splitShellWords(`signal HUP 'web *' "a b"`), ['signal', 'HUP', 'web *', 'a b']);
    assert.deepEqual(splitShellWords(`a'b c'd`), ['ab cd']);
    assert.deepEqual(splitShellWords(`'' ""`), ['', '']);
    assert.deepEqual(splitShellWords(`'it\\s' "say \\"hi\\" \\n"`), ['it\\s', 'say "hi" \\n']);
    assert.deepEqual(splitShellWords(`"it's"`), ["it's"]);
  });
  test('backslash escapes', () => {
    assert.deepEqual(splitShellWords('a\\ b c\\"d \\\\'), ['a b', 'c"d', '\\']);
  });
  test('unfinished input is an error', () => {
    assert.throws(() => splitShellWords(`status 'web`), ShellSyntaxError);
    assert.throws(() => splitShellWords(`status "web`), ShellSyntaxError);
    assert.throws(() => splitShellWords('status web\\'), ShellSyntaxError);
  });
  test('for completion: finished words and the one being typed', () => {
    assert.deepEqual(splitForCompletion(''), { words: [], current: '' });
    assert.deepEqual(splitForCompletion('sta'), { words: [], current: 'sta' });
    assert.deepEqual(splitForCompletion('status '), { words: ['status'], current: '' });
    assert.deepEqual(splitForCompletion('status we'), { words: ['status'], current: 'we' });
    assert.deepEqual(splitForCompletion(`status 'we`), { words: ['status'], current: 'we' });
  });
});

describe('tab completion', () => {
  const commands = ['status', 'start', 'stop', 'restart', 'signal', 'pid', 'tail', 'maintail', 'clear', 'avail', 'reread', 'reload', 'shutdown', 'version', 'help', 'quit', 'exit'];
  const names = namesForCompletion({ processes: [proc('web:0', 'RUNNING'), proc('web:1', 'RUNNING'), proc('api', 'STOPPED')] });
  test('names: all, services, processes', () => {
    assert.deepEqual(names, ['all', 'web', 'web:0', 'web:1', 'api']);
  });
  test('command names', () => {
    assert.deepEqual(completeLine('st', commands, names), [['status', 'start', 'stop'], 'st']);
    assert.deepEqual(completeLine('rel', commands, names), [['reload '], 'rel']);
    assert.deepEqual(completeLine('', commands, names)[0].length, commands.length);
  });
  test('process and service names', () => {
    assert.deepEqual(completeLine('status w', commands, names), [['web', 'web:0', 'web:1'], 'w']);
    assert.deepEqual(completeLine('stop web:0 a', commands, names), [['all', 'api'], 'a']);
    assert.deepEqual(completeLine('restart --hard ap', commands, names), [['api '], 'ap']);
    assert.deepEqual(completeLine('pid web:0 ', commands, names), [[], '']);
  });
  test('signal, tail streams, help topics', () => {
    assert.deepEqual(completeLine('signal US', commands, names), [['USR1', 'USR2'], 'US']);
    assert.deepEqual(completeLine('signal HUP we', commands, names), [['web', 'web:0', 'web:1'], 'we']);
    assert.deepEqual(completeLine('tail -f -n 20 ap', commands, names), [['api '], 'ap']);
    assert.deepEqual(completeLine('tail -n ', commands, names), [[], '']);
    assert.deepEqual(completeLine('tail web std', commands, names), [['stdout', 'stderr'], 'std']);
    assert.deepEqual(completeLine('help rel', commands, names), [['reload '], 'rel']);
    assert.deepEqual(completeLine('help q', commands, names), [[], 'q']);
    assert.deepEqual(completeLine('avail x', commands, names), [[], 'x']);
  });
});

describe('history file', () => {
  test('saved oldest first, loaded newest first; a bad path is ignored', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctl-history-'));
    const file = path.join(dir, 'h');
    saveHistory(file, ['status', 'stop web']);
    assert.equal(fs.readFileSync(file, 'utf8'), 'stop web\nstatus\n');
    assert.deepEqual(loadHistory(file), ['status', 'stop web']);
    assert.deepEqual(loadHistory(path.join(dir, 'missing')), []);
    saveHistory(path.join(dir, 'no', 'such', 'dir'), ['x']);
    fs.rmSync(dir, { recursive: true });
  });
});

describe('finding the control socket', () => {
  test('defaults agree with the daemon config', () => {
    for (const platform of ['linux', 'freebsd'] as const) assert.equal(defaultConfigFile(platform), defaultConfigPath(platform));
    assert.equal(DEFAULT_CONTROL_SOCKET, defaultDaemonConfig('/', undefined).control.socket);
  });
  test('-s wins; -c is read; a config without control: means the default socket', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctl-config-'));
    const withControl = path.join(dir, 'a.yaml');
    fs.writeFileSync(withControl, 'control:\n  socket: run/ctl.sock\n');
    const without = path.join(dir, 'b.yaml');
    fs.writeFileSync(without, 'log_level: debug\n');
    assert.deepEqual(await locateControlSocket({ socket: '/x.sock', config: withControl }), { socketPath: '/x.sock', warnings: [] });
    assert.deepEqual(await locateControlSocket({ config: withControl }), { socketPath: path.join(dir, 'run/ctl.sock'), warnings: [] });
    assert.deepEqual(await locateControlSocket({ config: without }), { socketPath: DEFAULT_CONTROL_SOCKET, warnings: [] });
    await assert.rejects(locateControlSocket({ config: path.join(dir, 'missing.yaml') }), /cannot read the daemon config .*missing\.yaml: no such file/);
    fs.rmSync(dir, { recursive: true });
  });
});
