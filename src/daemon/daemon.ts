/**
 * sockvisord: the composition root. It owns the state (config, held sockets, services, logs) and
 * wires signals to it. Decisions live in the pure modules; this file only applies them.
 */
import fs from 'node:fs/promises';
import type net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { dispatchRequest, type ConfigChange, type ControlTarget, type ProcessEntry } from '../control/commands.js';
import { listenControlSocket } from '../control/control-socket.js';
import { serveConnection } from '../control/server.js';
import { serviceChanges } from '../plan/changes.js';
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
  /** Receives the daemon log file once the config says where logs go. */
  readonly attachLogFile?: (file: LogFile) => void;
  /** Asked to stop the daemon (sockvisorctl shutdown), as SIGTERM would. */
  readonly requestShutdown?: () => void;
  /** A --log-level given on the command line wins over the config's log_level. */
  readonly logLevelFromCommandLine?: boolean;
}

export class Daemon implements ControlTarget {
  private readonly registry = new SocketRegistry();
  readonly services = new Map<string, ServiceRuntime>();
  private readonly logFiles: LogFile[] = [];
  private readonly serviceLogs = new Map<string, { stdout: LogFile; stderr: LogFile }>();
  daemonLog: LogFile | undefined;
  private lastLoad: { ok: boolean; at: number; errors: string[] } = { ok: true, at: Date.now(), errors: [] };
  private pidfile: { release(): Promise<void> } | undefined;
  private control: net.Server | undefined;
  /** Open control connections: a shutdown ends them (a `tail -f` would otherwise hold it up). */
  private readonly controlConnections = new Set<net.Socket>();
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
    const gid = config.control.group === undefined ? undefined : native.lookupGroup(/^\d+$/.test(config.control.group) ? Number(config.control.group) : config.control.group)?.gid;
    if (config.control.group !== undefined && gid === undefined) throw new Error(`control.group ${config.control.group} is not a group on this host`);
    const access = { uid: process.getuid?.() ?? 0, gid };
    this.control = await listenControlSocket(config.control.socket, config.control.mode, (socket) => {
      this.controlConnections.add(socket);
      socket.once('close', () => this.controlConnections.delete(socket));
      serveConnection(socket, access, { idleTimeoutMs: config.control.idleTimeoutMs }, (request, session) => dispatchRequest(request, session, this), this.logger);
    });
    if (gid !== undefined) await fs.chown(config.control.socket, -1, gid);
    await fs.mkdir(config.logs.dir, { recursive: true });
    this.daemonLog = new LogFile(path.join(config.logs.dir, 'sockvisord.log'), config.logs);
    this.logFiles.push(this.daemonLog);
    this.options.attachLogFile?.(this.daemonLog);
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
    const file = (stream: 'stdout' | 'stderr') => {
      const log = new LogFile(path.join(this.config.logs.dir, `${spec.name}.${stream}.log`), limits);
      this.logFiles.push(log);
      return log;
    };
    const logs = { stdout: file('stdout'), stderr: file('stderr') };
    this.serviceLogs.set(spec.name, logs);
    return new ServiceRuntime(spec, { registry: this.registry, stdout: new LogSink(logs.stdout), stderr: new LogSink(logs.stderr), logger: this.logger, daemonPid: process.pid });
  }

  // ---- ControlTarget: what sockvisorctl can see and do ----------------------------------------

  processes(): ProcessEntry[] {
    return [...this.services.values()].flatMap((runtime) =>
      runtime.slots.map((slot) => ({ name: slot.name, service: runtime.name, index: slot.index, slot, startWaitMs: runtime.spec.supervise.startMs + 5000 })),
    );
  }

  socketsOf(service: string): string[] {
    const spec = this.services.get(service)?.spec;
    return spec ? spec.sockets.filter((s) => s.mode === 'bind').map((s) => this.registry.get(s.identity)?.bound ?? s.written) : [];
  }

  logFile(service: string, stream: 'stdout' | 'stderr'): LogFile | undefined {
    return this.serviceLogs.get(service)?.[stream];
  }

  private specs(): ServiceSpec[] {
    return [...this.services.values()].map((r) => r.spec);
  }

  serviceList(): { name: string; replicas: number; autostart: boolean }[] {
    return this.specs().map((s) => ({ name: s.name, replicas: s.supervise.replicas, autostart: s.supervise.autostart }));
  }

  configStatus(): { ok: boolean; at: number; errors: string[] } {
    return this.lastLoad;
  }

  requestShutdown(): void {
    if (this.options.requestShutdown) this.options.requestShutdown();
    else void this.shutdown();
  }

  /** What a reload would change, changing nothing. */
  async reread(): Promise<{ ok: boolean; errors: string[]; changes: ConfigChange[]; loaded: LoadResult }> {
    const loaded = await loadConfig({ configFile: this.options.configFile });
    const errors = loaded.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
    this.lastLoad = { ok: loaded.ok, at: Date.now(), errors };
    if (loaded.ok) this.logger.info({ services: loaded.services.length }, 'config re-read: valid');
    else for (const d of loaded.diagnostics) if (d.severity === 'error') this.logger.error({ file: d.pos.file, line: d.pos.line, col: d.pos.col }, d.message);
    return { ok: loaded.ok, errors, changes: loaded.ok ? serviceChanges(this.specs(), loaded.services) : [], loaded };
  }

  /**
   * Re-reads and applies: new services are bound and started, removed ones stopped and their
   * sockets closed, changed ones restarted with their new spec. A config with errors changes
   * nothing. (The zero-downtime reload plan replaces the stop-and-start of changed services.)
   */
  async reload(): Promise<{ ok: boolean; errors: string[]; changes: ConfigChange[] }> {
    const { ok, errors, changes, loaded } = await this.reread();
    if (!ok) return { ok, errors, changes };
    const next = new Map(loaded.services.map((s) => [s.name, s]));
    try {
      await this.registry.bindAll(changes.filter((c) => c.action !== 'remove').flatMap((c) => next.get(c.service)!.sockets));
    } catch (e) {
      const message = describeStartFailure(e);
      this.lastLoad = { ok: false, at: Date.now(), errors: message.split('\n') };
      return { ok: false, errors: message.split('\n'), changes };
    }
    for (const change of changes) {
      const old = this.services.get(change.service);
      if (old) {
        await old.stop();
        this.services.delete(change.service);
        this.registry.removeUser(change.service);
      }
      if (change.action !== 'remove') {
        const spec = next.get(change.service)!;
        this.registry.setUser(spec.name, spec.sockets.filter((s) => s.mode === 'bind').map((s) => s.identity));
        const runtime = this.runtimeFor(spec);
        this.services.set(spec.name, runtime);
        if (spec.supervise.autostart) runtime.start();
      }
      this.logger.info({ service: change.service, action: change.action, fields: change.fields }, 'reload applied');
    }
    this.registry.closeUnused();
    return { ok, errors, changes };
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
      const closed = new Promise<void>((resolve) => this.control!.close(() => resolve()));
      for (const socket of this.controlConnections) socket.destroy();
      await closed;
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
