import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { alive, childrenOf, DaemonProcess, daemonFiles, eventually, HEADER, webService } from './helpers/daemon.js';
import { exchange, portOf } from './helpers/sockets.js';

const get = (port: number) => exchange({ host: '127.0.0.1', port }, 'GET / HTTP/1.0\r\n\r\n');

describe('sockvisord start and stop', () => {
  test('starts its services, and SIGTERM stops them, closes the sockets, removes its files and exits 0', async (t) => {
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.2'), other: webService('start_seconds: 0.2') });
    const daemon = await DaemonProcess.start(t, files);
    const running = await daemon.waitForState('web:0', 'RUNNING');
    await daemon.waitForState('other:0', 'RUNNING');
    const port = portOf(daemon.address('web', 'args.listener'));
    assert.equal(await get(port), `HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npid ${running['pid']}\n`);
    assert.equal((await fs.readFile(files.pidfile, 'utf8')).trim(), String(daemon.pid));
    assert.ok((await fs.stat(files.controlSocket)).isSocket());
    const children = await childrenOf(daemon.pid);
    assert.equal(children.length, 2);

    const started = Date.now();
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null });
    assert.ok(Date.now() - started < 5000, 'the graceful stop took less than the stop timeout');
    for (const child of children) assert.equal(await alive(child.pid), false, `child ${child.pid} is gone`);
    await assert.rejects(get(port), { code: 'ECONNREFUSED' });
    await assert.rejects(fs.stat(files.pidfile), { code: 'ENOENT' });
    await assert.rejects(fs.stat(files.controlSocket), { code: 'ENOENT' });
    const stopped = daemon.states('web:0').at(-1)!;
    assert.deepEqual([stopped['from'], stopped['to']], ['STOPPING', 'STOPPED']);
    assert.ok(daemon.records.some((r) => r.msg === 'sockvisord stopped'));
  });

  test('SIGKILL of the daemon: every child exits within 2 s and the port is free again', async (t) => {
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.2, replicas: 2') });
    const daemon = await DaemonProcess.start(t, files);
    await daemon.waitForState('web:0', 'RUNNING');
    await daemon.waitForState('web:1', 'RUNNING');
    const port = portOf(daemon.address('web', 'args.listener'));
    const children = await childrenOf(daemon.pid);
    assert.equal(children.length, 2);
    daemon.proc.kill('SIGKILL');
    await daemon.exited;
    const killedAt = Date.now();
    await eventually(async () => !(await alive(children[0]!.pid)) && !(await alive(children[1]!.pid)), 2000, 'children exit after the daemon died');
    t.diagnostic(`children gone ${Date.now() - killedAt} ms after the daemon`);
    await assert.rejects(get(port), { code: 'ECONNREFUSED' });
  });

  test('a second daemon on the same pidfile or control socket refuses and names the first', async (t) => {
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.2') });
    const first = await DaemonProcess.start(t, files);
    const second = await DaemonProcess.start(t, files, { ready: false });
    assert.deepEqual(await second.exited, { code: 1, signal: null });
    assert.match(second.stderr, new RegExp(`sockvisord is already running as pid ${first.pid} \\(pidfile ${files.pidfile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`));

    // Same control socket, another pidfile.
    const otherConfig = path.join(files.dir, 'other.yaml');
    await fs.writeFile(otherConfig, 'services: sockvisor.d\ncontrol: {socket: ctl.sock}\npidfile: other.pid\nlogs: {dir: logs2}\nwatch: false\n');
    const third = await DaemonProcess.start(t, { ...files, config: otherConfig }, { ready: false });
    assert.deepEqual(await third.exited, { code: 1, signal: null });
    assert.match(third.stderr, new RegExp(`sockvisord is already running as pid ${first.pid} \\(control socket `));
    // The refused daemons changed nothing: the first still serves.
    assert.match(await get(portOf(first.address('web', 'args.listener'))), /pid \d+/);
  });

  test('stale files of a dead daemon are taken over', async (t) => {
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.2') });
    const first = await DaemonProcess.start(t, files);
    first.proc.kill('SIGKILL');
    await first.exited;
    assert.ok((await fs.stat(files.pidfile)).isFile(), 'the dead daemon left its pidfile');
    assert.ok((await fs.stat(files.controlSocket)).isSocket(), 'and its control socket');
    const second = await DaemonProcess.start(t, files);
    assert.equal((await fs.readFile(files.pidfile, 'utf8')).trim(), String(second.pid));
    await second.waitForState('web:0', 'RUNNING');
    assert.deepEqual(await second.stop(), { code: 0, signal: null });
  });

  test('config errors: it refuses to start and prints every error', async (t) => {
    const files = await daemonFiles(t, {
      a: `${HEADER}supervise: {replicas: 0}\ncommand: pass\n`,
      b: `${HEADER}args: {s: !socket}\ncommand: pass\n`,
    });
    const daemon = await DaemonProcess.start(t, files, { ready: false });
    assert.deepEqual(await daemon.exited, { code: 1, signal: null });
    assert.match(daemon.stderr, /a\.yaml:3:23: error: supervise\.replicas: 0 is out of range/);
    assert.match(daemon.stderr, /b\.yaml:3:11: error: !socket needs an address/);
    await assert.rejects(fs.stat(files.pidfile), { code: 'ENOENT' });
  });

  test('a socket that cannot be bound: it refuses to start and says why', async (t) => {
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.2').replace('127.0.0.1:0', '192.0.2.1:8080') });
    const daemon = await DaemonProcess.start(t, files, { ready: false });
    assert.deepEqual(await daemon.exited, { code: 1, signal: null });
    assert.match(daemon.stderr, /web\.yaml:7:13: error: 192\.0\.2\.1:8080: this host has no such address/);
    await assert.rejects(fs.stat(files.pidfile), { code: 'ENOENT' });
  });

  test('SIGHUP re-reads the config and logs the result', async (t) => {
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.2') });
    const daemon = await DaemonProcess.start(t, files);
    daemon.proc.kill('SIGHUP');
    await daemon.waitFor((r) => r.msg === 'config re-read: valid');
    await fs.writeFile(path.join(files.servicesDir, 'broken.yaml'), `${HEADER}supervise: {restart: maybe}\ncommand: pass\n`);
    const from = daemon.records.length;
    daemon.proc.kill('SIGHUP');
    const error = await daemon.waitFor((r) => r['level'] === 50, 15_000, from);
    assert.match(error.msg, /supervise\.restart: expected one of always, on-failure, never/);
    assert.equal(error['line'], 3);
  });

  test('user: the process runs as that user, with its groups', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to drop privileges');
      return;
    }
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.2, user: nobody') });
    const daemon = await DaemonProcess.start(t, files);
    const running = await daemon.waitForState('web:0', 'RUNNING');
    const status = await fs.readFile(`/proc/${running['pid']}/status`, 'utf8');
    assert.match(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
    assert.match(status, /^Groups:\s+65534\s*$/m);
    assert.match(await get(portOf(daemon.address('web', 'args.listener'))), new RegExp(`pid ${running['pid']}`));
  });
});
