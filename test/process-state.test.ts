import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_BACKOFF, defaultSupervise, type Backoff, type RestartPolicy, type Supervise } from '../src/config/supervise.js';
import { backoffDelay } from '../src/supervise/backoff.js';
import {
  INITIAL_SLOT, decide, describeExit, restartsAfter,
  type ProcessState, type SlotAction, type SlotEvent, type SlotState,
} from '../src/supervise/process-state.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const NEUTRAL = (): number => 0.5; // jitter spread = 1 exactly

function sup(overrides: Omit<Partial<Supervise>, 'backoff'> & { backoff?: Partial<Backoff> } = {}): Supervise {
  const base = defaultSupervise();
  const { backoff, ...rest } = overrides;
  return { ...base, ...rest, backoff: { ...base.backoff, ...backoff } };
}

const ev = {
  start: { type: 'start' } as SlotEvent,
  stop: { type: 'stop' } as SlotEvent,
  spawned: (pid = 100, at = 0): SlotEvent => ({ type: 'spawned', pid, at }),
  spawnFailed: (error = 'ENOENT'): SlotEvent => ({ type: 'spawnFailed', error }),
  exited: (code: number, at = 0): SlotEvent => ({ type: 'exited', code, signal: null, at }),
  killed: (signal: string, at = 0): SlotEvent => ({ type: 'exited', code: null, signal, at }),
  startTimer: (at = 1000): SlotEvent => ({ type: 'startTimer', at }),
  backoffTimer: { type: 'backoffTimer' } as SlotEvent,
  stopTimeout: { type: 'stopTimeout' } as SlotEvent,
};

const A = {
  spawn: { type: 'spawn' } as SlotAction,
  clear: { type: 'clearTimers' } as SlotAction,
  kill: { type: 'killGroup' } as SlotAction,
  signal: (signal = 'SIGTERM'): SlotAction => ({ type: 'signal', signal }),
  timer: (timer: 'start' | 'backoff' | 'stop', ms: number): SlotAction => ({ type: 'setTimer', timer, ms }),
};

interface Run {
  /** The state after each event. */
  readonly states: ProcessState[];
  /** The actions of each event. */
  readonly actions: (readonly SlotAction[])[];
  /** The slot after each event. */
  readonly slots: SlotState[];
  /** The final slot. */
  readonly slot: SlotState;
}

/** Feeds events one by one through decide, starting from `from` (INITIAL_SLOT by default). */
function run(events: readonly SlotEvent[], opts: { sup?: Supervise; random?: () => number; from?: SlotState } = {}): Run {
  const s = opts.sup ?? defaultSupervise();
  const random = opts.random ?? NEUTRAL;
  let slot = opts.from ?? INITIAL_SLOT;
  const states: ProcessState[] = [];
  const actions: (readonly SlotAction[])[] = [];
  const slots: SlotState[] = [];
  for (const event of events) {
    const d = decide(slot, event, s, random);
    slot = d.slot;
    states.push(slot.state);
    actions.push(d.actions);
    slots.push(slot);
  }
  return { states, actions, slots, slot };
}

/** The delays of all backoff timers set along a run, in order. */
function backoffDelays(r: Run): number[] {
  return r.actions.flat().flatMap((a) => (a.type === 'setTimer' && a.timer === 'backoff' ? [a.ms] : []));
}

/** One early exit after a backoff: backoffTimer, spawned, exited(1). */
const retry = (pid: number): SlotEvent[] => [ev.backoffTimer, ev.spawned(pid), ev.exited(1)];

/** Canonical event sequences that lead from INITIAL_SLOT to each state (with default supervise settings). */
const PATHS: Record<string, readonly SlotEvent[]> = {
  STOPPED: [],
  'STARTING (spawn in flight)': [ev.start],
  STARTING: [ev.start, ev.spawned(100, 0)],
  RUNNING: [ev.start, ev.spawned(100, 0), ev.startTimer(1000)],
  BACKOFF: [ev.start, ev.spawned(100, 0), ev.exited(1, 10)],
  STOPPING: [ev.start, ev.spawned(100, 0), ev.startTimer(1000), ev.stop],
  EXITED: [ev.start, ev.spawned(100, 0), ev.startTimer(1000), ev.exited(0, 2000)],
  FATAL: [ev.start, ev.spawned(100), ev.exited(1), ...[101, 102, 103, 104, 105].flatMap(retry)],
};

function reach(name: string, s: Supervise = defaultSupervise()): SlotState {
  const path = PATHS[name];
  assert.ok(path, name);
  return run(path, { sup: s }).slot;
}

/** The state name a PATHS key leads to. */
const stateOf = (name: string): ProcessState => name.split(' ')[0] as ProcessState;

// ---------------------------------------------------------------------------------------------
// backoffDelay
// ---------------------------------------------------------------------------------------------

