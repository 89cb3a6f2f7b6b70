/**
 * A running service: its replicas (`web:0` ... `web:N-1`) on the same held sockets, their output
 * logs, and the launch plan they all start from.
 */
import type { Logger } from 'pino';
import type { ServiceSpec } from '../config/spec.js';
import type { LogSink } from '../logs/log-sink.js';
import type { SocketRegistry } from '../sockets/registry.js';
import { launch, type LaunchedProcess } from './launch.js';
import { planRunnerLaunch, type LaunchPlan } from './launch-plan.js';
import { ProcessSlot, type SlotHost } from './process-slot.js';
import type { SlotState } from './process-state.js';

export interface ServiceDeps {
  readonly registry: SocketRegistry;
  readonly stdout: LogSink;
  readonly stderr: LogSink;
  readonly logger: Logger;
  readonly daemonPid: number;
}

export class ServiceRuntime implements SlotHost {
  readonly slots: ProcessSlot[] = [];
  private plan: LaunchPlan | undefined;
  private readonly outputs = new Set<Promise<void>>();
  /** A started runner waiting for its argdata (supervise.standby), and whether one is coming. */
  private standby: LaunchedProcess | undefined;
  /** A standby being started; a crash meanwhile waits for it, since it has a head start. */
  private standbyComing: Promise<LaunchedProcess | undefined> | undefined;
  private stopping = false;

  constructor(
    private currentSpec: ServiceSpec,
    private readonly deps: ServiceDeps,
  ) {
    for (let i = 0; i < currentSpec.supervise.replicas; i++) this.slots.push(this.newSlot(i));
  }

  get spec(): ServiceSpec {
    return this.currentSpec;
  }

  get name(): string {
    return this.currentSpec.name;
  }

  start(): void {
    this.stopping = false;
    for (const slot of this.slots) slot.start();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.discardStandby();
    await Promise.all(this.slots.map((slot) => slot.stop()));
  }

  private newSlot(index: number): ProcessSlot {
    return new ProcessSlot(`${this.currentSpec.name}:${index}`, index, this.currentSpec.supervise, this);
  }

  async launch(slot: ProcessSlot): Promise<LaunchedProcess> {
    if (this.standbyComing) await this.standbyComing;
    const launched = this.takeStandby() ?? (await launch(this.launchPlan(), this.deps.registry));
    launched.release();
    this.reportSandbox(slot, launched);
    this.track(this.deps.stdout.attach(launched.stdout));
    this.track(this.deps.stderr.attach(launched.stderr));
    return launched;
  }

  private launchPlan(): LaunchPlan {
    this.plan ??= planRunnerLaunch(this.currentSpec, { daemonPid: this.deps.daemonPid });
    return this.plan;
  }

  /**
   * A standby helps only where a process can be started ahead of need: the Python runner, and
   * no `connect:` socket, which would be connected long before it is used.
   */
  private standbyWanted(): boolean {
    const spec = this.currentSpec;
    return spec.supervise.standby && spec.supervise.program.kind === 'python' && !spec.sockets.some((s) => s.mode === 'connect') && !this.stopping;
  }

  private takeStandby(): LaunchedProcess | undefined {
    const standby = this.standby;
    this.standby = undefined;
    if (standby && standby.child.exitCode === null && standby.child.signalCode === null) return standby;
    return undefined;
  }

  private prepareStandby(): void {
    if (this.standby || this.standbyComing || !this.standbyWanted()) return;
    this.standbyComing = launch(this.launchPlan(), this.deps.registry, { holdArgdata: true }).then(
      (standby) => {
        this.standbyComing = undefined;
        if (!this.standbyWanted()) return void this.killStandby(standby);
        this.standby = standby;
        standby.child.once('exit', () => {
          // Died while waiting (killed from outside, say): its pipes were never read; let go.
          if (this.standby === standby) this.discardStandby();
        });
        return standby;
      },
      (e: Error) => {
        this.standbyComing = undefined;
        this.deps.logger.warn({ service: this.name, error: e.message }, 'standby not started');
        return undefined;
      },
    );
  }

  private discardStandby(): void {
    const standby = this.standby;
    this.standby = undefined;
    if (standby) this.killStandby(standby);
  }

  private killStandby(standby: LaunchedProcess): void {
    try {
      process.kill(-standby.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    standby.stdout.destroy();
    standby.stderr.destroy();
  }

  private track(output: Promise<void>): void {
    this.outputs.add(output);
    void output.then(() => this.outputs.delete(output));
  }

  /**
   * Resolves once everything the service's processes wrote is in its log files. A process's exit
   * comes before the end of its output, so a stop waits for this too.
   */
  async drained(): Promise<void> {
    while (this.outputs.size > 0) await Promise.all([...this.outputs]);
  }

  /** The runner's first stderr line says which sandbox layers it applied; the daemon logs it. */
  private reportSandbox(slot: ProcessSlot, launched: LaunchedProcess): void {
    let head = '';
    const peek = (data: Buffer) => {
      head += data.toString('utf8');
      const nl = head.indexOf('\n');
      if (nl === -1 && head.length < 4096) return;
      launched.stderr.off('data', peek);
      const line = nl === -1 ? head : head.slice(0, nl);
      if (line.startsWith('sandbox: ')) this.deps.logger.info({ service: this.name, process: slot.name, pid: launched.pid, sandbox: line.slice(9) }, 'sandbox applied');
    };
    launched.stderr.on('data', peek);
  }

  changed(slot: ProcessSlot, before: SlotState): void {
    const now = slot.state;
    if (now.state === before.state) return;
    // Once a process is up, get the next one ready in case it falls.
    if (now.state === 'RUNNING') this.prepareStandby();
    this.deps.logger.info(
      {
        service: this.name, process: slot.name, from: before.state, to: now.state,
        ...(now.pid !== undefined ? { pid: now.pid } : before.pid !== undefined ? { pid: before.pid } : {}),
        ...(now.reason ? { reason: now.reason } : {}),
        ...(now.lastExit && before.pid !== undefined && now.pid === undefined ? { exit: now.lastExit } : {}),
      },
      'state',
    );
  }
}
