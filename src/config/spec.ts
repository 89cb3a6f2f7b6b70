/** The fully checked form of a service, ready for the daemon: what it binds, opens and runs. */
import type { Address } from './address.js';
import type { ProgramFd, ProgramGrants } from './program.js';
import type { Diagnostic, SourcePos } from './diagnostics.js';
import type { Supervise } from './supervise.js';
import type { MapValue, SocketType } from './values.js';

export interface SocketDecl {
  readonly keyPath: string;
  readonly pos: SourcePos;
  readonly mode: 'bind' | 'connect';
  readonly socketType: SocketType;
  readonly backlog: number | undefined;
  /** The address as the operator wrote it. */
  readonly written: string;
  /** Resolved: a host name replaced by its one address. */
  readonly address: Address;
  /** Normalised address plus protocol: equal identities are one held socket. */
  readonly identity: string;
  /** For a unix path the daemon binds: the socket file's mode and owner (-1: leave as is). */
  readonly unixFile: { readonly mode: number; readonly uid: number; readonly gid: number } | undefined;
}

/** The default for unix socket files: the owner and its group may connect, nobody else. */
export const DEFAULT_UNIX_SOCKET_MODE = 0o660;

export interface FileDecl {
  readonly keyPath: string;
  readonly pos: SourcePos;
  readonly path: string;
  readonly declared: string;
  readonly isDirectory: boolean;
  /** Set when a CloudABI-era interpreter tree was mapped onto the host's. */
  readonly mappedFrom: string | undefined;
}

export interface PythonInfo {
  /** The real interpreter binary (`sys.executable`), so no PATH or shim sits in the start path. */
  readonly executable: string;
  readonly version: string;
  readonly stdlib: string;
  readonly dynload: string | undefined;
}

/** A service that runs its own program: what it runs, with which fds, and what it may touch. */
export interface ProgramSpec {
  /** The absolute path executed (a bare name was looked up in PATH at load). */
  readonly executable: string;
  /** The arguments, `{fd:NAME}` expanded; the first as written. */
  readonly argv: readonly string[];
  readonly fds: readonly ProgramFd[];
  readonly grants: ProgramGrants;
}

export interface ServiceSpec {
  readonly name: string;
  readonly file: string;
  /** The argdata document, with CloudABI-era `path:` trees already mapped. */
  readonly document: MapValue;
  readonly supervise: Supervise;
  /** The interpreter of the runner, which also starts a program service (and sandboxes it). */
  readonly python: PythonInfo | undefined;
  /** Set for services that run their own program (supervise.program: [exe, ...]). */
  readonly program: ProgramSpec | undefined;
  /** The identity to drop to (supervise.user/group), or undefined to keep the daemon's. */
  readonly runAs: { readonly uid: number; readonly gid: number; readonly groups: readonly number[] } | undefined;
  readonly sockets: readonly SocketDecl[];
  readonly files: readonly FileDecl[];
  /**
   * Library files the extension modules in the service's directories load (Linux): the runner's
   * sandbox grants read access to exactly these, so the dynamic loader can still open them.
   */
  readonly libraries: readonly string[];
  readonly warnings: readonly Diagnostic[];
}
