/**
 * What ships besides the code: the man pages (man/), the systemd unit (etc/systemd/), the sample
 * daemon config (etc/sockvisor.yaml) and the sample service (etc/sockvisor.d/example.yaml).
 *
 * The pages are linted with mandoc and compared with what the code really has (the commands and
 * options of both CLIs, every config key the parsers accept), so they cannot fall behind it
 * silently. The unit is checked with systemd-analyze. The samples go through the project's own
 * parser and the real `sockvisord check`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseDaemonConfig } from '../src/config/daemon-config.js';
import type { Diagnostic } from '../src/config/diagnostics.js';
import { FLAG_KEYS, parseServiceFile } from '../src/config/service.js';
import { SUPERVISE_KEYS } from '../src/config/supervise.js';
import { commandPath, requireCommand } from './helpers/installed.js';

/** The checkout, from dist/test/packaging.test.js. */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SOCKVISORD = path.join(ROOT, 'dist/src/cli/sockvisord.js');
const SOCKVISORCTL = path.join(ROOT, 'dist/src/cli/sockvisorctl.js');
const UNIT = path.join(ROOT, 'etc/systemd/sockvisord.service');
const SAMPLE_CONFIG = path.join(ROOT, 'etc/sockvisor.yaml');
const SAMPLE_SERVICE = 'etc/sockvisor.d/example.yaml';

const PAGES = { sockvisord: 'man/sockvisord.8', sockvisorctl: 'man/sockvisorctl.8', yaml: 'man/sockvisor.yaml.5' } as const;

/**
 * The strictest level the pages pass. `base` (which plain -Tlint implies) also wants every
 * cross-reference to be a page of the base system in /usr/share/man, which a package's pages
 * citing each other never are; its other checks are OpenBSD and NetBSD conventions.
 */
const LINT_LEVEL = 'style';

/**
 * The system pages the man pages cite. At -W style mandoc checks every cross-reference against
 * the manual path; the lint runs against our own pages plus stubs for exactly these, so it gives
 * the same answer on FreeBSD (no landlock(7)) and Linux (no daemon(8)), and a misspelt or new
 * reference fails until it is added here.
 */
const CITED_SYSTEM_PAGES = [
  'accept.2', 'seccomp.2', 'unshare.2', 'capsicum.4', 'rc.conf.5', 'systemd.exec.5', 'systemd.service.5', 'landlock.7', 'daemon.8', 'syslogd.8',
];

interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(file: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, timeout: options.timeoutMs ?? 60_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`));
        return;
      }
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}


const readText = (relative: string): Promise<string> => fs.readFile(path.join(ROOT, relative), 'utf8');

const scratch: string[] = [];
after(() => Promise.all(scratch.map((dir) => fs.rm(dir, { recursive: true, force: true }))));

async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/**
 * A manual tree of our pages and stubs for CITED_SYSTEM_PAGES, indexed with makewhatis when it
 * is there (without an index mandoc also prints "outdated mandoc.db" notes, which are dropped).
 */
let manTree: Promise<{ dir: string; indexed: boolean }> | undefined;
function hermeticManTree(): Promise<{ dir: string; indexed: boolean }> {
  manTree ??= (async () => {
    const dir = await tempDir('sockvisor-man-');
    const place = async (fileName: string, text: string) => {
      const section = fileName.slice(fileName.lastIndexOf('.') + 1);
      await fs.mkdir(path.join(dir, `man${section}`), { recursive: true });
      await fs.writeFile(path.join(dir, `man${section}`, fileName), text);
    };
    for (const page of CITED_SYSTEM_PAGES) {
      const name = page.slice(0, page.lastIndexOf('.'));
      const section = page.slice(page.lastIndexOf('.') + 1);
      await place(page, `.Dd November 28, 2026\n.Dt ${name.toUpperCase()} ${section}\n.Os\n.Sh NAME\n.Nm ${name}\n.Nd stub\n.Sh DESCRIPTION\nStub.\n`);
    }
    for (const page of Object.values(PAGES)) await place(path.basename(page), await readText(page));
    const makewhatis = commandPath('makewhatis');
    const indexed = makewhatis !== undefined && (await run(makewhatis, [dir])).code === 0;
    return { dir, indexed };
  })();
  return manTree;
}


/** The text of an mdoc section (`.Sh NAME`) or subsection (`.Ss Name`), up to the next of its kind or a section. */
function section(page: string, heading: string): string {
  const lines = page.split('\n');
  const start = lines.findIndex((l) => l === heading);
  assert.ok(start >= 0, `the page has no "${heading}"`);
  const isEnd = heading.startsWith('.Sh ') ? (l: string) => l.startsWith('.Sh ') : (l: string) => l.startsWith('.Sh ') || l.startsWith('.Ss ');
  const rest = lines.slice(start + 1);
  const end = rest.findIndex(isEnd);
  return rest.slice(0, end < 0 ? undefined : end).join('\n');
}

const itemLines = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('.It '));
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `.It Cm key ...`: an item of a tag list whose head starts with the key. */
function hasItem(text: string, key: string): boolean {
  const re = new RegExp(`^\\.It Cm ${escape(key)}(?=[\\s]|$)`);
  return itemLines(text).some((l) => re.test(l));
}

/** An option as mdoc writes it: `Fl f` for -f, `Fl -follow` for --follow. */
function mentionsOption(line: string, option: string): boolean {
  return new RegExp(`\\bFl ${escape(option.slice(1))}(?=\\s|$)`).test(line);
}

/** Commands under "Commands:" in commander's help, and options under "Options:" (without --help). */
function parseHelp(help: string): { commands: string[]; options: Array<{ short?: string; long?: string }> } {
  const commands: string[] = [];
  const options: Array<{ short?: string; long?: string }> = [];
  let part = '';
  for (const line of help.split('\n')) {
    if (/^\S.*:$/.test(line)) {
      part = line;
      continue;
    }
    if (part === 'Commands:') {
      const m = /^ {2}([a-z][a-z-]*)(?=\s|$)/.exec(line);
      if (m) commands.push(m[1]!);
    } else if (part === 'Options:') {
      const m = /^ {2}(?:(-[A-Za-z])(?:, |\s))?(--[a-z][a-z-]*)?/.exec(line);
      if (m && (m[1] || m[2]) && m[2] !== '--help') options.push({ ...(m[1] ? { short: m[1] } : {}), ...(m[2] ? { long: m[2] } : {}) });
    }
  }
  return { commands, options };
}

const optionName = (o: { short?: string; long?: string }): string => [o.short, o.long].filter(Boolean).join(', ');

/** The list of keys a parser accepts, from the hint of its "unknown key" error. */
function knownKeys(diagnostics: readonly Diagnostic[], where: string): string[] {
  const d = diagnostics.find((x) => x.message.endsWith(` in ${where}`) && x.hint?.startsWith('known keys: '));
  assert.ok(d, `no "unknown key ... in ${where}" error with a list of known keys; got ${JSON.stringify(diagnostics.map((x) => x.message))}`);
  const keys = d.hint!.slice('known keys: '.length).split(', ');
  assert.ok(keys.length > 0);
  return keys;
}

function daemonConfigKeys(): { top: string[]; control: string[]; logs: string[] } {
  const keysOf = (text: string, where: string) => knownKeys(parseDaemonConfig(text, 'probe.yaml').diagnostics, where);
  // logs.dir is read apart from the limits, so it is not in the parser's list; it must be accepted.
  assert.deepEqual(parseDaemonConfig('logs: {dir: /tmp}', 'probe.yaml').diagnostics, []);
  return { top: keysOf('bogus_key: 1', 'config'), control: keysOf('control: {bogus_key: 1}', 'config.control'), logs: ['dir', ...keysOf('logs: {bogus_key: 1}', 'config.logs')] };
}

const HEADER = '%TAG ! tag:nuxi.nl,2015:cloudabi/\n---\n';

function serviceKeys(): { backoff: string[]; logs: string[]; socket: string[] } {
  const { diagnostics } = parseServiceFile(`${HEADER}supervise: {backoff: {bogus_key: 1}, logs: {bogus_key: 1}}\nargs: {s: !socket {bind: 127.0.0.1:1, bogus_key: 1}}\ncommand: pass\n`, 'probe.yaml', 'probe');
  const socketError = diagnostics.find((d) => /in !socket; keys are /.test(d.message));
  assert.ok(socketError, `no "unknown key ... in !socket" error; got ${JSON.stringify(diagnostics.map((d) => d.message))}`);
  // "keys are bind, connect, type, backlog, and for unix paths mode, owner and group"
  const socket = socketError.message
    .slice(socketError.message.indexOf('keys are ') + 'keys are '.length)
    .replace(/\bfor unix paths\b/, '')
    .split(/,|\band\b/)
    .map((w) => w.trim())
    .filter((w) => w !== '');
  assert.ok(socket.includes('bind') && socket.includes('connect'), `socket keys: ${socket.join(', ')}`);
  return { backoff: knownKeys(diagnostics, 'supervise.backoff'), logs: knownKeys(diagnostics, 'supervise.logs'), socket };
}

/** Literal displays (`.Bd -literal ... .Ed`) of a page, as text. */
function literalBlocks(page: string): string[] {
  const blocks: string[] = [];
  const re = /^\.Bd -literal[^\n]*\n([\s\S]*?)^\.Ed$/gm;
  for (let m = re.exec(page); m; m = re.exec(page)) blocks.push(m[1]!.replace(/\\&/g, '').replace(/\\e/g, '\\'));
  return blocks;
}

const describeDiagnostics = (ds: readonly Diagnostic[]): string => ds.map((d) => `${d.pos.line}:${d.pos.col}: ${d.severity}: ${d.message}`).join('\n');

describe('man pages', () => {
  for (const page of Object.values(PAGES)) {
    test(`${page} is clean under mandoc -Tlint -W ${LINT_LEVEL}`, async (t) => {
      const mandoc = requireCommand(t, 'mandoc', 'apt-get install mandoc');
      if (!mandoc) return;
      const tree = await hermeticManTree();
      const r = await run(mandoc, ['-Tlint', '-W', LINT_LEVEL, path.join(ROOT, page)], { cwd: tree.dir, env: { ...process.env, MANPATH: tree.dir } });
      let output = (r.stdout + r.stderr).split('\n').filter((l) => l !== '');
      if (!tree.indexed) output = output.filter((l) => !/^mandoc: outdated mandoc\.db lacks /.test(l));
      assert.deepEqual(output, [], `mandoc -Tlint -W ${LINT_LEVEL} ${page}:\n${output.join('\n')}`);
      assert.equal(r.code, 0, `mandoc exited ${r.code}`);
    });
  }

  test('sockvisorctl(8) documents every command and option the client has', async () => {
    const page = await readText(PAGES.sockvisorctl);
    const top = await run(process.execPath, [SOCKVISORCTL, '--help']);
    assert.equal(top.code, 0, top.stderr);
    const { commands, options } = parseHelp(top.stdout);
    assert.ok(commands.length >= 15 && commands.includes('status') && commands.includes('tail'), `commands from --help: ${commands.join(' ')}`);
    const items = itemLines(page);
    for (const o of options) {
      assert.ok(items.some((l) => (o.short !== undefined && mentionsOption(l, o.short)) || (o.long !== undefined && mentionsOption(l, o.long))), `sockvisorctl(8) has no item for the option ${optionName(o)}`);
    }
    const commandsSection = section(page, '.Sh COMMANDS');
    for (const command of commands) {
      const head = itemLines(commandsSection).find((l) => new RegExp(`^\\.It Cm ${escape(command)}(?=\\s|$)`).test(l));
      assert.ok(head, `sockvisorctl(8) COMMANDS has no ".It Cm ${command}"`);
      if (command === 'help') continue; // `help help` is the top-level help, checked above
      const help = await run(process.execPath, [SOCKVISORCTL, 'help', command]);
      assert.equal(help.code, 0, help.stderr);
      for (const o of parseHelp(help.stdout).options) {
        assert.ok((o.short !== undefined && mentionsOption(head, o.short)) || (o.long !== undefined && mentionsOption(head, o.long)), `sockvisorctl(8): "${head}" lacks the option ${optionName(o)} of ${command}`);
      }
    }
  });

  test('sockvisord(8) documents every command and option of the daemon', async () => {
    const page = await readText(PAGES.sockvisord);
    const synopsis = section(page, '.Sh SYNOPSIS');
    const items = itemLines(page);
    const top = await run(process.execPath, [SOCKVISORD, '--help']);
    assert.equal(top.code, 0, top.stderr);
    const { commands } = parseHelp(top.stdout);
    assert.ok(commands.includes('run') && commands.includes('check'), `commands from --help: ${commands.join(' ')}`);
    for (const command of commands.filter((c) => c !== 'help')) {
      assert.ok(hasItem(page, command), `sockvisord(8) has no ".It Cm ${command}"`);
      assert.match(synopsis, new RegExp(`Cm ${escape(command)}\\b`), `the SYNOPSIS of sockvisord(8) lacks ${command}`);
      const help = await run(process.execPath, [SOCKVISORD, command, '--help']);
      assert.equal(help.code, 0, help.stderr);
      const { options } = parseHelp(help.stdout);
      assert.ok(options.length > 0, `no options parsed from sockvisord ${command} --help`);
      for (const o of options) {
        const documented = (l: string) => (o.short !== undefined && mentionsOption(l, o.short)) || (o.long !== undefined && mentionsOption(l, o.long));
        assert.ok(items.some(documented), `sockvisord(8) has no item for ${command} ${optionName(o)}`);
        assert.ok(synopsis.split('\n').some(documented), `the SYNOPSIS of sockvisord(8) lacks ${command} ${optionName(o)}`);
      }
    }
  });

  test('sockvisor.yaml(5) documents every key the parsers accept', async () => {
    const page = await readText(PAGES.yaml);
    const daemon = section(page, '.Sh THE DAEMON CONFIGURATION');
    const keys = daemonConfigKeys();
    for (const key of [...keys.top, ...keys.control, ...keys.logs]) assert.ok(hasItem(daemon, key), `THE DAEMON CONFIGURATION has no ".It Cm ${key}"`);

    const supervise = section(page, '.Ss The supervise block');
    const service = serviceKeys();
    assert.ok(SUPERVISE_KEYS.length >= 18, `SUPERVISE_KEYS: ${SUPERVISE_KEYS.join(', ')}`);
    for (const key of [...SUPERVISE_KEYS, ...service.backoff]) assert.ok(hasItem(supervise, key), `The supervise block has no ".It Cm ${key}"`);
    for (const key of service.logs) assert.match(supervise, new RegExp(`Cm ${escape(key)}\\b`), `The supervise block does not mention logs.${key}`);

    const tags = section(page, '.Ss Tags');
    for (const key of service.socket) assert.match(tags, new RegExp(`Cm ${escape(key)}\\b`), `Tags does not document the !socket key ${key}`);

    const runner = section(page, '.Ss Keys the Python runner reads');
    for (const key of ['args', 'path', 'command', 'script', 'stderr']) assert.ok(hasItem(runner, key), `Keys the Python runner reads has no ".It Cm ${key}"`);
    const runnerItems = itemLines(runner).join('\n');
    for (const flag of FLAG_KEYS) assert.match(runnerItems, new RegExp(`\\b${flag}\\b`), `Keys the Python runner reads lacks the flag ${flag}`);
  });

  test('the examples in sockvisor.yaml(5) parse without a diagnostic', async () => {
    const blocks = literalBlocks(section(await readText(PAGES.yaml), '.Sh EXAMPLES'));
    const services = blocks.filter((b) => b.startsWith('%TAG'));
    const configs = blocks.filter((b) => !b.startsWith('%TAG'));
    assert.ok(services.length >= 1 && configs.length >= 1, `examples: ${services.length} services, ${configs.length} configs`);
    for (const text of configs) {
      const { diagnostics } = parseDaemonConfig(text, 'example.yaml', '/usr/local/etc/sockvisor.yaml');
      assert.equal(diagnostics.length, 0, `${describeDiagnostics(diagnostics)}\nin:\n${text}`);
    }
    for (const text of services) {
      const { diagnostics } = parseServiceFile(text, 'example.yaml', 'example', '/usr/local/etc/sockvisor.d');
      assert.equal(diagnostics.length, 0, `${describeDiagnostics(diagnostics)}\nin:\n${text}`);
    }
  });

  test('sockvisord(8) documents every rc.conf variable of rc.d/sockvisord, with its default', async (t) => {
    let script: string;
    try {
      script = await readText('rc.d/sockvisord');
    } catch {
      t.skip('rc.d/sockvisord is not there yet');
      return;
    }
    const page = section(await readText(PAGES.sockvisord), '.Sh STARTING AT BOOT');
    // : "${sockvisord_config:=/usr/local/etc/sockvisor.yaml}", quoted or not
    const variables = [...script.matchAll(/^:\s*"?\$\{(sockvisord_\w+):?=([^}]*)\}"?\s*$/gm)].map(([, name, value]) => [name!, value!.replace(/^"(.*)"$/, '$1')] as const);
    assert.ok(variables.length > 0, 'no `: ${sockvisord_...:=...}` defaults found in rc.d/sockvisord');
    for (const [name, value] of variables) {
      const lines = page.split('\n');
      const start = lines.findIndex((l) => l === `.It Va ${name}`);
      assert.ok(start >= 0, `sockvisord(8) STARTING AT BOOT has no ".It Va ${name}"`);
      const next = lines.findIndex((l, i) => i > start && (l.startsWith('.It ') || l === '.El'));
      const text = lines.slice(start, next).join('\n');
      if (value !== '' && !value.includes('$')) assert.ok(text.includes(value), `sockvisord(8) gives ${name} a default other than rc.d/sockvisord's "${value}":\n${text}`);
    }
  });
});

