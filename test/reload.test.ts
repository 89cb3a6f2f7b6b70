/**
 * Hot reload and restarts against a real sockvisord: only what changed is touched, a new
 * generation takes over before the old one stops, and bad input changes nothing that runs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ctl, expectRun, lines, statusPids } from './helpers/ctl.js';
import { alive, DaemonProcess, daemonFiles, eventually, HEADER, type LogRecord } from './helpers/daemon.js';
import { editAtomically, freePort, get, probe, saveAtomically, versionedService } from './helpers/reload.js';

type TestContext = { after: (fn: () => Promise<void>) => void };

/** Three services on known ports, each answering `v1 pid N`; `watch` turns the watcher on. */
async function trio(t: TestContext, options: { watch?: boolean; servicesDir?: string } = {}) {
  const ports = { a: await freePort(), b: await freePort(), c: await freePort() };
  const files = await daemonFiles(t, Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, versionedService('v1', `127.0.0.1:${port}`)])));
  if (options.watch) await fs.writeFile(files.config, (await fs.readFile(files.config, 'utf8')).replace('watch: false', 'watch: true'));
  const daemon = await DaemonProcess.start(t, files);
  for (const name of ['a:0', 'b:0', 'c:0']) await daemon.waitForState(name, 'RUNNING');
  const file = (name: string) => path.join(files.servicesDir, `${name}.yaml`);
  return { files, daemon, sock: files.controlSocket, ports, file, pids: await statusPids(files.controlSocket) };
}


/** Index of the first record from `from` on that matches. */
function indexOf(records: readonly LogRecord[], match: (r: LogRecord) => boolean, from = 0): number {
  const i = records.slice(from).findIndex(match);
  return i === -1 ? -1 : from + i;
}

