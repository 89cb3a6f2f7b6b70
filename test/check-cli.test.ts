import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { HEADER, ROOT, SEED, run, sockvisord, tempDir, writeTree } from './helpers/cli.js';

const webWithBind = async (): Promise<string> =>
  (await fs.readFile(path.join(SEED, 'web.yaml'), 'utf8')).replace('my_socket: !socket', 'my_socket: !socket {bind: 127.0.0.1:8080}');

describe('sockvisord check on the seed examples', () => {
  test('hello.yaml, unchanged, is valid and shows the two warnings', async () => {
    const r = await sockvisord(['check', 'test/fixtures/seed/hello.yaml']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^hello {2}\(test\/fixtures\/seed\/hello\.yaml\)$/m);
    assert.match(r.stdout, /test\/fixtures\/seed\/hello\.yaml:1:1: warning: seed-era header "%TAG !,2015:cloudabi\/"/);
    assert.match(r.stdout, /test\/fixtures\/seed\/hello\.yaml:4:7: warning: path \/usr\/local\/x86_64-unknown-cloudabi\/lib\/python3\.6 is a CloudABI-era interpreter tree; mapped to /);
    assert.match(r.stdout, /^1 service, 0 errors, 2 warnings$/m);
    assert.match(r.stdout, /^ {2}program: {2}python \(\/.*python3[.0-9]*, Python 3\.\d+\.\d+\)$/m);
  });

  test('web.yaml, unchanged, fails at the !socket line with the fix', async () => {
    const r = await sockvisord(['check', 'test/fixtures/seed/web.yaml']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^test\/fixtures\/seed\/web\.yaml:7:16: error: !socket needs an address\n {4}hint: write !socket \{bind: 127\.0\.0\.1:8080\}/m);
    assert.match(r.stdout, /^1 service, 1 error, 2 warnings$/m);
  });

  test('web.yaml with bind: added is valid and lists its socket and files', async (t) => {
    const dir = await tempDir(t);
    await writeTree(dir, { 'web.yaml': await webWithBind() });
    const r = await sockvisord(['check', path.join(dir, 'web.yaml')]);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /^ {2}socket: {3}args\.my_socket {2}bind 127\.0\.0\.1:8080 stream$/m);
    assert.match(r.stdout, /^ {2}file: {5}path\[0\] {2}\/\S+ \(mapped from \/usr\/local\/x86_64-unknown-cloudabi\/lib\/python3\.6\)$/m);
    assert.match(r.stdout, /^ {2}replicas: 1$/m);
    assert.match(r.stdout, /^ {2}restart: {2}on-failure$/m);
  });

  test('--json gives the same facts', async (t) => {
    const dir = await tempDir(t);
    await writeTree(dir, { 'web.yaml': await webWithBind() });
    const r = await sockvisord(['check', '--json', path.join(dir, 'web.yaml')]);
    assert.equal(r.code, 0);
    const out = JSON.parse(r.stdout);
    assert.equal(out.ok, true);
    assert.equal(out.services.length, 1);
    const web = out.services[0];
    assert.equal(web.name, 'web');
    assert.equal(web.program, 'python');
    assert.equal(web.replicas, 1);
    assert.equal(web.restart, 'on-failure');
    assert.deepEqual(web.sockets, [{ key: 'args.my_socket', mode: 'bind', address: '127.0.0.1:8080', resolved: '127.0.0.1:8080', type: 'stream', backlog: null, line: 7, col: 16 }]);
    assert.equal(web.files.length, 2);
    assert.equal(web.files[0].mappedFrom, '/usr/local/x86_64-unknown-cloudabi/lib/python3.6');
    assert.equal(web.warnings.length, 2);
    assert.deepEqual(out.errors, []);
  });

  test('--json reports errors with positions and exits 1', async () => {
    const r = await sockvisord(['check', '--json', 'test/fixtures/seed/web.yaml']);
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout);
    assert.equal(out.ok, false);
    assert.deepEqual(out.errors, [
      { severity: 'error', file: 'test/fixtures/seed/web.yaml', line: 7, col: 16, message: '!socket needs an address', hint: 'write !socket {bind: 127.0.0.1:8080} (or {connect: host:port})' },
    ]);
  });
});