describe('backoffDelay', () => {
  test('grows as initial * factor^level with neutral jitter', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((l) => backoffDelay(l, DEFAULT_BACKOFF, 0.5)), [100, 200, 400, 800, 1600, 3200]);
  });

  test('is capped at maxMs', () => {
    // 100 * 2^8 = 25600, 2^9 = 51200 > 30000.
    assert.equal(backoffDelay(8, DEFAULT_BACKOFF, 0.5), 25_600);
    assert.equal(backoffDelay(9, DEFAULT_BACKOFF, 0.5), 30_000);
    assert.equal(backoffDelay(50, DEFAULT_BACKOFF, 0.5), 30_000);
    // factor^level overflows to Infinity: still the cap.
    assert.equal(backoffDelay(5000, DEFAULT_BACKOFF, 0.5), 30_000);
  });

  test('jitter spreads by ±jitter: random 0 gives the low bound, random 0.999 the high bound', () => {
    assert.equal(backoffDelay(0, DEFAULT_BACKOFF, 0), 80); // 100 * 0.8
    assert.equal(backoffDelay(0, DEFAULT_BACKOFF, 0.999), 120); // 100 * 1.1996 = 119.96
    assert.equal(backoffDelay(3, DEFAULT_BACKOFF, 0), 640); // 800 * 0.8
    assert.equal(backoffDelay(3, DEFAULT_BACKOFF, 0.999), 960); // 800 * 1.1996 = 959.68
  });

  test('jitter stays within [base*(1-j), base*(1+j)] over the whole random range', () => {
    for (let level = 0; level < 8; level++) {
      const base = 100 * 2 ** level;
      for (let i = 0; i < 100; i++) {
        const d = backoffDelay(level, DEFAULT_BACKOFF, i / 100);
        assert.ok(d >= Math.floor(base * 0.8) && d <= Math.ceil(base * 1.2), `level ${level} random ${i / 100}: ${d}`);
      }
    }
  });

  test('jitter never pushes the delay above maxMs, only below it', () => {
    assert.equal(backoffDelay(9, DEFAULT_BACKOFF, 0.999), 30_000);
    assert.equal(backoffDelay(9, DEFAULT_BACKOFF, 0), 24_000);
  });

  test('zero jitter ignores random', () => {
    const b: Backoff = { ...DEFAULT_BACKOFF, jitter: 0 };
    assert.equal(backoffDelay(2, b, 0), 400);
    assert.equal(backoffDelay(2, b, 0.999), 400);
  });

  test('other factors and initial delays', () => {
    const b: Backoff = { initialMs: 1000, maxMs: 5000, factor: 3, jitter: 0, resetAfterMs: 1 };
    assert.deepEqual([0, 1, 2, 3].map((l) => backoffDelay(l, b, 0.5)), [1000, 3000, 5000, 5000]);
    const one: Backoff = { ...DEFAULT_BACKOFF, factor: 1 };
    assert.deepEqual([0, 1, 7].map((l) => backoffDelay(l, one, 0.5)), [100, 100, 100]);
  });

  test('rounds to whole milliseconds', () => {
    const b: Backoff = { ...DEFAULT_BACKOFF, initialMs: 3, factor: 1.5 };
    const d = backoffDelay(1, b, 0.5); // 4.5
    assert.ok(Number.isInteger(d));
    assert.equal(d, 5);
  });
});

// ---------------------------------------------------------------------------------------------
// restartsAfter / describeExit
// ---------------------------------------------------------------------------------------------

describe('restartsAfter and describeExit', () => {
  const table: [RestartPolicy, number | null, string | null, boolean][] = [
    ['always', 0, null, true], ['always', 1, null, true], ['always', null, 'SIGKILL', true],
    ['on-failure', 0, null, false], ['on-failure', 1, null, true], ['on-failure', null, 'SIGKILL', true],
    ['on-failure', 255, null, true],
    ['never', 0, null, false], ['never', 1, null, false], ['never', null, 'SIGKILL', false],
  ];
  for (const [policy, code, signal, expected] of table) {
    test(`${policy} after code=${code} signal=${signal} → ${expected}`, () => {
      assert.equal(restartsAfter(policy, code, signal), expected);
    });
  }

  test('describeExit', () => {
    assert.equal(describeExit(3, null), 'exit status 3');
    assert.equal(describeExit(0, null), 'exit status 0');
    assert.equal(describeExit(null, 'SIGKILL'), 'killed by SIGKILL');
  });
});

// ---------------------------------------------------------------------------------------------
// The happy path, state by state
// ---------------------------------------------------------------------------------------------