describe('reload applies only what changed', () => {
  test('an edit of one of three services replaces only that one; the others keep their pids', async (t) => {
    const { daemon, sock, ports, file, pids } = await trio(t);
    await editAtomically(file('b'), (text) => text.replace('"v1"', '"v2"'));
    expectRun(await ctl(sock, 'reread'), 0, ['b: new generation (args.message)']);
    expectRun(await ctl(sock, 'reload'), 0, ['b: new generation (args.message)']);
    const after = await statusPids(sock);
    assert.equal(after['a:0'], pids['a:0']);
    assert.equal(after['c:0'], pids['c:0']);
    assert.notEqual(after['b:0'], pids['b:0']);
    assert.equal(await get(ports.b), `v2 pid ${after['b:0']}\n`);
    assert.equal(await get(ports.a), `v1 pid ${pids['a:0']}\n`);
    assert.equal(await alive(pids['b:0']!), false, 'the old generation is gone once reload returns');
    // The new generation was running before the old one was asked to stop.
    const started = indexOf(daemon.records, (r) => r.msg === 'state' && r['process'] === 'b:0' && r['generation'] === 2 && r['to'] === 'RUNNING');
    const stopping = indexOf(daemon.records, (r) => r.msg === 'state' && r['process'] === 'b:0' && r['generation'] === 1 && r['to'] === 'STOPPING');
    assert.ok(started !== -1 && stopping > started, `generation 2 RUNNING (${started}) before generation 1 STOPPING (${stopping})`);
    expectRun(await ctl(sock, 'reread'), 0, ['No config updates to processes']);
  });

  test('a supervise.restart edit restarts nothing, and the new policy applies', async (t) => {
    const { daemon, sock, file, pids } = await trio(t);
    await editAtomically(file('a'), (text) => text.replace('start_seconds: 0.3', 'start_seconds: 0.3, restart: never'));
    const mark = daemon.records.length;
    expectRun(await ctl(sock, 'reload'), 0, ['a: updated in place (supervise.restart)']);
    assert.deepEqual(await statusPids(sock), pids);
    assert.deepEqual(daemon.records.slice(mark).filter((r) => r.msg === 'state'), []);
    // restart: never now holds for the process that was already running.
    process.kill(pids['a:0']!, 'SIGKILL');
    await daemon.waitForState('a:0', 'EXITED', mark);
  });

  test('replicas: scaled in place, the running replica keeps its pid', async (t) => {
    const { daemon, sock, file, pids, ports } = await trio(t);
    const mark = daemon.records.length;
    await editAtomically(file('c'), (text) => text.replace('start_seconds: 0.3', 'start_seconds: 0.3, replicas: 3'));
    expectRun(await ctl(sock, 'reload'), 0, ['c: scaled 1 -> 3 (supervise.replicas)']);
    await daemon.waitForState('c:2', 'RUNNING', mark);
    const up = await statusPids(sock);
    assert.equal(up['c:0'], pids['c:0']);
    assert.equal(new Set([up['c:0'], up['c:1'], up['c:2']]).size, 3);
    await editAtomically(file('c'), (text) => text.replace('replicas: 3', 'replicas: 1'));
    expectRun(await ctl(sock, 'reload'), 0, ['c: scaled 3 -> 1 (supervise.replicas)']);
    const down = await statusPids(sock);
    assert.deepEqual(Object.keys(down).filter((n) => n.startsWith('c:')), ['c:0']);
    assert.equal(down['c:0'], pids['c:0']);
    assert.equal(await alive(up['c:2']!), false);
    assert.equal(await get(ports.c), `v1 pid ${pids['c:0']}\n`);
  });

  test('a broken edit keeps everything running and shows in status; the fix then applies', async (t) => {
    const { sock, file, pids, ports, daemon } = await trio(t);
    const mark = daemon.records.length;
    await editAtomically(file('b'), (text) => text.replace('"v1"', '"v2"').replace('start_seconds: 0.3', 'start_seconds: soon'));
    const failed = await ctl(sock, 'reload');
    assert.equal(failed.code, 1, failed.stdout);
    assert.equal(lines(failed.stdout)[0], 'ERROR (the config did not load: 1 error; nothing changed)');
    assert.match(lines(failed.stdout)[1]!, /^ {2}\S*b\.yaml:3:\d+: error: supervise\.start_seconds/);
    await daemon.waitFor((r) => r.msg.startsWith('supervise.start_seconds') && String(r['file']).endsWith('b.yaml') && r['line'] === 3, 5000, mark);
    assert.deepEqual(await statusPids(sock), pids);
    assert.equal(await get(ports.b), `v1 pid ${pids['b:0']}\n`);
    const status = await ctl(sock, 'status');
    assert.match(lines(status.stdout).at(-1)!, /^config: last load failed: \S*b\.yaml:3:\d+: error: supervise\.start_seconds/);

    await editAtomically(file('b'), (text) => text.replace('start_seconds: soon', 'start_seconds: 0.3'));
    expectRun(await ctl(sock, 'reload'), 0, ['b: new generation (args.message)']);
    const after = await statusPids(sock);
    assert.equal(await get(ports.b), `v2 pid ${after['b:0']}\n`);
    assert.doesNotMatch((await ctl(sock, 'status')).stdout, /config: last load failed/);
  });

  test('a deleted file stops the service and frees its port', async (t) => {
    const { sock, file, pids, ports } = await trio(t);
    await fs.rm(file('c'));
    expectRun(await ctl(sock, 'reload'), 0, ['c: removed']);
    expectRun(await ctl(sock, 'status', 'c'), 4, ['c: ERROR (no such process)']);
    assert.equal(await alive(pids['c:0']!), false);
    assert.equal(await probe(ports.c), 'refused');
    // Free for anyone: this process can bind it now.
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(ports.c, '127.0.0.1', resolve));
    await new Promise((resolve) => server.close(resolve));
    assert.equal(await get(ports.a), `v1 pid ${pids['a:0']}\n`);
  });

  test('a moved socket: the new address serves before the old one refuses, and the old one refuses afterwards', async (t) => {
    const { sock, file, ports } = await trio(t);
    const to = await freePort();
    // A client that keeps asking, at the old address until it is turned away there, then at the
    // new one. Turned away is refused, or reset before any answer: a connection the kernel had
    // queued on the old socket at the instant it stopped listening is reset (see docs/daemon.md).
    let stop = false;
    const served: string[] = [];
    let resets = 0;
    const client = (async () => {
      let port = ports.a;
      while (!stop) {
        const answer = await probe(port).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ECONNRESET' || port !== ports.a) throw e;
          resets++;
          return 'refused';
        });
        if (answer === 'refused' && port === ports.a) port = to;
        else if (answer === 'refused') throw new Error(`both ${ports.a} and ${to} refused: a gap`);
        else served.push(`${port} ${answer}`);
      }
    })();
    await eventually(() => served.length > 5, 10_000, 'the client is being served');
    await editAtomically(file('a'), (text) => text.replace(`127.0.0.1:${ports.a}`, `127.0.0.1:${to}`).replace('"v1"', '"moved"'));
    const line = `a: new generation, socket 127.0.0.1:${ports.a} -> 127.0.0.1:${to} (args.message, args.listener)`;
    expectRun(await ctl(sock, 'reread'), 0, [line]);
    expectRun(await ctl(sock, 'reload'), 0, [line]);
    assert.equal(await probe(ports.a), 'refused');
    assert.match(await get(to), /^moved pid \d+\n$/);
    await eventually(() => served.some((s) => s.startsWith(`${to} `)), 10_000, 'the client reached the new address');
    stop = true;
    await client;
    assert.ok(served.some((s) => s.startsWith(`${ports.a} v1`)));
    assert.ok(resets <= 1, `${resets} resets: at most the one connection queued when the old socket stopped listening`);
  });

  test('a unix socket mode edit is applied to the held socket file, which stays the same file', async (t) => {
    const { files, sock } = await trio(t);
    const socketPath = path.join(files.dir, 'app.sock');
    const unix = versionedService('v1', socketPath).replace(`{bind: "${socketPath}"}`, `{bind: "${socketPath}", mode: "0600"}`);
    await fs.writeFile(path.join(files.servicesDir, 'unix.yaml'), unix);
    expectRun(await ctl(sock, 'reload'), 0, ['unix: added']);
    const before = await fs.stat(socketPath);
    assert.equal(before.mode & 0o777, 0o600);
    await editAtomically(path.join(files.servicesDir, 'unix.yaml'), (text) => text.replace('mode: "0600"', 'mode: "0660"'));
    expectRun(await ctl(sock, 'reload'), 0, ['unix: new generation (args.listener)']);
    const after = await fs.stat(socketPath);
    assert.equal(after.mode & 0o777, 0o660);
    assert.equal(after.ino, before.ino, 'the same socket file: clients never saw it missing');
  });

  test('SIGHUP reloads as sockvisorctl reload does', async (t) => {
    const { daemon, sock, file, pids, ports } = await trio(t);
    const mark = daemon.records.length;
    await editAtomically(file('c'), (text) => text.replace('"v1"', '"hup"'));
    process.kill(daemon.pid, 'SIGHUP');
    await daemon.waitFor((r) => r.msg === 'reload applied' && r['service'] === 'c', 15_000, mark);
    const after = await statusPids(sock);
    assert.notEqual(after['c:0'], pids['c:0']);
    assert.equal(await get(ports.c), `hup pid ${after['c:0']}\n`);
  });
});

