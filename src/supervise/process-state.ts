/**
 * The life of one supervised process, as supervisord operators know it: STOPPED, STARTING,
 * RUNNING, BACKOFF, STOPPING, EXITED and FATAL. Pure: an event and the current state in, the new
 * state and the effects to carry out out. The effects are applied by process-slot.ts.
 */
import type { Supervise } from '../config/supervise.js';
import { backoffDelay } from './backoff.js';

export type ProcessState = 'STOPPED' | 'STARTING' | 'RUNNING' | 'BACKOFF' | 'STOPPING' | 'EXITED' | 'FATAL';

export interface SlotState {
  readonly state: ProcessState;
  /** Consecutive exits before start_seconds; reset once a process counts as started. */
  readonly earlyExits: number;
  /** Steps up the backoff ladder; reset after reset_after of stable running. */
  readonly backoffLevel: number;
  readonly pid: number | undefined;
  /** When the current process was spawned, and when it counted as started (ms since epoch). */
  readonly spawnedAt: number | undefined;
  readonly runningSince: number | undefined;
  /** Why the process is not running, in supervisorctl's words. */
  readonly reason: string;
  /** The last exit, for status and logs. */
  readonly lastExit: { readonly code: number | null; readonly signal: string | null } | undefined;
}

export type SlotEvent =
  | { readonly type: 'start' }
  | { readonly type: 'stop' }
  | { readonly type: 'spawned'; readonly pid: number; readonly at: number }
  | { readonly type: 'spawnFailed'; readonly error: string }
  | { readonly type: 'exited'; readonly code: number | null; readonly signal: string | null; readonly at: number }
  | { readonly type: 'startTimer'; readonly at: number }
  | { readonly type: 'backoffTimer' }
  | { readonly type: 'stopTimeout' };

export type TimerName = 'start' | 'backoff' | 'stop';

export type SlotAction =
  | { readonly type: 'spawn' }
  | { readonly type: 'setTimer'; readonly timer: TimerName; readonly ms: number }
  | { readonly type: 'clearTimers' }
  /** The stop signal to the process group. */
  | { readonly type: 'signal'; readonly signal: string }
  /** SIGKILL to the whole process group. */
  | { readonly type: 'killGroup' };

export const INITIAL_SLOT: SlotState = {
  state: 'STOPPED', earlyExits: 0, backoffLevel: 0, pid: undefined, spawnedAt: undefined, runningSince: undefined,
  reason: 'Not started', lastExit: undefined,
};

export interface Decision {
  readonly slot: SlotState;
  readonly actions: readonly SlotAction[];
}

/** Whether the restart policy restarts after this exit. */
export function restartsAfter(policy: Supervise['restart'], code: number | null, signal: string | null): boolean {
  if (policy === 'always') return true;
  if (policy === 'never') return false;
  return signal !== null || code !== 0;
}

export function describeExit(code: number | null, signal: string | null): string {
  return signal !== null ? `killed by ${signal}` : `exit status ${code}`;
}

const unchanged = (slot: SlotState): Decision => ({ slot, actions: [] });