describe('decide: starting', () => {
  test('INITIAL_SLOT is STOPPED and "Not started"', () => {
    assert.equal(INITIAL_SLOT.state, 'STOPPED');
    assert.equal(INITIAL_SLOT.reason, 'Not started');
    assert.equal(INITIAL_SLOT.pid, undefined);
  });

  for (const from of ['STOPPED', 'EXITED', 'FATAL']) {
    test(`start in ${from} → STARTING with a spawn`, () => {
      const r = run([ev.start], { from: reach(from) });
      assert.deepEqual(r.states, ['STARTING']);
      assert.deepEqual(r.actions, [[A.clear, A.spawn]]);
      assert.equal(r.slot.earlyExits, 0);
      assert.equal(r.slot.pid, undefined);
      assert.equal(r.slot.reason, '');
    });
  }

  test('start in FATAL resets the backoff level; start in EXITED / STOPPED keeps it', () => {
    const fatal = reach('FATAL');
    assert.equal(fatal.backoffLevel, 5);
    assert.equal(run([ev.start], { from: fatal }).slot.backoffLevel, 0);
    const exited = { ...reach('EXITED'), backoffLevel: 3 };
    assert.equal(run([ev.start], { from: exited }).slot.backoffLevel, 3);
    const stopped = { ...INITIAL_SLOT, backoffLevel: 2 };
    assert.equal(run([ev.start], { from: stopped }).slot.backoffLevel, 2);
  });

  test('start in EXITED / FATAL resets the early-exit counter', () => {
    assert.equal(reach('FATAL').earlyExits, 6);
    assert.equal(run([ev.start], { from: reach('FATAL') }).slot.earlyExits, 0);
    assert.equal(run([ev.start], { from: { ...reach('EXITED'), earlyExits: 2 } }).slot.earlyExits, 0);
  });

  test('spawned in STARTING sets a start timer of startMs and records pid / spawnedAt', () => {
    const r = run([ev.start, ev.spawned(4242, 5000)], { sup: sup({ startMs: 3000 }) });
    assert.deepEqual(r.states, ['STARTING', 'STARTING']);
    assert.deepEqual(r.actions[1], [A.timer('start', 3000)]);
    assert.equal(r.slot.pid, 4242);
    assert.equal(r.slot.spawnedAt, 5000);
    assert.equal(r.slot.runningSince, undefined);
  });

  test('startTimer in STARTING → RUNNING, early-exit counter reset, runningSince set', () => {
    const from = { ...reach('STARTING'), earlyExits: 3, reason: 'Exited too quickly (process log may have details)' };
    const r = run([ev.startTimer(7000)], { from });
    assert.deepEqual(r.states, ['RUNNING']);
    assert.deepEqual(r.actions, [[]]);
    assert.equal(r.slot.earlyExits, 0);
    assert.equal(r.slot.runningSince, 7000);
    assert.equal(r.slot.reason, '');
    assert.equal(r.slot.pid, 100);
  });

  test('startTimer in STARTING before the process is spawned (stale timer) does nothing', () => {
    const from = reach('STARTING (spawn in flight)');
    const d = decide(from, ev.startTimer(), defaultSupervise(), NEUTRAL);
    assert.equal(d.slot, from);
    assert.deepEqual(d.actions, []);
  });

  test('startMs 0: spawned → RUNNING at once with no timer', () => {
    const r = run([ev.start, ev.spawned(7, 123)], { sup: sup({ startMs: 0 }) });
    assert.deepEqual(r.states, ['STARTING', 'RUNNING']);
    assert.deepEqual(r.actions[1], []);
    assert.equal(r.slot.pid, 7);
    assert.equal(r.slot.spawnedAt, 123);
    assert.equal(r.slot.runningSince, 123);
    assert.equal(r.slot.earlyExits, 0);
  });

  test('startMs 0: an exit right after the spawn is not an early exit — immediate restart, no backoff', () => {
    const r = run([ev.start, ev.spawned(7, 0), ev.exited(1, 1), ev.spawned(8, 2), ev.exited(1, 3)], { sup: sup({ startMs: 0 }) });
    assert.deepEqual(r.states, ['STARTING', 'RUNNING', 'STARTING', 'RUNNING', 'STARTING']);
    assert.deepEqual(r.actions[2], [A.clear, A.kill, A.spawn]);
    assert.deepEqual(backoffDelays(r), []);
  });

  test('full happy path: STOPPED → STARTING → RUNNING → STOPPING → STOPPED', () => {
    const r = run([ev.start, ev.spawned(100, 0), ev.startTimer(1000), ev.stop, ev.killed('SIGTERM', 1500)]);
    assert.deepEqual(r.states, ['STARTING', 'STARTING', 'RUNNING', 'STOPPING', 'STOPPED']);
    assert.deepEqual(r.actions, [
      [A.clear, A.spawn],
      [A.timer('start', 1000)],
      [],
      [A.clear, A.signal('SIGTERM'), A.timer('stop', 10_000)],
      [A.clear, A.kill],
    ]);
    assert.equal(r.slot.reason, 'Stopped');
    assert.equal(r.slot.pid, undefined);
    assert.deepEqual(r.slot.lastExit, { code: null, signal: 'SIGTERM' });
  });
});

// ---------------------------------------------------------------------------------------------
// Early exits and backoff
// ---------------------------------------------------------------------------------------------

