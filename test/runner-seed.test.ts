import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { SEED } from './helpers/cli.js';
import { startService, writeService } from './helpers/service.js';
import { exchange, portOf } from './helpers/sockets.js';

const hello = fs.readFileSync(path.join(SEED, 'hello.yaml'), 'utf8');
const web = fs.readFileSync(path.join(SEED, 'web.yaml'), 'utf8');
const SANDBOX_LINE = /^sandbox: landlock abi \d+ \(fs(, tcp)?(, scope)?\), netns, no_new_privs, pdeathsig\n/;

describe("the seed's examples run unchanged under the runner", () => {
  test('hello.yaml prints the greeting on its stdout', async (t) => {
    const { file } = await writeService(t, hello);
    const svc = await startService(t, file);
    assert.deepEqual(await svc.exited, { code: 0, signal: null });
    assert.equal(svc.stdout(), 'Hello, Konrad Zuse!\n');
    assert.match(svc.stderr(), SANDBOX_LINE);
  });

  test('web.yaml with only a bind: added answers a raw socket client', async (t) => {
    const { file } = await writeService(t, web.replace('my_socket: !socket', 'my_socket: !socket {bind: 127.0.0.1:0}'));
    const svc = await startService(t, file);
    const port = portOf(svc.bound.get('args.my_socket')!);
    const reply = await exchange({ host: '127.0.0.1', port }, 'GET / HTTP/1.0\r\n\r\n').catch((e: Error) => `${e.message}; stderr: ${svc.stderr()}; stdout: ${svc.stdout()}`);
    assert.match(reply, /<marquee>It works!<\/marquee>$/);
    assert.match(svc.stderr(), SANDBOX_LINE);
  });

  test('hello.yaml runs on the oldest supported CPython, 3.8', async (t) => {
    const python38 = ['/root/.pyenv/versions/3.8.18/bin/python3.8', '/usr/local/bin/python3.8', '/usr/bin/python3.8'].find((p) => fs.existsSync(p));
    if (!python38) {
      t.skip('no CPython 3.8 on this machine');
      return;
    }
    const { file } = await writeService(t, hello.replace('stderr: !fd stderr', `supervise: {python: ${python38}}\nstderr: !fd stderr`));
    const svc = await startService(t, file);
    assert.deepEqual(await svc.exited, { code: 0, signal: null }, svc.stderr());
    assert.equal(svc.stdout(), 'Hello, Konrad Zuse!\n');
    assert.equal(svc.spec.python!.version.slice(0, 4), '3.8.');
  });
});
