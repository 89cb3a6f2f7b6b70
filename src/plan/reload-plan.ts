/**
 * What a reload does, decided by comparing the running specs with the config as it now reads.
 * Pure: specs in, a plan out. The daemon carries it out (daemon.ts), in this order: bind the new
 * sockets (all or nothing), then per service add, swap, scale, update or remove, then close the
 * sockets nothing declares any more.
 */
import type { ServiceSpec, SocketDecl } from '../config/spec.js';
import type { Supervise } from '../config/supervise.js';
import type { ArgValue } from '../config/values.js';
import { planLaunch } from '../supervise/launch-plan.js';

export type ServiceAction =
  /** Bind its sockets, then start it. */
  | 'add'
  /** Stop it; its sockets close if no one else declares them. */
  | 'remove'
  /** Start a new generation on the held sockets; stop the old one once the new one has started. */
  | 'swap'
  /** Only `replicas` changed (perhaps with live fields): add or stop replicas in place. */
  | 'scale'
  /** Only fields the process never sees: applied to the running processes, no restart. */
  | 'update';

export interface SocketMove {
  /** Where in the document: `args.my_socket`. */
  readonly key: string;
  readonly from: string;
  readonly to: string;
}

export interface ServicePlan {
  readonly service: string;
  readonly action: ServiceAction;
  /** What caused the action, as operators write it: `command`, `args.my_socket`, `supervise.env`. */
  readonly fields: readonly string[];
  readonly replicas?: { readonly from: number; readonly to: number };
  readonly moves?: readonly SocketMove[];
}

export interface ReloadPlan {
  /** `bind:` sockets the running services do not hold yet: bound before anything else happens. */
  readonly bind: readonly SocketDecl[];
  /** Services that change, in the order of the new config, then the removed ones. */
  readonly services: readonly ServicePlan[];
  /** Held sockets that no service declares once the plan is applied. */
  readonly close: readonly SocketDecl[];
  /** Services whose processes are left alone. */
  readonly unchanged: readonly string[];
}

/**
 * `supervise` fields by what a change to them needs. Everything the process can observe (its
 * command line, environment, identity, directory, sandbox, how it reacts to its stop signal)
 * needs a new generation; what only the daemon uses applies to the running processes.
 */
type SuperviseField = Exclude<keyof Supervise, 'positions'>;
const SUPERVISE_EFFECT: Record<SuperviseField, 'swap' | 'scale' | 'live'> = {
  program: 'swap', python: 'swap', user: 'swap', group: 'swap', sandbox: 'swap', env: 'swap', directory: 'swap',
  preload: 'swap', stopSignal: 'swap', writable: 'swap', systemGrants: 'swap',
  replicas: 'scale',
  restart: 'live', startMs: 'live', startRetries: 'live', backoff: 'live', stopTimeoutMs: 'live', logs: 'live',
  autostart: 'live', standby: 'live',
};

/** Spec field names as operators write them in the `supervise` block. */
const CONFIG_KEY: Partial<Record<SuperviseField, string>> = {
  startMs: 'start_seconds', startRetries: 'start_retries', stopSignal: 'stop_signal', stopTimeoutMs: 'stop_timeout', systemGrants: 'system_grants',
};

export function planReload(running: readonly ServiceSpec[], next: readonly ServiceSpec[]): ReloadPlan {
  const before = new Map(running.map((s) => [s.name, s]));
  const after = new Set(next.map((s) => s.name));
  const held = new Set(running.flatMap(boundIdentities));
  const services: ServicePlan[] = [];
  const unchanged: string[] = [];
  const bind = new Map<string, SocketDecl>();
  for (const spec of next) {
    for (const decl of spec.sockets) if (decl.mode === 'bind' && !held.has(decl.identity) && !bind.has(decl.identity)) bind.set(decl.identity, decl);
    const old = before.get(spec.name);
    const plan = old ? planChange(old, spec) : { service: spec.name, action: 'add' as const, fields: [] };
    if (plan) services.push(plan);
    else unchanged.push(spec.name);
  }
  for (const spec of running) if (!after.has(spec.name)) services.push({ service: spec.name, action: 'remove', fields: [] });
  const declared = new Set(next.flatMap(boundIdentities));
  const close = new Map<string, SocketDecl>();
  for (const spec of running) for (const decl of spec.sockets) if (decl.mode === 'bind' && !declared.has(decl.identity)) close.set(decl.identity, decl);
  return { bind: [...bind.values()], services, close: [...close.values()], unchanged };
}

function boundIdentities(spec: ServiceSpec): string[] {
  return spec.sockets.filter((s) => s.mode === 'bind').map((s) => s.identity);
}

/**
 * Everything a plan compares, as one string, computed once per spec: most services do not change,
 * and a reload of a thousand of them must not pay for a field-by-field look at each.
 */
const fingerprints = new WeakMap<ServiceSpec, string>();

function fingerprint(spec: ServiceSpec): string {
  let found = fingerprints.get(spec);
  if (found === undefined) {
    const { positions: _positions, ...supervise } = spec.supervise;
    found = JSON.stringify([canonical(spec.document), supervise, spec.python?.executable, spec.runAs, spec.libraries, spec.sockets.map((s) => [s.keyPath, s.identity]), spec.program]);
    fingerprints.set(spec, found);
  }
  return found;
}

