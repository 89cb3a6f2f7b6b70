/**
 * A running service: its replicas (`web:0` ... `web:N-1`) on the same held sockets, their output
 * logs, and the generations they start from. A generation is one version of the service's spec;
 * a swap starts the new generation's processes next to the old ones on the same sockets and
 * stops the old ones only once the new ones count as started, so no client is ever turned away.
 */
import type { Logger } from 'pino';
import type { ServiceSpec } from '../config/spec.js';
import type { LogSink } from '../logs/log-sink.js';
import type { SocketRegistry } from '../sockets/registry.js';
import { launch, type LaunchedProcess } from './launch.js';
import { planLaunch, type LaunchPlan } from './launch-plan.js';
import { describeExit, type SlotState } from './process-state.js';
import { isActive, ProcessSlot, type SlotHost } from './process-slot.js';

export interface ServiceDeps {
  readonly registry: SocketRegistry;
  readonly stdout: LogSink;
  readonly stderr: LogSink;
  readonly logger: Logger;
  readonly daemonPid: number;
}

interface Generation {
  readonly number: number;
  /** Replaced in place when only fields the process never sees change. */
  spec: ServiceSpec;
  plan: LaunchPlan | undefined;
}

export interface ReplaceResult {
  readonly name: string;
  readonly ok: boolean;
  readonly error?: string;
}

/** Slack on top of start_seconds before a start that never settles counts as failed. */
const START_SLACK_MS = 60_000;

export class ServiceRuntime implements SlotHost {
  /** The serving replicas, by index. */
  slots: ProcessSlot[] = [];
  private current: Generation;
  private nextGeneration = 2;
  private readonly generationOf = new Map<ProcessSlot, Generation>();
  /** New processes of a swap in progress, and old ones being stopped after one. */
  private readonly incoming = new Set<ProcessSlot>();
  private readonly retiring = new Set<ProcessSlot>();
  /** Swaps, restarts and scaling one at a time, so none sees another half done. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Why the last swap was rolled back, until a later one succeeds. */
  private lastSwapFailure: string | undefined;
  private readonly outputs = new Set<Promise<void>>();
  /** A started runner waiting for its argdata (supervise.standby), for one generation. */
  private standby: { readonly generation: Generation; readonly process: LaunchedProcess } | undefined;
  /** A standby being started; a crash meanwhile waits for it, since it has a head start. */
  private standbyComing: { readonly generation: Generation; readonly ready: Promise<unknown> } | undefined;
  private stopping = false;
  /** Counts stop() calls, so a swap can tell that the service was stopped while it waited. */
  private stops = 0;

  constructor(spec: ServiceSpec, private readonly deps: ServiceDeps) {
    this.current = { number: 1, spec, plan: undefined };
    for (let i = 0; i < spec.supervise.replicas; i++) this.slots.push(this.newSlot(i, this.current));
  }

  get spec(): ServiceSpec {
    return this.current.spec;
  }

  get name(): string {
    return this.current.spec.name;
  }

  get generation(): number {
    return this.current.number;
  }

  get swapFailure(): string | undefined {
    return this.lastSwapFailure;
  }

  start(): void {
    this.stopping = false;
    for (const slot of this.slots) slot.start();
  }

  /** Stops every process of the service: serving, starting in a swap, or on its way out. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stops++;
    this.discardStandby();
    await Promise.all([...this.slots, ...this.incoming, ...this.retiring].map((slot) => slot.stop()));
  }

  /** Fields the process never sees (restart policy, backoff, timeouts, standby): no restart. */
  applyLive(spec: ServiceSpec): void {
    this.current.spec = spec;
    // What runs is what the config says again, so an earlier failed swap no longer matters.
    this.lastSwapFailure = undefined;
    for (const slot of this.slots) slot.updateSupervise(spec.supervise);
    if (!spec.supervise.standby) this.discardStandby();
    else if (this.slots.some((s) => s.state.state === 'RUNNING')) this.prepareStandby();
  }

  /** Adds or stops replicas in place; the others keep running. */
  scale(spec: ServiceSpec): Promise<void> {
    return this.serialized(async () => {
      this.applyLive(spec);
      const wanted = spec.supervise.replicas;
      const running = this.slots.some((s) => s.state.state !== 'STOPPED');
      const surplus = this.slots.splice(wanted);
      for (let i = this.slots.length; i < wanted; i++) {
        const slot = this.newSlot(i, this.current);
        this.slots.push(slot);
        if (running) slot.start();
      }
      await this.retire(surplus);
    });
  }

