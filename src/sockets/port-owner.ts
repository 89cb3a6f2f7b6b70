/**
 * Who holds an address, for EADDRINUSE messages. Best effort by design: the answer only decorates an
 * error, so every failure (no /proc, no permission, no sockstat, odd output) yields an empty list.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';

export interface PortOwner {
  readonly pid: number;
  readonly command: string;
}

export type OwnerQuery =
  | { readonly family: 'inet'; readonly host: string; readonly port: number; readonly proto: 'tcp' | 'udp' }
  | { readonly family: 'unix'; readonly path: string };

export type InetQuery = Extract<OwnerQuery, { family: 'inet' }>;

/** Best effort: an empty list when the OS cannot tell (no /proc, no permission, not found). Never throws. */
export async function findOwners(query: OwnerQuery, platform: NodeJS.Platform = process.platform): Promise<PortOwner[]> {
  try {
    if (platform === 'linux') return await findOwnersLinux(query);
    if (platform === 'freebsd') return await findOwnersFreeBSD(query);
  } catch {
    // Only decorates an error message; a failure here must not replace the original error.
  }
  return [];
}

// ---------------------------------------------------------------------------------------------
// Address matching, shared by both platforms.

type HostKey = { readonly kind: 'v4' | 'v6'; readonly addr: string; readonly wildcard: boolean } | { readonly kind: 'name' };

