/**
 * The FreeBSD rc.d script, unmodified, run by dash against a real sockvisord. rc.subr(8) and
 * daemon(8) do not exist on Linux: a private mount namespace puts the project's stand-ins
 * (test/rc.d/) at /etc/rc.subr and /usr/sbin/daemon for the script alone.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ROOT, tempDir, type RunResult } from './helpers/cli.js';
import { requireCommand } from './helpers/installed.js';
import { alive, daemonFiles, eventually, type DaemonFiles } from './helpers/daemon.js';
import { editAtomically, freePort, get, probe, versionedService } from './helpers/reload.js';

type TestContext = { after: (fn: () => Promise<void>) => void; skip: (message?: string) => void };

const RC_SCRIPT = path.join(ROOT, 'rc.d/sockvisord');
const RC_SUBR = path.join(ROOT, 'test/rc.d/rc.subr');
const FAKE_DAEMON = path.join(ROOT, 'dist/test/rc.d/fake-daemon.js');
const SOCKVISORD = path.join(ROOT, 'dist/src/cli/sockvisord.js');

const requireTool = (t: TestContext, tool: string, install: string) => requireCommand(t, tool, install) !== undefined;

describe('rc.d/sockvisord is clean', () => {
  test('shellcheck finds nothing', (t) => {
    if (!requireTool(t, 'shellcheck', 'apt-get install shellcheck')) return;
    const r = spawnSync('shellcheck', [RC_SCRIPT], { encoding: 'utf8' });
    assert.equal(r.stdout + r.stderr, '');
    assert.equal(r.status, 0);
  });

  test('sh -n and dash -n parse it', () => {
    for (const shell of ['sh', 'dash']) {
      const r = spawnSync(shell, ['-n', RC_SCRIPT], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${shell}: ${r.stderr}`);
    }
  });
});

interface RcHarness {
  readonly files: DaemonFiles;
  readonly syslog: string;
  readonly supervisorPidfile: string;
  /** `service sockvisord ARG`, under dash. */
  service(arg: string): Promise<RunResult>;
}

