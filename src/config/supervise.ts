/** The `supervise:` block of a service file: how sockvisord runs it. Read by the daemon only. Pure. */
import os from 'node:os';
import path from 'node:path';
import { error, type Diagnostic, type SourcePos } from './diagnostics.js';
import { MapReader, bool, duration, intIn, mapOf, numberIn, oneOf, problem, size, text, type FieldReader } from './map-reader.js';
import { describe } from './yaml-document.js';
import type { ArgValue } from './values.js';

export type RestartPolicy = 'always' | 'on-failure' | 'never';
export type SandboxMode = 'strict' | 'best-effort' | 'off';
export type Program = { readonly kind: 'python' } | { readonly kind: 'exec'; readonly argv: readonly string[] };

export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  readonly jitter: number;
  readonly resetAfterMs: number;
}

export interface LogLimits {
  readonly maxBytes: number;
  readonly backups: number;
}

export interface Supervise {
  readonly program: Program;
  /** As written; undefined means the daemon's interpreter. */
  readonly python: string | undefined;
  readonly replicas: number;
  readonly restart: RestartPolicy;
  readonly startMs: number;
  readonly startRetries: number;
  readonly backoff: Backoff;
  /** Full name, `SIGTERM`. */
  readonly stopSignal: string;
  readonly stopTimeoutMs: number;
  readonly user: string | undefined;
  readonly group: string | undefined;
  readonly sandbox: SandboxMode;
  readonly env: Readonly<Record<string, string>>;
  readonly directory: string;
  readonly autostart: boolean;
  /** Undefined means the daemon's limits. */
  readonly logs: LogLimits | undefined;
  /** Modules the runner imports before a Capsicum lock-down (FreeBSD), beyond its defaults. */
  readonly preload: readonly string[];
  /** Keep one started interpreter waiting to replace a crashed process. */
  readonly standby: boolean;
  /** Directories the sandbox lets the service write beneath (a scratch directory, say). */
  readonly writable: readonly string[];
  /** For a program: read and execute on the system's program and library directories too. */
  readonly systemGrants: boolean;
  /** Where each key was written, for errors found later (an interpreter that is missing, say). */
  readonly positions: Readonly<Record<string, SourcePos>>;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 100, maxMs: 30_000, factor: 2, jitter: 0.2, resetAfterMs: 60_000 };

export const SUPERVISE_KEYS = [
  'program', 'python', 'replicas', 'restart', 'start_seconds', 'start_retries', 'backoff', 'stop_signal',
  'stop_timeout', 'user', 'group', 'sandbox', 'env', 'directory', 'autostart', 'logs', 'preload', 'standby',
  'writable', 'system_grants',
] as const;

export const MAX_REPLICAS = 1024;

export function defaultSupervise(): Supervise {
  return {
    program: { kind: 'python' }, python: undefined, replicas: 1, restart: 'on-failure', startMs: 1000, startRetries: 5,
    backoff: DEFAULT_BACKOFF, stopSignal: 'SIGTERM', stopTimeoutMs: 10_000, user: undefined, group: undefined,
    sandbox: 'strict', env: {}, directory: '/', autostart: true, logs: undefined, preload: [], standby: false,
    writable: [], systemGrants: true, positions: {},
  };
}

export function readSupervise(value: ArgValue | undefined, diagnostics: Diagnostic[]): Supervise {
  const defaults = defaultSupervise();
  if (value === undefined || value.kind === 'null') return defaults;
  const map = mapOf(value, 'supervise', diagnostics);
  if (!map) return defaults;
  const r = new MapReader(map, 'supervise', SUPERVISE_KEYS, diagnostics);
  const backoffValue = r.raw('backoff');
  const logsValue = r.raw('logs');
  const envValue = r.raw('env');
  return {
    program: r.read('program', programReader, defaults.program),
    python: r.read('python', pythonReader, undefined),
    replicas: r.read('replicas', intIn(1, MAX_REPLICAS), 1),
    restart: r.read('restart', oneOf(['always', 'on-failure', 'never'] as const), defaults.restart),
    startMs: r.read('start_seconds', duration, defaults.startMs),
    startRetries: r.read('start_retries', intIn(0, 1_000_000), defaults.startRetries),
    backoff: backoffValue === undefined ? DEFAULT_BACKOFF : readBackoff(backoffValue, diagnostics),
    stopSignal: r.read('stop_signal', signalReader, defaults.stopSignal),
    stopTimeoutMs: r.read('stop_timeout', duration, defaults.stopTimeoutMs),
    user: r.read('user', idReader, undefined),
    group: r.read('group', idReader, undefined),
    sandbox: r.read('sandbox', sandboxReader, defaults.sandbox),
    env: envValue === undefined ? {} : readEnv(envValue, diagnostics),
    directory: r.read('directory', absolutePath, defaults.directory),
    autostart: r.read('autostart', bool, true),
    logs: logsValue === undefined ? undefined : readLogLimits(logsValue, 'supervise.logs', diagnostics, { maxBytes: 10 * 1024 ** 2, backups: 5 }),
    preload: r.read('preload', moduleList, []),
    standby: r.read('standby', bool, false),
    writable: r.read('writable', pathList, []),
    systemGrants: r.read('system_grants', bool, true),
    positions: r.positions,
  };
}

