/**
 * Turns a parsed service into a ServiceSpec using facts about the host: maps CloudABI-era
 * interpreter trees, checks `!file` paths, resolves host names. Pure given the facts.
 */
import { formatAddress, parseAddress, socketIdentity, type Address } from './address.js';
import { error, warning, type Diagnostic } from './diagnostics.js';
import type { HostFacts } from './host-facts.js';
import { expandFdTemplates, isBeneath, programFdLayout, programGrants, SYSTEM_GRANT_CANDIDATES, SYSTEM_READ_CANDIDATES } from './program.js';
import { collectFds, type ServiceSource } from './service.js';
import { DEFAULT_UNIX_SOCKET_MODE, type FileDecl, type ProgramSpec, type PythonInfo, type ServiceSpec, type SocketDecl } from './spec.js';
import type { ArgValue, FdValue, MapValue, SocketRef } from './values.js';

/** `/usr/local/x86_64-unknown-cloudabi/lib/python3.6`: where the CloudABI ports installed Python. */
const CLOUDABI_PYTHON_TREE = /^\/usr\/local\/[A-Za-z0-9_]+-unknown-cloudabi\/lib\/python3(?:\.[0-9]+)?\/?$/;

export function isCloudabiPythonTree(p: string): boolean {
  return CLOUDABI_PYTHON_TREE.test(p);
}

export interface ResolvedService {
  readonly spec: ServiceSpec | undefined;
  readonly diagnostics: Diagnostic[];
}

export function resolveService(source: ServiceSource, daemonPython: string, facts: HostFacts): ResolvedService {
  const diagnostics: Diagnostic[] = [];
  const sup = source.supervise;
  const pythonName = sup.python ?? daemonPython;
  let python: PythonInfo | undefined;
  const info = facts.python(pythonName);
  if ('error' in info) {
    // The runner starts programs too: it applies their sandbox, then executes them.
    const pos = sup.positions['python'] ?? source.document.pos;
    diagnostics.push(error(pos, `interpreter ${pythonName}: ${info.error}`, sup.python === undefined ? 'set python: in the daemon config or supervise.python' : undefined));
  } else {
    python = info;
  }

  const document = mapInterpreterTrees(source.document, python, facts, diagnostics);
  const sockets: SocketDecl[] = [];
  const files: FileDecl[] = [];
  for (const use of collectFds(document)) {
    const fd = use.node.fd;
    if (fd.type === 'file') {
      const kind = facts.pathKind(fd.path);
      if (kind === 'missing') diagnostics.push(error(use.node.pos, `!file ${fd.declared}: no such file or directory${fd.declared !== fd.path ? ` (${fd.path})` : ''}`));
      else if (kind === 'unreadable') diagnostics.push(error(use.node.pos, `!file ${fd.declared}: permission denied`));
      else if (kind === 'other') diagnostics.push(error(use.node.pos, `!file ${fd.declared}: not a regular file or directory`));
      files.push({ keyPath: use.keyPath, pos: use.node.pos, path: fd.path, declared: fd.declared, isDirectory: kind === 'directory', mappedFrom: fd.mappedFrom });
    } else if (fd.type === 'socket') {
      const parsed = parseAddress(fd.address);
      if (typeof parsed === 'string') continue; // reported by the parser already
      const address = resolveAddress(parsed, use.node, facts, diagnostics);
      if (address === undefined) continue;
      sockets.push({
        keyPath: use.keyPath, pos: use.node.pos, mode: fd.mode, socketType: fd.socketType, backlog: fd.backlog,
        written: fd.address, address, identity: socketIdentity(address, fd.socketType, `${source.name}/${use.keyPath}`),
        unixFile: address.family === 'unix' && fd.mode === 'bind' ? unixFileOwner(fd, use.node, facts, diagnostics) : undefined,
      });
    }
  }
  if (sup.directory !== '/' && facts.pathKind(sup.directory) !== 'directory') {
    diagnostics.push(error(sup.positions['directory'] ?? source.document.pos, `supervise.directory ${sup.directory}: not an existing directory`));
  }
  for (const dir of sup.writable) {
    if (facts.pathKind(dir) !== 'directory') diagnostics.push(error(sup.positions['writable'] ?? source.document.pos, `supervise.writable ${dir}: not an existing directory`));
  }
  const program = sup.program.kind === 'exec' ? resolveProgram(source, document, sockets, files, facts, diagnostics) : undefined;
  const spec: ServiceSpec = {
    name: source.name, file: source.file, document, supervise: sup,
    python, program, runAs: runAs(source, facts, diagnostics), sockets, files, libraries: [],
    warnings: diagnostics.filter((d) => d.severity === 'warning'),
  };
  return { spec, diagnostics };
}

