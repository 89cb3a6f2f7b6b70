/** Bind failures in an operator's terms: which address, why, and what to do. Pure. */
import { formatAddress, type Address } from '../config/address.js';

export interface BindFailureContext {
  readonly address: Address;
  readonly code: string | undefined;
  readonly syscall: string | undefined;
  /** The system's own message, used when no better one is known. */
  readonly detail: string;
  /** Processes holding the address, where the OS could tell. */
  readonly owners: readonly { pid: number; command: string }[];
  readonly unixPathMax: number;
  readonly platform: NodeJS.Platform;
  readonly isRoot: boolean;
}

export interface BindFailureText {
  readonly message: string;
  readonly hint?: string;
}

function ownersText(owners: BindFailureContext['owners']): string {
  if (owners.length === 0) return '';
  const list = owners.map((o) => `pid ${o.pid} (${o.command})`);
  return ` by ${list.join(', ')}`;
}

function findCommand(address: Address, platform: NodeJS.Platform): string {
  if (address.family === 'unix') return platform === 'freebsd' ? `sockstat -u | grep ${address.path}` : `ss -xlp src ${address.path}`;
  return platform === 'freebsd' ? `sockstat -l -p ${address.port}` : `ss -ltnup 'sport = :${address.port}'`;
}

export function describeBindFailure(ctx: BindFailureContext): BindFailureText {
  const where = formatAddress(ctx.address);
  const a = ctx.address;
  switch (ctx.code) {
    case 'EADDRINUSE':
      if (a.family === 'unix') {
        return { message: `${where}: another process is accepting on this socket${ownersText(ctx.owners)}`, hint: 'stop it, or choose another path; sockvisord removes a socket file only when nothing answers on it' };
      }
      return {
        message: `${where}: address already in use${ownersText(ctx.owners)}`,
        ...(ctx.owners.length === 0 ? { hint: `see who holds it with: ${findCommand(a, ctx.platform)}` } : {}),
      };
    case 'EEXIST':
      return { message: `${where}: a file that is not a socket is in the way; sockvisord will not remove it`, hint: 'move the file, or choose another path' };
    case 'EACCES':
    case 'EPERM':
      if (a.family === 'inet' && a.port > 0 && a.port < 1024 && ctx.syscall === 'bind') {
        return {
          message: `${where}: permission denied: ports below 1024 are reserved for root`,
          hint: ctx.isRoot ? 'a security policy forbids it; check the jail or MAC settings' : 'run sockvisord as root (it drops privileges per service), or choose a port above 1023',
        };
      }
      if (a.family === 'unix') {
        return { message: `${where}: permission denied (${ctx.syscall ?? 'bind'})`, hint: `sockvisord must be able to create files in ${parentDir(a.path)}` };
      }
      return { message: `${where}: permission denied (${ctx.syscall ?? 'bind'})` };
    case 'EADDRNOTAVAIL':
      return { message: `${where}: this host has no such address`, hint: 'bind an address of one of its interfaces, 127.0.0.1, or 0.0.0.0 for all' };
    case 'ENAMETOOLONG':
      return {
        message: `${where}: unix socket path is ${Buffer.byteLength(where)} bytes; the limit here is ${ctx.unixPathMax}`,
        hint: 'choose a shorter path, such as one under /var/run',
      };
    case 'ENOENT':
      if (a.family === 'unix') return { message: `${where}: directory ${parentDir(a.path)} does not exist`, hint: 'create it first, or choose another path' };
      break;
    case 'ENOTDIR':
      if (a.family === 'unix') return { message: `${where}: a component of ${parentDir(a.path)} is not a directory` };
      break;
    case 'EAFNOSUPPORT':
      if (a.family === 'inet' && a.hostKind === 'ipv6') return { message: `${where}: IPv6 is not available on this host` };
      break;
  }
  return { message: `${where}: ${ctx.detail}` };
}

function parentDir(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}