/** Canonical form, so `::1`/`0:0::1` compare equal and `::ffff:127.0.0.1` counts as the IPv4 address it carries. */
function hostKey(text: string): HostKey {
  const bare = text.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  if (net.isIPv4(bare)) return { kind: 'v4', addr: bare, wildcard: bare === '0.0.0.0' };
  if (!net.isIPv6(bare)) return { kind: 'name' };
  const canon = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canon);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    const v4 = `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    return { kind: 'v4', addr: v4, wildcard: v4 === '0.0.0.0' };
  }
  return { kind: 'v6', addr: canon, wildcard: canon === '::' };
}

/**
 * Whether a socket bound to `bound` stops a bind to `wanted` on the same port. A wildcard on either
 * side overlaps every address of its family; `::` also overlaps IPv4 unless the socket is known to
 * be IPv6-only (Linux's /proc cannot say, so it is assumed dual-stack, the Linux default).
 */
function hostsOverlap(wanted: HostKey, bound: HostKey, boundV6Only = false): boolean {
  // A name was not resolved by the caller; anything on the port is then a plausible culprit.
  if (wanted.kind === 'name' || bound.kind === 'name') return true;
  if (wanted.kind === bound.kind) return wanted.wildcard || bound.wildcard || wanted.addr === bound.addr;
  if (bound.kind === 'v6') return bound.wildcard && !boundV6Only;
  return wanted.wildcard;
}

// ---------------------------------------------------------------------------------------------
// Linux: /proc/net tables give socket inodes; /proc/PID/fd links say who holds them.

const TCP_LISTEN = '0A';

/**
 * Inodes of sockets in a /proc/net/{tcp,tcp6,udp,udp6} table that block `query`: TCP listeners,
 * or any UDP socket bound to the port. `littleEndian` is the kernel's byte order, which the
 * address words are printed in.
 */
export function parseProcNet(text: string, query: InetQuery, littleEndian = os.endianness() === 'LE'): number[] {
  const wanted = hostKey(query.host);
  const inodes: number[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
    if (f.length < 10 || !/^\d+:$/.test(f[0]!)) continue;
    const local = /^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})$/.exec(f[1]!);
    if (!local) continue;
    if (parseInt(local[2]!, 16) !== query.port) continue;
    if (query.proto === 'tcp' && f[3]!.toUpperCase() !== TCP_LISTEN) continue;
    const inode = Number(f[9]);
    // Inode 0 is a socket with no file (TIME_WAIT, orphaned): nobody to name.
    if (!Number.isSafeInteger(inode) || inode <= 0) continue;
    if (!hostsOverlap(wanted, hostKey(procHexToAddress(local[1]!, littleEndian)))) continue;
    inodes.push(inode);
  }
  return inodes;
}

function procHexToAddress(hex: string, littleEndian: boolean): string {
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = [0, 2, 4, 6].map((i) => parseInt(hex.slice(w + i, w + i + 2), 16));
    bytes.push(...(littleEndian ? word.reverse() : word));
  }
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(':');
}

const SS_CONNECTED = '03';
const SOCK_DGRAM = '0002';

/**
 * Inodes of unix sockets bound to `path` in /proc/net/unix. Connections a stream listener accepted
 * show its path too; they are skipped, since the process holding the listener is the answer.
 */
export function parseProcNetUnix(text: string, path: string): number[] {
  const inodes: number[] = [];
  for (const line of text.split('\n')) {
    // Num: RefCount Protocol Flags Type St Inode [Path]; the path is the rest of the line, spaces and all.
    const m = /^[0-9A-Fa-f]+:\s+\S+\s+\S+\s+\S+\s+(\S+)\s+(\S+)\s+(\d+) (.*)$/.exec(line);
    if (!m || m[4] !== path) continue;
    if (m[2] === SS_CONNECTED && m[1] !== SOCK_DGRAM) continue;
    const inode = Number(m[3]);
    if (Number.isSafeInteger(inode) && inode > 0) inodes.push(inode);
  }
  return inodes;
}

async function findOwnersLinux(query: OwnerQuery): Promise<PortOwner[]> {
  const inodes = new Set<number>();
  if (query.family === 'unix') {
    for (const i of parseProcNetUnix(await readOr('/proc/net/unix'), query.path)) inodes.add(i);
  } else {
    for (const table of [query.proto, `${query.proto}6`]) {
      for (const i of parseProcNet(await readOr(`/proc/net/${table}`), query)) inodes.add(i);
    }
  }
  if (inodes.size === 0) return [];
  return ownersOfInodes(inodes);
}

async function readOr(file: string, fallback = ''): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    return fallback;
  }
}

// Enough parallelism to hide syscall latency without flooding libuv's threadpool, which the
// daemon shares with everything else it is doing while reporting the error.
const PID_WORKERS = 8;
const READLINK_BATCH = 64;
// The error message should not wait long on a busy host; a partial answer is still useful.
const SCAN_BUDGET_MS = 2000;

async function ownersOfInodes(inodes: ReadonlySet<number>): Promise<PortOwner[]> {
  let entries: string[];
  try {
    entries = await fs.readdir('/proc');
  } catch {
    return [];
  }
  const pids = entries.filter((e) => /^[0-9]+$/.test(e));
  const deadline = Date.now() + SCAN_BUDGET_MS;
  const holders: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < pids.length && Date.now() < deadline) {
      const pid = pids[next++]!;
      if (await holdsAny(pid, inodes)) holders.push(Number(pid));
    }
  };
  await Promise.all(Array.from({ length: PID_WORKERS }, worker));
  holders.sort((a, b) => a - b);
  return Promise.all(
    holders.map(async (pid) => ({ pid, command: (await readOr(`/proc/${pid}/comm`, '?\n')).replace(/\n$/, '') })),
  );
}

async function holdsAny(pid: string, inodes: ReadonlySet<number>): Promise<boolean> {
  const dir = `/proc/${pid}/fd`;
  let fds: string[];
  try {
    fds = await fs.readdir(dir);
  } catch {
    return false; // another user's process, or it exited
  }
  for (let i = 0; i < fds.length; i += READLINK_BATCH) {
    const links = await Promise.all(fds.slice(i, i + READLINK_BATCH).map((fd) => fs.readlink(`${dir}/${fd}`).catch(() => '')));
    for (const link of links) {
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(Number(m[1]))) return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// FreeBSD: sockstat(1) already joins sockets to processes.

const SOCKSTAT = '/usr/bin/sockstat';
const SOCKSTAT_TIMEOUT_MS = 2000;

async function findOwnersFreeBSD(query: OwnerQuery): Promise<PortOwner[]> {
  const args = query.family === 'unix' ? ['-l', '-u'] : ['-l', '-46', '-P', query.proto, '-p', String(query.port)];
  const output = await new Promise<string>((resolve) => {
    execFile(SOCKSTAT, args, { timeout: SOCKSTAT_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout) =>
      resolve(err ? '' : stdout),
    );
  });
  return parseSockstat(output, query);
}

/**
 * Owners in `sockstat -l` output (USER COMMAND PID FD PROTO LOCAL FOREIGN). sockstat prints IPv6
 * addresses unbracketed (`::1:8080`) and both wildcards as `*`; the PROTO suffix (4, 6, 46) tells
 * which family a `*` is and whether an IPv6 socket also takes IPv4. COMMAND is cut to 10 chars.
 */
export function parseSockstat(output: string, query: OwnerQuery): PortOwner[] {
  const wanted = query.family === 'inet' ? hostKey(query.host) : undefined;
  const found = new Map<number, string>();
  for (const line of output.split('\n')) {
    // The command is matched lazily up to " PID FD PROTO", so a name with a space still parses.
    const m = /^(\S+)\s+(.+?)\s+(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line.trimEnd());
    if (!m || m[1] === 'USER') continue;
    const command = m[2]!;
    const pid = Number(m[3]);
    const proto = m[5]!;
    const rest = m[6]!;
    if (query.family === 'unix') {
      if (!/^(stream|dgram|seqpac)$/.test(proto)) continue;
      // A bound socket's path may be followed by its peers, " <- [pid fd],..." or " -> ...".
      const path = rest.split(/ (?:<-|->) /)[0]!.replace(/\0+$/, '');
      if (path !== query.path) continue;
    } else {
      const p = /^(tcp|toe|udp)(4|6|46)$/.exec(proto);
      if (!p || (p[1] === 'udp') !== (query.proto === 'udp')) continue;
      const local = /^(.*):(\d+)$/.exec(rest.split(/\s+/)[0]!);
      if (!local || Number(local[2]) !== query.port) continue;
      const v6Only = p[2] === '6';
      const bound: HostKey =
        local[1] === '*' ? { kind: p[2] === '4' ? 'v4' : 'v6', addr: '*', wildcard: true } : hostKey(local[1]!);
      if (!hostsOverlap(wanted!, bound, v6Only)) continue;
    }
    if (!found.has(pid)) found.set(pid, command);
  }
  return [...found].sort(([a], [b]) => a - b).map(([pid, command]) => ({ pid, command }));
}