/** The program to execute, its fds and argument templates, and what its sandbox grants. */
function resolveProgram(source: ServiceSource, document: MapValue, sockets: readonly SocketDecl[], files: readonly FileDecl[], facts: HostFacts, diagnostics: Diagnostic[]): ProgramSpec | undefined {
  const sup = source.supervise;
  if (sup.program.kind !== 'exec') return undefined;
  const pos = sup.positions['program'] ?? source.document.pos;
  const [written, ...args] = sup.program.argv;
  let executable: string | undefined;
  if (written!.startsWith('/')) {
    if (facts.pathKind(written!) === 'file') executable = written;
    else diagnostics.push(error(pos, `supervise.program ${written}: not an existing file`));
  } else if (written!.includes('/')) {
    diagnostics.push(error(pos, `supervise.program ${written}: write an absolute path or a bare name looked up in PATH`));
  } else {
    executable = facts.executable?.(written!);
    if (executable === undefined) diagnostics.push(error(pos, `supervise.program ${written}: not found in PATH`, 'write its absolute path'));
  }
  const fds = programFdLayout(document, sockets, files, args);
  const expanded = expandFdTemplates([written!, ...args], fds);
  if ('problems' in expanded) for (const problem of expanded.problems) diagnostics.push(error(pos, `supervise.program: ${problem}`));
  if (executable === undefined || 'problems' in expanded) return undefined;
  const present = (candidates: Readonly<Record<string, readonly string[]>>) => (candidates[process.platform] ?? []).filter((p) => facts.pathKind(p) !== 'missing');
  const grants = programGrants({
    program: executable, files, writable: sup.writable, systemGrants: sup.systemGrants,
    systemDirs: present(SYSTEM_GRANT_CANDIDATES), systemReads: present(SYSTEM_READ_CANDIDATES),
  });
  if (sup.sandbox !== 'off' && !grants.exec.some((dir) => isBeneath(executable!, dir))) {
    diagnostics.push(error(pos, `supervise.program ${executable} is not beneath anything the sandbox lets the service execute`, 'list its directory under path:, or keep system_grants on'));
  }
  return { executable, argv: expanded.argv, fds, grants };
}

/** Where system grants and PATH lookups are needed: asked of the host before resolving. */
export function programFactRequests(source: ServiceSource): { paths: string[]; executables: string[] } {
  const sup = source.supervise;
  const paths = [...sup.writable];
  const executables: string[] = [];
  if (sup.program.kind === 'exec') {
    const exe = sup.program.argv[0]!;
    if (exe.startsWith('/')) paths.push(exe);
    else executables.push(exe);
    paths.push(...(SYSTEM_GRANT_CANDIDATES[process.platform] ?? []), ...(SYSTEM_READ_CANDIDATES[process.platform] ?? []));
  }
  return { paths, executables };
}

function unixFileOwner(fd: SocketRef, node: FdValue, facts: HostFacts, diagnostics: Diagnostic[]): SocketDecl['unixFile'] {
  let uid = -1;
  let gid = -1;
  if (fd.owner !== undefined) {
    const user = facts.user(fd.owner);
    if (user === undefined) diagnostics.push(error(node.pos, `!socket ${fd.address}: owner "${fd.owner}" is not a user on this host`));
    else uid = user.uid;
  }
  if (fd.group !== undefined) {
    const g = facts.group(fd.group);
    if (g === undefined) diagnostics.push(error(node.pos, `!socket ${fd.address}: group "${fd.group}" is not a group on this host`));
    else gid = g;
  }
  return { mode: fd.fileMode ?? DEFAULT_UNIX_SOCKET_MODE, uid, gid };
}

