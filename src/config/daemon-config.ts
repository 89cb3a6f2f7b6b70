/** The daemon config, `sockvisor.yaml`. Pure: text in, typed config with absolute paths out. */
import path from 'node:path';
import { error, type Diagnostic, type SourcePos } from './diagnostics.js';
import { MapReader, bool, duration, mapOf, oneOf, problem, str, type FieldReader } from './map-reader.js';
import { readLogLimits, type LogLimits } from './supervise.js';
import { describe, parseYamlDocument } from './yaml-document.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface DaemonConfig {
  /** Absolute path of the config file, or undefined when running on built-in defaults. */
  readonly file: string | undefined;
  readonly servicesDir: string;
  /** As written: an absolute path or a name looked up in PATH. */
  readonly python: string;
  readonly control: { readonly socket: string; readonly mode: number; readonly group: string | undefined; readonly idleTimeoutMs: number };
  readonly pidfile: string;
  readonly logs: { readonly dir: string } & LogLimits;
  readonly logLevel: LogLevel;
  readonly watch: boolean;
  readonly positions: Readonly<Record<string, SourcePos>>;
}

export function defaultConfigPath(platform: NodeJS.Platform): string {
  return platform === 'freebsd' ? '/usr/local/etc/sockvisor.yaml' : '/etc/sockvisor.yaml';
}

/** Defaults, with relative paths taken from `baseDir` (the config file's directory). */
export function defaultDaemonConfig(baseDir: string, file: string | undefined): DaemonConfig {
  return {
    file,
    servicesDir: path.resolve(baseDir, 'sockvisor.d'),
    python: 'python3',
    control: { socket: '/var/run/sockvisor.sock', mode: 0o600, group: undefined, idleTimeoutMs: 30_000 },
    pidfile: '/var/run/sockvisord.pid',
    logs: { dir: '/var/log/sockvisor', maxBytes: 10 * 1024 ** 2, backups: 5 },
    logLevel: 'info',
    watch: true,
    positions: {},
  };
}

export interface ParsedDaemonConfig {
  readonly config: DaemonConfig;
  readonly diagnostics: Diagnostic[];
}

/** `shownFile` names the file in messages; `realFile` is where relative paths start from. */
export function parseDaemonConfig(text: string, shownFile: string, realFile = path.resolve(shownFile)): ParsedDaemonConfig {
  const file = shownFile;
  const baseDir = path.dirname(realFile);
  const defaults = defaultDaemonConfig(baseDir, realFile);
  const { value, diagnostics } = parseYamlDocument(text, file);
  if (value === undefined || value.kind === 'null') return { config: defaults, diagnostics: diagnostics.filter((d) => !/document is empty/.test(d.message)) };
  const map = mapOf(value, 'the daemon config', diagnostics);
  if (!map) return { config: defaults, diagnostics };
  const r = new MapReader(map, 'config', ['services', 'python', 'control', 'pidfile', 'logs', 'log_level', 'watch'], diagnostics);
  const pathIn = (dir: string): FieldReader<string> => (v) =>
    v.kind === 'str' && v.value !== '' ? path.resolve(dir, v.value) : problem(`expected a path, got ${describe(v)}`);

  const control = { ...defaults.control };
  const controlValue = r.raw('control');
  if (controlValue !== undefined) {
    const cmap = mapOf(controlValue, 'config.control', diagnostics);
    if (cmap) {
      const c = new MapReader(cmap, 'config.control', ['socket', 'mode', 'group', 'idle_timeout'], diagnostics);
      control.socket = c.read('socket', pathIn(baseDir), control.socket);
      control.mode = c.read('mode', fileMode, control.mode);
      control.group = c.read('group', str, undefined);
      control.idleTimeoutMs = c.read('idle_timeout', duration, control.idleTimeoutMs);
      if (control.group !== undefined && controlValue.kind === 'map' && c.raw('mode') === undefined) control.mode = 0o660;
    }
  }
  let logs = defaults.logs;
  const logsValue = r.raw('logs');
  if (logsValue !== undefined && logsValue.kind === 'map') {
    const dirEntry = logsValue.entries.find((e) => e.key.kind === 'str' && e.key.value === 'dir');
    const limitsOnly = { ...logsValue, entries: logsValue.entries.filter((e) => e !== dirEntry) };
    const limits = readLogLimits(limitsOnly, 'config.logs', diagnostics, defaults.logs);
    let dir = defaults.logs.dir;
    if (dirEntry) {
      const d = pathIn(baseDir)(dirEntry.value);
      if (typeof d === 'string') dir = d;
      else diagnostics.push(error(dirEntry.value.pos, `config.logs.dir: ${d.problem}`));
    }
    logs = { dir, ...limits };
  } else if (logsValue !== undefined) {
    mapOf(logsValue, 'config.logs', diagnostics);
  }
  const config: DaemonConfig = {
    file: defaults.file,
    servicesDir: r.read('services', pathIn(baseDir), defaults.servicesDir),
    python: r.read('python', str, defaults.python),
    control,
    pidfile: r.read('pidfile', pathIn(baseDir), defaults.pidfile),
    logs,
    logLevel: r.read('log_level', oneOf(LOG_LEVELS), defaults.logLevel),
    watch: r.read('watch', bool, defaults.watch),
    positions: r.positions,
  };
  return { config, diagnostics };
}

/** `"0600"`, `0600` or `0o600`: always octal, since that is how modes are written. */
const fileMode: FieldReader<number> = (v) => {
  const written = 'raw' in v ? v.raw : '';
  const m = /^0?o?([0-7]{3,4})$/.exec(written);
  if (!m) return problem(`"${written}" is not an octal file mode such as "0600"`);
  const mode = Number.parseInt(m[1]!, 8);
  if (mode & 0o007) return problem(`mode ${written} lets every local user in; use "0600", or "0660" with group:`);
  return mode;
};