export function decide(slot: SlotState, event: SlotEvent, sup: Supervise, random: () => number): Decision {
  switch (event.type) {
    case 'start':
      if (slot.state === 'STOPPED' || slot.state === 'EXITED' || slot.state === 'FATAL') {
        return {
          slot: { ...slot, state: 'STARTING', earlyExits: 0, backoffLevel: slot.state === 'FATAL' ? 0 : slot.backoffLevel, pid: undefined, reason: '' },
          actions: [{ type: 'clearTimers' }, { type: 'spawn' }],
        };
      }
      return unchanged(slot);

    case 'stop':
      // Still being spawned: there is nothing to signal yet; `spawned` in STOPPING does it.
      if (slot.state === 'STARTING' && slot.pid === undefined) return { slot: { ...slot, state: 'STOPPING' }, actions: [{ type: 'clearTimers' }] };
      if (slot.state === 'STARTING' || slot.state === 'RUNNING') {
        return {
          slot: { ...slot, state: 'STOPPING' },
          actions: [{ type: 'clearTimers' }, { type: 'signal', signal: sup.stopSignal }, { type: 'setTimer', timer: 'stop', ms: sup.stopTimeoutMs }],
        };
      }
      if (slot.state === 'BACKOFF') return { slot: { ...slot, state: 'STOPPED', reason: 'Stopped' }, actions: [{ type: 'clearTimers' }] };
      return unchanged(slot);

    case 'spawned':
      if (slot.state === 'STARTING') {
        if (sup.startMs === 0) return { slot: { ...slot, state: 'RUNNING', pid: event.pid, spawnedAt: event.at, runningSince: event.at, earlyExits: 0 }, actions: [] };
        return { slot: { ...slot, pid: event.pid, spawnedAt: event.at, runningSince: undefined }, actions: [{ type: 'setTimer', timer: 'start', ms: sup.startMs }] };
      }
      // A stop arrived while the process was being started: it stops as soon as it exists.
      if (slot.state === 'STOPPING') {
        return { slot: { ...slot, pid: event.pid, spawnedAt: event.at }, actions: [{ type: 'signal', signal: sup.stopSignal }, { type: 'setTimer', timer: 'stop', ms: sup.stopTimeoutMs }] };
      }
      return unchanged(slot);

    case 'spawnFailed':
      if (slot.state === 'STOPPING') return { slot: { ...slot, state: 'STOPPED', pid: undefined, reason: 'Stopped' }, actions: [{ type: 'clearTimers' }] };
      if (slot.state !== 'STARTING') return unchanged(slot);
      return earlyExit({ ...slot, pid: undefined }, sup, random, `could not start: ${event.error}`);

    case 'startTimer':
      if (slot.state !== 'STARTING' || slot.pid === undefined) return unchanged(slot);
      return { slot: { ...slot, state: 'RUNNING', earlyExits: 0, runningSince: event.at, reason: '' }, actions: [] };

    case 'backoffTimer':
      if (slot.state !== 'BACKOFF') return unchanged(slot);
      return { slot: { ...slot, state: 'STARTING', pid: undefined, reason: '' }, actions: [{ type: 'spawn' }] };

    case 'stopTimeout':
      if (slot.state !== 'STOPPING') return unchanged(slot);
      return { slot, actions: [{ type: 'killGroup' }] };

    case 'exited': {
      const lastExit = { code: event.code, signal: event.signal };
      const exited = { ...slot, pid: undefined, lastExit };
      // Whatever the process left in its group goes with it.
      const cleanup: SlotAction[] = [{ type: 'clearTimers' }, { type: 'killGroup' }];
      if (slot.state === 'STOPPING') return { slot: { ...exited, state: 'STOPPED', reason: 'Stopped' }, actions: cleanup };
      const restart = restartsAfter(sup.restart, event.code, event.signal);
      if (slot.state === 'STARTING') {
        if (!restart) return { slot: { ...exited, state: 'EXITED', reason: describeExit(event.code, event.signal) }, actions: cleanup };
        const early = earlyExit(exited, sup, random, 'Exited too quickly (process log may have details)');
        return { slot: early.slot, actions: [...cleanup, ...early.actions.filter((a) => a.type !== 'clearTimers')] };
      }
      if (slot.state === 'RUNNING') {
        const ranFor = slot.runningSince === undefined ? 0 : event.at - slot.runningSince;
        const backoffLevel = ranFor >= sup.backoff.resetAfterMs ? 0 : slot.backoffLevel;
        if (!restart) return { slot: { ...exited, state: 'EXITED', backoffLevel, reason: describeExit(event.code, event.signal) }, actions: cleanup };
        // A process that had started is restarted at once: it was serving, and clients wait.
        return { slot: { ...exited, state: 'STARTING', backoffLevel, reason: '' }, actions: [...cleanup, { type: 'spawn' }] };
      }
      // No process of ours was running (a late or stray exit): nothing changes.
      return unchanged(slot);
    }
  }
}

function earlyExit(slot: SlotState, sup: Supervise, random: () => number, reason: string): Decision {
  const earlyExits = slot.earlyExits + 1;
  if (earlyExits > sup.startRetries) {
    return { slot: { ...slot, state: 'FATAL', earlyExits, reason }, actions: [{ type: 'clearTimers' }] };
  }
  const delay = backoffDelay(slot.backoffLevel, sup.backoff, random());
  return {
    slot: { ...slot, state: 'BACKOFF', earlyExits, backoffLevel: slot.backoffLevel + 1, reason },
    actions: [{ type: 'clearTimers' }, { type: 'setTimer', timer: 'backoff', ms: delay }],
  };
}
