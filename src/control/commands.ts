/** What each control command does to the daemon (docs/control-protocol.md). */
import os from 'node:os';
import type { LogFile } from '../logs/log-file.js';
import { readLastLines } from '../logs/tail.js';
import type { ServicePlan } from '../plan/reload-plan.js';
import type { ProcessSlot } from '../supervise/process-slot.js';
import { VERSION } from '../version.js';
import { describeProcess } from './describe.js';
import type { Request } from './frames.js';
import { resolveNames } from './names.js';
import type { Session } from './server.js';

export interface ProcessEntry {
  readonly name: string;
  readonly service: string;
  readonly index: number;
  readonly slot: ProcessSlot;
  /** How long a start may take before it counts as failed: start_seconds plus slack. */
  readonly startWaitMs: number;
  /** Shown after the description: why the last swap was rolled back. */
  readonly note?: string;
}

/** One line of a reload plan; after a reload, `error` says why it was not applied. */
export type ConfigChange = ServicePlan & { readonly error?: string };

export interface RestartResult {
  readonly name: string;
  readonly ok: boolean;
  readonly error?: string;
}

/** What the commands need from the daemon. */
export interface ControlTarget {
  processes(): ProcessEntry[];
  socketsOf(service: string): string[];
  logFile(service: string, stream: 'stdout' | 'stderr'): LogFile | undefined;
  readonly daemonLog: LogFile | undefined;
  serviceList(): { name: string; replicas: number; autostart: boolean }[];
  configStatus(): { ok: boolean; at: number; errors: string[] };
  reread(): Promise<{ ok: boolean; errors: string[]; changes: ConfigChange[] }>;
  reload(): Promise<{ ok: boolean; errors: string[]; changes: ConfigChange[]; failedAt?: 'bind'; timing?: { loadMs: number; planMs: number; applyMs: number } }>;
  /** New processes for these replicas of one service: swapped in, or with `hard` stop-then-start. */
  restart(service: string, indexes: readonly number[], hard: boolean): Promise<RestartResult[]>;
  requestShutdown(): void;
}

class BadArgs extends Error {}

function names(args: Record<string, unknown>, key = 'names'): string[] {
  const value = args[key];
  if (!Array.isArray(value) || value.some((n) => typeof n !== 'string') || value.length === 0) throw new BadArgs(`${key} must be a non-empty list of names`);
  return value as string[];
}

function numberArg(args: Record<string, unknown>, key: string, fallback: number): number {
  const value = args[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 1_000_000) throw new BadArgs(`${key} must be a whole number`);
  return value;
}

type Handler = (args: Record<string, unknown>, target: ControlTarget, request: Request, session: Session) => Promise<unknown>;

function pick(target: ControlTarget, wanted: string[]) {
  const all = target.processes();
  const { matched, unknown } = resolveNames(wanted, all);
  return { entries: all.filter((p) => matched.includes(p.name)), unknown };
}

const RUNNING_LIKE = new Set(['STARTING', 'RUNNING', 'BACKOFF']);

async function startOne(p: ProcessEntry): Promise<{ name: string; ok: boolean; error?: string }> {
  if (RUNNING_LIKE.has(p.slot.state.state)) return { name: p.name, ok: false, error: 'already started' };
  p.slot.start();
  const state = await p.slot.until((s) => s.state !== 'STARTING', p.startWaitMs);
  if (state.state === 'RUNNING') return { name: p.name, ok: true };
  if (state.state === 'STARTING') return { name: p.name, ok: true };
  // EXITED: it ran and ended before counting as started; FATAL/BACKOFF: it could not stay up.
  if (state.state === 'EXITED') return { name: p.name, ok: false, error: `exited at once (${state.reason})` };
  return { name: p.name, ok: false, error: state.reason ? `spawn error: ${state.reason}` : `spawn error: ${state.state}` };
}

async function stopOne(p: ProcessEntry): Promise<{ name: string; ok: boolean; error?: string }> {
  const state = p.slot.state.state;
  if (state !== 'STARTING' && state !== 'RUNNING' && state !== 'BACKOFF' && state !== 'STOPPING') return { name: p.name, ok: false, error: 'not running' };
  await p.slot.stop();
  return { name: p.name, ok: true };
}