/** supervise.user and group as ids; the user's own groups come along, as login(1) would set them. */
function runAs(source: ServiceSource, facts: HostFacts, diagnostics: Diagnostic[]): ServiceSpec['runAs'] {
  const sup = source.supervise;
  if (sup.user === undefined && sup.group === undefined) return undefined;
  let uid = -1;
  let gid = -1;
  let groups: readonly number[] = [];
  if (sup.user !== undefined) {
    const user = facts.user(sup.user);
    if (user === undefined) {
      diagnostics.push(error(sup.positions['user'] ?? source.document.pos, `supervise.user "${sup.user}" is not a user on this host`));
      return undefined;
    }
    [uid, gid, groups] = [user.uid, user.gid, user.groups];
  }
  if (sup.group !== undefined) {
    const g = facts.group(sup.group);
    if (g === undefined) {
      diagnostics.push(error(sup.positions['group'] ?? source.document.pos, `supervise.group "${sup.group}" is not a group on this host`));
      return undefined;
    }
    gid = g;
    if (sup.user === undefined) groups = [g];
  }
  return { uid, gid, groups };
}

function resolveAddress(address: Address, node: FdValue, facts: HostFacts, diagnostics: Diagnostic[]): Address | undefined {
  if (address.family !== 'inet' || address.hostKind !== 'name') return address;
  const found = facts.hostAddresses(address.host);
  const written = formatAddress(address);
  if ('error' in found) {
    diagnostics.push(error(node.pos, `!socket ${written}: host "${address.host}" does not resolve (${found.error})`));
    return undefined;
  }
  if (found.length !== 1) {
    diagnostics.push(
      error(node.pos, `!socket ${written}: host "${address.host}" resolves to ${found.length} addresses (${found.join(', ')}); it must resolve to exactly one`, `write one of them, for example ${formatAddress(withHost(address, found[0]!))}`),
    );
    return undefined;
  }
  return withHost(address, found[0]!);
}

function withHost(address: Address & { family: 'inet' }, ip: string): Address {
  const parsed = parseAddress(ip.includes(':') ? `[${ip}]:${address.port}` : `${ip}:${address.port}`);
  return typeof parsed === 'string' ? address : parsed;
}

/**
 * Replaces each `path:` entry that names a CloudABI-era interpreter tree missing on this host by
 * the host interpreter's standard library and extension-module directory, so the seed's examples
 * run unchanged.
 */
function mapInterpreterTrees(document: MapValue, python: PythonInfo | undefined, facts: HostFacts, diagnostics: Diagnostic[]): MapValue {
  const pathEntry = document.entries.find((e) => e.key.kind === 'str' && e.key.value === 'path');
  if (!pathEntry || pathEntry.value.kind !== 'seq') return document;
  let changed = false;
  const items: ArgValue[] = [];
  for (const item of pathEntry.value.items) {
    if (item.kind !== 'fd' || item.fd.type !== 'file' || !isCloudabiPythonTree(item.fd.path) || facts.pathKind(item.fd.path) !== 'missing') {
      items.push(item);
      continue;
    }
    if (python === undefined) {
      items.push(item); // the missing path is then reported like any other
      continue;
    }
    changed = true;
    const targets = [python.stdlib, ...(python.dynload ? [python.dynload] : [])];
    diagnostics.push(
      warning(item.pos, `path ${item.fd.declared} is a CloudABI-era interpreter tree; mapped to ${targets.join(' and ')} (Python ${python.version})`, `list the host's directories under path: instead`),
    );
    for (const target of targets) {
      items.push({ kind: 'fd', pos: item.pos, fd: { type: 'file', path: target, declared: target, mappedFrom: item.fd.declared } });
    }
  }
  if (!changed) return document;
  return {
    ...document,
    entries: document.entries.map((e) => (e === pathEntry ? { key: e.key, value: { ...pathEntry.value, items } as ArgValue } : e)),
  };
}
