import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { block, DaemonProcess, daemonFiles, HEADER } from './helpers/daemon.js';

describe('service logs', () => {
  test('two replicas write 100,000 numbered lines each through rotation: every line once, whole', async (t) => {
    const files = await daemonFiles(t, {
      chatty: `${HEADER}supervise: {replicas: 2, restart: on-failure, start_seconds: 0, logs: {max_bytes: 256KB, backups: 200}}
stderr: !fd stderr
command: |
${block(`
import os, sys
pid = os.getpid()
write = sys.stdout.write
for n in range(100000):
    write('%d %06d %s\\n' % (pid, n, 'x' * (n % 50)))
`)}
`,
    });
    const daemon = await DaemonProcess.start(t, files);
    const exits = await Promise.all([0, 1].map((i) => daemon.waitForState(`chatty:${i}`, 'EXITED', 0, 120_000)));
    const pids = daemon.states('chatty:0').concat(daemon.states('chatty:1')).filter((r) => r['to'] === 'RUNNING').map((r) => r['pid'] as number);
    assert.deepEqual(exits.map((e) => e['reason']), ['exit status 0', 'exit status 0']);
    // Everything the daemon read is written before it stops.
    await daemon.stop();

    const names = (await fs.readdir(files.logsDir)).filter((n) => n.startsWith('chatty.stdout.log'));
    assert.ok(names.length > 10, `rotation happened: ${names.length} files`);
    const seen = new Map<number, Uint8Array>(pids.map((p) => [p, new Uint8Array(100_000)]));
    let lines = 0;
    for (const name of names) {
      const text = await fs.readFile(path.join(files.logsDir, name), 'utf8');
      assert.ok(text.endsWith('\n'), `${name} ends on a line boundary`);
      const stat = await fs.stat(path.join(files.logsDir, name));
      assert.ok(stat.size <= 256 * 1024, `${name} is within max_bytes`);
      for (const line of text.slice(0, -1).split('\n')) {
        if (line.startsWith('sandbox: ')) continue;
        const m = /^(\d+) (\d{6}) (x*)$/.exec(line);
        assert.ok(m, `a whole line: ${JSON.stringify(line.slice(0, 80))}`);
        const n = Number(m[2]);
        assert.equal(m[3]!.length, n % 50, `line ${n} is whole`);
        const marks = seen.get(Number(m[1]));
        assert.ok(marks, `a line from a known replica: ${m[1]}`);
        assert.equal(marks[n], 0, `line ${m[1]} ${n} appears once`);
        marks[n] = 1;
        lines += 1;
      }
    }
    assert.equal(lines, 200_000);
    for (const [pid, marks] of seen) assert.equal(marks.indexOf(0), -1, `every line of ${pid} is there`);
  });

  test('the runner sandbox line is logged by the daemon, and --log-format pretty is readable', async (t) => {
    const files = await daemonFiles(t, { hello: `${HEADER}supervise: {restart: never}\nstderr: !fd stderr\ncommand: print('hi')\n` });
    const json = await DaemonProcess.start(t, files);
    const sandbox = await json.waitFor((r) => r.msg === 'sandbox applied');
    assert.match(sandbox['sandbox'] as string, /^landlock abi \d+ \(fs/);
    await json.waitForState('hello:0', 'EXITED');
    await json.stop();
    assert.equal(await fs.readFile(path.join(files.logsDir, 'hello.stdout.log'), 'utf8'), 'hi\n');

    const pretty = await DaemonProcess.start(t, files, { ready: false, args: ['--log-format', 'pretty'] });
    await pretty.waitFor((r) => / INFO {2}state service=hello process=hello:0 generation=1 from=STARTING to=EXITED pid=\d+ reason="exit status 0"/.test(r.msg));
    await pretty.stop();
    assert.match(pretty.records[0]!.msg, /^\d\d:\d\d:\d\d\.\d{3} (INFO|WARN) {1,2}\S/);
  });
});