describe('the watcher', () => {
  const reloads = (daemon: DaemonProcess, from: number) => daemon.records.slice(from).filter((r) => r.msg === 'reload done');

  test('an atomic-rename save of one of three services reloads by itself and replaces only that one', async (t) => {
    const { daemon, sock, ports, file, pids } = await trio(t, { watch: true });
    const mark = daemon.records.length;
    await editAtomically(file('b'), (text) => text.replace('"v1"', '"v2"'));
    await daemon.waitFor((r) => r.msg === 'reload done', 15_000, mark);
    const after = await statusPids(sock);
    assert.deepEqual([after['a:0'], after['c:0']], [pids['a:0'], pids['c:0']]);
    assert.notEqual(after['b:0'], pids['b:0']);
    assert.equal(await get(ports.b), `v2 pid ${after['b:0']}\n`);
    assert.equal(reloads(daemon, mark).length, 1);
  });

  test('a burst of saves is one reload, of the last version', async (t) => {
    const { daemon, sock, ports, file } = await trio(t, { watch: true });
    const mark = daemon.records.length;
    const text = await fs.readFile(file('b'), 'utf8');
    for (let i = 1; i <= 10; i++) await saveAtomically(file('b'), text.replace('"v1"', `"burst ${i}"`));
    await daemon.waitFor((r) => r.msg === 'reload done', 15_000, mark);
    assert.equal(await get(ports.b), `burst 10 pid ${(await statusPids(sock))['b:0']}\n`);
    // Quiet for well past the debounce: no second reload follows.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(reloads(daemon, mark).length, 1);
    assert.equal(daemon.records.slice(mark).filter((r) => r.msg === 'generation started').length, 1);
  });

  test('a file caught half-written is never applied: only the finished file is', async (t) => {
    const { daemon, sock, files } = await trio(t, { watch: true });
    const port = await freePort();
    const full = versionedService('half', `127.0.0.1:${port}`);
    // The first half is a valid service file on its own: one with no command, which would exit at once.
    const cut = full.indexOf('command:');
    const mark = daemon.records.length;
    const handle = await fs.open(path.join(files.servicesDir, 'late.yaml'), 'w');
    await handle.write(full.slice(0, cut));
    await handle.sync();
    await new Promise((r) => setTimeout(r, 100));
    await handle.write(full.slice(cut));
    await handle.close();
    await daemon.waitFor((r) => r.msg === 'reload done', 15_000, mark);
    assert.equal(reloads(daemon, mark).length, 1);
    assert.equal(await get(port), `half pid ${(await statusPids(sock))['late:0']}\n`);
    assert.deepEqual(daemon.records.slice(mark).filter((r) => r.msg === 'state' && r['process'] === 'late:0' && r['to'] === 'EXITED'), []);
  });

  test('a services directory that is a symlink, swapped to another directory: the difference is applied', async (t) => {
    const { daemon, sock, files, ports, pids } = await trio(t);
    // Move the services into releases/one, point sockvisor.d at it, and turn watching on.
    const one = path.join(files.dir, 'releases', 'one');
    const two = path.join(files.dir, 'releases', 'two');
    await fs.mkdir(path.dirname(one));
    await fs.rename(files.servicesDir, one);
    await fs.symlink(one, files.servicesDir);
    await fs.writeFile(files.config, (await fs.readFile(files.config, 'utf8')).replace('watch: false', 'watch: true'));
    expectRun(await ctl(sock, 'reload'), 0, ['No config updates to processes']);
    await fs.mkdir(two);
    await fs.copyFile(path.join(one, 'a.yaml'), path.join(two, 'a.yaml'));
    await fs.writeFile(path.join(two, 'b.yaml'), (await fs.readFile(path.join(one, 'b.yaml'), 'utf8')).replace('"v1"', '"two"'));
    const mark = daemon.records.length;
    const link = path.join(files.dir, 'next-link');
    await fs.symlink(two, link);
    await fs.rename(link, files.servicesDir);
    await daemon.waitFor((r) => r.msg === 'reload done', 15_000, mark);
    const after = await statusPids(sock);
    assert.equal(after['a:0'], pids['a:0']);
    assert.equal(after['c:0'], undefined);
    assert.equal(await get(ports.b), `two pid ${after['b:0']}\n`);
    assert.equal(await probe(ports.c), 'refused');
    // Edits in the new target are seen; edits in the old one are not.
    const again = daemon.records.length;
    await editAtomically(path.join(two, 'a.yaml'), (text) => text.replace('"v1"', '"two-a"'));
    await daemon.waitFor((r) => r.msg === 'reload done', 15_000, again);
    assert.match(await get(ports.a), /^two-a pid \d+\n$/);
    const quiet = daemon.records.length;
    await editAtomically(path.join(one, 'b.yaml'), (text) => text.replace('"v1"', '"stale"'));
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(reloads(daemon, quiet), []);
  });

  test('watch: false stops the watcher; SIGHUP and sockvisorctl reload still work', async (t) => {
    const { daemon, sock, files, file, ports } = await trio(t, { watch: true });
    const mark = daemon.records.length;
    await saveAtomically(files.config, (await fs.readFile(files.config, 'utf8')).replace('watch: true', 'watch: false'));
    await daemon.waitFor((r) => r.msg === 'reload done', 15_000, mark);
    const quiet = daemon.records.length;
    await editAtomically(file('a'), (text) => text.replace('"v1"', '"manual"'));
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(reloads(daemon, quiet), []);
    expectRun(await ctl(sock, 'reload'), 0, ['a: new generation (args.message)']);
    assert.match(await get(ports.a), /^manual pid \d+\n$/);
  });
});

