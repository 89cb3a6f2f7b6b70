/** Newline-delimited JSON frames with a size limit (docs/control-protocol.md). Pure. */

export const MAX_FRAME_BYTES = 1024 * 1024;
export const PROTOCOL_VERSION = 1;

export interface Request {
  readonly v: number;
  readonly id: number;
  readonly cmd: string;
  readonly args: Record<string, unknown>;
}

export type FrameResult = { readonly request: Request } | { readonly error: { code: string; message: string }; readonly fatal: boolean };

export class FrameDecoder {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;

  /** Returns the frames completed by `chunk`, in order; a fatal error ends the stream. */
  push(chunk: Buffer): FrameResult[] {
    const out: FrameResult[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.bufferedBytes + piece.length > MAX_FRAME_BYTES) return [...out, tooLarge()];
      const line = this.bufferedBytes > 0 ? Buffer.concat([...this.buffered, piece]) : piece;
      this.buffered = [];
      this.bufferedBytes = 0;
      const frame = parseFrame(line);
      out.push(frame);
      if ('error' in frame && frame.fatal) return out;
    }
    const rest = chunk.subarray(start);
    if (this.bufferedBytes + rest.length > MAX_FRAME_BYTES) return [...out, tooLarge()];
    if (rest.length > 0) {
      this.buffered.push(rest);
      this.bufferedBytes += rest.length;
    }
    return out;
  }
}

function tooLarge(): FrameResult {
  return { error: { code: 'FRAME_TOO_LARGE', message: `a frame is limited to ${MAX_FRAME_BYTES} bytes` }, fatal: true };
}

export function parseFrame(line: Buffer): FrameResult {
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch {
    return { error: { code: 'BAD_FRAME', message: 'a frame is one JSON object per line' }, fatal: true };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error: { code: 'BAD_FRAME', message: 'a frame is one JSON object per line' }, fatal: true };
  }
  const frame = value as Record<string, unknown>;
  if (frame['v'] !== PROTOCOL_VERSION) return { error: { code: 'BAD_VERSION', message: `protocol version ${PROTOCOL_VERSION} expected` }, fatal: true };
  if (typeof frame['id'] !== 'number' || typeof frame['cmd'] !== 'string') {
    return { error: { code: 'BAD_FRAME', message: 'a request has a numeric id and a cmd' }, fatal: true };
  }
  const args = frame['args'] ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return { error: { code: 'BAD_FRAME', message: 'args must be an object' }, fatal: true };
  return { request: { v: PROTOCOL_VERSION, id: frame['id'], cmd: frame['cmd'], args: args as Record<string, unknown> } };
}

export function encodeFrame(frame: object): string {
  return JSON.stringify({ v: PROTOCOL_VERSION, ...frame }) + '\n';
}
