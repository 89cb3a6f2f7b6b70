/**
 * The held listening sockets. The daemon binds each one once and keeps the very same fd for as
 * long as any service declares its identity (normalised address plus protocol). It never accepts
 * on them; children do.
 */
import fs from 'node:fs';
import { formatAddress, type Address } from '../config/address.js';
import type { SocketDecl } from '../config/spec.js';
import type { SocketType } from '../config/values.js';
import { describeBindFailure, type BindFailureText } from './bind-errors.js';
import { native } from './native.js';
import { findOwners } from './port-owner.js';

export interface HeldSocket {
  readonly identity: string;
  readonly fd: number;
  readonly address: Address;
  readonly socketType: SocketType;
  /** The address the kernel actually bound: the real port where port 0 was asked for. */
  readonly bound: string;
  /** For unix sockets: the file we created, so we only ever remove our own. */
  readonly unixFile: { readonly dev: number; readonly ino: number } | undefined;
}

export interface BindFailure extends BindFailureText {
  readonly identity: string;
  readonly declaration: SocketDecl;
}

/** A bind request failed; nothing this request bound is left open. */
export class SocketBindError extends Error {
  constructor(readonly failures: readonly BindFailure[]) {
    super(failures.map((f) => f.message).join('; '));
    this.name = 'SocketBindError';
  }
}

export class SocketRegistry {
  private readonly held = new Map<string, HeldSocket>();
  /** identity -> the services that declare it. */
  private readonly users = new Map<string, Set<string>>();

  get(identity: string): HeldSocket | undefined {
    return this.held.get(identity);
  }

  list(): HeldSocket[] {
    return [...this.held.values()];
  }

  /**
   * Binds every `bind:` declaration whose identity is not held yet. All or nothing: when any bind
   * fails, the sockets bound by this call are closed again and every failure is reported; sockets
   * held before the call are never touched.
   */
  async bindAll(declarations: readonly SocketDecl[]): Promise<HeldSocket[]> {
    const fresh: HeldSocket[] = [];
    const failures: BindFailure[] = [];
    const seen = new Set<string>();
    for (const decl of declarations) {
      if (decl.mode !== 'bind' || this.held.has(decl.identity) || seen.has(decl.identity)) continue;
      seen.add(decl.identity);
      try {
        fresh.push(bindOne(decl));
      } catch (e) {
        failures.push({ identity: decl.identity, declaration: decl, ...(await explain(decl.address, decl.socketType, e)) });
      }
    }
    if (failures.length > 0) {
      for (const socket of fresh) closeSocket(socket);
      throw new SocketBindError(failures);
    }
    for (const socket of fresh) this.held.set(socket.identity, socket);
    return fresh;
  }

  /** Records which sockets a service declares, replacing what it declared before. */
  setUser(service: string, identities: readonly string[]): void {
    for (const users of this.users.values()) users.delete(service);
    for (const identity of identities) {
      let users = this.users.get(identity);
      if (!users) this.users.set(identity, (users = new Set()));
      users.add(service);
    }
  }

  removeUser(service: string): void {
    this.setUser(service, []);
  }

  /**
   * Gives held unix socket files the mode and owner their declarations now ask for (a reload may
   * change them without moving the socket). Only files that are still the ones we made.
   */
  applyFileModes(declarations: readonly SocketDecl[]): void {
    for (const decl of declarations) {
      const socket = this.held.get(decl.identity);
      if (!socket?.unixFile || !decl.unixFile || socket.address.family !== 'unix') continue;
      try {
        const st = fs.lstatSync(socket.address.path);
        if (!st.isSocket() || st.dev !== socket.unixFile.dev || st.ino !== socket.unixFile.ino) continue;
        if ((st.mode & 0o7777) !== decl.unixFile.mode) fs.chmodSync(socket.address.path, decl.unixFile.mode);
        if ((decl.unixFile.uid !== -1 && st.uid !== decl.unixFile.uid) || (decl.unixFile.gid !== -1 && st.gid !== decl.unixFile.gid)) {
          fs.lchownSync(socket.address.path, decl.unixFile.uid, decl.unixFile.gid);
        }
      } catch {
        // gone or not ours to change; the next bind will set it
      }
    }
  }

  /**
   * Refuses new connections on these sockets from now on, while the processes that still hold
   * them finish: a socket on its way out turns clients away at once instead of queueing them
   * where no one will accept them.
   */
  stopListening(identities: Iterable<string>): void {
    for (const identity of identities) {
      const socket = this.held.get(identity);
      if (socket && socket.socketType !== 'dgram') native.stopListening(socket.fd);
    }
  }

  /** Closes every held socket that no service declares any more, and returns them. */
  closeUnused(): HeldSocket[] {
    const closed: HeldSocket[] = [];
    for (const [identity, socket] of this.held) {
      if ((this.users.get(identity)?.size ?? 0) > 0) continue;
      closeSocket(socket);
      this.held.delete(identity);
      this.users.delete(identity);
      closed.push(socket);
    }
    return closed;
  }

  closeAll(): void {
    for (const socket of this.held.values()) closeSocket(socket);
    this.held.clear();
    this.users.clear();
  }
}

function bindOne(decl: SocketDecl): HeldSocket {
  const a = decl.address;
  const backlog = decl.backlog ?? -1;
  if (a.family === 'unix') {
    const file = decl.unixFile ?? { mode: 0o660, uid: -1, gid: -1 };
    const fd = native.listenUnix(a.path, decl.socketType, backlog, file.mode, file.uid, file.gid);
    const st = fs.statSync(a.path);
    return { identity: decl.identity, fd, address: a, socketType: decl.socketType, bound: a.path, unixFile: { dev: st.dev, ino: st.ino } };
  }
  const family = a.hostKind === 'ipv6' ? 6 : 4;
  const type = decl.socketType === 'dgram' ? 'dgram' : 'stream';
  const { fd, port } = native.listenInet(family, a.host, a.port, type, backlog);
  return { identity: decl.identity, fd, address: a, socketType: decl.socketType, bound: formatAddress({ ...a, port }), unixFile: undefined };
}

function closeSocket(socket: HeldSocket): void {
  native.close(socket.fd);
  if (socket.address.family === 'unix' && socket.unixFile) {
    // Remove the socket file only if it is still the one we made; someone may have replaced it.
    try {
      const st = fs.lstatSync(socket.address.path);
      if (st.isSocket() && st.dev === socket.unixFile.dev && st.ino === socket.unixFile.ino) fs.unlinkSync(socket.address.path);
    } catch {
      // already gone
    }
  }
}

async function explain(address: Address, socketType: SocketType, e: unknown): Promise<BindFailureText> {
  const err = e as NodeJS.ErrnoException;
  const owners =
    err.code === 'EADDRINUSE'
      ? await findOwners(
          address.family === 'unix' ? { family: 'unix', path: address.path } : { family: 'inet', host: address.host, port: address.port, proto: socketType === 'dgram' ? 'udp' : 'tcp' },
        )
      : [];
  return describeBindFailure({
    address, code: err.code, syscall: err.syscall, detail: err.message, owners,
    unixPathMax: native.unixPathMax, platform: process.platform, isRoot: process.getuid?.() === 0,
  });
}