describe('sockvisord check on a daemon config', () => {
  async function project(t: Parameters<typeof tempDir>[0], services: Record<string, string>, config = 'services: sockvisor.d\n') {
    const dir = await tempDir(t);
    await writeTree(dir, { 'sockvisor.yaml': config, ...Object.fromEntries(Object.entries(services).map(([k, v]) => [`sockvisor.d/${k}`, v])) });
    return dir;
  }

  test('the bundled demo config is valid', async () => {
    const r = await sockvisord(['check', '-c', 'etc/demo/sockvisor.yaml']);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /^2 services, 0 errors, 2 warnings$/m);
    assert.match(r.stdout, /bind 127\.0\.0\.1:8080 stream/);
  });

  test('two services binding one address are both named', async (t) => {
    const dir = await project(t, {
      'a.yaml': `${HEADER}args:\n  s: !socket {bind: 127.0.0.1:9000}\ncommand: pass\n`,
      'b.yaml': `${HEADER}args:\n  other: !socket {bind: "localhost:9000"}\ncommand: pass\n`,
      'c.yaml': `${HEADER}args:\n  udp: !socket {bind: 127.0.0.1:9000, type: dgram}\n  any: !socket {bind: 127.0.0.1:0}\n  any2: !socket {bind: 127.0.0.1:0}\ncommand: pass\n`,
    });
    const r = await sockvisord(['check', '-c', path.join(dir, 'sockvisor.yaml')]);
    assert.equal(r.code, 1, r.stdout);
    const errors = r.stdout.split('\n').filter((l) => l.includes(': error: '));
    assert.equal(errors.length, 1, r.stdout);
    assert.match(errors[0]!, /sockvisor\.d\/b\.yaml:4:10: error: localhost:9000 is already bound by service "a" at .*sockvisor\.d\/a\.yaml:4:6 \(127\.0\.0\.1:9000\)$/);
  });

  test('a !file that does not exist, and a relative one that does', async (t) => {
    const dir = await project(t, {
      'f.yaml': `${HEADER}args:\n  there: !file {path: ../data}\n  gone: !file {path: /nonexistent/sockvisor-test}\ncommand: pass\n`,
    });
    await fs.mkdir(path.join(dir, 'data'));
    const r = await sockvisord(['check', '--json', '-c', path.join(dir, 'sockvisor.yaml')]);
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.errors.map((e: { line: number; col: number; message: string }) => `${e.line}:${e.col}: ${e.message}`), [
      '5:9: !file /nonexistent/sockvisor-test: no such file or directory',
    ]);
    assert.deepEqual(out.services[0].files.map((f: { path: string; directory: boolean }) => [f.path, f.directory]), [
      [path.join(dir, 'data'), true],
      ['/nonexistent/sockvisor-test', false],
    ]);
  });

  test('bad file names are refused or skipped, and every error is reported', async (t) => {
    const dir = await project(t, {
      'my web.yaml': `${HEADER}command: pass\n`,
      'README': 'not a service\n',
      'ok.yaml': `${HEADER}supervise:\n  replicas: 0\n  stop_signal: NOPE\nargs:\n  s: !socket\ncommand: pass\n`,
    });
    const r = await sockvisord(['check', '-c', path.join(dir, 'sockvisor.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /sockvisor\.d\/my web\.yaml:1:1: error: service name "my web" is not allowed/);
    assert.match(r.stdout, /sockvisor\.d\/README:1:1: warning: skipped: not a service file/);
    assert.match(r.stdout, /sockvisor\.d\/ok\.yaml:4:13: error: supervise\.replicas: 0 is out of range/);
    assert.match(r.stdout, /sockvisor\.d\/ok\.yaml:5:16: error: supervise\.stop_signal: "NOPE" is not a signal name/);
    assert.match(r.stdout, /sockvisor\.d\/ok\.yaml:7:6: error: !socket needs an address/);
    assert.match(r.stdout, /^1 service, 4 errors, 1 warning$/m);
  });

  test('daemon config errors carry positions too', async (t) => {
    const dir = await project(t, {}, 'services: sockvisor.d\ncontrol:\n  mode: "0666"\nlog_level: loud\nwatchh: true\n');
    const r = await sockvisord(['check', '-c', path.join(dir, 'sockvisor.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /sockvisor\.yaml:3:9: error: config\.control\.mode: mode 0666 lets every local user in/);
    assert.match(r.stdout, /sockvisor\.yaml:4:12: error: config\.log_level: expected one of trace, debug, info, warn, error, fatal, got "loud"/);
    assert.match(r.stdout, /sockvisor\.yaml:5:1: error: unknown key "watchh" in config/);
  });

  test('a missing config file or services directory is named', async (t) => {
    const dir = await tempDir(t);
    let r = await sockvisord(['check', '-c', path.join(dir, 'nope.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /nope\.yaml:1:1: error: cannot read: no such file or directory/);
    await writeTree(dir, { 'sockvisor.yaml': 'services: missing.d\n' });
    r = await sockvisord(['check', '-c', path.join(dir, 'sockvisor.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /missing\.d:1:1: error: cannot read the services directory: no such file or directory/);
  });

  test('an interpreter that does not exist is an error at its key', async (t) => {
    const dir = await project(t, { 'p.yaml': `${HEADER}supervise:\n  python: /nonexistent/python3\ncommand: pass\n` });
    const r = await sockvisord(['check', '-c', path.join(dir, 'sockvisor.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /p\.yaml:4:11: error: interpreter \/nonexistent\/python3: cannot run \/nonexistent\/python3: no such file/);
  });

  test('check binds nothing and spawns no service', async (t) => {
    const dir = await project(t, {
      'u.yaml': `${HEADER}args:\n  s: !socket {bind: SOCKPATH}\ncommand: |\n  open('MARKER', 'w').write('ran')\n`,
    });
    const sockPath = path.join(dir, 'check.sock');
    const marker = path.join(dir, 'marker');
    const file = path.join(dir, 'sockvisor.d/u.yaml');
    await fs.writeFile(file, (await fs.readFile(file, 'utf8')).replace('SOCKPATH', sockPath).replace('MARKER', marker));
    const r = await sockvisord(['check', '-c', path.join(dir, 'sockvisor.yaml')]);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, new RegExp(`bind ${sockPath.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} stream`));
    await assert.rejects(fs.stat(sockPath), { code: 'ENOENT' });
    await assert.rejects(fs.stat(marker), { code: 'ENOENT' });
  });
});

describe('host names must resolve to exactly one address', () => {
  // A private mount namespace gives this test its own /etc/hosts and nsswitch.conf, so name
  // resolution is real getaddrinfo() yet deterministic, and the machine's files stay untouched.
  async function checkWithHosts(t: Parameters<typeof tempDir>[0], hosts: string, bind: string) {
    const dir = await tempDir(t);
    await writeTree(dir, {
      hosts,
      'nsswitch.conf': 'hosts: files\n',
      'sockvisor.yaml': 'services: sockvisor.d\n',
      'sockvisor.d/h.yaml': `${HEADER}args:\n  s: !socket {bind: "${bind}"}\ncommand: pass\n`,
    });
    const script = `mount --bind ${dir}/hosts /etc/hosts && mount --bind ${dir}/nsswitch.conf /etc/nsswitch.conf && exec "${process.execPath}" dist/src/cli/sockvisord.js check -c ${dir}/sockvisor.yaml`;
    return run('unshare', ['-m', 'sh', '-c', script], { cwd: ROOT });
  }

  test('several addresses are listed; none is an error; one is used', async (t) => {
    const probe = await run('unshare', ['-m', 'true']).catch(() => ({ code: 1 }));
    if (probe.code !== 0) {
      t.skip('needs root and unshare(1) to give the test its own /etc/hosts');
      return;
    }
    let r = await checkWithHosts(t, '127.0.0.1 localhost\n127.0.0.2 multi.test\n127.0.0.3 multi.test\n', 'multi.test:9000');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /h\.yaml:4:6: error: !socket multi\.test:9000: host "multi\.test" resolves to 2 addresses \(127\.0\.0\.2, 127\.0\.0\.3\); it must resolve to exactly one/);
    r = await checkWithHosts(t, '127.0.0.1 localhost\n', 'nowhere.test:9000');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /h\.yaml:4:6: error: !socket nowhere\.test:9000: host "nowhere\.test" does not resolve \(ENOTFOUND\)/);
    r = await checkWithHosts(t, '127.0.0.1 localhost\n127.0.0.9 one.test\n', 'one.test:9000');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /bind one\.test:9000 \(127\.0\.0\.9:9000\) stream/);
  });
});