  /**
   * A new generation from `spec`: its processes start on the held sockets while the old ones
   * serve; the old ones stop once every new one counts as started. If any new one fails, the new
   * generation is stopped and the old one keeps serving. `beforeRetire` runs between the two:
   * the moment to stop taking connections on sockets only the old generation uses.
   */
  swapTo(spec: ServiceSpec, beforeRetire: () => void = () => {}): Promise<{ ok: boolean; error?: string }> {
    return this.serialized(async () => {
      const generation: Generation = { number: this.nextGeneration++, spec, plan: undefined };
      const indexes = Array.from({ length: spec.supervise.replicas }, (_, i) => i);
      const outcome = await this.replaceSlots(indexes, generation, false, beforeRetire);
      if (outcome.ok) {
        const surplus = this.slots.splice(spec.supervise.replicas);
        this.current = generation;
        this.discardStandby();
        if (this.slots.some((s) => s.state.state === 'RUNNING')) this.prepareStandby();
        await this.retire(surplus);
      }
      return outcome;
    });
  }

  /**
   * `sockvisorctl restart`: new processes for these replicas, swapped in as a new generation
   * would be. `hard` stops first, for programs that cannot run twice at once; the held socket
   * keeps clients waiting meanwhile.
   */
  restart(indexes: readonly number[], hard: boolean): Promise<ReplaceResult[]> {
    return this.serialized(async () => {
      const results: ReplaceResult[] = [];
      const swapped: number[] = [];
      for (const index of indexes) {
        const slot = this.slots[index];
        if (!slot) continue;
        if (hard || slot.state.state === 'BACKOFF' || slot.state.state === 'STOPPING') {
          await slot.stop();
          slot.start();
          const state = await slot.until((s) => s.state !== 'STARTING', this.spec.supervise.startMs + START_SLACK_MS);
          results.push(state.state === 'RUNNING' ? { name: slot.name, ok: true } : { name: slot.name, ok: false, error: failureReason(state) });
        } else {
          swapped.push(index);
        }
      }
      if (swapped.length > 0) {
        const outcome = await this.replaceSlots(swapped, this.current, true);
        for (const index of swapped) results.push({ name: `${this.name}:${index}`, ok: outcome.ok, ...(outcome.error ? { error: outcome.error } : {}) });
      }
      return results;
    });
  }

  private async replaceSlots(indexes: readonly number[], generation: Generation, startAll = false, beforeRetire: () => void = () => {}): Promise<{ ok: boolean; error?: string }> {
    const serving = this.slots.some((s) => s.state.state !== 'STOPPED');
    const stopsBefore = this.stops;
    const fresh = indexes.map((index) => ({ index, slot: this.newSlot(index, generation) }));
    // A replica the operator stopped stays stopped; the rest, and new replicas of a running service, start.
    const starting = fresh.filter(({ index }) => {
      const old = this.slots[index];
      return old ? startAll || old.state.state !== 'STOPPED' : serving;
    });
    for (const { slot } of starting) {
      this.incoming.add(slot);
      slot.start();
    }
    const settled = await Promise.all(starting.map(({ slot }) => slot.until((s) => s.state !== 'STARTING', generation.spec.supervise.startMs + START_SLACK_MS)));
    for (const { slot } of starting) this.incoming.delete(slot);
    const failed = settled.find((s) => s.state !== 'RUNNING');
    const stopped = this.stops !== stopsBefore;
    if (failed || stopped) {
      const reason = stopped ? 'the service was stopped meanwhile' : failureReason(failed!);
      await Promise.all(starting.map(({ slot }) => slot.stop()));
      for (const { slot } of fresh) this.generationOf.delete(slot);
      const oldRuns = indexes.some((index) => this.slots[index] && isActive(this.slots[index]!.state.state));
      this.lastSwapFailure = oldRuns
        ? `swap failed, kept generation ${this.current.number}: ${reason}`
        : `swap failed, generation ${this.current.number} kept but not running: ${reason}`;
      this.deps.logger.error({ service: this.name, generation: this.current.number, attempted: generation.number, reason }, this.lastSwapFailure);
      return { ok: false, error: this.lastSwapFailure };
    }
    const old: ProcessSlot[] = [];
    for (const { index, slot } of fresh) {
      const previous = this.slots[index];
      if (previous) old.push(previous);
      this.slots[index] = slot;
    }
    this.lastSwapFailure = undefined;
    if (generation !== this.current) this.deps.logger.info({ service: this.name, generation: generation.number, replaced: this.current.number }, 'generation started');
    beforeRetire();
    await this.retire(old);
    return { ok: true };
  }

