/** The native addon (native/sockvisor.c): what Node cannot do for held sockets. */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LocalAddress {
  readonly family: 'inet4' | 'inet6' | 'unix' | 'other';
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
}

export interface UserEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  /** Supplementary groups, the primary one included. */
  readonly groups: readonly number[];
}

export interface NativeAddon {
  /** Bound and, for stream, listening; close-on-exec. A negative backlog means the system maximum. */
  listenInet(family: 4 | 6, host: string, port: number, type: 'stream' | 'dgram', backlog: number): { fd: number; port: number };
  /** uid/gid -1 leave the owner alone. A stale socket file (nothing answers) is replaced. */
  listenUnix(path: string, type: 'stream' | 'seqpacket' | 'dgram', backlog: number, mode: number, uid: number, gid: number): number;
  /** family 0 is unix, with the path in place of the host. Runs on the thread pool. */
  connect(family: 0 | 4 | 6, hostOrPath: string, port: number, type: 'stream' | 'dgram' | 'seqpacket', timeoutMs: number): Promise<number>;
  setBlocking(fd: number, blocking: boolean): void;
  isNonBlocking(fd: number): boolean;
  setCloexec(fd: number, on: boolean): void;
  isCloexec(fd: number): boolean;
  /** Marks every fd from firstFd up close-on-exec. */
  cloexecFrom(firstFd: number): void;
  close(fd: number): void;
  /** New connections are refused from now on; the fd stays open. False where the system cannot. */
  stopListening(fd: number): boolean;
  /** [readFd, writeFd], both close-on-exec. */
  pipe(): [number, number];
  localAddress(fd: number): LocalAddress;
  /** pid is -1 where the kernel does not report it. */
  peerCredentials(fd: number): { uid: number; gid: number; pid: number };
  lookupUser(nameOrUid: string | number): UserEntry | null;
  lookupGroup(nameOrGid: string | number): { name: string; gid: number } | null;
  /** The longest unix socket path this kernel takes, in bytes. */
  readonly unixPathMax: number;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const addonPath = path.join(root, 'build/Release/sockvisor.node');

function load(): NativeAddon {
  try {
    return createRequire(import.meta.url)(addonPath) as NativeAddon;
  } catch (e) {
    throw new Error(`the native addon ${addonPath} is missing or broken (${(e as Error).message}); run npm install (or npm rebuild) in ${root}`);
  }
}

export const native: NativeAddon = load();
