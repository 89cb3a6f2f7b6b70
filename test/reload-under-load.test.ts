/**
 * Zero loss under load: clients keep asking the bundled Example 2 service while it is restarted
 * and its argdata is edited; every request must get a complete response.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/cli.js';
import { ctl, expectRun } from './helpers/ctl.js';
import { DaemonProcess, daemonFiles, eventually } from './helpers/daemon.js';
import { editAtomically, freePort } from './helpers/reload.js';
import { exchange } from './helpers/sockets.js';

const CLIENTS = 8;
const LOAD_MS = 10_000;
const ROUNDS = 5;

interface Tally {
  ok: number;
  failed: string[];
  bodies: Set<string>;
}

/** One full HTTP exchange, checked: status line, Content-Length and the whole body. */
async function request(port: number, tally: Tally): Promise<void> {
  try {
    const response = await exchange({ host: '127.0.0.1', port }, 'GET / HTTP/1.0\r\nHost: test\r\n\r\n', 15_000);
    const split = response.indexOf('\r\n\r\n');
    const length = Number(/\r\nContent-Length: (\d+)\r\n/i.exec(response)?.[1]);
    const body = response.slice(split + 4);
    if (!response.startsWith('HTTP/1.0 200 OK\r\n') || split === -1 || Buffer.byteLength(body) !== length || !/^<marquee>It works!( edit \d+)?<\/marquee>$/.test(body)) {
      tally.failed.push(`incomplete: ${JSON.stringify(response.slice(0, 200))}`);
      return;
    }
    tally.ok++;
    tally.bodies.add(body);
  } catch (e) {
    tally.failed.push((e as Error).message);
  }
}

test('8 clients for 10 s, 5 restarts and 5 saved argdata edits of Example 2: every request gets a complete response', { timeout: 180_000 }, async (t) => {
  const port = await freePort();
  const example = (await fs.readFile(path.join(ROOT, 'etc/demo/sockvisor.d/web.yaml'), 'utf8')).replace('127.0.0.1:8080', `127.0.0.1:${port}`);
  assert.match(example, new RegExp(`bind: 127\\.0\\.0\\.1:${port}`));
  const files = await daemonFiles(t, { web: example });
  // Edits reach the daemon the way an operator's do: saved files, seen by the watcher.
  await fs.writeFile(files.config, (await fs.readFile(files.config, 'utf8')).replace('watch: false', 'watch: true'));
  const daemon = await DaemonProcess.start(t, files);
  await daemon.waitForState('web:0', 'RUNNING');
  const sock = files.controlSocket;
  const webFile = path.join(files.servicesDir, 'web.yaml');

  const tally: Tally = { ok: 0, failed: [], bodies: new Set() };
  const started = Date.now();
  let operationsDone = false;
  const clients = Array.from({ length: CLIENTS }, async () => {
    while (!operationsDone || Date.now() - started < LOAD_MS) await request(port, tally);
  });

  const pids = new Set<number>();
  const pidOf = async () => Number((await ctl(sock, 'pid', 'web:0')).stdout.trim());
  pids.add(await pidOf());
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      expectRun(await ctl(sock, 'restart', 'web'), 0, ['web:0: restarted'], [], `restart ${round}`);
      pids.add(await pidOf());
      const mark = daemon.records.length;
      await editAtomically(webFile, (text) => text.replace(/It works!( edit \d+)?</, `It works! edit ${round}<`));
      const reload = await daemon.waitFor((r) => r.msg === 'reload done', 30_000, mark);
      assert.deepEqual([reload['changes'], reload['failed']], [1, 0], `edit ${round}`);
      pids.add(await pidOf());
      await eventually(() => tally.bodies.has(`<marquee>It works! edit ${round}</marquee>`), 10_000, `edit ${round} served`);
    }
  } finally {
    operationsDone = true;
    await Promise.all(clients);
  }

  assert.deepEqual(tally.failed.slice(0, 10), [], `${tally.failed.length} of ${tally.ok + tally.failed.length} requests failed`);
  assert.equal(pids.size, 1 + 2 * ROUNDS, 'every restart and every edit replaced the process');
  assert.ok(tally.ok > 200, `only ${tally.ok} requests in ${LOAD_MS} ms`);
  assert.ok(Date.now() - started >= LOAD_MS);
  t.diagnostic(`${tally.ok} requests, 0 failed, ${pids.size} processes`);
});
