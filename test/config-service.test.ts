import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatDiagnostic } from '../src/config/diagnostics.js';
import { classifyServiceFileName, parseServiceFile } from '../src/config/service.js';
import { mapGet } from '../src/config/values.js';

const HEADER = '%TAG ! tag:nuxi.nl,2015:cloudabi/\n---\n';

/** Parses a service file text and returns its diagnostics as `LINE:COL: severity: message`. */
function messages(body: string, header = HEADER): string[] {
  return parseServiceFile(header + body, 'svc.yaml', 'svc', '/srv').diagnostics.map((d) => `${d.pos.line}:${d.pos.col}: ${d.severity}: ${d.message}`);
}
function only(body: string): string {
  const all = messages(body + 'command: pass\n');
  assert.equal(all.length, 1, `expected one message, got ${JSON.stringify(all)}`);
  return all[0]!;
}

describe('service file errors carry file, line and column', () => {
  test('YAML syntax', () => {
    assert.deepEqual(messages('args: [1, 2\ncommand: x\n').slice(0, 1), ['4:1: error: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]']);
  });

  test('unknown tag, with the known ones named', () => {
    const d = parseServiceFile(`${HEADER}args:\n  a: !sockets {bind: 127.0.0.1:1}\ncommand: pass\n`, 'svc.yaml', 'svc').diagnostics;
    assert.equal(d.length, 1);
    assert.equal(formatDiagnostic(d[0]!), 'svc.yaml:4:6: error: unknown tag !<tag:nuxi.nl,2015:cloudabi/sockets>\n    hint: CloudABI tags are !fd, !file and !socket under "%TAG ! tag:nuxi.nl,2015:cloudabi/"');
    assert.equal(only('args: !foo x\n'), '3:7: error: unknown tag !<tag:nuxi.nl,2015:cloudabi/foo>');
    assert.equal(only('args: !!set {a}\n'), '3:7: error: unknown tag !!set');
  });

  test('aliases are refused', () => {
    assert.equal(only('args:\n  a: &x 1\n  b: *x\n'), '5:6: error: alias *x is not allowed in a service file');
  });

  test('a bare !socket points at the tag and shows the fix', () => {
    const d = parseServiceFile(`${HEADER}args:\n  my_socket: !socket\ncommand: pass\n`, 'svc.yaml', 'svc').diagnostics;
    assert.equal(d.length, 1);
    assert.equal(d[0]!.message, '!socket needs an address');
    assert.deepEqual([d[0]!.pos.line, d[0]!.pos.col], [4, 14]);
    assert.match(d[0]!.hint!, /!socket \{bind: 127\.0\.0\.1:8080\}/);
    assert.equal(only('args:\n  s: !socket {}\n'), '4:6: error: !socket needs bind or connect');
    assert.equal(only('args:\n  s: !socket {type: stream}\n'), '4:6: error: !socket needs bind or connect');
  });

  test('unknown and mistyped keys in !socket', () => {
    assert.equal(only('args:\n  s: !socket {bind: 127.0.0.1:1, port: 2}\n'), '4:34: error: unknown key "port" in !socket; keys are bind, connect, type, backlog, and for unix paths mode, owner and group');
    assert.equal(only('args:\n  s: !socket {bind: 127.0.0.1:1, mode: "0600"}\n'), '4:6: error: !socket 127.0.0.1:1: mode applies only to a unix socket the daemon binds');
    assert.equal(only('args:\n  s: !socket {bind: /run/a.sock, mode: rw}\n'), '4:40: error: !socket mode must be an octal file mode such as "0660", not "rw"');
    assert.equal(only('args:\n  s: !socket {connect: /run/a.sock, owner: www}\n'), '4:6: error: !socket /run/a.sock: owner applies only to a unix socket the daemon binds');
    assert.equal(only('args:\n  s: !socket {bind: 127.0.0.1:1, type: raw}\n'), '4:40: error: !socket type must be stream, dgram or seqpacket, not "raw"');
    assert.equal(only('args:\n  s: !socket {bind: 127.0.0.1:1, backlog: -1}\n'), '4:43: error: !socket backlog must be an integer from 0 to 65535, not -1 (an integer)');
    assert.equal(only('args:\n  s: !socket {bind: 127.0.0.1:1, connect: 127.0.0.1:2}\n'), '4:34: error: !socket has both bind and connect; give one');
  });

  test('impossible addresses', () => {
    assert.equal(only('args:\n  s: !socket {bind: 127.0.0.1:70000}\n'), '4:6: error: !socket bind: port 70000 in "127.0.0.1:70000" is above 65535');
    assert.equal(only('args:\n  s: !socket {bind: "::1:80"}\n'), '4:6: error: !socket bind: IPv6 address in "::1:80" needs brackets, as in [::1]:8080');
    assert.equal(only('args:\n  s: !socket {bind: localhost}\n'), '4:6: error: !socket bind: address "localhost" has no port; write host:port, [v6addr]:port or an absolute unix socket path');
    assert.equal(only('args:\n  s: !socket {bind: "[nope]:80"}\n'), '4:6: error: !socket bind: "nope" in "[nope]:80" is not an IPv6 address');
    assert.equal(only('args:\n  s: !socket {bind: 127.0.0.1:80, type: seqpacket}\n'), '4:6: error: !socket 127.0.0.1:80: seqpacket sockets are unix sockets only; use stream for TCP');
    assert.equal(only('args:\n  s: !socket {bind: 8080}\n'), '4:21: error: !socket bind must be an address such as 127.0.0.1:8080, [::1]:8080 or /var/run/app.sock, not 8080 (an integer)');
  });

  test('!file: unknown keys and a missing path', () => {
    assert.equal(only('args:\n  f: !file {path: /etc, mode: r}\n'), '4:25: error: unknown key "mode" in !file; the only key is path');
    assert.equal(only('args:\n  f: !file {}\n'), '4:6: error: !file needs a path');
    assert.equal(only('args:\n  f: !file /etc\n'), '4:6: error: !file takes a map, not "/etc"');
    assert.equal(only('args:\n  f: !file {path: 3}\n'), '4:19: error: !file path must be a non-empty string, not 3 (an integer)');
  });

  test('!fd takes stdout, stderr or a number', () => {
    assert.equal(only('args:\n  f: !fd stdin\n'), '4:6: error: !fd takes stdout, stderr or an fd number, not "stdin"');
  });

  test('supervise: unknown keys, wrong types, impossible values', () => {
    assert.equal(only('supervise:\n  replica: 2\n'), '4:3: error: unknown key "replica" in supervise');
    assert.equal(only('supervise:\n  replicas: 0\n'), '4:13: error: supervise.replicas: 0 is out of range; allowed are 1 to 1024');
    assert.equal(only('supervise:\n  replicas: two\n'), '4:13: error: supervise.replicas: expected an integer, got "two"');
    assert.equal(only('supervise:\n  stop_timeout: -5s\n'), '4:17: error: supervise.stop_timeout: duration "-5s" is negative');
    assert.equal(only('supervise:\n  start_seconds: -1\n'), '4:18: error: supervise.start_seconds: duration -1 is negative');
    assert.equal(only('supervise:\n  stop_timeout: 10 parsecs\n'), '4:17: error: supervise.stop_timeout: "10 parsecs" is not a duration; write 250ms, 10s, 5m or a number of seconds');
    assert.equal(only('supervise:\n  stop_signal: TERMINATE\n'), '4:16: error: supervise.stop_signal: "TERMINATE" is not a signal name');
    assert.equal(only('supervise:\n  stop_signal: KILL\n'), '4:16: error: supervise.stop_signal: SIGKILL cannot be caught, so it cannot stop a service gracefully');
    assert.equal(only('supervise:\n  restart: sometimes\n'), '4:12: error: supervise.restart: expected one of always, on-failure, never, got "sometimes"');
    assert.equal(only('supervise:\n  backoff: {initial: 5s, max: 1s}\n'), '4:31: error: supervise.backoff.max (1000ms) is below initial (5000ms)');
    assert.equal(only('supervise:\n  backoff: {jitter: 2}\n'), '4:21: error: supervise.backoff.jitter: 2 is out of range; allowed are 0 to 1');
    assert.equal(only('supervise:\n  logs: {max_bytes: 10 MB, copies: 2}\n'), '4:28: error: unknown key "copies" in supervise.logs');
    assert.equal(only('supervise:\n  env: {"1BAD": x}\n'), '4:9: error: supervise.env: "1BAD" is not a valid environment variable name');
    assert.equal(only('supervise:\n  directory: srv\n'), '4:14: error: supervise.directory: expected an absolute path, got "srv"');
    assert.equal(only('supervise:\n  program: []\n'), '4:12: error: supervise.program: the program list is empty');
    assert.equal(only('supervise:\n  python: bin/python3\n'), '4:11: error: supervise.python: "bin/python3" must be an absolute path or a bare name looked up in PATH');
    assert.equal(only('supervise: 3\n'), '3:12: error: supervise must be a map, got 3 (an integer)');
  });

  test('every error in a file is reported, not just the first', () => {
    const all = messages('supervise:\n  replicas: 0\n  restart: maybe\nargs:\n  a: !socket\n  b: *nothere\n');
    assert.deepEqual(all.sort(), [
      '3:1: warning: no command or script: the Python runner will have nothing to run',
      '4:13: error: supervise.replicas: 0 is out of range; allowed are 1 to 1024',
      '5:12: error: supervise.restart: expected one of always, on-failure, never, got "maybe"',
      '7:6: error: !socket needs an address',
      '8:6: error: alias *nothere is not allowed in a service file',
    ]);
  });

  test('multiple documents and non-map documents are refused', () => {
    assert.deepEqual(messages('command: pass\n---\ncommand: pass\n'), ['4:1: error: a service file holds exactly one YAML document; found a second one here']);
    assert.deepEqual(messages('- a\n- b\n'), ['3:1: error: a service file is a map of keys (args, path, command, ...), not a sequence']);
  });

  test('runner keys have the shapes the CloudABI port gave them', () => {
    assert.equal(only('path: /usr/lib\n'), '3:7: error: path must be a list of directories, got "/usr/lib"');
    assert.equal(only('path: [/usr/lib]\n'), '3:8: error: each path entry must be a !file directory, got "/usr/lib"');
    assert.equal(only('stderr: 2\n'), '3:9: error: stderr must be an !fd, got 2 (an integer)');
    assert.deepEqual(messages('command: 12\n'), ['3:10: error: command must be Python source text, got 12 (an integer)']);
    assert.deepEqual(messages('args: {}\n'), ['3:1: warning: no command or script: the Python runner will have nothing to run']);
  });
});

