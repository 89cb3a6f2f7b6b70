/**
 * What starting one process of a service means, decided without touching the machine: the
 * command line, the environment, the argdata bytes and the fd table the child gets. Pure.
 */
import { encodeArgdata } from '../argdata/encode.js';
import { collectFds } from '../config/service.js';
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
  const sockets = new Map(spec.sockets.map((s) => [s.keyPath, s]));
  const sourceOf = new Map<FdValue, { key: string; source: FdSource }>();
  for (const use of collectFds(spec.document)) {
    const fd = use.node.fd;
    let entry: { key: string; source: FdSource };
    switch (fd.type) {
      case 'stdio':
        entry = { key: `stdio:${fd.stream}`, source: { kind: 'stdio', stream: fd.stream } };
        break;
      case 'number':
        entry = { key: `fd:${fd.number}`, source: { kind: 'inherit', fd: fd.number } };
        break;
      case 'file':
        entry = { key: `file:${fd.path}`, source: { kind: 'file', path: fd.path } };
        break;
      case 'socket': {
        const decl = sockets.get(use.keyPath);
        if (decl === undefined) throw new Error(`${spec.name}: socket ${use.keyPath} was not resolved`);
        // A held socket is one fd however often it appears; each connect: is its own connection.
        entry = decl.mode === 'bind'
          ? { key: `held:${decl.identity}`, source: { kind: 'held', identity: decl.identity } }
          : { key: `connect:${use.keyPath}`, source: { kind: 'connect', socket: decl } };
        break;
      }
    }
    sourceOf.set(use.node, entry);
  }
  const { bytes, fdTable } = encodeArgdata(spec.document, (node) => sourceOf.get(node)!.key);
  const byKey = new Map([...sourceOf.values()].map((e) => [e.key, e.source]));
  return { argdata: bytes, fdTable: fdTable.map((key) => byKey.get(key)!) };
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