const programReader: FieldReader<Program> = (v) => {
  if (v.kind === 'str' && v.value === 'python') return { kind: 'python' };
  if (v.kind === 'seq') {
    if (v.items.length === 0) return problem('the program list is empty', 'write program: [/usr/local/bin/gunicorn, app:app]');
    const argv: string[] = [];
    for (const item of v.items) {
      const t = text(item);
      if (typeof t !== 'string') return problem(`program arguments must be strings; ${describe(item)} is not`);
      argv.push(t);
    }
    if (argv[0] === '') return problem('the program name is empty');
    return { kind: 'exec', argv };
  }
  return problem(`expected python or a list [exe, arg, ...], got ${describe(v)}`);
};

const sandboxChoices = oneOf(['strict', 'best-effort', 'off'] as const);

// `off` unquoted is a YAML 1.1 boolean; it still means what the operator wrote.
const sandboxReader: FieldReader<SandboxMode> = (v) => (v.kind === 'bool' && !v.value && v.raw.toLowerCase() === 'off' ? 'off' : sandboxChoices(v));

const MODULE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

const moduleList: FieldReader<string[]> = (v) => {
  if (v.kind !== 'seq') return problem(`expected a list of module names, got ${describe(v)}`, 'write preload: [_ssl, _hashlib]');
  const names: string[] = [];
  for (const item of v.items) {
    if (item.kind !== 'str' || !MODULE_NAME.test(item.value)) return problem(`${describe(item)} is not a module name`);
    names.push(item.value);
  }
  return names;
};

const pythonReader: FieldReader<string> = (v) => {
  if (v.kind !== 'str' || v.value === '') return problem(`expected an interpreter path or name, got ${describe(v)}`);
  if (!v.value.startsWith('/') && v.value.includes('/')) return problem(`"${v.value}" must be an absolute path or a bare name looked up in PATH`);
  return v.value;
};

const SIGNALS = os.constants.signals as Record<string, number>;

export const signalReader: FieldReader<string> = (v) => {
  if (v.kind === 'str') {
    const name = v.value.toUpperCase();
    const full = name.startsWith('SIG') ? name : `SIG${name}`;
    if (full in SIGNALS && full !== 'SIGKILL' && full !== 'SIGSTOP') return full;
    if (full === 'SIGKILL' || full === 'SIGSTOP') return problem(`${full} cannot be caught, so it cannot stop a service gracefully`, 'use TERM, INT, QUIT or HUP');
  }
  return problem(`${describe(v)} is not a signal name`, 'use a name such as TERM, INT, QUIT, HUP, USR1 or USR2');
};

const idReader: FieldReader<string> = (v) => {
  if (v.kind === 'int' && v.value >= 0n && v.value <= 0xfffffffen) return v.raw;
  if (v.kind === 'str' && /^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(v.value)) return v.value;
  return problem(`${describe(v)} is not a user or group name or id`);
};

const pathList: FieldReader<string[]> = (v) => {
  if (v.kind !== 'seq') return problem(`expected a list of absolute directory paths, got ${describe(v)}`, 'write writable: [/var/tmp/myapp]');
  const paths: string[] = [];
  for (const item of v.items) {
    const p = absolutePath(item);
    if (typeof p !== 'string') return p;
    paths.push(p);
  }
  return paths;
};

const absolutePath: FieldReader<string> = (v) => {
  if (v.kind !== 'str' || !path.isAbsolute(v.value)) return problem(`expected an absolute path, got ${describe(v)}`);
  return path.normalize(v.value);
};

function readBackoff(value: ArgValue, diagnostics: Diagnostic[]): Backoff {
  const map = mapOf(value, 'supervise.backoff', diagnostics);
  if (!map) return DEFAULT_BACKOFF;
  const r = new MapReader(map, 'supervise.backoff', ['initial', 'max', 'factor', 'jitter', 'reset_after'], diagnostics);
  const backoff: Backoff = {
    initialMs: r.read('initial', duration, DEFAULT_BACKOFF.initialMs),
    maxMs: r.read('max', duration, DEFAULT_BACKOFF.maxMs),
    factor: r.read('factor', numberIn(1, 100), DEFAULT_BACKOFF.factor),
    jitter: r.read('jitter', numberIn(0, 1), DEFAULT_BACKOFF.jitter),
    resetAfterMs: r.read('reset_after', duration, DEFAULT_BACKOFF.resetAfterMs),
  };
  if (backoff.maxMs < backoff.initialMs) {
    diagnostics.push(error(r.positions['max'] ?? map.pos, `supervise.backoff.max (${backoff.maxMs}ms) is below initial (${backoff.initialMs}ms)`));
  }
  return backoff;
}

export function readLogLimits(value: ArgValue, where: string, diagnostics: Diagnostic[], defaults: LogLimits): LogLimits {
  const map = mapOf(value, where, diagnostics);
  if (!map) return defaults;
  const r = new MapReader(map, where, ['max_bytes', 'backups'], diagnostics);
  return { maxBytes: r.read('max_bytes', size, defaults.maxBytes), backups: r.read('backups', intIn(0, 1000), defaults.backups) };
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function readEnv(value: ArgValue, diagnostics: Diagnostic[]): Record<string, string> {
  const map = mapOf(value, 'supervise.env', diagnostics);
  const env: Record<string, string> = {};
  if (!map) return env;
  for (const { key, value: v } of map.entries) {
    if (key.kind !== 'str' || !ENV_NAME.test(key.value)) {
      diagnostics.push(error(key.pos, `supervise.env: ${describe(key)} is not a valid environment variable name`));
      continue;
    }
    const t = text(v);
    if (typeof t !== 'string') diagnostics.push(error(v.pos, `supervise.env.${key.value}: ${t.problem}`));
    else if (t.includes('\0')) diagnostics.push(error(v.pos, `supervise.env.${key.value}: contains a NUL byte`));
    else env[key.value] = t;
  }
  return env;
}
