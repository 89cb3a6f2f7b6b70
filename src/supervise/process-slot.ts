/**
 * One replica of a service (`web:0`): carries out the state machine's decisions with real
 * processes and timers. Everything is event-driven: child exits, timers and commands.
 */
import type { Supervise } from '../config/supervise.js';
import type { LaunchedProcess } from './launch.js';
import { decide, INITIAL_SLOT, type SlotAction, type SlotEvent, type SlotState, type TimerName } from './process-state.js';

export interface SlotHost {
  /** Starts a process for this replica; the slot owns it from then on. */
  launch(slot: ProcessSlot): Promise<LaunchedProcess>;
  /** Called after every state change, with the state before it. */
  changed(slot: ProcessSlot, before: SlotState): void;
}

export class ProcessSlot {
  private current: SlotState = INITIAL_SLOT;
  private readonly timers = new Map<TimerName, NodeJS.Timeout>();
  /** The process group of the last process, kept after it exits to clean up what it left. */
  private group: number | undefined;
  private settledWaiters: (() => void)[] = [];
  private readonly watchers = new Set<() => void>();

  constructor(
    readonly name: string,
    readonly index: number,
    private supervise: Supervise,
    private readonly host: SlotHost,
    private readonly random: () => number = Math.random,
  ) {}

  get state(): SlotState {
    return this.current;
  }

  /** Live-applicable settings (restart policy, backoff, timeouts) take effect from the next event. */
  updateSupervise(supervise: Supervise): void {
    this.supervise = supervise;
  }

  start(): void {
    this.dispatch({ type: 'start' });
  }

  /** Resolves once the replica is STOPPED, EXITED or FATAL. */
  stop(): Promise<void> {
    this.dispatch({ type: 'stop' });
    return this.settled();
  }

  settled(): Promise<void> {
    if (!isActive(this.current.state)) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  /** Sends a signal to the running process (not its group), as `sockvisorctl signal` does. */
  signal(signal: NodeJS.Signals): boolean {
    if (this.current.pid === undefined) return false;
    try {
      process.kill(this.current.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  dispatch(event: SlotEvent): void {
    const before = this.current;
    const { slot, actions } = decide(before, event, this.supervise, this.random);
    this.current = slot;
    if (slot !== before) this.host.changed(this, before);
    for (const action of actions) this.apply(action);
    if (!isActive(slot.state)) for (const wake of this.settledWaiters.splice(0)) wake();
    if (slot !== before) for (const watch of [...this.watchers]) watch();
  }

  /** Resolves with the state once `done` holds for it, or at the deadline with whatever it is. */
  until(done: (state: SlotState) => boolean, timeoutMs: number): Promise<SlotState> {
    if (done(this.current)) return Promise.resolve(this.current);
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.watchers.delete(check);
        resolve(this.current);
      };
      const check = () => {
        if (done(this.current)) finish();
      };
      const timer = setTimeout(finish, timeoutMs);
      this.watchers.add(check);
    });
  }

  private apply(action: SlotAction): void {
    switch (action.type) {
      case 'spawn':
        void this.spawn();
        break;
      case 'setTimer': {
        this.clearTimer(action.timer);
        const event: SlotEvent =
          action.timer === 'start' ? { type: 'startTimer', at: 0 } : action.timer === 'backoff' ? { type: 'backoffTimer' } : { type: 'stopTimeout' };
        this.timers.set(action.timer, setTimeout(() => {
          this.timers.delete(action.timer);
          this.dispatch(event.type === 'startTimer' ? { type: 'startTimer', at: Date.now() } : event);
        }, action.ms));
        break;
      }
      case 'clearTimers':
        for (const name of [...this.timers.keys()]) this.clearTimer(name);
        break;
      case 'signal':
        this.killGroup(action.signal as NodeJS.Signals);
        break;
      case 'killGroup':
        this.killGroup('SIGKILL');
        break;
    }
  }

  private async spawn(): Promise<void> {
    // From here on, signals are for the new process, never for an old group number.
    this.group = undefined;
    let launched: LaunchedProcess;
    try {
      launched = await this.host.launch(this);
    } catch (e) {
      this.dispatch({ type: 'spawnFailed', error: (e as Error).message });
      return;
    }
    this.group = launched.pid;
    launched.child.once('exit', (code, signal) => this.dispatch({ type: 'exited', code, signal, at: Date.now() }));
    this.dispatch({ type: 'spawned', pid: launched.pid, at: Date.now() });
  }

  private killGroup(signal: NodeJS.Signals): void {
    if (this.group === undefined) return;
    try {
      process.kill(-this.group, signal);
    } catch {
      // The group is already empty.
    }
  }

  private clearTimer(name: TimerName): void {
    const timer = this.timers.get(name);
    if (timer) clearTimeout(timer);
    this.timers.delete(name);
  }
}

export function isActive(state: SlotState['state']): boolean {
  return state === 'STARTING' || state === 'RUNNING' || state === 'BACKOFF' || state === 'STOPPING';
}
