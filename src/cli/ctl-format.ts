/**
 * What sockvisorctl prints, laid out the way supervisorctl lays it out. Pure: control results in
 * (docs/control-protocol.md), lines and an exit code out.
 */

/** supervisorctl's exit codes: the LSB init-script ones, and the LSB `status` ones. */
export const EXIT = {
  OK: 0,
  /** Any failure that has no more specific code. */
  FAILED: 1,
  /** `status`: some listed process is not RUNNING. */
  STATUS_NOT_RUNNING: 3,
  /** `status`: a name matched nothing; and every command when the daemon cannot be reached. */
  STATUS_UNKNOWN: 4,
  UNREACHABLE: 4,
  /** `pid NAME`: the process is not running (its pid is 0). */
  NOT_RUNNING: 7,
} as const;

export type ProcessState = 'STOPPED' | 'STARTING' | 'RUNNING' | 'BACKOFF' | 'STOPPING' | 'EXITED' | 'FATAL';

/** A held socket: the daemon sends address strings; `{address, key}` objects are shown too. */
export type SocketRef = string | { readonly address?: string; readonly bound?: string; readonly key?: string; readonly keyPath?: string };

export interface ProcessInfo {
  readonly name: string;
  readonly service: string;
  readonly index?: number;
  readonly state: ProcessState | string;
  readonly pid?: number;
  /** Seconds, for running processes. */
  readonly uptime?: number;
  readonly description?: string;
  /** Something the operator should know beyond the state: `swap failed, kept generation 1: ...`. */
  readonly note?: string;
  readonly sockets?: readonly SocketRef[];
}

export interface ConfigStatus {
  readonly ok: boolean;
  readonly at?: number;
  readonly errors?: readonly string[];
}

export interface StatusResult {
  readonly processes: readonly ProcessInfo[];
  readonly unknown?: readonly string[];
  readonly config?: ConfigStatus;
}

export interface NameResult {
  readonly name: string;
  readonly ok: boolean;
  readonly error?: string;
}

/** The result of `start`, `stop`, `restart`, `signal` and `clear`. */
export interface ActionResult {
  readonly results: readonly NameResult[];
  readonly unknown?: readonly string[];
}

export interface PidResult {
  /** The daemon's own pid (`pid` without a name). */
  readonly pid?: number;
  readonly pids?: readonly { readonly name: string; readonly pid: number }[];
  readonly unknown?: readonly string[];
}

export interface AvailResult {
  readonly services: readonly { readonly name: string; readonly replicas: number; readonly autostart: boolean; readonly inUse: boolean }[];
}

export interface ConfigChange {
  readonly service: string;
  /** `add`, `remove`, `swap`, `scale` or `update`. */
  readonly action: string;
  readonly fields?: readonly string[];
  readonly replicas?: { readonly from: number; readonly to: number };
  readonly moves?: readonly { readonly key: string; readonly from: string; readonly to: string }[];
  /** After a reload: why this change was not applied. */
  readonly error?: string;
}

/** The result of `reread` and `reload`. */
export interface ChangesResult {
  readonly ok: boolean;
  readonly errors?: readonly string[];
  readonly changes?: readonly ConfigChange[];
  /** Set when the config loaded but a new socket could not be bound. */
  readonly failedAt?: 'bind';
}

export interface Formatted {
  readonly lines: string[];
  readonly exitCode: number;
}

/** supervisorctl's name column: at least 33 wide, and one space past the longest name. */
export function nameColumnWidth(names: readonly string[]): number {
  return Math.max(33, ...names.map((n) => n.length + 1));
}

