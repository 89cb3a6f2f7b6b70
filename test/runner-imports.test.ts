import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { HEADER } from './helpers/cli.js';
import { startService, writeService } from './helpers/service.js';
import { exchange, portOf } from './helpers/sockets.js';

const PACKAGE = {
  'app/pkg/__init__.py': 'from .sub import greet\n',
  'app/pkg/sub.py': 'from . import helper\nfrom .nested import deep\n\ndef greet():\n    return helper.word() + deep.WORD\n',
  'app/pkg/helper.py': 'def word():\n    return "hello "\n\ndef fail():\n    raise ValueError("boom from pkg")\n',
  'app/pkg/nested/__init__.py': '',
  'app/pkg/nested/deep.py': 'WORD = "from a subpackage"\n',
  'app/pkg/data.txt': 'packaged data\n',
};

function service(body: string, supervise = 'sandbox: strict'): string {
  return `${HEADER}supervise: {${supervise}}
stderr: !fd stderr
path:
  - !file {path: app}
  - !file {path: /usr/local/x86_64-unknown-cloudabi/lib/python3.6}
args:
  listener: !socket {bind: 127.0.0.1:0}
command: |
${body.split('\n').map((l) => `  ${l}`).join('\n')}
`;
}

describe('imports through directory fds', () => {
  test('a package with submodules, relative imports and a data file; sys.path is a list of ints', async (t) => {
    const code = `import sys, json, pkgutil, importlib.resources, bisect
import pkg, pkg.sub
print(json.dumps({
  'greet': pkg.greet(),
  'sys.path': sys.path,
  'pkg.__file__': pkg.__file__,
  'pkg.__path__': [list(p) for p in pkg.__path__],
  'sub.__file__': pkg.sub.__file__,
  'resources': importlib.resources.files('pkg').joinpath('data.txt').read_text(),
  'get_data': pkgutil.get_data('pkg', 'data.txt').decode(),
  'extension': sys.modules['_bisect'].__file__,
}), flush=True)`;
    const { file } = await writeService(t, service(code), PACKAGE);
    const svc = await startService(t, file);
    assert.deepEqual(await svc.exited, { code: 0, signal: null }, svc.stderr());
    const out = JSON.parse(svc.stdout());
    assert.equal(out.greet, 'hello from a subpackage');
    assert.deepEqual(out['sys.path'], [5, 6, 7], 'sys.path is the fds of the three path: directories (fd 4 is stderr)');
    assert.equal(out['pkg.__file__'], 'pkg/__init__.py');
    assert.deepEqual(out['pkg.__path__'], [[5, 'pkg']]);
    assert.equal(out['sub.__file__'], 'pkg/sub.py');
    assert.equal(out.resources, 'packaged data\n');
    assert.equal(out.get_data, 'packaged data\n');
    assert.match(out.extension, /^\/proc\/self\/fd\/7\/_bisect\..*\.so$/, 'the extension module loaded through the lib-dynload fd');
  });

  test('a traceback from a package shows its source line', async (t) => {
    const { file } = await writeService(t, service('from pkg import helper\nhelper.fail()'), PACKAGE);
    const svc = await startService(t, file);
    assert.deepEqual(await svc.exited, { code: 1, signal: null });
    const stderr = svc.stderr();
    assert.match(stderr, /File "<string>", line 2, in <module>\n {4}helper\.fail\(\)\n/);
    assert.match(stderr, /File "pkg\/helper\.py", line 5, in fail\n {4}raise ValueError\("boom from pkg"\)\n/);
    assert.match(stderr, /ValueError: boom from pkg\n$/);
    assert.doesNotMatch(stderr, /sockvisor_runner/, 'the runner keeps its own frames out of the service traceback');
  });

  test('bytecode caches are written through the dir fd, unless dontwritebytecode is set or the sandbox is read-only', async (t) => {
    const cached = (dir: string) => fs.existsSync(path.join(dir, 'app/pkg/__pycache__')) && fs.readdirSync(path.join(dir, 'app/pkg/__pycache__')).some((f) => f.startsWith('helper.'));
    const off = await writeService(t, service('import pkg', 'sandbox: "off"'), PACKAGE);
    assert.deepEqual(await (await startService(t, off.file)).exited, { code: 0, signal: null });
    assert.ok(cached(off.dir), 'a cache was written with the sandbox off');
    const second = await startService(t, off.file);
    assert.deepEqual(await second.exited, { code: 0, signal: null }, 'and read back on the next start');

    const noCache = await writeService(t, service('import pkg', 'sandbox: "off"').replace('command: |', 'dontwritebytecode:\ncommand: |'), PACKAGE);
    assert.deepEqual(await (await startService(t, noCache.file)).exited, { code: 0, signal: null });
    assert.ok(!cached(noCache.dir), 'no cache with dontwritebytecode');

    const strict = await writeService(t, service('import pkg'), PACKAGE);
    assert.deepEqual(await (await startService(t, strict.file)).exited, { code: 0, signal: null });
    assert.ok(!cached(strict.dir), 'the strict sandbox is read-only beneath path:, and importing still works');
  });
});

