/**
 * The client side of the control protocol (docs/control-protocol.md): NDJSON frames over the
 * daemon's Unix control socket, responses matched to requests by id.
 *
 * Kept light on purpose: sockvisorctl starts with this module, so it imports only node:net and
 * node:fs, and reaches for the YAML config parser only when a config file really names a socket.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import { quickControlSocket } from './socket-path.js';

export const PROTOCOL_VERSION = 1;
export const CONNECT_TIMEOUT_MS = 5000;
/** The daemon's default `control.socket` (as in config/daemon-config.ts). */
export const DEFAULT_CONTROL_SOCKET = '/var/run/sockvisor.sock';

/** The daemon's default config file (as `defaultConfigPath` in config/daemon-config.ts). */
export function defaultConfigFile(platform: NodeJS.Platform = process.platform): string {
  return platform === 'freebsd' ? '/usr/local/etc/sockvisor.yaml' : '/etc/sockvisor.yaml';
}

/** The daemon answered `ok: false`: `code` is one of the protocol's error codes. */
export class ControlError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ControlError';
  }
}

export type UnreachableReason = 'missing' | 'refused' | 'denied' | 'timeout' | 'other';

/** No connection to the control socket: nothing there, nobody listening, no permission, no answer. */
export class ControlUnreachable extends Error {
  constructor(
    readonly socketPath: string,
    readonly reason: UnreachableReason,
    /** Short and for people: `no such file (is it running?)`. */
    readonly detail: string,
  ) {
    super(`cannot reach sockvisord at ${socketPath}: ${detail}`);
    this.name = 'ControlUnreachable';
  }
}

/** The daemon config named by -c could not be read. */
export class ControlConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ControlConfigError';
  }
}

export function unreachableFrom(socketPath: string, e: NodeJS.ErrnoException): ControlUnreachable {
  switch (e.code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new ControlUnreachable(socketPath, 'missing', 'no such file (is it running?)');
    case 'ECONNREFUSED':
      return new ControlUnreachable(socketPath, 'refused', 'connection refused (is it running?)');
    case 'EACCES':
    case 'EPERM':
      return new ControlUnreachable(socketPath, 'denied', 'permission denied (try as root or as a member of control.group)');
    case 'ENOTSOCK':
      return new ControlUnreachable(socketPath, 'other', 'not a socket');
    default:
      return new ControlUnreachable(socketPath, 'other', e.message);
  }
}

function controlErrorFrom(error: unknown): ControlError {
  if (typeof error === 'string') return new ControlError('FAILED', error);
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    return new ControlError(typeof code === 'string' ? code : 'FAILED', typeof message === 'string' ? message : 'request failed');
  }
  return new ControlError('FAILED', 'request failed');
}

interface Pending {
  resolve(result: unknown): void;
  reject(e: Error): void;
  /** Set for streaming requests. */
  onText?: (text: string) => void;
}

export interface ControlClientOptions {
  readonly connectTimeoutMs?: number;
}

export interface RequestOptions {
  /** Aborting closes the connection; the request rejects with ControlError `CANCELLED`. */
  readonly signal?: AbortSignal;
}

/** Lines longer than this from the daemon are a protocol error (its own frames are 1 MiB at most). */
const MAX_INCOMING_LINE = 8 * 1024 * 1024;

/**
 * One connection to sockvisord. It connects on the first request (or `connect()`); several
 * requests may be in flight; `close()` ends it. A connection that ends fails what is still pending
 * with ControlError `DISCONNECTED` and ends streams normally.
 */
export class ControlClient {
  private socket: net.Socket | undefined;
  private connecting: Promise<void> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buffer = '';
  private ended = false;

  constructor(
    readonly socketPath: string,
    private readonly options: ControlClientOptions = {},
  ) {}

  static async connect(socketPath: string, options?: ControlClientOptions): Promise<ControlClient> {
    const client = new ControlClient(socketPath, options);
    await client.connect();
    return client;
  }

