import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describeProcess, formatUptime } from '../src/control/describe.js';
import { FrameDecoder, MAX_FRAME_BYTES } from '../src/control/frames.js';
import { resolveNames } from '../src/control/names.js';
import { allowed } from '../src/control/server.js';
import { INITIAL_SLOT } from '../src/supervise/process-state.js';

describe('control frames', () => {
  test('requests split across reads, several in one read', () => {
    const d = new FrameDecoder();
    assert.deepEqual(d.push(Buffer.from('{"v":1,"id":1,"cmd":"st')), []);
    const frames = d.push(Buffer.from('atus"}\n{"v":1,"id":2,"cmd":"pid","args":{"name":"web"}}\n'));
    assert.deepEqual(frames, [
      { request: { v: 1, id: 1, cmd: 'status', args: {} } },
      { request: { v: 1, id: 2, cmd: 'pid', args: { name: 'web' } } },
    ]);
  });

  test('bad frames are fatal, with a code', () => {
    const code = (text: string) => {
      const [frame] = new FrameDecoder().push(Buffer.from(text));
      return frame && 'error' in frame ? frame.error.code : 'ok';
    };
    assert.equal(code('nope\n'), 'BAD_FRAME');
    assert.equal(code('"str"\n'), 'BAD_FRAME');
    assert.equal(code('{"v":1,"id":"1","cmd":"x"}\n'), 'BAD_FRAME');
    assert.equal(code('{"v":1,"id":1,"cmd":"x","args":[]}\n'), 'BAD_FRAME');
    assert.equal(code('{"v":3,"id":1,"cmd":"x"}\n'), 'BAD_VERSION');
  });

  test('a frame over the limit is refused before it is buffered whole', () => {
    const d = new FrameDecoder();
    assert.deepEqual(d.push(Buffer.alloc(MAX_FRAME_BYTES - 10, 'x')), []);
    const [frame] = d.push(Buffer.alloc(20, 'x'));
    assert.ok(frame && 'error' in frame && frame.error.code === 'FRAME_TOO_LARGE' && frame.fatal);
  });
});

describe('names', () => {
  const processes = ['web:0', 'web:1', 'api:0', 'worker-a:0'].map((name) => ({ name, service: name.split(':')[0]! }));
  test('service, replica, glob, all, unknown', () => {
    assert.deepEqual(resolveNames(['web'], processes), { matched: ['web:0', 'web:1'], unknown: [] });
    assert.deepEqual(resolveNames(['web:1', 'api'], processes), { matched: ['web:1', 'api:0'], unknown: [] });
    assert.deepEqual(resolveNames(['w*'], processes), { matched: ['web:0', 'web:1', 'worker-a:0'], unknown: [] });
    assert.deepEqual(resolveNames(['*:0'], processes), { matched: ['web:0', 'api:0', 'worker-a:0'], unknown: [] });
    assert.deepEqual(resolveNames(['all', 'nope', 'x*'], processes), { matched: ['web:0', 'web:1', 'api:0', 'worker-a:0'], unknown: ['nope', 'x*'] });
    assert.deepEqual(resolveNames(['web.'], processes), { matched: [], unknown: ['web.'] }, 'a dot is not a wildcard');
  });
});

describe('status descriptions', () => {
  test('supervisorctl words and uptime', () => {
    assert.equal(formatUptime(0), '0:00:00');
    assert.equal(formatUptime(3725), '1:02:05');
    assert.equal(formatUptime(90_061), '25:01:01');
    assert.deepEqual(describeProcess({ ...INITIAL_SLOT, state: 'RUNNING', pid: 42, spawnedAt: 1_000 }, 6_500), { uptime: 5, description: 'pid 42, uptime 0:00:05' });
    assert.deepEqual(describeProcess(INITIAL_SLOT, 0), { uptime: 0, description: 'Not started' });
    assert.equal(describeProcess({ ...INITIAL_SLOT, state: 'EXITED', lastExit: { code: 3, signal: null }, reason: 'exit status 3' }, 0).description, 'exit status 3');
    assert.equal(describeProcess({ ...INITIAL_SLOT, state: 'FATAL', reason: 'Exited too quickly (process log may have details)' }, 0).description, 'Exited too quickly (process log may have details)');
  });
});

describe('who may use the control socket', () => {
  test('root and the daemon user always; a group member only with control.group', () => {
    const access = { uid: 1000, gid: undefined };
    assert.equal(allowed({ uid: 0, gid: 0, pid: process.pid }, access), true);
    assert.equal(allowed({ uid: 1000, gid: 1000, pid: process.pid }, access), true);
    assert.equal(allowed({ uid: 65534, gid: 65534, pid: process.pid }, access), false);
    assert.equal(allowed({ uid: 65534, gid: 80, pid: -1 }, { uid: 1000, gid: 80 }), true, 'primary group');
    assert.equal(allowed({ uid: 65534, gid: 65534, pid: -1 }, { uid: 1000, gid: 80 }), false);
  });
});