describe('generations that fail, and restarts', () => {
  test('a new generation that cannot start is rolled back: the old one keeps serving, status and log say why', async (t) => {
    const { daemon, sock, file, pids, ports } = await trio(t);
    const mark = daemon.records.length;
    // start_seconds well above any interpreter start-up: under load a process that exits at once
    // could otherwise outlive a short one and count as started.
    await editAtomically(file('b'), (text) => text.replace('import os, socketserver, sys', 'import sys; sys.exit(3)').replace('start_seconds: 0.3', 'start_seconds: 3, start_retries: 1, backoff: {initial: 50ms, max: 50ms}'));
    const reload = await ctl(sock, 'reload');
    assert.equal(reload.code, 1, reload.stdout);
    assert.match(lines(reload.stdout)[0]!, /^b: ERROR \(swap failed, kept generation 1: .*exit status 3\)$/);
    assert.deepEqual(await statusPids(sock), pids);
    assert.equal(await get(ports.b), `v1 pid ${pids['b:0']}\n`);
    const status = await ctl(sock, 'status', 'b');
    assert.match(lines(status.stdout)[0]!, new RegExp(`^b:0 +RUNNING +pid ${pids['b:0']}, uptime \\S+; swap failed, kept generation 1: .*exit status 3$`));
    await daemon.waitFor((r) => r.msg.startsWith('swap failed, kept generation 1') && r['service'] === 'b', 5000, mark);
    // The config still differs from what runs, so reread still shows the change.
    assert.match(lines((await ctl(sock, 'reread')).stdout)[0]!, /^b: new generation \(/);

    await editAtomically(file('b'), (text) => text.replace('import sys; sys.exit(3)', 'import os, socketserver, sys').replace('"v1"', '"v3"'));
    expectRun(await ctl(sock, 'reload'), 0, ['b: new generation (args.message, supervise.start_seconds, supervise.start_retries, supervise.backoff)']);
    const after = await statusPids(sock);
    assert.equal(await get(ports.b), `v3 pid ${after['b:0']}\n`);
    assert.doesNotMatch((await ctl(sock, 'status', 'b')).stdout, /swap failed/);
  });

  test('a service with nothing running that fails its swap says its generation is not running either', async (t) => {
    const failing = (status: number) => `${HEADER}supervise: {start_seconds: 3, start_retries: 0, sandbox: "off"}\ncommand: |\n  import sys; sys.exit(${status})\n`;
    const files = await daemonFiles(t, { c: failing(3) });
    const daemon = await DaemonProcess.start(t, files);
    await daemon.waitForState('c:0', 'FATAL');
    await editAtomically(path.join(files.servicesDir, 'c.yaml'), () => failing(4));
    const reload = await ctl(files.controlSocket, 'reload');
    assert.equal(reload.code, 1, reload.stdout);
    assert.match(lines(reload.stdout)[0]!, /^c: ERROR \(swap failed, generation 1 kept but not running: .*exit status 4\)$/);
    assert.match(lines((await ctl(files.controlSocket, 'status', 'c')).stdout)[0]!, /^c:0 +FATAL .*; swap failed, generation 1 kept but not running: .*exit status 4$/);
  });

  test('restart swaps: the new process runs before the old one stops, and every request meanwhile is served', async (t) => {
    const { daemon, sock, pids, ports } = await trio(t);
    let stop = false;
    let failures = 0;
    const bodies = new Set<string>();
    const client = (async () => {
      while (!stop) await get(ports.a).then((b) => bodies.add(b), () => failures++);
    })();
    const mark = daemon.records.length;
    expectRun(await ctl(sock, 'restart', 'a'), 0, ['a:0: restarted']);
    const after = await statusPids(sock);
    stop = true;
    await client;
    assert.equal(failures, 0);
    assert.notEqual(after['a:0'], pids['a:0']);
    const running = indexOf(daemon.records, (r) => r.msg === 'state' && r['pid'] === after['a:0'] && r['to'] === 'RUNNING', mark);
    const stopping = indexOf(daemon.records, (r) => r.msg === 'state' && r['pid'] === pids['a:0'] && r['to'] === 'STOPPING', mark);
    assert.ok(running !== -1 && stopping > running, `new RUNNING (${running}) before old STOPPING (${stopping})`);
    assert.equal(await alive(pids['a:0']!), false);
  });

  test('restart --hard stops first; the held socket keeps a request waiting until the new process serves it', async (t) => {
    const { daemon, sock, pids, ports } = await trio(t);
    const mark = daemon.records.length;
    const restart = ctl(sock, 'restart', '--hard', 'a');
    await daemon.waitFor((r) => r.msg === 'state' && r['pid'] === pids['a:0'] && r['to'] === 'STOPPED', 10_000, mark);
    const answer = get(ports.a);
    expectRun(await restart, 0, ['a:0: restarted']);
    const after = await statusPids(sock);
    assert.equal(await answer, `v1 pid ${after['a:0']}\n`);
    const stopped = indexOf(daemon.records, (r) => r.msg === 'state' && r['pid'] === pids['a:0'] && r['to'] === 'STOPPED', mark);
    const started = indexOf(daemon.records, (r) => r.msg === 'state' && r['process'] === 'a:0' && r['from'] === 'STOPPED' && r['to'] === 'STARTING', mark);
    assert.ok(stopped !== -1 && started > stopped, 'stopped, then started');
  });
});
