/** Socket declarations and small socket clients for tests. */
import fs from 'node:fs';
import net from 'node:net';
import { parseAddress, socketIdentity } from '../../src/config/address.js';
import type { SocketDecl } from '../../src/config/spec.js';
import type { SocketType } from '../../src/config/values.js';

let counter = 0;

/** A `bind:` declaration as the config loader would make it. */
export function decl(written: string, socketType: SocketType = 'stream', extra: Partial<SocketDecl> = {}): SocketDecl {
  const address = parseAddress(written);
  if (typeof address === 'string') throw new Error(address);
  const keyPath = `args.s${counter++}`;
  return {
    keyPath, pos: { file: 'test', line: 1, col: 1 }, mode: 'bind', socketType, backlog: undefined, written, address,
    identity: socketIdentity(address, socketType, `test/${keyPath}`),
    unixFile: address.family === 'unix' ? { mode: 0o660, uid: -1, gid: -1 } : undefined,
    ...extra,
  };
}

export function portOf(bound: string): number {
  return Number(bound.slice(bound.lastIndexOf(':') + 1));
}

/** Connects, sends `request`, and resolves with everything received until the peer closes. */
export function exchange(options: net.NetConnectOpts, request: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(options);
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    socket.on('connect', () => socket.write(request));
    socket.on('data', (d) => chunks.push(d));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString()));
    socket.on('error', reject);
  });
}

/** Socket inodes held by a process, read from /proc/PID/fd. */
export function socketInodes(pid: number): number[] {
  const inodes: number[] = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.push(Number(m[1]));
    } catch {
      // closed while listing
    }
  }
  return inodes;
}

/** TCP state (hex, as /proc/net/tcp shows it: 0A listen, 01 established) of each inode found. */
export function tcpStates(inodes: readonly number[]): Map<number, string> {
  const wanted = new Set(inodes);
  const states = new Map<number, string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const inode = Number(cols[9]);
      if (wanted.has(inode)) states.set(inode, cols[3]!);
    }
  }
  return states;
}
