/**
 * sockvisord: the composition root. It owns the state (config, held sockets, services, logs) and
 * wires signals to it. Decisions live in the pure modules; this file only applies them.
 */
import fs from 'node:fs/promises';
import type net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { listenControlSocket } from '../control/control-socket.js';
import type { DaemonConfig } from '../config/daemon-config.js';
import { formatDiagnostic, type Diagnostic } from '../config/diagnostics.js';
import { loadConfig, type LoadResult } from '../config/load.js';
import type { ServiceSpec } from '../config/spec.js';
import { LogFile } from '../logs/log-file.js';
import { LogSink } from '../logs/log-sink.js';
import { native } from '../sockets/native.js';
import { SocketBindError, SocketRegistry } from '../sockets/registry.js';
import { ServiceRuntime } from '../supervise/service-runtime.js';
import { acquirePidfile } from './pidfile.js';

export class ConfigErrors extends Error {
  constructor(readonly diagnostics: readonly Diagnostic[]) {
    super(diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic).join('\n'));
  }
}

export interface DaemonOptions {
  readonly configFile: string;
  readonly logger: Logger;
  /** A --log-level given on the command line wins over the config's log_level. */
  readonly logLevelFromCommandLine?: boolean;
}

export class Daemon {
  private readonly registry = new SocketRegistry();
  readonly services = new Map<string, ServiceRuntime>();
  private readonly logFiles: LogFile[] = [];
  private pidfile: { release(): Promise<void> } | undefined;
  private control: net.Server | undefined;
  private stopping: Promise<void> | undefined;

  private constructor(
    private config: DaemonConfig,
    private readonly options: DaemonOptions,
  ) {}

  get logger(): Logger {
    return this.options.logger;
  }

  /** Loads, binds every socket and starts every autostart service; refuses on any config error. */
  static async start(options: DaemonOptions): Promise<Daemon> {
    // Whatever this process inherited must never reach a service.
    native.cloexecFrom(3);
    const loaded = await loadConfig({ configFile: options.configFile });
    for (const d of loaded.diagnostics) if (d.severity === 'warning') options.logger.warn({ file: d.pos.file, line: d.pos.line, col: d.pos.col }, d.message);
    if (!loaded.ok) throw new ConfigErrors(loaded.diagnostics);
    if (!options.logLevelFromCommandLine) options.logger.level = loaded.config.logLevel;
    const daemon = new Daemon(loaded.config, options);
    try {
      await daemon.boot(loaded);
    } catch (e) {
      await daemon.release();
      throw e;
    }
    return daemon;
  }

  private async boot(loaded: LoadResult): Promise<void> {
    const config = loaded.config;
    this.pidfile = await acquirePidfile(config.pidfile);
    this.control = await listenControlSocket(config.control.socket, config.control.mode, (socket) => {
      // The control protocol arrives with sockvisorctl; until then, say so and hang up. A peer
      // that is already gone (a second daemon's probe) must not take the daemon down.
      socket.on('error', () => undefined);
      socket.end(JSON.stringify({ v: 1, ok: false, error: 'this daemon has no control commands yet' }) + '\n');
    });
    await fs.mkdir(config.logs.dir, { recursive: true });
    const specs = loaded.services;
    await this.registry.bindAll(specs.flatMap((s) => s.sockets));
    for (const spec of specs) {
      this.registry.setUser(spec.name, spec.sockets.filter((s) => s.mode === 'bind').map((s) => s.identity));
      this.logger.info({ service: spec.name, sockets: spec.sockets.map((s) => ({ key: s.keyPath, address: this.registry.get(s.identity)?.bound ?? s.written, type: s.socketType })) }, 'service loaded');
      this.services.set(spec.name, this.runtimeFor(spec));
    }
    for (const service of this.services.values()) if (service.spec.supervise.autostart) service.start();
    this.logger.info({ services: this.services.size, pidfile: config.pidfile, control: config.control.socket }, 'sockvisord started');
  }

  private runtimeFor(spec: ServiceSpec): ServiceRuntime {
    const limits = spec.supervise.logs ?? this.config.logs;
    const sink = (stream: 'stdout' | 'stderr') => {
      const file = new LogFile(path.join(this.config.logs.dir, `${spec.name}.${stream}.log`), limits);
      this.logFiles.push(file);
      return new LogSink(file);
    };
    return new ServiceRuntime(spec, { registry: this.registry, stdout: sink('stdout'), stderr: sink('stderr'), logger: this.logger, daemonPid: process.pid });
  }

  /** SIGHUP: re-read and check the config. Applying it is the reload planner's job. */
  async reread(): Promise<LoadResult> {
    const loaded = await loadConfig({ configFile: this.options.configFile });
    if (loaded.ok) this.logger.info({ services: loaded.services.length }, 'config re-read: valid');
    else for (const d of loaded.diagnostics) if (d.severity === 'error') this.logger.error({ file: d.pos.file, line: d.pos.line, col: d.pos.col }, d.message);
    return loaded;
  }

  /** Stops every service in parallel, each within its stop_timeout, then closes everything. */
  shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info('stopping all services');
      await Promise.all([...this.services.values()].map((s) => s.stop()));
      // Output still in the pipes belongs in the logs; a group that keeps a pipe open is killed
      // by the stop, so this ends, but it is bounded all the same.
      await Promise.race([Promise.all([...this.services.values()].map((s) => s.drained())), new Promise((r) => setTimeout(r, 10_000).unref())]);
      await this.release();
      this.logger.info('sockvisord stopped');
    })();
    return this.stopping;
  }

  private async release(): Promise<void> {
    this.registry.closeAll();
    await Promise.all(this.logFiles.map((f) => f.close()));
    if (this.control) {
      await new Promise<void>((resolve) => this.control!.close(() => resolve()));
      await fs.rm(this.config.control.socket, { force: true });
    }
    await this.pidfile?.release();
  }
}

export function describeStartFailure(e: unknown): string {
  if (e instanceof ConfigErrors) return e.message;
  if (e instanceof SocketBindError) return e.failures.map((f) => `${f.declaration.pos.file}:${f.declaration.pos.line}:${f.declaration.pos.col}: error: ${f.message}${f.hint ? `\n    hint: ${f.hint}` : ''}`).join('\n');
  return (e as Error).message;
}
