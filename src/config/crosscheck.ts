/** Checks that span services: two services may not bind one address. Pure. */
import { error, formatPos, type Diagnostic } from './diagnostics.js';
import type { ServiceSpec, SocketDecl } from './spec.js';

/** Unix sockets of any type collide on their path; inet ones on address and protocol. */
function bindConflictKey(socket: SocketDecl): string | undefined {
  if (socket.mode !== 'bind') return undefined;
  if (socket.address.family === 'unix') return `unix:${socket.address.path}`;
  // Port 0 asks the kernel for a fresh port per declaration, so such binds never collide.
  if (socket.address.port === 0) return undefined;
  return socket.identity;
}

export function findBindConflicts(services: readonly ServiceSpec[]): Diagnostic[] {
  const first = new Map<string, { service: ServiceSpec; socket: SocketDecl }>();
  const diagnostics: Diagnostic[] = [];
  for (const service of services) {
    for (const socket of service.sockets) {
      const key = bindConflictKey(socket);
      if (key === undefined) continue;
      const earlier = first.get(key);
      if (earlier === undefined) {
        first.set(key, { service, socket });
        continue;
      }
      const same = earlier.service === service;
      diagnostics.push(
        error(
          socket.pos,
          `${socket.written} is already bound by ${same ? 'this service' : `service "${earlier.service.name}"`} at ${formatPos(earlier.socket.pos)}${socket.written !== earlier.socket.written ? ` (${earlier.socket.written})` : ''}`,
          'give each service its own address, or pass the same socket to both programs from one service',
        ),
      );
    }
  }
  return diagnostics;
}
