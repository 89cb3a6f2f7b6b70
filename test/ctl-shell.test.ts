/**
 * sockvisorctl's interactive shell under a real pseudo-terminal (tmux), against a real sockvisord:
 * the prompt, commands, tab completion, help, history, tail -f ended by Ctrl-C, and quit.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { VERSION } from '../src/version.js';
import { ROOT, run, tempDir } from './helpers/cli.js';
import { block, DaemonProcess, daemonFiles, HEADER, webService } from './helpers/daemon.js';

const CTL = path.join(ROOT, 'dist/src/cli/sockvisorctl.js');
const PROMPT = 'sockvisor> ';

type TestContext = { after: (fn: () => Promise<void>) => void };

/** Prints a line at start and one more on each SIGUSR1. */
const CHATTER = `${HEADER}supervise: {start_seconds: 0.2}
stderr: !fd stderr
command: |
${block(`
import signal, sys, time
count = [0]
def usr1(signum, frame):
    count[0] += 1
    sys.stdout.write('chatter usr1 %d\\n' % count[0])
    sys.stdout.flush()
signal.signal(signal.SIGUSR1, usr1)
print('chatter ready', flush=True)
while True:
    time.sleep(3600)
`)}
`;

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

let serial = 0;

/** One tmux server of its own, with one session running `command` in a 200x50 pane. */
class Tmux {
  private constructor(private readonly server: string) {}

  private static tmux(server: string, args: readonly string[]) {
    return run('tmux', ['-f', '/dev/null', '-L', server, ...args]);
  }

  static async start(t: TestContext, command: string): Promise<Tmux> {
    const server = `sockvisorctl-test-${process.pid}-${++serial}`;
    const tmux = new Tmux(server);
    // remain-on-exit keeps the pane, and what it shows, after the shell ends.
    const r = await Tmux.tmux(server, ['new-session', '-d', '-s', 'ctl', '-x', '200', '-y', '50', command, ';', 'set-option', '-t', 'ctl', 'remain-on-exit', 'on']);
    const socketPath = (await Tmux.tmux(server, ['display-message', '-p', '#{socket_path}'])).stdout.trim();
    t.after(async () => {
      await Tmux.tmux(server, ['kill-server']).catch(() => undefined);
      if (socketPath) await fs.rm(socketPath, { force: true });
    });
    assert.equal(r.code, 0, `tmux new-session: ${r.stderr}`);
    return tmux;
  }

  /** `send-keys`: literal text, or key names (Tab, Up, Enter, C-c) when `keys` is true. */
  async send(text: string, keys = false): Promise<void> {
    const r = await Tmux.tmux(this.server, ['send-keys', '-t', 'ctl', ...(keys ? [] : ['-l']), text]);
    assert.equal(r.code, 0, `tmux send-keys ${text}: ${r.stderr}`);
  }

  /** The whole pane, history included, wrapped lines joined, without the blank lines at the end. */
  async screen(): Promise<string[]> {
    const r = await Tmux.tmux(this.server, ['capture-pane', '-p', '-J', '-N', '-S', '-', '-t', 'ctl']);
    const all = r.stdout.split('\n');
    while (all.length > 0 && all.at(-1)!.trim() === '') all.pop();
    return all;
  }

  async paneDead(): Promise<boolean> {
    return (await Tmux.tmux(this.server, ['display-message', '-p', '-t', 'ctl', '#{pane_dead}'])).stdout.trim() === '1';
  }

