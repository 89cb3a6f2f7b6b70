/** Socket addresses as written in `!socket {bind: ...}`: `/unix/path`, `[v6addr]:port`, `host:port`. Pure. */
import net from 'node:net';
import type { SocketType } from './values.js';

export type Address =
  | { readonly family: 'unix'; readonly path: string }
  | { readonly family: 'inet'; readonly host: string; readonly port: number; readonly hostKind: 'ipv4' | 'ipv6' | 'name' };

export function parseAddress(text: string): Address | string {
  if (text.startsWith('/')) {
    if (text.includes('\0')) return `unix socket path "${text}" contains a NUL byte`;
    return { family: 'unix', path: text };
  }
  let host: string;
  let portText: string;
  const bracketed = /^\[([^\]]*)\]:(.*)$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2]!;
    if (!net.isIPv6(host)) return `"${host}" in "${text}" is not an IPv6 address`;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return `address "${text}" has no port; write host:port, [v6addr]:port or an absolute unix socket path`;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return `IPv6 address in "${text}" needs brackets, as in [::1]:8080`;
    if (host === '' || host === '*') return `address "${text}" has no host; write 0.0.0.0:${portText} for every IPv4 address or [::]:${portText} for IPv6`;
    if (!/^[A-Za-z0-9.-]+$/.test(host)) return `"${host}" in "${text}" is not a host name or IP address`;
  }
  if (!/^[0-9]+$/.test(portText)) return `port "${portText}" in "${text}" is not a number`;
  const port = Number(portText);
  if (port > 65535) return `port ${port} in "${text}" is above 65535`;
  const hostKind = net.isIPv6(host) ? 'ipv6' : net.isIPv4(host) ? 'ipv4' : 'name';
  return { family: 'inet', host: hostKind === 'ipv6' ? normaliseIPv6(host) : host, port, hostKind };
}

/** The compressed lower-case form, so `[::1]` and `[0:0::1]` are one socket. */
export function normaliseIPv6(address: string): string {
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

/** What a socket type may be used with: seqpacket exists for unix sockets only. */
export function socketTypeProblem(address: Address, type: SocketType): string | undefined {
  if (address.family === 'inet' && type === 'seqpacket') return 'seqpacket sockets are unix sockets only; use stream for TCP';
  return undefined;
}

export function formatAddress(address: Address): string {
  if (address.family === 'unix') return address.path;
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/**
 * The identity of a held socket: its normalised address plus the protocol. Two declarations with
 * the same identity are the same kernel socket. `declaredAt` (service and key path) tells
 * port-0 declarations apart.
 */
export function socketIdentity(address: Address, type: SocketType, declaredAt: string): string {
  if (address.family === 'unix') return `unix-${type}:${address.path}`;
  const base = `${type === 'dgram' ? 'udp' : 'tcp'}:${formatAddress(address)}`;
  // Port 0 is a fresh ephemeral port per declaration, kept across reloads of that declaration.
  return address.port === 0 ? `${base}#${declaredAt}` : base;
}