  connect(): Promise<void> {
    this.connecting ??= new Promise<void>((resolve, reject) => {
      const timeoutMs = this.options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
      const socket = net.connect(this.socketPath);
      const timer = setTimeout(() => {
        socket.destroy();
        this.ended = true;
        reject(new ControlUnreachable(this.socketPath, 'timeout', `no answer within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const onError = (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        this.ended = true;
        reject(unreachableFrom(this.socketPath, e));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        this.socket = socket;
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => this.onData(chunk));
        socket.on('error', () => undefined); // 'close' follows and says the rest
        socket.on('close', () => this.onClose());
        resolve();
      });
    });
    return this.connecting;
  }

  /** Sends `cmd` and resolves with its result; rejects with ControlError on `ok: false`. */
  async request<T = unknown>(cmd: string, args: Record<string, unknown> = {}, options: RequestOptions = {}): Promise<T> {
    return (await this.send(cmd, args, undefined, options)) as T;
  }

  /**
   * A streaming request (`tail`/`maintail` with `follow: true`): `onText` gets each piece of text
   * as it arrives. Resolves when the connection ends, when the daemon sends a final result, or
   * when `signal` aborts (the connection is closed then, which ends the stream on the daemon).
   */
  async stream(cmd: string, args: Record<string, unknown>, onText: (text: string) => void, options: RequestOptions = {}): Promise<void> {
    try {
      const result = await this.send(cmd, args, onText, options);
      const text = (result as { text?: unknown } | undefined)?.text;
      if (typeof text === 'string') onText(text);
    } catch (e) {
      if (e instanceof ControlError && (e.code === 'CANCELLED' || e.code === 'DISCONNECTED')) return;
      throw e;
    }
  }

  close(): void {
    this.ended = true;
    this.socket?.destroy();
  }

  private async send(cmd: string, args: Record<string, unknown>, onText: ((text: string) => void) | undefined, options: RequestOptions): Promise<unknown> {
    const signal = options.signal;
    if (signal?.aborted) throw new ControlError('CANCELLED', 'cancelled');
    await this.connect();
    const socket = this.socket!;
    if (this.ended) throw new ControlError('DISCONNECTED', 'sockvisord closed the connection');
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const onAbort = () => {
        this.pending.delete(id);
        reject(new ControlError('CANCELLED', 'cancelled'));
        this.close();
      };
      const done = () => signal?.removeEventListener('abort', onAbort);
      this.pending.set(id, {
        resolve: (r) => {
          done();
          resolve(r);
        },
        reject: (e) => {
          done();
          reject(e);
        },
        ...(onText ? { onText } : {}),
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.write(JSON.stringify({ v: PROTOCOL_VERSION, id, cmd, args }) + '\n');
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) !== -1) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line.trim() !== '') this.onLine(line);
    }
    if (this.buffer.length > MAX_INCOMING_LINE) this.fail(new ControlError('FRAME_TOO_LARGE', 'sockvisord sent a frame that is too large'));
  }

  private onLine(line: string): void {
    let frame: Record<string, unknown>;
    try {
      const value: unknown = JSON.parse(line);
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
      frame = value as Record<string, unknown>;
    } catch {
      this.fail(new ControlError('BAD_FRAME', 'sockvisord sent a line that is not a JSON object'));
      return;
    }
    const id = frame['id'];
    const pending = typeof id === 'number' ? this.pending.get(id) : undefined;
    if (!pending) {
      // An error not tied to a request of ours (FORBIDDEN, BAD_FRAME, ...) is about the connection.
      if (frame['ok'] === false) this.fail(controlErrorFrom(frame['error']));
      return;
    }
    if (frame['ok'] === false) {
      this.pending.delete(id as number);
      pending.reject(controlErrorFrom(frame['error']));
    } else if (pending.onText && typeof frame['stream'] === 'string') {
      pending.onText(frame['stream']);
    } else {
      this.pending.delete(id as number);
      pending.resolve(frame['result'] ?? {});
    }
  }

  /** Rejects everything pending and closes. */
  private fail(e: ControlError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(e);
    this.close();
  }

  private onClose(): void {
    this.ended = true;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(new ControlError('DISCONNECTED', 'sockvisord closed the connection'));
  }
}

/**
 * Where the control socket is: `-s` as given; else `control.socket` from the daemon config (`-c`,
 * or the default file). A missing default config means the default socket. The YAML parser (a
 * noticeable part of startup) is loaded only when the config text mentions `control` at all;
 * without that word no `control:` key can be in it, and the default socket applies.
 */
export async function locateControlSocket(options: { socket?: string | undefined; config?: string | undefined; platform?: NodeJS.Platform }): Promise<{ socketPath: string; warnings: string[] }> {
  if (options.socket !== undefined && options.socket !== '') return { socketPath: options.socket, warnings: [] };
  const file = options.config ?? defaultConfigFile(options.platform);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (options.config === undefined && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return { socketPath: DEFAULT_CONTROL_SOCKET, warnings: [] };
    const reason = err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.code === 'EISDIR' ? 'is a directory' : err.message;
    throw new ControlConfigError(`cannot read the daemon config ${file}: ${reason}`);
  }
  const quick = quickControlSocket(text, file);
  if (quick !== undefined) return { socketPath: quick ?? DEFAULT_CONTROL_SOCKET, warnings: [] };
  const { parseDaemonConfig } = await import('../config/daemon-config.js');
  const { formatDiagnostic } = await import('../config/diagnostics.js');
  const { config, diagnostics } = parseDaemonConfig(text, file);
  const errors = diagnostics.filter((d) => d.severity === 'error');
  const warnings =
    errors.length === 0 ? [] : [`warning: ${file} has ${errors.length} error${errors.length === 1 ? '' : 's'} (first: ${formatDiagnostic(errors[0]!).split('\n')[0]}); using ${config.control.socket}`];
  return { socketPath: config.control.socket, warnings };
}