const handlers: Record<string, Handler> = {
  async status(args, target) {
    const wanted = args['names'] === undefined ? ['all'] : names(args);
    const { entries, unknown } = pick(target, wanted);
    const now = Date.now();
    const processes = entries.map((p) => {
      const s = p.slot.state;
      const { uptime, description } = describeProcess(s, now);
      return {
        name: p.name, service: p.service, index: p.index, state: s.state, pid: s.pid ?? 0, uptime, description, sockets: target.socketsOf(p.service),
        ...(p.note ? { note: p.note } : {}),
      };
    });
    return { processes, unknown, config: target.configStatus() };
  },

  async start(args, target) {
    const { entries, unknown } = pick(target, names(args));
    return { results: await Promise.all(entries.map(startOne)), unknown };
  },

  async stop(args, target) {
    const { entries, unknown } = pick(target, names(args));
    return { results: await Promise.all(entries.map(stopOne)), unknown };
  },

  async restart(args, target) {
    const { entries, unknown } = pick(target, names(args));
    const hard = args['hard'] === true;
    const byService = new Map<string, number[]>();
    for (const p of entries) byService.set(p.service, [...(byService.get(p.service) ?? []), p.index]);
    const perService = await Promise.all([...byService].map(([service, indexes]) => target.restart(service, indexes, hard)));
    const order = new Map(entries.map((p, i) => [p.name, i]));
    const results = perService.flat().sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
    return { results, unknown };
  },

  async signal(args, target) {
    const raw = args['signal'];
    if (typeof raw !== 'string') throw new BadArgs('signal must be a signal name');
    const name = (raw.toUpperCase().startsWith('SIG') ? raw.toUpperCase() : `SIG${raw.toUpperCase()}`) as NodeJS.Signals;
    if (!(name in os.constants.signals)) throw new BadArgs(`${raw} is not a signal name`);
    const { entries, unknown } = pick(target, names(args));
    const results = entries.map((p) => (p.slot.signal(name) ? { name: p.name, ok: true } : { name: p.name, ok: false, error: 'not running' }));
    return { results, unknown };
  },

  async pid(args, target) {
    if (args['name'] === undefined) return { pid: process.pid };
    if (typeof args['name'] !== 'string') throw new BadArgs('name must be a string');
    const { entries, unknown } = pick(target, [args['name']]);
    return { pids: entries.map((p) => ({ name: p.name, pid: p.slot.state.pid ?? 0 })), unknown };
  },

  async tail(args, target, request, session) {
    if (typeof args['name'] !== 'string') throw new BadArgs('name must be a process or service name');
    const stream = args['stream'] ?? 'stdout';
    if (stream !== 'stdout' && stream !== 'stderr') throw new BadArgs('stream must be stdout or stderr');
    const { entries } = pick(target, [args['name']]);
    const service = entries[0]?.service;
    const file = service === undefined ? undefined : target.logFile(service, stream);
    if (!file) return { error: { code: 'NO_SUCH_PROCESS', message: `no such process: ${args['name']}` } };
    return follow(file, numberArg(args, 'lines', 10), args['follow'] === true, request, session);
  },

  async maintail(args, target, request, session) {
    if (!target.daemonLog) throw new Error('the daemon log file is not open');
    return follow(target.daemonLog, numberArg(args, 'lines', 10), args['follow'] === true, request, session);
  },

  async clear(args, target) {
    const { entries, unknown } = pick(target, names(args));
    const services = [...new Set(entries.map((p) => p.service))];
    const results = await Promise.all(services.map(async (service) => {
      await Promise.all((['stdout', 'stderr'] as const).map((s) => target.logFile(service, s)?.clear()));
      return { name: service, ok: true };
    }));
    return { results, unknown };
  },

  async avail(_args, target) {
    return { services: target.serviceList().map((s) => ({ ...s, inUse: true })) };
  },

  async reread(_args, target) {
    const { ok, errors, changes } = await target.reread();
    return { ok, errors, changes };
  },

  async reload(_args, target) {
    const { ok, errors, changes, failedAt, timing } = await target.reload();
    return { ok, errors, changes, ...(failedAt ? { failedAt } : {}), ...(timing ? { timing } : {}) };
  },

  async shutdown(_args, target) {
    setImmediate(() => target.requestShutdown());
    return {};
  },

  async version() {
    return { version: VERSION, protocol: 1 };
  },
};

const streams = new Map<Session, Map<number, () => void>>();

/** The last lines now, then (with follow) everything written after, across rotations. */
async function follow(file: LogFile, lines: number, keepFollowing: boolean, request: Request, session: Session): Promise<unknown> {
  if (!keepFollowing) return { text: await file.whenWritten(() => readLastLines(file.path, lines)) };
  session.keepOpen();
  // Read the tail and subscribe at the same point in the write order, so no line is missed or sent twice.
  let stop = () => {};
  const head = await file.whenWritten(async () => {
    stop = file.follow((data) => session.send({ id: request.id, ok: true, stream: data.toString('utf8') }));
    return readLastLines(file.path, lines);
  });
  if (head) session.send({ id: request.id, ok: true, stream: head });
  let byId = streams.get(session);
  if (!byId) streams.set(session, (byId = new Map()));
  byId.set(request.id, stop);
  session.onClose(() => {
    stop();
    streams.delete(session);
  });
  return undefined;
}

/** Runs one request and sends its response. */
export async function dispatchRequest(request: Request, session: Session, target: ControlTarget): Promise<void> {
  if (request.cmd === 'cancel') {
    const id = request.args['id'];
    streams.get(session)?.get(id as number)?.();
    streams.get(session)?.delete(id as number);
    session.send({ id: request.id, ok: true, result: {} });
    return;
  }
  const handler = Object.prototype.hasOwnProperty.call(handlers, request.cmd) ? handlers[request.cmd] : undefined;
  if (!handler) {
    session.send({ id: request.id, ok: false, error: { code: 'UNKNOWN_COMMAND', message: `unknown command: ${request.cmd}` } });
    return;
  }
  try {
    const result = await handler(request.args, target, request, session);
    if (result === undefined) return; // a stream; its frames are on their way
    if (typeof result === 'object' && result !== null && 'error' in result) {
      session.send({ id: request.id, ok: false, ...(result as object) });
      return;
    }
    session.send({ id: request.id, ok: true, result });
  } catch (e) {
    session.send({ id: request.id, ok: false, error: { code: e instanceof BadArgs ? 'BAD_ARGS' : 'FAILED', message: (e as Error).message } });
  }
}