describe('extension modules that need system libraries', () => {
  test('load under the strict sandbox, which grants exactly those library files', async (t) => {
    const code = `import binascii, zlib, hashlib, ssl, json
try:
    open('/usr/lib/os-release', 'rb').read()
    other = 'ALLOWED'
except OSError as e:
    other = 'denied'
print(json.dumps({'crc': binascii.crc32(b'x'), 'sha': hashlib.sha256(b'x').hexdigest()[:8], 'ssl': ssl.OPENSSL_VERSION[:7], 'other file in /usr/lib': other}), flush=True)`;
    const { file } = await writeService(t, service(code), PACKAGE);
    const svc = await startService(t, file);
    assert.deepEqual(await svc.exited, { code: 0, signal: null }, svc.stderr());
    assert.deepEqual(JSON.parse(svc.stdout()), { crc: 2363233923, sha: '2d711642', ssl: 'OpenSSL', 'other file in /usr/lib': 'denied' });
    assert.ok(svc.spec.libraries.some((l) => /\/libz\.so/.test(l)), `libz is among the granted files: ${svc.spec.libraries.join(' ')}`);
    assert.ok(svc.spec.libraries.every((l) => l.startsWith('/')));
  });
});

describe("the child's fds", () => {
  test('exactly the spec layout: 0 /dev/null, 1 and 2 pipes, 3 closed, 4 + i the fd table', async (t) => {
    const code = `import sys\nprint('ready', flush=True)\nc, _ = sys.argdata['listener'].accept()\nc.close()`;
    const { file, dir } = await writeService(t, service(code), PACKAGE);
    const svc = await startService(t, file);
    await svc.waitForOutput('stdout', 'ready');
    const fds = Object.fromEntries(fs.readdirSync(`/proc/${svc.proc.pid}/fd`).map((fd) => [fd, fs.readlinkSync(`/proc/${svc.proc.pid}/fd/${fd}`)]));
    const listener = svc.registry.get(svc.spec.sockets[0]!.identity)!;
    const heldLink = fs.readlinkSync(`/proc/self/fd/${listener.fd}`);
    await exchange({ host: '127.0.0.1', port: portOf(svc.bound.get('args.listener')!) }, '');
    assert.deepEqual(await svc.exited, { code: 0, signal: null });
    // fd table order: stderr, path[0], path[1], path[2], args.listener.
    assert.deepEqual(Object.keys(fds).map(Number).sort((a, b) => a - b), [0, 1, 2, 4, 5, 6, 7, 8], JSON.stringify(fds));
    assert.equal(fds['0'], '/dev/null');
    assert.match(fds['1']!, /^pipe:/);
    assert.match(fds['2']!, /^pipe:/);
    assert.equal(fds['4'], fds['2'], 'stderr: !fd stderr is the stderr pipe');
    assert.equal(fds['5'], path.join(dir, 'app'));
    assert.equal(fds['6'], svc.spec.python!.stdlib);
    assert.equal(fds['7'], svc.spec.python!.dynload);
    assert.equal(fds['8'], heldLink, 'the listener is the very socket the daemon holds');
  });
});
