/**
 * What the host says about the names in the config: whether paths exist, what host names resolve
 * to, where an interpreter's standard library is. Gathered once by the loader, then handed to the
 * pure resolver, so that resolution itself stays testable without a machine.
 */
import type { PythonInfo } from './spec.js';

export type PathKind = 'file' | 'directory' | 'other' | 'missing' | 'unreadable';

export interface HostFacts {
  pathKind(absolutePath: string): PathKind;
  /** The addresses a host name resolves to, or why it does not resolve. */
  hostAddresses(host: string): readonly string[] | { readonly error: string };
  /** An interpreter, by absolute path or bare name, or why it cannot be used. */
  python(nameOrPath: string): PythonInfo | { readonly error: string };
  /** A user by name or numeric id (as written), with its groups; undefined when there is none. */
  user(nameOrId: string): UserFacts | undefined;
  /** A group's id by name or numeric id; undefined when there is none. */
  group(nameOrId: string): number | undefined;
  /** A program named without a path, as PATH finds it at load; undefined when it does not. */
  executable?(name: string): string | undefined;
}

export interface UserFacts {
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups, the primary one included. */
  readonly groups: readonly number[];
}