describe('decide: early exits and backoff', () => {
  test('exit in STARTING → BACKOFF with a backoff timer, killGroup and clearTimers', () => {
    const r = run([ev.start, ev.spawned(100, 0), ev.exited(1, 10)]);
    assert.deepEqual(r.states, ['STARTING', 'STARTING', 'BACKOFF']);
    assert.deepEqual(r.actions[2], [A.clear, A.kill, A.timer('backoff', 100)]);
    assert.equal(r.slot.earlyExits, 1);
    assert.equal(r.slot.backoffLevel, 1);
    assert.equal(r.slot.pid, undefined);
    assert.equal(r.slot.reason, 'Exited too quickly (process log may have details)');
    assert.deepEqual(r.slot.lastExit, { code: 1, signal: null });
  });

  test('backoffTimer in BACKOFF → STARTING + spawn', () => {
    const r = run([ev.backoffTimer], { from: reach('BACKOFF') });
    assert.deepEqual(r.states, ['STARTING']);
    assert.deepEqual(r.actions, [[A.spawn]]);
    assert.equal(r.slot.pid, undefined);
    assert.equal(r.slot.reason, '');
    assert.equal(r.slot.earlyExits, 1, 'the counter carries over to the next attempt');
  });

  test('the full ladder with defaults: 100, 200, 400, 800, 1600, then FATAL after startRetries+1 early exits', () => {
    const events = [ev.start, ev.spawned(100), ev.exited(1), ...[101, 102, 103, 104, 105].flatMap(retry)];
    const r = run(events);
    assert.deepEqual(backoffDelays(r), [100, 200, 400, 800, 1600]);
    const afterExits = r.states.filter((_, i) => events[i]!.type === 'exited');
    assert.deepEqual(afterExits, ['BACKOFF', 'BACKOFF', 'BACKOFF', 'BACKOFF', 'BACKOFF', 'FATAL']);
    assert.equal(r.slot.state, 'FATAL');
    assert.equal(r.slot.earlyExits, 6);
    assert.equal(r.slot.reason, 'Exited too quickly (process log may have details)');
    // The exit into FATAL: cleanup only, no timer, no spawn.
    assert.deepEqual(r.actions.at(-1), [A.clear, A.kill]);
    assert.deepEqual(r.slots.map((s) => s.earlyExits).filter((_, i) => events[i]!.type === 'exited'), [1, 2, 3, 4, 5, 6]);
  });

  test('the ladder is exactly startRetries long for other values', () => {
    for (const startRetries of [0, 1, 3]) {
      const events = [ev.start, ev.spawned(100), ev.exited(1), ...Array.from({ length: startRetries }, (_, i) => retry(101 + i)).flat()];
      const r = run(events, { sup: sup({ startRetries }) });
      assert.equal(r.slot.state, 'FATAL', `startRetries ${startRetries}`);
      assert.equal(backoffDelays(r).length, startRetries);
      assert.equal(r.slot.earlyExits, startRetries + 1);
    }
  });

  test('startRetries 0: the first early exit is FATAL', () => {
    const r = run([ev.start, ev.spawned(100), ev.exited(2)], { sup: sup({ startRetries: 0 }) });
    assert.deepEqual(r.states, ['STARTING', 'STARTING', 'FATAL']);
    assert.deepEqual(r.actions[2], [A.clear, A.kill]);
  });

  test('the ladder reaches the cap at maxMs', () => {
    const events = [ev.start, ev.spawned(100), ev.exited(1), ...Array.from({ length: 11 }, (_, i) => retry(101 + i)).flat()];
    const r = run(events, { sup: sup({ startRetries: 20 }) });
    assert.deepEqual(backoffDelays(r), [100, 200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000, 30_000]);
    assert.equal(r.slot.state, 'BACKOFF');
  });

  test('custom backoff settings drive the ladder', () => {
    const s = sup({ backoff: { initialMs: 1000, maxMs: 5000, factor: 3, jitter: 0 } });
    const r = run([ev.start, ev.spawned(100), ev.exited(1), ...[101, 102, 103].flatMap(retry)], { sup: s });
    assert.deepEqual(backoffDelays(r), [1000, 3000, 5000, 5000]);
  });

  test('jitter bounds through decide: random 0 → low end, random 0.999 → high end', () => {
    const events = [ev.start, ev.spawned(100), ev.exited(1), ...[101, 102].flatMap(retry)];
    assert.deepEqual(backoffDelays(run(events, { random: () => 0 })), [80, 160, 320]);
    assert.deepEqual(backoffDelays(run(events, { random: () => 0.999 })), [120, 240, 480]);
  });

  test('random is only drawn when a backoff timer is set', () => {
    let calls = 0;
    const random = (): number => { calls++; return 0.5; };
    run([ev.start, ev.spawned(100), ev.startTimer(), ev.stop, ev.exited(0)], { random });
    assert.equal(calls, 0);
    run([ev.start, ev.spawned(100), ev.exited(1)], { random });
    assert.equal(calls, 1);
  });

  test('a successful start between early exits resets the early-exit counter but not the backoff level', () => {
    const r = run([
      ev.start, ev.spawned(100, 0), ev.exited(1, 10), // early exit 1, level 1
      ev.backoffTimer, ev.spawned(101, 20), ev.exited(1, 30), // early exit 2, level 2
      ev.backoffTimer, ev.spawned(102, 40), ev.startTimer(1040), // RUNNING: earlyExits 0
      ev.exited(1, 2000), // short run: restart at once, level kept (2)
      ev.spawned(103, 2000), ev.exited(1, 2010), // early exit: delay 400
    ]);
    assert.deepEqual(r.states, [
      'STARTING', 'STARTING', 'BACKOFF', 'STARTING', 'STARTING', 'BACKOFF', 'STARTING', 'STARTING', 'RUNNING',
      'STARTING', 'STARTING', 'BACKOFF',
    ]);
    assert.equal(r.slots[8]!.earlyExits, 0);
    assert.equal(r.slots[8]!.backoffLevel, 2);
    assert.deepEqual(backoffDelays(r), [100, 200, 400]);
    assert.equal(r.slot.earlyExits, 1);
    assert.equal(r.slot.backoffLevel, 3);
  });

  test('backoff level resets after running at least resetAfterMs, kept after a shorter run', () => {
    const prefix = [
      ev.start, ev.spawned(100, 0), ev.exited(1, 10),
      ev.backoffTimer, ev.spawned(101, 20), ev.exited(1, 30),
      ev.backoffTimer, ev.spawned(102, 40), ev.startTimer(1000), // RUNNING since 1000, level 2
    ];
    const tail = (exitAt: number): SlotEvent[] => [ev.exited(1, exitAt), ev.spawned(103, exitAt), ev.exited(1, exitAt + 5)];

    const long = run([...prefix, ...tail(1000 + 60_000)]);
    assert.equal(long.slots[prefix.length]!.state, 'STARTING');
    assert.equal(long.slots[prefix.length]!.backoffLevel, 0);
    assert.deepEqual(backoffDelays(long), [100, 200, 100]);

    const short = run([...prefix, ...tail(1000 + 59_999)]);
    assert.equal(short.slots[prefix.length]!.backoffLevel, 2);
    assert.deepEqual(backoffDelays(short), [100, 200, 400]);
  });

  test('resetAfterMs is measured from RUNNING (startTimer), not from the spawn', () => {
    const s = sup({ backoff: { resetAfterMs: 5000 } });
    const from: SlotState = { ...reach('RUNNING', s), backoffLevel: 4, spawnedAt: 0, runningSince: 1000 };
    assert.equal(run([ev.exited(1, 5500)], { from, sup: s }).slot.backoffLevel, 4); // 5500 since spawn, 4500 since RUNNING
    assert.equal(run([ev.exited(1, 6000)], { from, sup: s }).slot.backoffLevel, 0); // 5000 since RUNNING
  });

  test('the backoff level also resets when a long-running process exits for good', () => {
    const from: SlotState = { ...reach('RUNNING'), backoffLevel: 4, runningSince: 1000 };
    const r = run([ev.exited(0, 1000 + 60_000)], { from });
    assert.equal(r.slot.state, 'EXITED');
    assert.equal(r.slot.backoffLevel, 0);
    const kept = run([ev.exited(0, 1000 + 10)], { from });
    assert.equal(kept.slot.backoffLevel, 4);
  });
});