async function harness(t: TestContext, services: Record<string, string>): Promise<RcHarness> {
  const files = await daemonFiles(t, services);
  const dir = await tempDir(t, 'rc-harness-');
  const rcConf = path.join(dir, 'rc.conf');
  const syslog = path.join(dir, 'syslog');
  await fs.writeFile(rcConf, [
    'sockvisord_enable="YES"',
    `sockvisord_config="${files.config}"`,
    `sockvisord_pidfile="${files.pidfile}"`,
    `sockvisord_node="${process.execPath}"`,
    `sockvisord_script="${SOCKVISORD}"`,
    '',
  ].join('\n'));
  let calls = 0;
  const service = async (arg: string): Promise<RunResult> => {
    // Fresh overlay layers per call: a layer in use by another mount may not be shared.
    const layers = path.join(dir, `call-${calls++}`);
    for (const sub of ['etc', 'etc-work', 'sbin', 'sbin-work']) await fs.mkdir(path.join(layers, sub), { recursive: true });
    await fs.copyFile(RC_SUBR, path.join(layers, 'etc', 'rc.subr'));
    await fs.writeFile(path.join(layers, 'sbin', 'daemon'), `#!/bin/sh\nexec "${process.execPath}" "${FAKE_DAEMON}" "$@"\n`, { mode: 0o755 });
    const mounts = [
      `mount -t overlay overlay -o lowerdir=/etc,upperdir=${layers}/etc,workdir=${layers}/etc-work /etc`,
      `mount -t overlay overlay -o lowerdir=/usr/sbin,upperdir=${layers}/sbin,workdir=${layers}/sbin-work /usr/sbin`,
    ].join(' && ');
    return new Promise((resolve, reject) => {
      const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `${mounts} && exec dash "$0" "$1"`, RC_SCRIPT, arg], {
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', RC_CONF_FILE: rcConf, FAKE_SYSLOG: syslog },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });
  };
  const supervisorPidfile = files.pidfile.replace(/\.pid$/, '.daemon.pid');
  const h = { files, syslog, supervisorPidfile, service };
  t.after(async () => {
    // Whatever a failed test left: the supervisor first, so nothing is restarted.
    for (const file of [supervisorPidfile, files.pidfile]) {
      const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    for (const pid of await processesUsing(files.config)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  return h;
}

/** Processes whose command line names this file: the daemon, however it was started. */
async function processesUsing(file: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(file)) pids.push(Number(entry));
  }
  return pids;
}

async function pidIn(file: string): Promise<number> {
  return Number((await fs.readFile(file, 'utf8')).trim());
}

function canMountNamespaces(t: TestContext): boolean {
  if (process.getuid?.() !== 0) {
    t.skip('needs root for a private mount namespace with rc.subr and daemon(8) in place');
    return false;
  }
  if (!requireTool(t, 'dash', 'apt-get install dash') || !requireTool(t, 'unshare', 'apt-get install util-linux')) return false;
  return true;
}

describe('rc.d/sockvisord against a running daemon, under dash', () => {
  test('start, status, start refused, reload applied, stop leaves nothing; a crash is restarted and stop is not', { timeout: 120_000 }, async (t) => {
    if (!canMountNamespaces(t)) return;
    const port = await freePort();
    const h = await harness(t, { web: versionedService('v1', `127.0.0.1:${port}`) });

    const started = await h.service('start');
    assert.equal(started.code, 0, started.stdout + started.stderr);
    assert.equal(started.stdout, 'Starting sockvisord.\n');
    const nodePid = await pidIn(h.files.pidfile);
    const supervisorPid = await pidIn(h.supervisorPidfile);
    assert.ok(await alive(nodePid));
    assert.match(await fs.readFile(`/proc/${supervisorPid}/cmdline`, 'utf8'), /^daemon: /, 'the supervisor is daemon(8)');
    assert.match(await get(port), /^v1 pid \d+\n$/);
    const servicePid = Number(/pid (\d+)/.exec(await get(port))![1]);

    const status = await h.service('status');
    assert.deepEqual([status.code, status.stdout], [0, `sockvisord is running as pid ${nodePid}.\n`]);

    const again = await h.service('start');
    assert.deepEqual([again.code, again.stdout], [1, `sockvisord already running? (pid=${nodePid}).\n`]);

    await editAtomically(path.join(h.files.servicesDir, 'web.yaml'), (text) => text.replace('"v1"', '"v2"'));
    const reload = await h.service('reload');
    assert.deepEqual([reload.code, reload.stdout], [0, 'Reloading sockvisord config files.\n']);
    await eventually(async () => (await get(port)).startsWith('v2 '), 15_000, 'the edited service is served after reload');
    assert.equal(await pidIn(h.files.pidfile), nodePid, 'reload kept the daemon');

    // The daemon's output went through daemon(8) to syslog, tagged.
    assert.match(await fs.readFile(h.syslog, 'utf8'), /^sockvisord: \{.*"msg":"sockvisord started"/m);

    // A crash: daemon(8) starts it again, and status follows the new pid.
    process.kill(nodePid, 'SIGKILL');
    let restarted = 0;
    await eventually(async () => {
      restarted = await pidIn(h.files.pidfile).catch(() => 0);
      return restarted !== 0 && restarted !== nodePid && (await alive(restarted));
    }, 20_000, 'daemon(8) restarts a crashed sockvisord');
    await eventually(async () => (await probe(port)) !== 'refused', 15_000, 'served again');
    const after = await h.service('status');
    assert.deepEqual([after.code, after.stdout], [0, `sockvisord is running as pid ${restarted}.\n`]);

    const stopped = await h.service('stop');
    assert.equal(stopped.code, 0, stopped.stdout + stopped.stderr);
    assert.match(stopped.stdout, /^Stopping sockvisord\.\n/);
    for (const pid of [restarted, supervisorPid, servicePid]) assert.equal(await alive(pid), false, `pid ${pid} is gone`);
    assert.equal(await probe(port), 'refused');
    // No restart follows a stop (daemon(8) -r would restart a child stopped on its own).
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await processesUsing(h.files.config), []);
    await assert.rejects(fs.access(h.supervisorPidfile));
    await assert.rejects(fs.access(h.files.pidfile));
    const down = await h.service('status');
    assert.deepEqual([down.code, down.stdout], [1, 'sockvisord is not running.\n']);
  });

  test('a config with errors: check says why, start refuses and prints them, nothing runs', { timeout: 60_000 }, async (t) => {
    if (!canMountNamespaces(t)) return;
    const h = await harness(t, { web: versionedService('v1', '127.0.0.1:0', 'start_seconds: soon') });
    const check = await h.service('check');
    assert.equal(check.code, 1);
    assert.match(check.stdout, /web\.yaml:3:\d+: error: supervise\.start_seconds/);
    const start = await h.service('start');
    assert.equal(start.code, 1);
    assert.match(start.stdout, /web\.yaml:3:\d+: error: supervise\.start_seconds/);
    assert.match(start.stderr, /ERROR: .*sockvisor\.yaml has errors; not starting sockvisord/);
    assert.doesNotMatch(start.stdout, /Starting sockvisord/);
    assert.deepEqual(await processesUsing(h.files.config), []);
    const stop = await h.service('stop');
    assert.deepEqual([stop.code, stop.stdout], [1, `sockvisord not running? (check ${h.files.pidfile}).\n`]);
  });
});
