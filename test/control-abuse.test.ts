import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import { describe, test } from 'node:test';
import { DaemonProcess, daemonFiles, eventually, webService } from './helpers/daemon.js';

type TestContext = { after: (fn: () => Promise<void>) => void };

/** A raw control connection: write bytes, read response frames. */
class Raw {
  readonly frames: Record<string, unknown>[] = [];
  ended = false;
  private buffer = '';
  private readonly waiters: (() => void)[] = [];
  readonly socket: net.Socket;

  constructor(t: TestContext, path: string) {
    this.socket = net.connect(path);
    this.socket.on('data', (d) => {
      this.buffer += d.toString();
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) !== -1) {
        this.frames.push(JSON.parse(this.buffer.slice(0, nl)) as Record<string, unknown>);
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.wake();
    });
    this.socket.on('close', () => ((this.ended = true), this.wake()));
    this.socket.on('error', () => undefined);
    t.after(async () => void this.socket.destroy());
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  async until(done: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no such frame within ${timeoutMs} ms: ${JSON.stringify(this.frames).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }
}

const request = (id: number, cmd: string, args: object = {}) => JSON.stringify({ v: 1, id, cmd, args }) + '\n';

async function statusWorks(t: TestContext, socketPath: string): Promise<void> {
  const client = new Raw(t, socketPath);
  client.send(request(1, 'status'));
  await client.until(() => client.frames.length > 0);
  assert.equal(client.frames[0]!['ok'], true, JSON.stringify(client.frames[0]));
  client.socket.destroy();
}

async function daemon(t: TestContext) {
  const files = await daemonFiles(t, { web: webService('start_seconds: 0.1') });
  // A short idle timeout, so the silent-client case takes moments.
  await fs.writeFile(files.config, (await fs.readFile(files.config, 'utf8')).replace('control: {socket: ctl.sock}', 'control: {socket: ctl.sock, idle_timeout: 500ms}'));
  const d = await DaemonProcess.start(t, files);
  await d.waitForState('web:0', 'RUNNING');
  return d;
}

describe('the control socket under abuse', () => {
  test('malformed frames, wrong versions and unknown commands are refused; others are served', async (t) => {
    const d = await daemon(t);
    const sock = d.files.controlSocket;
    for (const [bytes, code] of [['not json\n', 'BAD_FRAME'], ['[1,2]\n', 'BAD_FRAME'], ['{"v":2,"id":1,"cmd":"status"}\n', 'BAD_VERSION'], ['{"v":1,"cmd":"status"}\n', 'BAD_FRAME']] as const) {
      const c = new Raw(t, sock);
      c.send(bytes);
      await c.until(() => c.ended);
      assert.deepEqual((c.frames[0]!['error'] as { code: string }).code, code, bytes);
      await statusWorks(t, sock);
    }
    const c = new Raw(t, sock);
    c.send(request(5, 'rm -rf /'));
    c.send(request(6, 'version'));
    await c.until(() => c.frames.length === 2);
    assert.deepEqual(c.frames[0], { v: 1, id: 5, ok: false, error: { code: 'UNKNOWN_COMMAND', message: 'unknown command: rm -rf /' } });
    assert.equal((c.frames[1]!['result'] as { protocol: number }).protocol, 1, 'the connection stays open after an unknown command');
  });

  test('a frame over 1 MiB is refused and the connection closed', async (t) => {
    const d = await daemon(t);
    const c = new Raw(t, d.files.controlSocket);
    c.send(Buffer.alloc(1_500_000, 'x'));
    await c.until(() => c.ended);
    assert.equal((c.frames[0]!['error'] as { code: string }).code, 'FRAME_TOO_LARGE');
    await statusWorks(t, d.files.controlSocket);
  });

  test('clients that say nothing are disconnected after idle_timeout; others are served meanwhile', async (t) => {
    const d = await daemon(t);
    const silent = Array.from({ length: 20 }, () => new Raw(t, d.files.controlSocket));
    await statusWorks(t, d.files.controlSocket);
    const started = Date.now();
    await Promise.all(silent.map((c) => c.until(() => c.ended, 5000)));
    assert.ok(Date.now() - started < 3000);
  });

  test('a client that never reads is cut off once its unread answers pass 1 MiB', async (t) => {
    const d = await daemon(t);
    const fds = async () => (await fs.readdir(`/proc/${d.pid}/fd`)).length;
    const before = await fds();
    const c = new Raw(t, d.files.controlSocket);
    c.socket.pause();
    const n = 20_000;
    c.send(Array.from({ length: n }, (_, i) => request(i, 'status')).join(''));
    await statusWorks(t, d.files.controlSocket);
    await eventually(async () => (await fds()) === before, 20_000, 'the daemon let go of the connection');
    c.socket.resume();
    await c.until(() => c.ended, 20_000);
    assert.ok(c.frames.length < n, `answers stopped at ${c.frames.length} of ${n}`);
  });

  test('200 clients at once all get answers', async (t) => {
    const d = await daemon(t);
    const clients = Array.from({ length: 200 }, () => new Raw(t, d.files.controlSocket));
    for (const c of clients) c.send(request(1, 'status', { names: ['web'] }));
    await Promise.all(clients.map((c) => c.until(() => c.frames.length === 1, 20_000)));
    for (const c of clients) assert.equal(c.frames[0]!['ok'], true);
  });

  test('seeded random frames never take the daemon down', async (t) => {
    const d = await daemon(t);
    let seed = 20261128;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31);
    const pieces = ['{', '}', '"v"', ':', '1', ',', '"id"', '"cmd"', '"status"', '"args"', '[', ']', 'null', '"names"', '"*"', '\n', '\\', '\u0000', 'é'];
    for (let i = 0; i < 300; i++) {
      const c = new Raw(t, d.files.controlSocket);
      let text = '';
      for (let j = 0; j < 1 + Math.floor(random() * 30); j++) text += pieces[Math.floor(random() * pieces.length)];
      c.send(text + '\n');
      c.socket.end();
    }
    await statusWorks(t, d.files.controlSocket);
    assert.equal(d.proc.exitCode, null, 'the daemon is still running');
  });
});