/** `Key=value` lines of a unit section, comments and blank lines left out; a key may repeat. */
function unitSettings(unit: string, sectionName: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let current = '';
  for (const raw of unit.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = header[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    if (current === sectionName && eq > 0) out.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return out;
}

/** systemd's time span, in seconds: `60s`, `1min 30s`, `90`. */
function seconds(span: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, sec: 1, m: 60, min: 60, h: 3600, hr: 3600 };
  let total = 0;
  for (const m of span.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]*)/g)) total += Number(m[1]) * (units[m[2] || 's'] ?? NaN);
  return total;
}

/** systemd-analyze verify, with our pages on MANPATH for Documentation= (or --man=no without man). */
async function verify(systemdAnalyze: string, unitFile: string): Promise<{ code: number; lines: string[] }> {
  const tree = await hermeticManTree();
  const man = commandPath('man') !== undefined;
  const r = await run(systemdAnalyze, ['verify', ...(man ? [] : ['--man=no']), unitFile], { env: { ...process.env, MANPATH: tree.dir }, timeoutMs: 120_000 });
  return { code: r.code, lines: (r.stdout + r.stderr).split('\n').filter((l) => l.trim() !== '') };
}

describe('systemd unit', () => {
  test('systemd-analyze verify passes on a copy pointed at this checkout, and its ExecStartPre works', async (t) => {
    const systemdAnalyze = commandPath('systemd-analyze');
    if (!systemdAnalyze) {
      t.skip('systemd-analyze is not installed (it comes with systemd)');
      return;
    }
    const dir = await tempDir('sockvisor-unit-');
    const config = path.join(dir, 'sockvisor.yaml');
    await fs.writeFile(config, `services: ${path.join(ROOT, 'etc/sockvisor.d')}\n`);
    const unit = (await fs.readFile(UNIT, 'utf8'))
      .replaceAll('/usr/bin/node', process.execPath)
      .replaceAll('/usr/lib/node_modules/sockvisor', ROOT)
      .replaceAll('/etc/sockvisor.yaml', config);
    const copy = path.join(dir, 'sockvisord.service');
    await fs.writeFile(copy, unit);

    const r = await verify(systemdAnalyze, copy);
    assert.deepEqual(r.lines, [], `systemd-analyze verify ${copy}:\n${r.lines.join('\n')}`);
    assert.equal(r.code, 0);

    // Every path the Exec lines name now exists, and the pre-start check passes on the samples.
    const service = unitSettings(unit, 'Service');
    for (const [key, value] of service.filter(([k]) => k.startsWith('Exec'))) {
      for (const word of value.split(/\s+/).filter((w) => w.startsWith('/'))) {
        await fs.access(word).catch(() => assert.fail(`${key}: ${word} does not exist`));
      }
    }
    const pre = service.find(([k]) => k === 'ExecStartPre');
    assert.ok(pre, 'no ExecStartPre');
    const [exe, ...args] = pre[1].split(/\s+/);
    const check = await run(exe!, args);
    assert.equal(check.code, 0, `ExecStartPre ${pre[1]}:\n${check.stdout}${check.stderr}`);
  });

  test('systemd-analyze verify of the unit as shipped reports only Exec programs missing on this host', async (t) => {
    const systemdAnalyze = commandPath('systemd-analyze');
    if (!systemdAnalyze) {
      t.skip('systemd-analyze is not installed (it comes with systemd)');
      return;
    }
    const unit = await fs.readFile(UNIT, 'utf8');
    const programs = new Set(unitSettings(unit, 'Service').filter(([k]) => k.startsWith('Exec')).map(([, v]) => v.replace(/^[-@:+!]+/, '').split(/\s+/)[0]!));
    const r = await verify(systemdAnalyze, UNIT);
    const unexpected = r.lines.filter((l) => {
      const m = /Command (\S+) is not executable: No such file or directory$/.exec(l);
      return !(m && programs.has(m[1]!));
    });
    assert.deepEqual(unexpected, [], `systemd-analyze verify ${UNIT}:\n${r.lines.join('\n')}`);
    assert.ok(r.code === 0 || r.lines.length > 0, `exit ${r.code} without a message`);
  });

  test('the unit keeps what the daemon needs', async () => {
    const unit = await fs.readFile(UNIT, 'utf8');
    const settings = unitSettings(unit, 'Service');
    const get = (key: string): string | undefined => settings.filter(([k]) => k === key).at(-1)?.[1];
    const yes = (key: string): boolean => /^(yes|true|on|1)$/i.test(get(key) ?? '');

    assert.equal(get('Type'), 'simple');
    assert.match(get('ExecStartPre') ?? '', /sockvisord\.js check -c \/etc\/sockvisor\.yaml$/);
    assert.match(get('ExecStart') ?? '', /sockvisord\.js run -c \/etc\/sockvisor\.yaml$/);
    assert.equal(get('ExecReload'), '/bin/kill -HUP $MAINPID');
    // SIGTERM to the daemon alone: it stops its services itself, each within its stop_timeout.
    assert.equal(get('KillMode'), 'mixed');
    assert.ok(seconds(get('TimeoutStopSec') ?? '90s') >= 20, 'TimeoutStopSec must leave room for the default stop_timeout of 10s');
    assert.equal(get('Restart'), 'on-failure');

    // The daemon runs as root: it binds ports below 1024, creates network namespaces and switches
    // services to their users. None of these may come back without rethinking that.
    for (const key of ['User', 'DynamicUser', 'SystemCallFilter', 'ProtectProc', 'ProcSubset', 'AmbientCapabilities']) assert.equal(get(key), undefined, `${key}= would break the daemon or its sandbox`);
    for (const key of ['PrivateNetwork', 'PrivateUsers', 'MemoryDenyWriteExecute', 'PrivateTmp', 'PrivateDevices']) assert.ok(!yes(key), `${key}=yes would break the daemon or its services`);
    assert.notEqual(get('ProtectSystem'), 'strict', 'services bind unix sockets wherever their files say');
    const namespaces = get('RestrictNamespaces');
    if (namespaces !== undefined && !/^(no|false|off|0)$/i.test(namespaces)) {
      const allowed = namespaces.split(/\s+/);
      assert.ok(!namespaces.startsWith('~') && allowed.includes('net') && allowed.includes('user'), `RestrictNamespaces=${namespaces} must allow net and user`);
    }
    const caps = get('CapabilityBoundingSet');
    if (caps !== undefined) {
      for (const cap of ['CAP_NET_BIND_SERVICE', 'CAP_SYS_ADMIN', 'CAP_SETUID', 'CAP_SETGID', 'CAP_KILL', 'CAP_CHOWN', 'CAP_FOWNER']) assert.ok(!caps.startsWith('~') && caps.split(/\s+/).includes(cap), `CapabilityBoundingSet= lacks ${cap}`);
    }
    const families = get('RestrictAddressFamilies');
    if (families !== undefined) for (const f of ['AF_UNIX', 'AF_INET', 'AF_INET6']) assert.ok(families.split(/\s+/).includes(f), `RestrictAddressFamilies= lacks ${f}`);
  });
});