  /** Stops processes that no longer serve; they are supervised until they are gone. */
  private async retire(slots: readonly ProcessSlot[]): Promise<void> {
    await Promise.all(slots.map(async (slot) => {
      this.retiring.add(slot);
      await slot.stop();
      this.retiring.delete(slot);
      this.generationOf.delete(slot);
    }));
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private newSlot(index: number, generation: Generation): ProcessSlot {
    const slot = new ProcessSlot(`${generation.spec.name}:${index}`, index, generation.spec.supervise, this);
    this.generationOf.set(slot, generation);
    return slot;
  }

  async launch(slot: ProcessSlot): Promise<LaunchedProcess> {
    const generation = this.generationOf.get(slot) ?? this.current;
    if (this.standbyComing?.generation === generation) await this.standbyComing.ready;
    const launched = this.takeStandby(generation) ?? (await launch(this.launchPlan(generation), this.deps.registry));
    launched.release();
    this.reportSandbox(slot, launched);
    this.track(this.deps.stdout.attach(launched.stdout));
    this.track(this.deps.stderr.attach(launched.stderr));
    return launched;
  }

  private launchPlan(generation: Generation): LaunchPlan {
    generation.plan ??= planLaunch(generation.spec, { daemonPid: this.deps.daemonPid });
    return generation.plan;
  }

  /**
   * A standby helps only where a process can be started ahead of need: the Python runner, and
   * no `connect:` socket, which would be connected long before it is used.
   */
  private standbyWanted(generation: Generation): boolean {
    const spec = generation.spec;
    return generation === this.current && spec.supervise.standby && spec.supervise.program.kind === 'python' && !spec.sockets.some((s) => s.mode === 'connect') && !this.stopping;
  }

  private takeStandby(generation: Generation): LaunchedProcess | undefined {
    const standby = this.standby;
    if (!standby || standby.generation !== generation) return undefined;
    this.standby = undefined;
    const child = standby.process.child;
    return child.exitCode === null && child.signalCode === null ? standby.process : undefined;
  }

  private prepareStandby(): void {
    const generation = this.current;
    if (this.standby || this.standbyComing || !this.standbyWanted(generation)) return;
    const ready = launch(this.launchPlan(generation), this.deps.registry, { holdArgdata: true }).then(
      (process) => {
        this.standbyComing = undefined;
        if (!this.standbyWanted(generation)) return void this.killStandby(process);
        const standby = { generation, process };
        this.standby = standby;
        process.child.once('exit', () => {
          // Died while waiting (killed from outside, say): its pipes were never read; let go.
          if (this.standby === standby) this.discardStandby();
        });
      },
      (e: Error) => {
        this.standbyComing = undefined;
        this.deps.logger.warn({ service: this.name, error: e.message }, 'standby not started');
      },
    );
    this.standbyComing = { generation, ready };
  }

  private discardStandby(): void {
    const standby = this.standby;
    this.standby = undefined;
    if (standby) this.killStandby(standby.process);
  }

  private killStandby(standby: LaunchedProcess): void {
    try {
      process.kill(-standby.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    standby.stdout.destroy();
    standby.stderr.destroy();
    standby.discard();
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
    const generation = this.generationOf.get(slot);
    // Once a process is up, get the next one ready in case it falls.
    if (now.state === 'RUNNING' && generation === this.current) this.prepareStandby();
    this.deps.logger.info(
      {
        service: this.name, process: slot.name, generation: generation?.number, from: before.state, to: now.state,
        ...(now.pid !== undefined ? { pid: now.pid } : before.pid !== undefined ? { pid: before.pid } : {}),
        ...(now.reason ? { reason: now.reason } : {}),
        ...(now.lastExit && before.pid !== undefined && now.pid === undefined ? { exit: now.lastExit } : {}),
      },
      'state',
    );
  }
}

/** Why a start did not reach RUNNING, with the exit that ended it where there was one. */
function failureReason(state: SlotState): string {
  if (state.state === 'STARTING') return 'did not count as started in time';
  const exit = state.lastExit ? describeExit(state.lastExit.code, state.lastExit.signal) : undefined;
  const reason = state.reason || state.state;
  return exit && !reason.includes(exit) ? `${reason}; ${exit}` : reason;
}
