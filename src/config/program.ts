/**
 * A service that runs its own program (`supervise.program: [exe, args...]`) instead of the Python
 * runner: which fd each argdata `!socket`, `!file` and `!fd` becomes, in the systemd convention
 * (LISTEN_FDS), what its `{fd:NAME}` argument templates expand to, and what its sandbox grants.
 * Pure.
 */
import path from 'node:path';
import { collectFds } from './service.js';
import type { FileDecl, SocketDecl } from './spec.js';
import type { FdValue, MapValue } from './values.js';

export type ProgramFdKind = 'socket' | 'file' | 'dir' | 'fd';

export interface ProgramFd {
  /** The number in the child: 3 for the first. */
  readonly fd: number;
  /** The socket's key (`my_socket`), as LISTEN_FDNAMES gives it; else the key path (`path[0]`). */
  readonly name: string;
  readonly keyPath: string;
  readonly kind: ProgramFdKind;
  /** Listening sockets announced in LISTEN_FDS: they come first. */
  readonly listening: boolean;
}

const TEMPLATE = /\{fd:([^}]*)\}/g;

/** The first fd systemd-style programs look at (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/**
 * Every fd the program gets, in order: the `bind:` sockets in document order (one fd per held
 * socket, however often it appears), which LISTEN_FDS announces; then those the arguments name
 * with `{fd:NAME}`; then the other fds in document order.
 *
 * A socket handed over by argument is not announced as well: a server that reads both (gunicorn
 * takes `--bind fd://3` and LISTEN_FDS alike) would take it twice and fail.
 */
export function programFdLayout(document: MapValue, sockets: readonly SocketDecl[], files: readonly FileDecl[], argv: readonly string[] = []): ProgramFd[] {
  const named = new Set([...argv.join('\0').matchAll(TEMPLATE)].map((m) => m[1]!.trim()));
  const socketAt = new Map(sockets.map((s) => [s.keyPath, s]));
  const fileAt = new Map(files.map((f) => [f.keyPath, f]));
  const listening: Omit<ProgramFd, 'fd'>[] = [];
  const byArgument: Omit<ProgramFd, 'fd'>[] = [];
  const others: Omit<ProgramFd, 'fd'>[] = [];
  const seen = new Set<string>();
  for (const { keyPath, node } of collectFds(document)) {
    const fd = node.fd;
    const socket = fd.type === 'socket' ? socketAt.get(keyPath) : undefined;
    // One fd per thing handed over, as the runner's fd table has it.
    const identity = handoverKey(keyPath, fd, socket);
    if (seen.has(identity)) continue;
    seen.add(identity);
    if (socket?.mode === 'bind') {
      const name = lastKey(keyPath);
      if (named.has(name) || named.has(keyPath)) byArgument.push({ name, keyPath, kind: 'socket', listening: false });
      else listening.push({ name, keyPath, kind: 'socket', listening: true });
    }
    else if (fd.type === 'socket') others.push({ name: keyPath, keyPath, kind: 'socket', listening: false });
    else if (fd.type === 'file') others.push({ name: keyPath, keyPath, kind: fileAt.get(keyPath)?.isDirectory ? 'dir' : 'file', listening: false });
    else others.push({ name: keyPath, keyPath, kind: 'fd', listening: false });
  }
  return [...listening, ...byArgument, ...others].map((entry, i) => ({ ...entry, fd: LISTEN_FDS_START + i }));
}

/**
 * What makes two uses of an fd in a document one fd in the child: the same held socket, file,
 * inherited fd or stdio stream. Each `connect:` is a connection of its own.
 */
export function handoverKey(keyPath: string, fd: FdValue['fd'], socket: SocketDecl | undefined): string {
  switch (fd.type) {
    case 'stdio':
      return `stdio:${fd.stream}`;
    case 'number':
      return `fd:${fd.number}`;
    case 'file':
      return `file:${fd.path}`;
    case 'socket':
      return socket?.mode === 'bind' ? `held:${socket.identity}` : `connect:${keyPath}`;
  }
}

/** `args.my_socket` -> `my_socket`; `args.socks[1]` -> `socks[1]`. */
function lastKey(keyPath: string): string {
  const dot = keyPath.lastIndexOf('.');
  return dot === -1 ? keyPath : keyPath.slice(dot + 1);
}