describe('sample configuration', () => {
  test('etc/sockvisor.yaml parses without a diagnostic, sets every key, and matches the rc.d defaults', async () => {
    const text = await fs.readFile(SAMPLE_CONFIG, 'utf8');
    const { config, diagnostics } = parseDaemonConfig(text, 'etc/sockvisor.yaml', SAMPLE_CONFIG);
    assert.equal(diagnostics.length, 0, describeDiagnostics(diagnostics));
    const keys = daemonConfigKeys();
    for (const key of keys.top) assert.match(text, new RegExp(`^${escape(key)}:`, 'm'), `etc/sockvisor.yaml does not set ${key}`);
    for (const key of [...keys.control, ...keys.logs]) assert.match(text, new RegExp(`^ {2}${escape(key)}:`, 'm'), `etc/sockvisor.yaml does not set ${key}`);
    // rc.conf: sockvisord_pidfile defaults to /var/run/sockvisord.pid and must match pidfile:.
    assert.equal(config.pidfile, '/var/run/sockvisord.pid');
    assert.equal(config.servicesDir, '/usr/local/etc/sockvisor.d');
    assert.equal(config.control.socket, '/var/run/sockvisor.sock');
    assert.equal(config.logs.dir, '/var/log/sockvisor');
  });

  test('etc/sockvisor.d/example.yaml passes sockvisord check with no error or warning', async () => {
    const r = await run(process.execPath, [SOCKVISORD, 'check', SAMPLE_SERVICE]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^1 service, 0 errors, 0 warnings$/m, r.stdout);
    assert.match(r.stdout, /^ {2}socket: +args\.listener +bind /m, r.stdout);
  });
});