// ---------------------------------------------------------------------------------------------
// Restart policies
// ---------------------------------------------------------------------------------------------

describe('decide: restart policies', () => {
  const exits: [string, SlotEvent, string][] = [
    ['exit 0', ev.exited(0, 5), 'exit status 0'],
    ['exit 1', ev.exited(1, 5), 'exit status 1'],
    ['SIGKILL', ev.killed('SIGKILL', 5), 'killed by SIGKILL'],
  ];
  const restarts: Record<RestartPolicy, boolean[]> = {
    always: [true, true, true],
    'on-failure': [false, true, true],
    never: [false, false, false],
  };

  for (const policy of ['always', 'on-failure', 'never'] as const) {
    exits.forEach(([label, exit, description], i) => {
      const restart = restarts[policy][i]!;
      const s = sup({ restart: policy });

      test(`${policy} × ${label} in STARTING → ${restart ? 'BACKOFF' : 'EXITED'}`, () => {
        const r = run([exit], { from: reach('STARTING', s), sup: s });
        const lastExit = exit.type === 'exited' ? { code: exit.code, signal: exit.signal } : undefined;
        assert.deepEqual(r.slot.lastExit, lastExit);
        assert.equal(r.slot.pid, undefined);
        if (restart) {
          assert.equal(r.slot.state, 'BACKOFF');
          assert.deepEqual(r.actions[0], [A.clear, A.kill, A.timer('backoff', 100)]);
          assert.equal(r.slot.reason, 'Exited too quickly (process log may have details)');
          assert.equal(r.slot.earlyExits, 1);
        } else {
          assert.equal(r.slot.state, 'EXITED');
          assert.deepEqual(r.actions[0], [A.clear, A.kill]);
          assert.equal(r.slot.reason, description);
          assert.equal(r.slot.backoffLevel, 0);
        }
      });

      test(`${policy} × ${label} in RUNNING → ${restart ? 'STARTING + spawn (no delay)' : 'EXITED'}`, () => {
        const r = run([exit], { from: reach('RUNNING', s), sup: s });
        assert.equal(r.slot.pid, undefined);
        if (restart) {
          assert.equal(r.slot.state, 'STARTING');
          assert.deepEqual(r.actions[0], [A.clear, A.kill, A.spawn]);
          assert.equal(r.slot.reason, '');
          assert.equal(r.slot.earlyExits, 0);
        } else {
          assert.equal(r.slot.state, 'EXITED');
          assert.deepEqual(r.actions[0], [A.clear, A.kill]);
          assert.equal(r.slot.reason, description);
        }
      });
    });
  }

  test('exit status is described with its number', () => {
    const r = run([ev.exited(3, 5000)], { from: reach('RUNNING', sup({ restart: 'never' })), sup: sup({ restart: 'never' }) });
    assert.equal(r.slot.reason, 'exit status 3');
    assert.deepEqual(r.slot.lastExit, { code: 3, signal: null });
  });

  test('always: a long-lived process that keeps exiting is restarted each time, never FATAL', () => {
    const s = sup({ restart: 'always' });
    const events: SlotEvent[] = [];
    for (let i = 0; i < 20; i++) events.push(ev.spawned(100 + i, i * 10_000), ev.startTimer(i * 10_000 + 1000), ev.exited(0, i * 10_000 + 5000));
    const r = run(events, { from: run([ev.start], { sup: s }).slot, sup: s });
    assert.equal(r.slot.state, 'STARTING');
    assert.ok(!r.states.includes('FATAL'));
    assert.deepEqual(backoffDelays(r), []);
  });
});