describe('service file reading', () => {
  test('supervise is split off the argdata document, with defaults filled in', () => {
    const { service, diagnostics } = parseServiceFile(`${HEADER}supervise:\n  replicas: 3\n  stop_timeout: 250ms\n  env: {PORT: 8080, DEBUG: yes}\ncommand: pass\n`, 'svc.yaml', 'svc');
    assert.deepEqual(diagnostics, []);
    assert.equal(service!.supervise.replicas, 3);
    assert.equal(service!.supervise.stopTimeoutMs, 250);
    assert.equal(service!.supervise.restart, 'on-failure');
    assert.equal(service!.supervise.sandbox, 'strict');
    assert.deepEqual(service!.supervise.env, { PORT: '8080', DEBUG: 'yes' });
    assert.equal(mapGet(service!.document, 'supervise'), undefined);
    assert.ok(mapGet(service!.document, 'command'));
  });

  test('a relative !file path is relative to the service file', () => {
    const { service } = parseServiceFile(`${HEADER}args:\n  d: !file {path: ../lib}\ncommand: pass\n`, 'svc.yaml', 'svc', '/etc/sockvisor.d');
    const fd = service!.fds[0]!.node.fd;
    assert.deepEqual(fd, { type: 'file', path: '/etc/lib', declared: '../lib' });
    assert.equal(service!.fds[0]!.keyPath, 'args.d');
  });

  test('fds are listed in document order with their key paths', () => {
    const { service } = parseServiceFile(
      `${HEADER}stderr: !fd stderr\npath:\n  - !file {path: /usr}\nargs:\n  s: !socket {bind: /run/a.sock, type: seqpacket, backlog: 16}\n  l: [!fd 7]\ncommand: pass\n`, 'svc.yaml', 'svc');
    assert.deepEqual(service!.fds.map((u) => u.keyPath), ['stderr', 'path[0]', 'args.s', 'args.l[0]']);
    assert.deepEqual(service!.fds[2]!.node.fd, { type: 'socket', mode: 'bind', address: '/run/a.sock', socketType: 'seqpacket', backlog: 16 });
    assert.deepEqual(service!.fds[3]!.node.fd, { type: 'number', number: 7 });
  });

  test('a unix socket may set its file mode, owner and group', () => {
    const { service, diagnostics } = parseServiceFile(`${HEADER}args:\n  s: !socket {bind: /run/a.sock, mode: "0600", owner: www, group: 80}\ncommand: pass\n`, 'svc.yaml', 'svc');
    assert.deepEqual(diagnostics, []);
    assert.deepEqual(service!.fds[0]!.node.fd, { type: 'socket', mode: 'bind', address: '/run/a.sock', socketType: 'stream', backlog: undefined, fileMode: 0o600, owner: 'www', group: '80' });
  });

  test('the seed-era header is read as the real directive, with a warning', () => {
    const all = messages('stderr: !fd stderr\ncommand: pass\n', '%TAG !,2015:cloudabi/\n');
    assert.deepEqual(all, ['1:1: warning: seed-era header "%TAG !,2015:cloudabi/" read as "%TAG ! tag:nuxi.nl,2015:cloudabi/" followed by "---"']);
  });

  test('local CloudABI tags without any %TAG are accepted with one warning', () => {
    const all = messages('stderr: !fd stderr\nargs: {o: !fd stdout}\ncommand: pass\n', '');
    assert.deepEqual(all, ['1:9: warning: !fd used without a %TAG directive; read as tag:nuxi.nl,2015:cloudabi/fd']);
  });

  test('a different %TAG prefix does not make !fd a CloudABI tag', () => {
    const all = messages('stderr: !fd stderr\ncommand: pass\n', '%TAG ! tag:example.com,2020:\n---\n');
    assert.deepEqual(all, ['3:9: error: unknown tag !<tag:example.com,2020:fd>']);
  });
});

describe('service names come from file names', () => {
  test('allowed, skipped and refused names', () => {
    assert.deepEqual(classifyServiceFileName('web.yaml'), { name: 'web' });
    assert.deepEqual(classifyServiceFileName('my-app_2.v1.yaml'), { name: 'my-app_2.v1' });
    assert.match((classifyServiceFileName('web.yml') as { skip: string }).skip, /rename it to web\.yaml/);
    assert.ok('skip' in classifyServiceFileName('README'));
    assert.match((classifyServiceFileName('my web.yaml') as { invalid: string }).invalid, /service name "my web" is not allowed/);
    assert.ok('invalid' in classifyServiceFileName('wéb.yaml'));
  });
});