/**
 * Replaces each `{fd:NAME}` by that fd's number. NAME is a socket's key or any fd's key path.
 * Returns the arguments, or the problems with the names used.
 */
export function expandFdTemplates(argv: readonly string[], layout: readonly ProgramFd[]): { argv: string[] } | { problems: string[] } {
  const problems: string[] = [];
  const lookup = (name: string): number | undefined => {
    const byPath = layout.find((f) => f.keyPath === name);
    if (byPath) return byPath.fd;
    const byName = layout.filter((f) => f.name === name);
    if (byName.length === 1) return byName[0]!.fd;
    if (byName.length > 1) problems.push(`{fd:${name}} is ambiguous: ${byName.map((f) => f.keyPath).join(', ')}; use the key path`);
    else {
      const known = layout.map((f) => f.name);
      problems.push(`{fd:${name}} names no fd of this service${known.length > 0 ? ` (it has ${known.join(', ')})` : ' (it has none)'}`);
    }
    return undefined;
  };
  const expanded = argv.map((arg) => arg.replace(TEMPLATE, (whole, name: string) => String(lookup(name.trim()) ?? whole)));
  return problems.length > 0 ? { problems } : { argv: expanded };
}

/** The environment variables that describe the fds (systemd's LISTEN_* and sockvisor's own). */
export function fdEnvironment(layout: readonly ProgramFd[]): Record<string, string> {
  const listening = layout.filter((f) => f.listening);
  return {
    LISTEN_FDS: String(listening.length),
    LISTEN_FDNAMES: listening.map((f) => f.name).join(':'),
    SOCKVISOR_FDS: layout.map((f) => `${f.fd}:${f.name}:${f.kind}`).join(' '),
  };
}

export interface ProgramGrants {
  /** Read and execute beneath: the `path:` directories and the system's own. */
  readonly exec: readonly string[];
  /** Read: the other `!file`s handed over. */
  readonly read: readonly string[];
  /** Read and write beneath: supervise.writable. */
  readonly write: readonly string[];
}

/** Where programs and their libraries live, by platform: granted unless system_grants is off. */
export const SYSTEM_GRANT_CANDIDATES: Readonly<Record<string, readonly string[]>> = {
  linux: ['/usr/lib', '/usr/lib64', '/lib', '/lib64', '/usr/local/lib', '/etc/ld.so.cache'],
  freebsd: ['/lib', '/usr/lib', '/usr/local/lib', '/libexec', '/var/run/ld-elf.so.hints'],
};

/**
 * System configuration that programs read at start and fail without (Node refuses to start when
 * OpenSSL cannot read openssl.cnf): read only, granted with the system grants.
 */
export const SYSTEM_READ_CANDIDATES: Readonly<Record<string, readonly string[]>> = {
  linux: ['/etc/ssl', '/etc/localtime'],
  freebsd: ['/etc/ssl', '/usr/local/etc/ssl', '/etc/localtime'],
};

/** The directory a program was installed under: `/usr` for `/usr/bin/gunicorn`. */
export function programPrefix(program: string): string {
  const dir = path.dirname(program);
  return /\/s?bin$/.test(dir) ? path.dirname(dir) : dir;
}

export function programGrants(options: {
  readonly program: string;
  readonly files: readonly FileDecl[];
  readonly writable: readonly string[];
  readonly systemGrants: boolean;
  /** The candidates that exist on this host. */
  readonly systemDirs: readonly string[];
  readonly systemReads: readonly string[];
}): ProgramGrants {
  const pathDirs = options.files.filter((f) => f.isDirectory && /^path\[\d+\]$/.test(f.keyPath)).map((f) => f.path);
  const system = options.systemGrants ? [programPrefix(options.program), ...options.systemDirs] : [];
  const exec = unique([...pathDirs, ...system]);
  const read = unique([...options.files.map((f) => f.path), ...(options.systemGrants ? options.systemReads : [])].filter((p) => !exec.includes(p)));
  return { exec, read, write: unique(options.writable) };
}

/** Whether `file` is `dir` or beneath it. */
export function isBeneath(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}
