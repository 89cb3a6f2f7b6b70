/** Services that say which version of their config they run, and edits the way editors save them. */
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { HEADER, heldSocketServer } from './daemon.js';
import { exchange } from './sockets.js';

/**
 * A small HTTP/1.0 server on the held socket `listener` that answers `MESSAGE pid N`, so a test
 * can tell which generation served it. `address` is where it binds; `supervise` the flow map body.
 */
export function versionedService(message: string, address: string, supervise = 'start_seconds: 0.3'): string {
  return `${HEADER}supervise: {${supervise}}
stderr: !fd stderr
args:
  message: ${JSON.stringify(message)}
  listener: !socket {bind: "${address}"}
command: |
${heldSocketServer("b'HTTP/1.0 200 OK\\r\\n\\r\\n%s pid %d\\n' % (sys.argdata['message'].encode(), os.getpid())")}
`;
}

/** A TCP port nothing listens on right now, for services that must move between known addresses. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** One HTTP/1.0 GET; resolves with the body. */
export async function get(port: number, timeoutMs = 10_000): Promise<string> {
  const response = await exchange({ host: '127.0.0.1', port }, 'GET / HTTP/1.0\r\n\r\n', timeoutMs);
  const split = response.indexOf('\r\n\r\n');
  if (!response.startsWith('HTTP/1.0 200 OK') || split === -1) throw new Error(`incomplete response: ${JSON.stringify(response)}`);
  return response.slice(split + 4);
}

/** How the connection attempt ended: `refused`, or the body served. */
export async function probe(port: number): Promise<string> {
  try {
    return await get(port, 5000);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ECONNREFUSED') return 'refused';
    throw e;
  }
}

/** Saves as editors do: the new text goes to a temporary file that is renamed over the old one. */
export async function saveAtomically(file: string, text: string): Promise<void> {
  const temp = path.join(path.dirname(path.dirname(file)), `.${path.basename(file)}.${process.pid}.tmp`);
  await fs.writeFile(temp, text);
  await fs.rename(temp, file);
}

export async function editAtomically(file: string, edit: (text: string) => string): Promise<void> {
  const before = await fs.readFile(file, 'utf8');
  const after = edit(before);
  if (after === before) throw new Error(`the edit changes nothing in ${file}`);
  await saveAtomically(file, after);
}