  /** Polls the pane (tmux has no event for "the screen changed") until `check` holds. */
  async until(check: (lines: string[]) => boolean, what: string, timeoutMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = await this.screen();
      if (check(lines)) return lines;
      if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}\n--- screen ---\n${lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Does `step` (awaited), then looks; again until `check` holds. For keys with no visible effect of their own. */
  async untilAfterEach(step: () => Promise<void>, check: (lines: string[]) => boolean, what: string, timeoutMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await step();
      const lines = await this.screen();
      if (check(lines)) return lines;
      if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}\n--- screen ---\n${lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Waits until the last line is exactly `line` (the prompt with what has been typed). */
  untilLastLine(line: string, what = `last line ${JSON.stringify(line)}`): Promise<string[]> {
    return this.until((lines) => lines.at(-1) === line, what);
  }
}

/** Index of the last line equal to `line`, or -1. */
const lastIndexOf = (lines: readonly string[], line: string) => lines.lastIndexOf(line);

describe('sockvisorctl interactive shell (tmux)', () => {
  test('prompt, status, completion, help, history, tail -f with Ctrl-C, quit', async (t) => {
    const probe = await run('tmux', ['-V']).catch(() => undefined);
    if (probe?.code !== 0) {
      t.skip('tmux is not installed');
      return;
    }
    const files = await daemonFiles(t, { web: webService('start_seconds: 0.2'), api: webService('start_seconds: 0.2, replicas: 2'), chatter: CHATTER });
    const daemon = await DaemonProcess.start(t, files);
    const pids: Record<string, number> = {};
    for (const name of ['api:0', 'api:1', 'chatter:0', 'web:0']) pids[name] = (await daemon.waitForState(name, 'RUNNING'))['pid'] as number;
    const sock = files.controlSocket;
    const home = await tempDir(t, 'sockvisorctl-home-');

    // The shell's exit status is printed after it, by sh (tmux's pane_dead_status is not always set in time).
    const tmux = await Tmux.start(t, `env HOME=${shellQuote(home)} ${shellQuote(process.execPath)} ${shellQuote(CTL)} -s ${shellQuote(sock)}; echo "[exit $?]"`);
    const row = (name: string) => new RegExp(`^${name.padEnd(33)}RUNNING   pid ${pids[name]}, uptime \\d+:\\d\\d:\\d\\d$`);

    // On a terminal the shell starts with `status`, as supervisorctl does, then the prompt.
    let screen = await tmux.untilLastLine(PROMPT, 'the first prompt');
    assert.match(screen[0]!, row('api:0'));
    assert.deepEqual(screen.slice(0, 4).map((l, i) => row(['api:0', 'api:1', 'chatter:0', 'web:0'][i]!).test(l)), [true, true, true, true], screen.join('\n'));
    assert.match(screen[4]!, /^api sockets: 127\.0\.0\.1:\d+$/);
    assert.match(screen[5]!, /^web sockets: 127\.0\.0\.1:\d+$/);

    // A command.
    await tmux.send('status web');
    await tmux.untilLastLine(`${PROMPT}status web`);
    await tmux.send('Enter', true);
    screen = await tmux.until((l) => l.at(-1) === PROMPT && l.includes(`${PROMPT}status web`), 'status web and a new prompt');
    const at = lastIndexOf(screen, `${PROMPT}status web`);
    assert.match(screen[at + 1]!, row('web:0'));
    assert.match(screen[at + 2]!, /^web sockets: /);
    assert.equal(screen.length, at + 4);

    // Tab: a command prefix with several candidates lists them (second Tab); a unique one completes.
    await tmux.send('sta');
    await tmux.untilLastLine(`${PROMPT}sta`);
    // The first Tab shows nothing (no longer common prefix), so Tab again until the list is there.
    await tmux.untilAfterEach(() => tmux.send('Tab', true), (l) => l.some((line) => /^status +start$/.test(line)) && l.at(-1) === `${PROMPT}sta`, 'the candidates status and start');
    await tmux.send('C-u', true);
    await tmux.untilLastLine(PROMPT);
    await tmux.send('stat');
    await tmux.untilLastLine(`${PROMPT}stat`);
    await tmux.send('Tab', true);
    await tmux.untilLastLine(`${PROMPT}status `, 'stat<Tab> completes to "status "');
    // A service name: we -> web (web and web:0 share the prefix "web").
    await tmux.send('we');
    await tmux.untilLastLine(`${PROMPT}status we`);
    await tmux.send('Tab', true);
    await tmux.untilLastLine(`${PROMPT}status web`, 'status we<Tab> completes to "status web"');
    // And a replica: web: -> web:0, the only candidate.
    await tmux.send(':');
    await tmux.untilLastLine(`${PROMPT}status web:`);
    await tmux.send('Tab', true);
    await tmux.untilLastLine(`${PROMPT}status web:0 `);
    await tmux.send('Enter', true);
    // (The completion's trailing space is part of the line.)
    screen = await tmux.until((l) => l.at(-1) === PROMPT && l.includes(`${PROMPT}status web:0 `), 'status web:0 and a new prompt');
    assert.match(screen[lastIndexOf(screen, `${PROMPT}status web:0 `) + 1]!, row('web:0'));

    // help, help COMMAND, and a line that is no command.
    await tmux.send('help');
    await tmux.untilLastLine(`${PROMPT}help`);
    await tmux.send('Enter', true);
    screen = await tmux.until((l) => l.at(-1) === PROMPT && l.some((x) => x.startsWith('In this shell, quit or exit')), 'the help text');
    const help = screen.slice(lastIndexOf(screen, `${PROMPT}help`));
    assert.ok(help.some((l) => /^Usage: sockvisorctl /.test(l)), help.join('\n'));
    for (const command of ['status', 'start', 'stop', 'restart', 'signal', 'pid', 'tail', 'maintail', 'clear', 'avail', 'reread', 'reload', 'shutdown', 'version']) {
      assert.ok(help.some((l) => new RegExp(`^ {2}${command}\\b`).test(l)), `help lists ${command}`);
    }
    await tmux.send('help tail');
    await tmux.untilLastLine(`${PROMPT}help tail`);
    await tmux.send('Enter', true);
    screen = await tmux.until((l) => l.at(-1) === PROMPT && l.some((x) => /^Usage: sockvisorctl tail /.test(x)), 'help tail');
    await tmux.send('bogus thing');
    await tmux.untilLastLine(`${PROMPT}bogus thing`);
    await tmux.send('Enter', true);
    screen = await tmux.until((l) => l.at(-1) === PROMPT && l.includes('*** Unknown syntax: bogus thing'), 'the unknown-syntax line');

    // History: Up recalls the previous line, Up again the one before.
    await tmux.send('pid web');
    await tmux.untilLastLine(`${PROMPT}pid web`);
    await tmux.send('Enter', true);
    screen = await tmux.until((l) => l.at(-1) === PROMPT && l.at(-2) === String(pids['web:0']), 'the pid of web:0');
    await tmux.send('Up', true);
    await tmux.untilLastLine(`${PROMPT}pid web`, 'Up recalls "pid web"');
    await tmux.send('Up', true);
    await tmux.untilLastLine(`${PROMPT}bogus thing`, 'Up again recalls "bogus thing"');
    await tmux.send('Down', true);
    await tmux.untilLastLine(`${PROMPT}pid web`, 'Down goes forward again');
    await tmux.send('Enter', true);
    screen = await tmux.until((l) => l.at(-1) === PROMPT && l.filter((x) => x === String(pids['web:0'])).length === 2, 'the recalled pid web ran');

    // tail -f follows until Ctrl-C, which returns to the prompt; the shell goes on.
    await tmux.send('tail -f chatter');
    await tmux.untilLastLine(`${PROMPT}tail -f chatter`);
    await tmux.send('Enter', true);
    await tmux.until((l) => l.at(-2) === '==> Press Ctrl-C to exit <==' && l.at(-1) === 'chatter ready', 'tail -f prints the log so far');
    const signalled = await run(process.execPath, [CTL, '-s', sock, 'signal', 'USR1', 'chatter']);
    assert.equal(signalled.stdout, 'chatter:0: signalled\n');
    await tmux.untilLastLine('chatter usr1 1', 'a line written while following');
    await tmux.send('C-c', true);
    await tmux.untilLastLine(PROMPT, 'Ctrl-C ends tail -f and the prompt is back');
    await tmux.send('version');
    await tmux.untilLastLine(`${PROMPT}version`);
    await tmux.send('Enter', true);
    await tmux.until((l) => l.at(-1) === PROMPT && l.at(-2) === VERSION && l.at(-3) === `${PROMPT}version`, 'the shell still answers');
    assert.equal(await tmux.paneDead(), false);

    // quit ends the session with status 0, and the history is saved.
    await tmux.send('quit');
    await tmux.untilLastLine(`${PROMPT}quit`);
    await tmux.send('Enter', true);
    // (tmux may add its own "Pane is dead" line after it.)
    screen = await tmux.until((l) => l.includes('[exit 0]'), 'the shell exits 0');
    assert.equal(screen[screen.indexOf('[exit 0]') - 1], `${PROMPT}quit`);
    const history = (await fs.readFile(path.join(home, '.sockvisorctl_history'), 'utf8')).split('\n');
    for (const line of ['status web', 'pid web', 'tail -f chatter', 'version', 'quit']) assert.ok(history.includes(line), `history has ${line}: ${history.join(' | ')}`);
    // The daemon noticed nothing odd: all still running.
    const status2 = await run(process.execPath, [CTL, '-s', sock, 'status']);
    assert.equal(status2.code, 0, status2.stdout);
  });
});
