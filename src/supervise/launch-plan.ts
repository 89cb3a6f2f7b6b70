/**
 * What starting one process of a service means, decided without touching the machine: the
 * command line, the environment, the argdata bytes and the fd table the child gets. Pure.
 */
import { encodeArgdata } from '../argdata/encode.js';
import { collectFds } from '../config/service.js';
import { fdEnvironment, handoverKey } from '../config/program.js';
import type { ServiceSpec, SocketDecl } from '../config/spec.js';
import type { FdValue } from '../config/values.js';
import { RUNNER_PATH, runnerInvocation } from '../runner-path.js';

/** Where one fd table entry comes from when the process starts. */
export type FdSource =
  | { readonly kind: 'held'; readonly identity: string }
  | { readonly kind: 'connect'; readonly socket: SocketDecl }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'stdio'; readonly stream: 'stdout' | 'stderr' }
  | { readonly kind: 'inherit'; readonly fd: number };

export interface LaunchPlan {
  /** The executable first. */
  readonly argv: readonly string[];
  /** Exactly the child's environment. */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  /** Written to the child's fd 3. */
  readonly argdata: Uint8Array;
  /** Entry i becomes the child's fd 4 + i. */
  readonly fdTable: readonly FdSource[];
}

export { RUNNER_PATH };

/** Presence keys of the document that CPython takes as command-line flags. */
const FLAG_OPTIONS: Readonly<Record<string, string>> = {
  dontwritebytecode: '-B', optimize: '-O', verbose: '-v', unbufferedstdio: '-u', debug: '-d', inspect: '-i', bytescompare: '-b',
};

export interface RunnerOptions {
  readonly daemonPid: number;
  readonly runnerPath?: string;
}

/** The fd table and argdata of a service, in the order the encoder numbers fds. */
export function argdataWithFdTable(spec: ServiceSpec): { argdata: Uint8Array; fdTable: FdSource[] } {
  const { argdata, fdTable } = argdataWithFdTableKeys(spec);
  return { argdata, fdTable };
}

function argdataWithFdTableKeys(spec: ServiceSpec): { argdata: Uint8Array; fdTable: FdSource[]; keys: readonly string[] } {
  const sourceOf = new Map<FdValue, { key: string; source: FdSource }>();
  for (const use of collectFds(spec.document)) sourceOf.set(use.node, fdTableEntry(spec, use.keyPath, use.node.fd));
  const { bytes, fdTable } = encodeArgdata(spec.document, (node) => sourceOf.get(node)!.key);
  const byKey = new Map([...sourceOf.values()].map((e) => [e.key, e.source]));
  return { argdata: bytes, fdTable: fdTable.map((key) => byKey.get(key)!), keys: fdTable };
}

/** Where one fd comes from, and the key that makes two uses of one thing a single fd. */
function fdTableEntry(spec: ServiceSpec, keyPath: string, fd: FdValue['fd']): { key: string; source: FdSource } {
  const decl = fd.type === 'socket' ? spec.sockets.find((s) => s.keyPath === keyPath) : undefined;
  if (fd.type === 'socket' && decl === undefined) throw new Error(`${spec.name}: socket ${keyPath} was not resolved`);
  const key = handoverKey(keyPath, fd, decl);
  switch (fd.type) {
    case 'stdio':
      return { key, source: { kind: 'stdio', stream: fd.stream } };
    case 'number':
      return { key, source: { kind: 'inherit', fd: fd.number } };
    case 'file':
      return { key, source: { kind: 'file', path: fd.path } };
    case 'socket':
      return { key, source: decl!.mode === 'bind' ? { kind: 'held', identity: decl!.identity } : { kind: 'connect', socket: decl! } };
  }
}

/** How any service starts: the runner runs Python code itself, or sandboxes and executes a program. */
export function planLaunch(spec: ServiceSpec, options: RunnerOptions): LaunchPlan {
  return spec.program ? planProgramLaunch(spec, options) : planRunnerLaunch(spec, options);
}

