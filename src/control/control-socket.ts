/**
 * The control socket's path: one daemon owns it. A live daemon on it is named by its pid (from the
 * kernel's peer credentials); a file left by a dead one is replaced.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import { AlreadyRunningError } from '../daemon/pidfile.js';
import { native } from '../sockets/native.js';

/** The pid of a process accepting on `socketPath`, or undefined when nothing answers. */
export async function controlSocketOwner(socketPath: string): Promise<number | undefined> {
  let fd: number;
  try {
    fd = await native.connect(0, socketPath, 0, 'stream', 2000);
  } catch {
    return undefined;
  }
  try {
    return native.peerCredentials(fd).pid;
  } finally {
    native.close(fd);
  }
}

export async function listenControlSocket(socketPath: string, mode: number, onConnection: (socket: net.Socket) => void): Promise<net.Server> {
  const owner = await controlSocketOwner(socketPath);
  if (owner !== undefined) throw new AlreadyRunningError(owner, `control socket ${socketPath}`);
  const st = await fs.lstat(socketPath).catch(() => undefined);
  if (st?.isSocket()) await fs.rm(socketPath, { force: true });
  else if (st) throw new Error(`${socketPath}: a file that is not a socket is in the way of the control socket`);
  const server = net.createServer({ allowHalfOpen: true }, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  await fs.chmod(socketPath, mode);
  return server;
}