/** The plan for a service in both configs, or undefined when nothing about it changed. */
export function planChange(old: ServiceSpec, spec: ServiceSpec): ServicePlan | undefined {
  if (old === spec || fingerprint(old) === fingerprint(spec)) return undefined;
  const swapFields = documentDifferences(old.document, spec.document);
  const liveFields: string[] = [];
  let scaled = false;
  for (const key of Object.keys(SUPERVISE_EFFECT) as SuperviseField[]) {
    if (same(old.supervise[key], spec.supervise[key])) continue;
    const label = `supervise.${CONFIG_KEY[key] ?? key}`;
    const effect = SUPERVISE_EFFECT[key];
    if (effect === 'swap') swapFields.push(label);
    else if (effect === 'live') liveFields.push(label);
    else scaled = true;
  }
  // The same text can mean other things now: a host name that resolves elsewhere, an interpreter
  // upgraded in place, a user with a new uid, extension modules that load other libraries.
  const moves = socketMoves(old, spec);
  if (moves.length > 0 && swapFields.length === 0) swapFields.push(...moves.map((m) => m.key));
  if (old.python?.executable !== spec.python?.executable) swapFields.push('python');
  if (!same(old.runAs, spec.runAs)) swapFields.push('user');
  if (!same(old.libraries, spec.libraries)) swapFields.push('libraries');
  if (!same(old.program, spec.program) && !swapFields.includes('supervise.program')) swapFields.push('program');
  if (swapFields.length === 0 && launchKey(old) !== launchKey(spec)) swapFields.push('launch');

  const replicas = scaled ? { from: old.supervise.replicas, to: spec.supervise.replicas } : undefined;
  const scaleField = scaled ? ['supervise.replicas'] : [];
  const extras = { ...(replicas ? { replicas } : {}), ...(moves.length > 0 ? { moves } : {}) };
  if (swapFields.length > 0) return { service: spec.name, action: 'swap', fields: [...swapFields, ...scaleField, ...liveFields], ...extras };
  if (scaled) return { service: spec.name, action: 'scale', fields: [...scaleField, ...liveFields], ...extras };
  if (liveFields.length > 0) return { service: spec.name, action: 'update', fields: liveFields };
  return undefined;
}

/** Sockets declared at the same key that now have another identity (address or type). */
function socketMoves(old: ServiceSpec, spec: ServiceSpec): SocketMove[] {
  const was = new Map(old.sockets.map((s) => [s.keyPath, s]));
  const moves: SocketMove[] = [];
  for (const decl of spec.sockets) {
    const before = was.get(decl.keyPath);
    if (before && before.identity !== decl.identity) moves.push({ key: decl.keyPath, from: before.written, to: decl.written });
  }
  return moves;
}

/** Everything the process is started with, as one comparable string. */
function launchKey(spec: ServiceSpec): string {
  if (spec.python === undefined) return JSON.stringify({ supervise: spec.supervise.program, sockets: boundIdentities(spec) });
  const plan = planLaunch(spec, { daemonPid: 0 });
  return JSON.stringify({ ...plan, argdata: Buffer.from(plan.argdata).toString('base64') });
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The paths where two argdata documents differ (`command`, `args.my_socket`, `path[1]`). */
export function documentDifferences(a: ArgValue, b: ArgValue, at = ''): string[] {
  if (a.kind === 'map' && b.kind === 'map' && a.entries.every((e) => e.key.kind === 'str') && b.entries.every((e) => e.key.kind === 'str')) {
    const left = new Map(a.entries.map((e) => [(e.key as { value: string }).value, e.value]));
    const right = new Map(b.entries.map((e) => [(e.key as { value: string }).value, e.value]));
    const paths: string[] = [];
    for (const key of new Set([...left.keys(), ...right.keys()])) {
      const x = left.get(key);
      const y = right.get(key);
      const here = at === '' ? key : `${at}.${key}`;
      if (x === undefined || y === undefined) paths.push(here);
      else paths.push(...documentDifferences(x, y, here));
    }
    return paths;
  }
  if (a.kind === 'seq' && b.kind === 'seq' && a.items.length === b.items.length) {
    return a.items.flatMap((item, i) => documentDifferences(item, b.items[i]!, `${at}[${i}]`));
  }
  return same(canonical(a), canonical(b)) ? [] : [at === '' ? '(document)' : at];
}

/** A value as data only: positions and source text do not make two values different. */
export function canonical(value: ArgValue): unknown {
  switch (value.kind) {
    case 'map':
      return { map: value.entries.map((e) => [canonical(e.key), canonical(e.value)]) };
    case 'seq':
      return { seq: value.items.map(canonical) };
    case 'fd':
      return { fd: value.fd };
    case 'null':
      return null;
    case 'int':
    case 'timestamp':
      return { [value.kind]: value.value.toString() };
    case 'binary':
      return { binary: Buffer.from(value.value).toString('hex') };
    case 'float':
      return { float: Number.isNaN(value.value) ? 'NaN' : value.value };
    default:
      return { [value.kind]: value.value };
  }
}