/**
 * A program service: the runner applies the same sandbox as for Python code, puts the fds where
 * the program expects them (listening sockets from fd 3, as systemd does), sets LISTEN_PID to
 * its own pid, and executes the program, which keeps that pid.
 */
export function planProgramLaunch(spec: ServiceSpec, options: RunnerOptions): LaunchPlan {
  const program = spec.program;
  if (program === undefined) throw new Error(`${spec.name}: not a program service`);
  if (spec.python === undefined) throw new Error(`${spec.name}: no interpreter resolved for the runner`);
  const sup = spec.supervise;
  const { argdata, fdTable, keys } = argdataWithFdTableKeys(spec);
  // The runner receives the fds in the fd table's order; it moves them into the program's.
  const order = program.fds.map((f) => {
    const key = tableKeyFor(spec, f.keyPath);
    const index = keys.indexOf(key);
    if (index === -1) throw new Error(`${spec.name}: ${f.keyPath} is not in the fd table`);
    return index;
  });
  const argv = [
    spec.python.executable, '-I', '-S', ...runnerInvocation(options.runnerPath),
    '--daemon-pid', String(options.daemonPid), '--sandbox', sup.sandbox, '--stop-signal', sup.stopSignal,
    ...('LC_CTYPE' in sup.env ? ['--lc-ctype-given'] : []),
    ...(spec.runAs ? ['--run-as', `${spec.runAs.uid}:${spec.runAs.gid}:${spec.runAs.groups.join(',')}`] : []),
    '--fd-order', order.join(','),
    ...program.grants.exec.flatMap((p) => ['--grant-exec', p]),
    ...program.grants.read.flatMap((p) => ['--grant-read', p]),
    ...program.grants.write.flatMap((p) => ['--grant-write', p]),
    '--exec', program.executable, ...program.argv,
  ];
  return { argv, env: { ...sup.env, ...fdEnvironment(program.fds) }, cwd: sup.directory, argdata, fdTable };
}

/** The fd table key the encoder uses for the fd at this key path. */
function tableKeyFor(spec: ServiceSpec, keyPath: string): string {
  const use = collectFds(spec.document).find((u) => u.keyPath === keyPath);
  if (!use) throw new Error(`${spec.name}: no fd at ${keyPath}`);
  return fdTableEntry(spec, use.keyPath, use.node.fd).key;
}

export function planRunnerLaunch(spec: ServiceSpec, options: RunnerOptions): LaunchPlan {
  if (spec.python === undefined) throw new Error(`${spec.name}: no interpreter resolved`);
  const sup = spec.supervise;
  const flags = spec.document.entries
    .map((e) => (e.key.kind === 'str' ? FLAG_OPTIONS[e.key.value] : undefined))
    .filter((f): f is string => f !== undefined);
  const argv = [
    spec.python.executable, '-I', '-S', ...flags, ...runnerInvocation(options.runnerPath),
    '--daemon-pid', String(options.daemonPid), '--sandbox', sup.sandbox, '--stop-signal', sup.stopSignal,
    ...(sup.preload.length > 0 ? ['--preload', sup.preload.join(',')] : []),
    // Lets the runner undo CPython's C-locale coercion, which adds LC_CTYPE to an empty environment.
    ...('LC_CTYPE' in sup.env ? ['--lc-ctype-given'] : []),
    ...spec.libraries.flatMap((file) => ['--library', file]),
    // The runner drops privileges itself, after making its network namespace and before the
    // lock-down, and keeps the user's supplementary groups (Node's spawn would drop them).
    ...(spec.runAs ? ['--run-as', `${spec.runAs.uid}:${spec.runAs.gid}:${spec.runAs.groups.join(',')}`] : []),
  ];
  return { argv, env: { ...sup.env }, cwd: sup.directory, ...argdataWithFdTable(spec) };
}
