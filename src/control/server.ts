/**
 * The daemon's side of the control socket: who may talk (kernel peer credentials, not just file
 * permissions), framing, limits, and handing requests to the commands.
 */
import fs from 'node:fs';
import type net from 'node:net';
import type { Logger } from 'pino';
import { native } from '../sockets/native.js';
import { encodeFrame, FrameDecoder, type Request } from './frames.js';

export const MAX_PENDING_OUTPUT = 1024 * 1024;

export interface ConnectionLimits {
  /** A client that sends nothing this long is disconnected. */
  readonly idleTimeoutMs: number;
}

export interface Access {
  /** The daemon's own uid; root and this uid are always let in. */
  readonly uid: number;
  /** Members of this group (primary or supplementary) are let in too. */
  readonly gid: number | undefined;
}

export interface Session {
  send(frame: object): boolean;
  /** Called when the connection ends, to stop streams. */
  onClose(cleanup: () => void): void;
  /** A stream (`tail -f`) may be quiet for long: no idle timeout from now on. */
  keepOpen(): void;
}

export type Dispatch = (request: Request, session: Session) => Promise<void>;

/** Supplementary groups of a peer process, where the OS says (Linux /proc); else just its gid. */
function peerGroups(pid: number, gid: number): number[] {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const line = /^Groups:\s*(.*)$/m.exec(status)?.[1] ?? '';
    return [gid, ...line.split(/\s+/).filter(Boolean).map(Number)];
  } catch {
    return [gid];
  }
}

export function allowed(peer: { uid: number; gid: number; pid: number }, access: Access): boolean {
  if (peer.uid === 0 || peer.uid === access.uid) return true;
  return access.gid !== undefined && peerGroups(peer.pid, peer.gid).includes(access.gid);
}

export function serveConnection(socket: net.Socket, access: Access, limits: ConnectionLimits, dispatch: Dispatch, logger: Logger): void {
  socket.on('error', () => undefined);
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  let peer: { uid: number; gid: number; pid: number } | undefined;
  try {
    if (fd !== undefined && fd >= 0) peer = native.peerCredentials(fd);
  } catch {
    peer = undefined;
  }
  if (!peer || !allowed(peer, access)) {
    logger.warn({ peer }, 'control connection refused');
    socket.end(encodeFrame({ id: 0, ok: false, error: { code: 'FORBIDDEN', message: `uid ${peer?.uid ?? '?'} may not control this sockvisord` } }));
    return;
  }
  const cleanups = new Set<() => void>();
  let closed = false;
  let inFlight = 0;
  let streaming = false;
  /** No more requests are read (a fatal frame, or the client's end of sending); answers still go out. */
  let draining = false;
  const close = () => {
    if (closed) return;
    closed = true;
    for (const c of cleanups) c();
    cleanups.clear();
    socket.destroy();
  };
  // Once every answer to what was read is written, our side ends too. A stream (`tail -f`) goes
  // on until the client closes.
  const endWhenAnswered = () => {
    if (!draining || closed || inFlight > 0 || streaming) return;
    closed = true;
    for (const c of cleanups) c();
    cleanups.clear();
    socket.end();
  };
  socket.on('close', close);
  socket.on('end', () => {
    draining = true;
    endWhenAnswered();
  });
  socket.setTimeout(limits.idleTimeoutMs, close);
  const session: Session = {
    send(frame) {
      if (closed) return false;
      // A client that does not read is not worth unbounded memory.
      if (socket.writableLength > MAX_PENDING_OUTPUT) {
        close();
        return false;
      }
      socket.write(encodeFrame(frame));
      return true;
    },
    onClose(cleanup) {
      if (closed) cleanup();
      else cleanups.add(cleanup);
    },
    keepOpen() {
      streaming = true;
      socket.setTimeout(0);
    },
  };
  const decoder = new FrameDecoder();
  socket.on('data', (chunk: Buffer) => {
    if (draining) return;
    for (const frame of decoder.push(chunk)) {
      if ('error' in frame) {
        session.send({ id: 0, ok: false, error: frame.error });
        if (frame.fatal) {
          // Requests read before it still get their answers.
          draining = true;
          endWhenAnswered();
          return;
        }
        continue;
      }
      // A slow command (a stop waiting for stop_timeout) is not an idle client.
      inFlight += 1;
      socket.setTimeout(0);
      void dispatch(frame.request, session)
        .catch((e: Error) => {
          session.send({ id: frame.request.id, ok: false, error: { code: 'FAILED', message: e.message } });
        })
        .finally(() => {
          inFlight -= 1;
          if (inFlight === 0 && !streaming && !closed) socket.setTimeout(limits.idleTimeoutMs);
          endWhenAnswered();
        });
    }
  });
}