// ---------------------------------------------------------------------------------------------
// Stopping
// ---------------------------------------------------------------------------------------------

describe('decide: stopping', () => {
  test('stop in RUNNING → STOPPING: clearTimers, the stop signal, a stop timer', () => {
    const s = sup({ stopSignal: 'SIGINT', stopTimeoutMs: 3000 });
    const r = run([ev.stop], { from: reach('RUNNING', s), sup: s });
    assert.deepEqual(r.states, ['STOPPING']);
    assert.deepEqual(r.actions, [[A.clear, A.signal('SIGINT'), A.timer('stop', 3000)]]);
    assert.equal(r.slot.pid, 100, 'the pid is kept until the process exits');
  });

  test('stop in STARTING (process spawned) → STOPPING with the same actions', () => {
    const r = run([ev.stop], { from: reach('STARTING') });
    assert.deepEqual(r.states, ['STOPPING']);
    assert.deepEqual(r.actions, [[A.clear, A.signal('SIGTERM'), A.timer('stop', 10_000)]]);
  });

  test('escalation: stop → stopTimeout → killGroup → exit → STOPPED', () => {
    const r = run([ev.stop, ev.stopTimeout, ev.killed('SIGKILL', 20_000)], { from: reach('RUNNING') });
    assert.deepEqual(r.states, ['STOPPING', 'STOPPING', 'STOPPED']);
    assert.deepEqual(r.actions, [
      [A.clear, A.signal('SIGTERM'), A.timer('stop', 10_000)],
      [A.kill],
      [A.clear, A.kill],
    ]);
    assert.equal(r.slot.reason, 'Stopped');
    assert.deepEqual(r.slot.lastExit, { code: null, signal: 'SIGKILL' });
    assert.equal(r.slot.pid, undefined);
  });

  test('stopTimeout in STOPPING leaves the slot as it is', () => {
    const from = reach('STOPPING');
    const d = decide(from, ev.stopTimeout, defaultSupervise(), NEUTRAL);
    assert.equal(d.slot, from);
    assert.deepEqual(d.actions, [A.kill]);
  });

  for (const policy of ['always', 'on-failure', 'never'] as const) {
    for (const [label, exit] of [['exit 0', ev.exited(0)], ['exit 1', ev.exited(1)], ['SIGTERM', ev.killed('SIGTERM')]] as const) {
      test(`exit in STOPPING → STOPPED whatever the policy (${policy} × ${label})`, () => {
        const s = sup({ restart: policy });
        const r = run([exit], { from: reach('STOPPING', s), sup: s });
        assert.deepEqual(r.states, ['STOPPED']);
        assert.deepEqual(r.actions, [[A.clear, A.kill]]);
        assert.equal(r.slot.reason, 'Stopped');
      });
    }
  }

  test('stop in BACKOFF → STOPPED at once, and the later backoffTimer does nothing', () => {
    const r = run([ev.stop, ev.backoffTimer], { from: reach('BACKOFF') });
    assert.deepEqual(r.states, ['STOPPED', 'STOPPED']);
    assert.deepEqual(r.actions, [[A.clear], []]);
    assert.equal(r.slot.reason, 'Stopped');
  });

  test('stop while the spawn is in flight: the new process is signalled as soon as it is spawned', () => {
    const r = run([ev.start, ev.stop, ev.spawned(555, 50), ev.exited(0, 60)]);
    assert.deepEqual(r.states, ['STARTING', 'STOPPING', 'STOPPING', 'STOPPED']);
    assert.deepEqual(r.actions[2], [A.signal('SIGTERM'), A.timer('stop', 10_000)]);
    assert.equal(r.slots[2]!.pid, 555);
    assert.equal(r.slots[2]!.spawnedAt, 50);
    assert.deepEqual(r.actions[3], [A.clear, A.kill]);
  });

  test('stop while the spawn is in flight, then the process ignores the signal: escalation still works', () => {
    const r = run([ev.start, ev.stop, ev.spawned(555, 50), ev.stopTimeout, ev.killed('SIGKILL', 10_100)]);
    assert.deepEqual(r.states, ['STARTING', 'STOPPING', 'STOPPING', 'STOPPING', 'STOPPED']);
    assert.deepEqual(r.actions[3], [A.kill]);
  });

  test('stop while the spawn is in flight, then the spawn fails → STOPPED', () => {
    const r = run([ev.start, ev.stop, ev.spawnFailed('EACCES')]);
    assert.deepEqual(r.states, ['STARTING', 'STOPPING', 'STOPPED']);
    assert.deepEqual(r.actions[2], [A.clear]);
    assert.equal(r.slot.reason, 'Stopped');
    assert.equal(r.slot.pid, undefined);
  });

  test('stop after a restart from RUNNING (spawn in flight) is handled the same way', () => {
    const r = run([ev.exited(1, 5000), ev.stop, ev.spawned(777, 5001), ev.exited(0, 5002)], { from: reach('RUNNING') });
    assert.deepEqual(r.states, ['STARTING', 'STOPPING', 'STOPPING', 'STOPPED']);
    assert.deepEqual(r.actions[2], [A.signal('SIGTERM'), A.timer('stop', 10_000)]);
  });

  test('a stopped slot can be started again', () => {
    const r = run([ev.stop, ev.exited(0), ev.start, ev.spawned(200, 0)], { from: reach('RUNNING') });
    assert.deepEqual(r.states, ['STOPPING', 'STOPPED', 'STARTING', 'STARTING']);
    assert.deepEqual(r.actions[2], [A.clear, A.spawn]);
  });
});