/** `H:MM:SS`; the hours go past 24, as in supervisorctl. */
export function formatUptime(seconds: number): string {
  const s = Number.isFinite(seconds) ? Math.max(0, Math.floor(seconds)) : 0;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/** What supervisorctl says of a process that the daemon sent no description for. */
const FALLBACK_DESCRIPTIONS: Readonly<Record<string, string>> = {
  STOPPED: 'Not started',
  BACKOFF: 'Exited too quickly (process log may have details)',
  FATAL: 'Exited too quickly (process log may have details)',
};

/**
 * `pid 4711, uptime 0:05:02` for a running process, else the daemon's reason text; then the
 * daemon's note, such as why the last swap was rolled back.
 */
export function describeProcess(p: ProcessInfo): string {
  const base =
    p.state === 'RUNNING' && typeof p.pid === 'number' && p.pid > 0 && typeof p.uptime === 'number'
      ? `pid ${p.pid}, uptime ${formatUptime(p.uptime)}`
      : p.description || (FALLBACK_DESCRIPTIONS[p.state] ?? '');
  if (!p.note) return base;
  return base ? `${base}; ${p.note}` : p.note;
}

export function noSuchProcess(name: string): string {
  return `${name}: ERROR (no such process)`;
}

/** One status line: name, state, description, in supervisorctl's columns. */
export function formatProcessLine(p: ProcessInfo, width: number): string {
  return (p.name.padEnd(width) + p.state.padEnd(10) + describeProcess(p)).trimEnd();
}

export function formatSocket(ref: SocketRef): string {
  if (typeof ref === 'string') return ref;
  const address = ref.address ?? ref.bound ?? '?';
  const key = ref.key ?? ref.keyPath;
  return key ? `${address} (${key})` : address;
}

/** `web sockets: 127.0.0.1:8080, [::1]:8080`: one line per service that holds sockets. */
export function formatSocketLines(processes: readonly ProcessInfo[]): string[] {
  const byService = new Map<string, string[]>();
  for (const p of processes) {
    for (const ref of p.sockets ?? []) {
      let list = byService.get(p.service);
      if (!list) byService.set(p.service, (list = []));
      const text = formatSocket(ref);
      if (!list.includes(text)) list.push(text);
    }
  }
  return [...byService].map(([service, sockets]) => `${service} sockets: ${sockets.join(', ')}`);
}

/** `config: last load failed: <first error> (N more)`, or nothing when the last load went well. */
export function formatConfigLine(config: ConfigStatus | undefined): string | undefined {
  if (!config || config.ok) return undefined;
  const errors = config.errors ?? [];
  if (errors.length === 0) return 'config: last load failed';
  const more = errors.length > 1 ? ` (${errors.length - 1} more)` : '';
  return `config: last load failed: ${errors[0]}${more}`;
}

/**
 * The whole `status` output. Exit code: 4 when a name is unknown, else 3 when a listed process is
 * not RUNNING, else 0.
 */
export function formatStatus(r: StatusResult): Formatted {
  const unknown = r.unknown ?? [];
  const lines = unknown.map(noSuchProcess);
  const width = nameColumnWidth(r.processes.map((p) => p.name));
  for (const p of r.processes) lines.push(formatProcessLine(p, width));
  lines.push(...formatSocketLines(r.processes));
  const config = formatConfigLine(r.config);
  if (config !== undefined) lines.push(config);
  return { lines, exitCode: statusExitCode(r) };
}

export function statusExitCode(r: StatusResult): number {
  if ((r.unknown ?? []).length > 0) return EXIT.STATUS_UNKNOWN;
  if (r.processes.some((p) => p.state !== 'RUNNING')) return EXIT.STATUS_NOT_RUNNING;
  return EXIT.OK;
}

/** `web:0: started` or `web:0: ERROR (not running)` per name; exit 1 when any failed or was unknown. */
export function formatActionResults(r: ActionResult, verb: string): Formatted {
  const unknown = r.unknown ?? [];
  const lines = unknown.map(noSuchProcess);
  let failed = unknown.length > 0;
  for (const one of r.results) {
    if (one.ok) lines.push(`${one.name}: ${verb}`);
    else {
      failed = true;
      lines.push(`${one.name}: ERROR (${one.error ?? 'failed'})`);
    }
  }
  return { lines, exitCode: failed ? EXIT.FAILED : EXIT.OK };
}

/**
 * Bare pids, as supervisorctl prints them; several processes (a service with replicas) get their
 * names beside them. Exit 1 for an unknown name, else 7 when a process is not running.
 */
export function formatPid(r: PidResult): Formatted {
  if (r.pids === undefined) return { lines: [String(r.pid ?? 0)], exitCode: EXIT.OK };
  const unknown = r.unknown ?? [];
  const lines = unknown.map(noSuchProcess);
  if (r.pids.length === 1) lines.push(String(r.pids[0]!.pid));
  else {
    const width = nameColumnWidth(r.pids.map((p) => p.name));
    for (const p of r.pids) lines.push(p.name.padEnd(width) + String(p.pid));
  }
  const exitCode = unknown.length > 0 ? EXIT.FAILED : r.pids.some((p) => !p.pid) ? EXIT.NOT_RUNNING : EXIT.OK;
  return { lines, exitCode };
}

/** `web                              in use    auto      2 replicas` */
export function formatAvail(r: AvailResult): Formatted {
  const width = nameColumnWidth(r.services.map((s) => s.name));
  const lines = r.services.map(
    (s) => s.name.padEnd(width) + (s.inUse ? 'in use' : 'avail').padEnd(10) + (s.autostart ? 'auto' : 'manual').padEnd(10) + `${s.replicas} replica${s.replicas === 1 ? '' : 's'}`,
  );
  return { lines, exitCode: EXIT.OK };
}

/**
 * One line per planned change, with the fields that caused it:
 * `web: new generation (command)`, `api: scaled 2 -> 4 (supervise.replicas)`.
 */
export function formatChange(c: ConfigChange): string {
  if (c.error !== undefined) return `${c.service}: ERROR (${c.error})`;
  const fields = c.fields ?? [];
  const cause = fields.length > 0 ? ` (${fields.join(', ')})` : '';
  switch (c.action) {
    case 'add':
      return `${c.service}: added`;
    case 'remove':
      return `${c.service}: removed`;
    case 'swap': {
      const moved = (c.moves ?? []).map((m) => `, socket ${m.from} -> ${m.to}`).join('');
      return `${c.service}: new generation${moved}${cause}`;
    }
    case 'scale':
      return `${c.service}: scaled ${c.replicas?.from ?? '?'} -> ${c.replicas?.to ?? '?'}${cause}`;
    case 'update':
      return `${c.service}: updated in place${cause}`;
    default:
      return `${c.service}: ${c.action}${cause}`;
  }
}

/**
 * `reread` and `reload`: one line per changed service, or supervisorctl's `No config updates to
 * processes`. A config that does not load, or a socket that cannot be bound, is an error (exit 1)
 * listed in full; so is a change that could not be applied.
 */
export function formatChanges(r: ChangesResult): Formatted {
  const lines: string[] = [];
  const changes = r.changes ?? [];
  const applyFailed = changes.some((c) => c.error !== undefined);
  if (!r.ok && !applyFailed) {
    const errors = r.errors ?? [];
    const count = `${errors.length} error${errors.length === 1 ? '' : 's'}`;
    lines.push(r.failedAt === 'bind' ? `ERROR (a socket could not be bound: ${count}; nothing changed)` : `ERROR (the config did not load: ${count}; nothing changed)`);
    for (const e of errors) lines.push(`  ${e}`);
    return { lines, exitCode: EXIT.FAILED };
  }
  if (changes.length === 0) lines.push('No config updates to processes');
  for (const c of changes) lines.push(formatChange(c));
  return { lines, exitCode: r.ok ? EXIT.OK : EXIT.FAILED };
}

/** The names tab completion offers: `all`, every service and every process. */
export function namesForCompletion(r: StatusResult): string[] {
  const names = new Set<string>(['all']);
  for (const p of r.processes) {
    names.add(p.service);
    names.add(p.name);
  }
  return [...names];
}
