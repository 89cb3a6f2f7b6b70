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
import { planReload, type ReloadPlan, type ServicePlan } from '../plan/reload-plan.js';
import type { DaemonConfig } from '../config/daemon-config.js';
import { formatDiagnostic, type Diagnostic } from '../config/diagnostics.js';
import { LoadCache, loadConfig, type LoadResult } from '../config/load.js';
import type { ServiceSpec } from '../config/spec.js';
import { LogFile } from '../logs/log-file.js';
import { LogSink } from '../logs/log-sink.js';
import { native } from '../sockets/native.js';
import { SocketBindError, SocketRegistry } from '../sockets/registry.js';
import { ServiceRuntime, type ReplaceResult } from '../supervise/service-runtime.js';
import { ConfigWatcher } from './config-watcher.js';
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
  /** Parse results and interpreter answers kept between loads, so a reload redoes only what changed. */
  private readonly loadCache: LoadCache;
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
  /** Reloads on changes to the config on disk (`watch: true`). */
  private watcher: ConfigWatcher | undefined;
  private released = false;
  /** Watcher changes in order, so a reload's retarget never races a shutdown's close. */
  private watching: Promise<void> = Promise.resolve();
  /** The reload being applied, and at most one more asked for meanwhile. */
  private reloadRunning: Promise<ReloadResult> | undefined;
  private reloadQueued: Promise<ReloadResult> | undefined;

  private constructor(
    private config: DaemonConfig,
    private readonly options: DaemonOptions,
    loadCache: LoadCache,
  ) {
    this.loadCache = loadCache;
  }

  get logger(): Logger {
    return this.options.logger;
  }

  /** Loads, binds every socket and starts every autostart service; refuses on any config error. */
  static async start(options: DaemonOptions): Promise<Daemon> {
    // Whatever this process inherited must never reach a service.
    native.cloexecFrom(3);
    const loadCache = new LoadCache();
    const loaded = await loadConfig({ configFile: options.configFile, cache: loadCache });
    for (const d of loaded.diagnostics) if (d.severity === 'warning') options.logger.warn({ file: d.pos.file, line: d.pos.line, col: d.pos.col }, d.message);
    if (!loaded.ok) throw new ConfigErrors(loaded.diagnostics);
    if (!options.logLevelFromCommandLine) options.logger.level = loaded.config.logLevel;
    const daemon = new Daemon(loaded.config, options, loadCache);
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
      this.registry.setUser(spec.name, boundIdentities(spec));
      this.logger.info({ service: spec.name, sockets: spec.sockets.map((s) => ({ key: s.keyPath, address: this.registry.get(s.identity)?.bound ?? s.written, type: s.socketType })) }, 'service loaded');
      this.services.set(spec.name, this.runtimeFor(spec));
    }
    for (const service of this.services.values()) if (service.spec.supervise.autostart) service.start();
    await this.updateWatcher();
    this.logger.info({ services: this.services.size, pidfile: config.pidfile, control: config.control.socket, watch: config.watch }, 'sockvisord started');
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
    const byName = [...this.services.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return byName.flatMap((runtime) =>
      runtime.slots.map((slot) => ({
        name: slot.name, service: runtime.name, index: slot.index, slot, startWaitMs: runtime.spec.supervise.startMs + 5000,
        ...(runtime.swapFailure ? { note: runtime.swapFailure } : {}),
      })),
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

  /** Starts, re-targets or stops the watcher to match the config as last loaded. */
  private updateWatcher(): Promise<void> {
    const run = this.watching.then(async () => {
      const configFile = this.config.file;
      const wanted = this.config.watch && configFile !== undefined && !this.released;
      try {
        if (!wanted) {
          await this.watcher?.close();
          this.watcher = undefined;
        } else if (this.watcher) {
          await this.watcher.retarget(configFile, this.config.servicesDir);
        } else {
          this.watcher = await ConfigWatcher.start({
            configFile, servicesDir: this.config.servicesDir,
            onChange: (paths) => {
              this.logger.info({ paths }, 'config changed on disk');
              void this.reload();
            },
            onError: (e) => this.logger.warn({ error: e.message }, 'watching the config'),
          });
        }
      } catch (e) {
        this.logger.warn({ error: (e as Error).message }, 'cannot watch the config; SIGHUP and sockvisorctl reload still work');
      }
    });
    this.watching = run;
    return run;
  }

  /** What a reload would change, changing nothing. */
  async reread(): Promise<{ ok: boolean; errors: string[]; changes: ConfigChange[]; loaded: LoadResult; plan: ReloadPlan | undefined; timing: ReloadTiming }> {
    const started = performance.now();
    const loaded = await loadConfig({ configFile: this.options.configFile, cache: this.loadCache });
    const loadedAt = performance.now();
    const errors = loaded.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
    this.lastLoad = { ok: loaded.ok, at: Date.now(), errors };
    if (loaded.ok) this.logger.info({ services: loaded.services.length }, 'config re-read: valid');
    else for (const d of loaded.diagnostics) if (d.severity === 'error') this.logger.error({ file: d.pos.file, line: d.pos.line, col: d.pos.col }, d.message);
    const plan = loaded.ok ? planReload(this.specs(), loaded.services) : undefined;
    const timing = { loadMs: loadedAt - started, planMs: performance.now() - loadedAt, applyMs: 0 };
    return { ok: loaded.ok, errors, changes: plan ? [...plan.services] : [], loaded, plan, timing };
  }

  /**
   * Re-reads and applies the plan: new sockets are bound first (a failure changes nothing), then
   * each changed service is added, swapped to a new generation, scaled, updated in place or
   * removed, and sockets no one declares any more are closed. A config with errors changes
   * nothing. Reloads run one at a time; those asked for meanwhile become one more.
   */
  reload(): Promise<ReloadResult> {
    if (this.stopping) return Promise.resolve({ ok: false, errors: ['the daemon is stopping'], changes: [] });
    if (!this.reloadRunning) {
      const run = this.applyReload().finally(() => {
        if (this.reloadRunning === run) this.reloadRunning = undefined;
      });
      this.reloadRunning = run;
      return run;
    }
    this.reloadQueued ??= this.reloadRunning.then(() => {
      this.reloadQueued = undefined;
      return this.reload();
    });
    return this.reloadQueued;
  }

  private async applyReload(): Promise<ReloadResult> {
    const { ok, errors, loaded, plan, timing } = await this.reread();
    if (!ok || !plan) return { ok, errors, changes: [], timing };
    const applying = performance.now();
    try {
      await this.registry.bindAll(plan.bind);
    } catch (e) {
      const message = describeStartFailure(e).split('\n');
      this.lastLoad = { ok: false, at: Date.now(), errors: message };
      return { ok: false, errors: message, changes: [], failedAt: 'bind', timing };
    }
    this.registry.applyFileModes(loaded.services.flatMap((s) => s.sockets));
    this.adoptDaemonSettings(loaded.config);
    const next = new Map(loaded.services.map((s) => [s.name, s]));
    const leaving = new Set(plan.close.map((d) => d.identity));
    const changes = await Promise.all(plan.services.map((change) => this.applyServicePlan(change, next.get(change.service), leaving)));
    // Watching what the config now names before the reload counts as done: an edit made right
    // after `sockvisorctl reload` returns is seen.
    await this.updateWatcher();
    const closed = this.registry.closeUnused();
    if (closed.length > 0) this.logger.info({ sockets: closed.map((s) => s.bound) }, 'sockets closed');
    const failed = changes.filter((c) => c.error !== undefined);
    const done = { ...timing, applyMs: performance.now() - applying };
    this.logger.info({ changes: changes.length, unchanged: plan.unchanged.length, failed: failed.length, ...roundTimes(done) }, 'reload done');
    return { ok: failed.length === 0, errors: failed.map((c) => `${c.service}: ${c.error}`), changes, timing: done };
  }

  /** `leaving`: sockets no service declares once the reload is applied. */
  private async applyServicePlan(change: ServicePlan, spec: ServiceSpec | undefined, leaving: ReadonlySet<string>): Promise<ConfigChange> {
    const runtime = this.services.get(change.service);
    const log = (extra: object = {}) => this.logger.info({ service: change.service, action: change.action, fields: change.fields, ...extra }, 'reload applied');
    const leavingWith = (old: ServiceSpec) => boundIdentities(old).filter((identity) => leaving.has(identity));
    if (change.action === 'remove' || !spec) {
      if (runtime) {
        this.registry.stopListening(leavingWith(runtime.spec));
        await this.removeService(runtime);
      }
      log();
      return change;
    }
    if (change.action === 'add' || !runtime) {
      this.registry.setUser(spec.name, boundIdentities(spec));
      const added = this.runtimeFor(spec);
      this.services.set(spec.name, added);
      if (spec.supervise.autostart) added.start();
      log();
      return change;
    }
    if (change.action === 'swap') {
      // Both generations' sockets stay held until one of them is gone.
      this.registry.setUser(spec.name, [...boundIdentities(runtime.spec), ...boundIdentities(spec)]);
      const old = runtime.spec;
      const outcome = await runtime.swapTo(spec, () => this.registry.stopListening(leavingWith(old)));
      this.registry.setUser(spec.name, boundIdentities(runtime.spec));
      if (!outcome.ok) return { ...change, error: outcome.error ?? 'swap failed' };
    } else if (change.action === 'scale') {
      await runtime.scale(spec);
    } else {
      runtime.applyLive(spec);
    }
    this.applyLogLimits(spec);
    log({ generation: runtime.generation });
    return change;
  }

  private async removeService(runtime: ServiceRuntime): Promise<void> {
    await runtime.stop();
    await Promise.race([runtime.drained(), new Promise((r) => setTimeout(r, 10_000).unref())]);
    this.services.delete(runtime.name);
    this.registry.removeUser(runtime.name);
    const logs = this.serviceLogs.get(runtime.name);
    this.serviceLogs.delete(runtime.name);
    for (const file of logs ? [logs.stdout, logs.stderr] : []) {
      this.logFiles.splice(this.logFiles.indexOf(file), 1);
      await file.close();
    }
  }

  private applyLogLimits(spec: ServiceSpec): void {
    const logs = this.serviceLogs.get(spec.name);
    const limits = spec.supervise.logs ?? this.config.logs;
    logs?.stdout.setLimits(limits);
    logs?.stderr.setLimits(limits);
  }

  /**
   * Daemon settings a reload can change: log level and limits, watching. Where the control
   * socket, pidfile and log directory are is fixed for the daemon's life.
   */
  private adoptDaemonSettings(config: DaemonConfig): void {
    const old = this.config;
    const fixed: string[] = [];
    if (config.control.socket !== old.control.socket || config.control.mode !== old.control.mode || config.control.group !== old.control.group) fixed.push('control');
    if (config.pidfile !== old.pidfile) fixed.push('pidfile');
    if (config.logs.dir !== old.logs.dir) fixed.push('logs.dir');
    if (fixed.length > 0) this.logger.warn({ fields: fixed }, 'these settings take effect when the daemon is restarted');
    this.config = { ...config, control: old.control, pidfile: old.pidfile, logs: { ...config.logs, dir: old.logs.dir } };
    if (!this.options.logLevelFromCommandLine) this.logger.level = config.logLevel;
    this.daemonLog?.setLimits(this.config.logs);
    for (const runtime of this.services.values()) if (runtime.spec.supervise.logs === undefined) this.applyLogLimits(runtime.spec);
  }

  async restart(service: string, indexes: readonly number[], hard: boolean): Promise<ReplaceResult[]> {
    const runtime = this.services.get(service);
    return runtime ? runtime.restart(indexes, hard) : [];
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
    this.released = true;
    await this.updateWatcher();
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

export interface ReloadResult {
  readonly ok: boolean;
  readonly errors: string[];
  readonly changes: ConfigChange[];
  readonly failedAt?: 'bind';
  readonly timing?: ReloadTiming;
}

/** Where a reload's time went: reading and checking files, planning, carrying the plan out. */
export interface ReloadTiming {
  readonly loadMs: number;
  readonly planMs: number;
  readonly applyMs: number;
}

function roundTimes(timing: ReloadTiming): ReloadTiming {
  const ms = (n: number) => Math.round(n * 10) / 10;
  return { loadMs: ms(timing.loadMs), planMs: ms(timing.planMs), applyMs: ms(timing.applyMs) };
}

function boundIdentities(spec: ServiceSpec): string[] {
  return spec.sockets.filter((s) => s.mode === 'bind').map((s) => s.identity);
}

export function describeStartFailure(e: unknown): string {
  if (e instanceof ConfigErrors) return e.message;
  if (e instanceof SocketBindError) return e.failures.map((f) => `${f.declaration.pos.file}:${f.declaration.pos.line}:${f.declaration.pos.col}: error: ${f.message}${f.hint ? `\n    hint: ${f.hint}` : ''}`).join('\n');
  return (e as Error).message;
}