// ---------------------------------------------------------------------------------------------
// spawnFailed
// ---------------------------------------------------------------------------------------------

describe('decide: spawnFailed', () => {
  test('spawnFailed in STARTING counts as an early exit: BACKOFF with a backoff timer', () => {
    const r = run([ev.start, ev.spawnFailed('ENOENT')]);
    assert.deepEqual(r.states, ['STARTING', 'BACKOFF']);
    assert.deepEqual(r.actions[1], [A.clear, A.timer('backoff', 100)]);
    assert.equal(r.slot.earlyExits, 1);
    assert.equal(r.slot.backoffLevel, 1);
    assert.equal(r.slot.reason, 'could not start: ENOENT');
    assert.equal(r.slot.pid, undefined);
  });

  test('repeated spawn failures climb the same ladder and end in FATAL', () => {
    const events = [ev.start, ev.spawnFailed(), ...Array.from({ length: 5 }, () => [ev.backoffTimer, ev.spawnFailed()]).flat()];
    const r = run(events);
    assert.deepEqual(backoffDelays(r), [100, 200, 400, 800, 1600]);
    assert.equal(r.slot.state, 'FATAL');
    assert.equal(r.slot.earlyExits, 6);
    assert.equal(r.slot.reason, 'could not start: ENOENT');
    assert.deepEqual(r.actions.at(-1), [A.clear]);
  });

  test('spawn failures and early exits share one counter', () => {
    const r = run([ev.start, ev.spawnFailed(), ev.backoffTimer, ev.spawned(1), ev.exited(1), ev.backoffTimer, ev.spawnFailed()], {
      sup: sup({ startRetries: 2 }),
    });
    assert.deepEqual(r.states, ['STARTING', 'BACKOFF', 'STARTING', 'STARTING', 'BACKOFF', 'STARTING', 'FATAL']);
    assert.deepEqual(backoffDelays(r), [100, 200]);
  });

  test('spawnFailed in STARTING counts as an early exit whatever the restart policy', () => {
    for (const restart of ['always', 'on-failure', 'never'] as const) {
      const r = run([ev.start, ev.spawnFailed()], { sup: sup({ restart }) });
      assert.equal(r.slot.state, 'BACKOFF', restart);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Events that do not apply
// ---------------------------------------------------------------------------------------------

describe('decide: events that do not apply leave the slot unchanged with no actions', () => {
  const ALL = Object.keys(PATHS);
  const events: [string, SlotEvent, string[]][] = [
    ['start', ev.start, ['STARTING (spawn in flight)', 'STARTING', 'RUNNING', 'BACKOFF', 'STOPPING']],
    ['stop', ev.stop, ['STOPPED', 'STOPPING', 'EXITED', 'FATAL']],
    ['spawned', ev.spawned(999, 1), ['STOPPED', 'RUNNING', 'BACKOFF', 'EXITED', 'FATAL']],
    ['spawnFailed', ev.spawnFailed(), ['STOPPED', 'RUNNING', 'BACKOFF', 'EXITED', 'FATAL']],
    ['startTimer', ev.startTimer(), ALL.filter((n) => n !== 'STARTING')],
    ['backoffTimer', ev.backoffTimer, ALL.filter((n) => n !== 'BACKOFF')],
    ['stopTimeout', ev.stopTimeout, ALL.filter((n) => n !== 'STOPPING')],
  ];
  for (const [name, event, states] of events) {
    for (const state of states) {
      test(`${name} in ${state}`, () => {
        const from = reach(state);
        assert.equal(from.state, stateOf(state));
        const d = decide(from, event, defaultSupervise(), NEUTRAL);
        assert.equal(d.slot, from);
        assert.deepEqual(d.actions, []);
      });
    }
  }

  // A stray exit (no process of this slot is running) does not move the slot, and never spawns or sets timers.
  for (const state of ['STOPPED', 'EXITED', 'FATAL', 'BACKOFF']) {
    test(`a stray exit in ${state} keeps the state and starts nothing`, () => {
      const from = reach(state);
      const d = decide(from, ev.exited(1, 99_999), defaultSupervise(), NEUTRAL);
      assert.equal(d.slot.state, from.state);
      assert.equal(d.slot.earlyExits, from.earlyExits);
      assert.equal(d.slot.backoffLevel, from.backoffLevel);
      assert.ok(!d.actions.some((a) => a.type === 'spawn' || a.type === 'setTimer'), JSON.stringify(d.actions));
    });
  }

  test('a stray exit in BACKOFF does not cancel the pending backoff timer', () => {
    const d = decide(reach('BACKOFF'), ev.exited(1, 99_999), defaultSupervise(), NEUTRAL);
    assert.ok(!d.actions.some((a) => a.type === 'clearTimers'), JSON.stringify(d.actions));
  });
});

// ---------------------------------------------------------------------------------------------
// Invariants over random event sequences
// ---------------------------------------------------------------------------------------------

describe('decide: invariants', () => {
  test('pid is set exactly when a process may be alive, and decide never mutates its input', () => {
    // A small deterministic PRNG so the test is reproducible.
    let seed = 12345;
    const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
    const s = sup({ startRetries: 3 });
    let slot = INITIAL_SLOT;
    let t = 0;
    let nextPid = 1;
    for (let i = 0; i < 5000; i++) {
      t += Math.floor(rnd() * 2000);
      const choices: SlotEvent[] = [
        ev.start, ev.stop, ev.spawned(nextPid, t), ev.spawnFailed(), ev.exited(Math.floor(rnd() * 3), t),
        ev.killed('SIGKILL', t), ev.startTimer(t), ev.backoffTimer, ev.stopTimeout,
      ];
      const event = choices[Math.floor(rnd() * choices.length)]!;
      const before = JSON.stringify(slot);
      const d = decide(slot, event, s, rnd);
      assert.equal(JSON.stringify(slot), before, 'input slot mutated');
      if (event.type === 'spawned') nextPid++;
      const next = d.slot;
      if (next.state === 'RUNNING') {
        assert.notEqual(next.pid, undefined);
        assert.notEqual(next.runningSince, undefined);
      }
      if (['STOPPED', 'EXITED', 'FATAL', 'BACKOFF'].includes(next.state)) assert.equal(next.pid, undefined, `${next.state} after ${event.type}`);
      assert.ok(next.earlyExits <= s.startRetries + 1);
      if (next.state === 'FATAL' && slot.state !== 'FATAL') assert.equal(next.earlyExits, s.startRetries + 1);
      for (const a of d.actions) {
        if (a.type === 'setTimer' && a.timer === 'backoff') assert.ok(a.ms >= 80 && a.ms <= 30_000, String(a.ms));
      }
      if (d.actions.some((a) => a.type === 'spawn')) assert.equal(next.state, 'STARTING');
      slot = next;
    }
  });
});

describe('decide: a stop while the process is still being spawned', () => {
  test('signals nothing until the process exists, then signals it and arms the stop timer', () => {
    const s = defaultSupervise();
    const starting = decide(INITIAL_SLOT, { type: 'start' }, s, () => 0.5).slot;
    const stopping = decide(starting, { type: 'stop' }, s, () => 0.5);
    assert.equal(stopping.slot.state, 'STOPPING');
    assert.deepEqual(stopping.actions, [{ type: 'clearTimers' }]);
    const spawned = decide(stopping.slot, { type: 'spawned', pid: 42, at: 1 }, s, () => 0.5);
    assert.deepEqual(spawned.actions, [{ type: 'signal', signal: 'SIGTERM' }, { type: 'setTimer', timer: 'stop', ms: 10_000 }]);
  });
});
