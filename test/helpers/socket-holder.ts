/**
 * A stand-in for the daemon's socket side, run as its own process so tests can look at it from
 * outside (/proc/PID/fd, accept counts). It speaks JSON lines: requests on stdin, replies and
 * events on stdout. Like the daemon, it marks every inherited fd close-on-exec first.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import type { SocketDecl } from '../../src/config/spec.js';
import { prepareForChild } from '../../src/sockets/handoff.js';
import { native } from '../../src/sockets/native.js';
import { SocketBindError, SocketRegistry } from '../../src/sockets/registry.js';

native.cloexecFrom(3);

const registry = new SocketRegistry();
const connected = new Map<string, number>();
const send = (msg: unknown) => process.stdout.write(JSON.stringify(msg) + '\n');

type Request =
  | { id: number; op: 'bind'; decls: SocketDecl[] }
  | { id: number; op: 'connect'; name: string; family: 0 | 4 | 6; address: string; port: number; type: 'stream' | 'dgram' | 'seqpacket' }
  | { id: number; op: 'spawn'; fds: string[]; code: string; restoreBlocking?: boolean }
  | { id: number; op: 'isNonBlocking'; identity: string }
  | { id: number; op: 'setUser'; service: string; identities: string[] }
  | { id: number; op: 'closeUnused' }
  | { id: number; op: 'fds' }
  | { id: number; op: 'dropPrivileges'; uid: number; gid: number };

function fdOf(name: string): number {
  const fd = registry.get(name)?.fd ?? connected.get(name);
  if (fd === undefined) throw new Error(`no socket ${name}`);
  return fd;
}

async function handle(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'bind':
      try {
        const fresh = await registry.bindAll(req.decls);
        return { bound: fresh.map((s) => ({ identity: s.identity, fd: s.fd, bound: s.bound })), held: registry.list().map((s) => ({ identity: s.identity, fd: s.fd, bound: s.bound })) };
      } catch (e) {
        if (e instanceof SocketBindError) return { failures: e.failures.map((f) => ({ identity: f.identity, message: f.message, hint: f.hint ?? null })) };
        throw e;
      }
    case 'connect': {
      const fd = await native.connect(req.family, req.address, req.port, req.type, 5000);
      connected.set(req.name, fd);
      return { fd };
    }
    case 'spawn': {
      const fds = req.fds.map(fdOf);
      if (req.restoreBlocking !== false) prepareForChild(fds);
      const child = spawn('python3', ['-I', '-c', req.code], { stdio: ['ignore', 'pipe', 'pipe', ...fds] });
      child.stdout!.on('data', (d: Buffer) => send({ event: 'stdout', pid: child.pid, data: d.toString() }));
      child.stderr!.on('data', (d: Buffer) => send({ event: 'stderr', pid: child.pid, data: d.toString() }));
      child.on('exit', (code, signal) => send({ event: 'exit', pid: child.pid, code, signal }));
      return { pid: child.pid };
    }
    case 'isNonBlocking':
      return { nonBlocking: native.isNonBlocking(fdOf(req.identity)) };
    case 'setUser':
      registry.setUser(req.service, req.identities);
      return {};
    case 'closeUnused':
      return { closed: registry.closeUnused().map((s) => s.identity) };
    case 'fds':
      return { fds: fs.readdirSync('/proc/self/fd').map(Number).sort((a, b) => a - b) };
    case 'dropPrivileges':
      // After start-up, so the holder's code was loaded as root from wherever the checkout is.
      process.setgroups!([req.gid]);
      process.setgid!(req.gid);
      process.setuid!(req.uid);
      return { uid: process.getuid!() };
  }
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const req = JSON.parse(line) as Request;
  handle(req).then(
    (result) => send({ id: req.id, ...(result as object) }),
    (e: NodeJS.ErrnoException) => send({ id: req.id, error: e.message, code: e.code ?? null }),
  );
});
process.stdin.on('end', () => {
  registry.closeAll();
  process.exit(0);
});
send({ event: 'ready', pid: process.pid });
