import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseAddress } from '../src/config/address.js';
import { describeBindFailure } from '../src/sockets/bind-errors.js';
import { tempDir } from './helpers/cli.js';
import { Holder } from './helpers/holder.js';
import { decl, exchange, portOf } from './helpers/sockets.js';

type BindReply = {
  bound?: { identity: string; fd: number; bound: string }[];
  held?: { identity: string }[];
  failures?: { identity: string; message: string; hint: string | null }[];
};

async function startHolder(t: { after: (fn: () => Promise<void>) => void }, options?: Parameters<typeof Holder.start>[0]): Promise<Holder> {
  const holder = await Holder.start(options);
  t.after(() => holder.stop());
  return holder;
}

function listen(t: { after: (fn: () => Promise<void>) => void }, options: net.ListenOptions): Promise<net.Server> {
  // Probe connections (the stale-file check) hang up at once; their write errors do not matter.
  const server = net.createServer((c) => c.on('error', () => {}).end('alive'));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return new Promise((resolve) => server.listen(options, () => resolve(server)));
}

const comm = fs.readFileSync('/proc/self/comm', 'utf8').trim();

describe('bind errors name the address and the reason', () => {
  test('address in use names the process holding it', async (t) => {
    const server = await listen(t, { host: '127.0.0.1', port: 0 });
    const port = (server.address() as net.AddressInfo).port;
    const holder = await startHolder(t);
    const reply = await holder.request<BindReply>('bind', { decls: [decl(`127.0.0.1:${port}`)] });
    assert.deepEqual(reply.failures!.map((f) => f.message), [`127.0.0.1:${port}: address already in use by pid ${process.pid} (${comm})`]);
  });

  test('a port below 1024 without root gets a hint about root or another port', async (t) => {
    const start = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
    if (process.getuid?.() !== 0 || start <= 80) {
      t.skip('needs root to drop the holder to nobody, and ports below 1024 reserved (ip_unprivileged_port_start > 80)');
      return;
    }
    const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
    const holder = await startHolder(t);
    assert.equal((await holder.request<{ uid: number }>('dropPrivileges', { uid: nobody, gid: nobody })).uid, nobody);
    const reply = await holder.request<BindReply>('bind', { decls: [decl('127.0.0.1:80')] });
    assert.deepEqual(reply.failures, [{
      identity: 'tcp:127.0.0.1:80',
      message: '127.0.0.1:80: permission denied: ports below 1024 are reserved for root',
      hint: 'run sockvisord as root (it drops privileges per service), or choose a port above 1023',
    }]);
  });

  test('an address this host does not have', async (t) => {
    const holder = await startHolder(t);
    // 192.0.2.0/24 is reserved for documentation, so no interface here has it; nothing is sent.
    const reply = await holder.request<BindReply>('bind', { decls: [decl('192.0.2.1:8080')] });
    assert.equal(reply.failures![0]!.message, '192.0.2.1:8080: this host has no such address');
  });

  test('a unix path that is too long, or whose directory does not exist', async (t) => {
    const dir = await tempDir(t);
    const long = path.join(dir, 'x'.repeat(120) + '.sock');
    const missing = path.join(dir, 'no/such/dir/app.sock');
    const holder = await startHolder(t);
    const reply = await holder.request<BindReply>('bind', { decls: [decl(long), decl(missing)] });
    assert.deepEqual(reply.failures!.map((f) => f.message), [
      `${long}: unix socket path is ${Buffer.byteLength(long)} bytes; the limit here is 107`,
      `${missing}: directory ${path.join(dir, 'no/such/dir')} does not exist`,
    ]);
  });

  test('a stale unix socket file is replaced; a live one or a plain file is left alone', async (t) => {
    const dir = await tempDir(t);
    const stale = path.join(dir, 'stale.sock');
    // A process that bound the path and died without unlinking it leaves a socket nobody answers on.
    execFileSync('python3', ['-c', `import socket, os\ns = socket.socket(socket.AF_UNIX)\ns.bind(${JSON.stringify(stale)})\ns.listen()\nos._exit(0)`]);
    assert.ok(fs.statSync(stale).isSocket());
    const live = path.join(dir, 'live.sock');
    await listen(t, { path: live });
    const plain = path.join(dir, 'plain.sock');
    fs.writeFileSync(plain, 'keep me');

    const holder = await startHolder(t);
    const reply = await holder.request<BindReply>('bind', { decls: [decl(live), decl(plain)] });
    assert.deepEqual(reply.failures!.map((f) => f.message), [
      `${live}: another process is accepting on this socket by pid ${process.pid} (${comm})`,
      `${plain}: a file that is not a socket is in the way; sockvisord will not remove it`,
    ]);
    assert.equal(fs.readFileSync(plain, 'utf8'), 'keep me');
    assert.equal(await exchange({ path: live }, ''), 'alive', 'the live server still answers');

    const ok = await holder.request<BindReply>('bind', { decls: [decl(stale)] });
    assert.equal(ok.failures, undefined);
    assert.equal(ok.bound!.length, 1);
  });

  test('a failed bind closes what that request bound and leaves held sockets serving', async (t) => {
    const busy = await listen(t, { host: '127.0.0.1', port: 0 });
    const busyPort = (busy.address() as net.AddressInfo).port;
    const holder = await startHolder(t);
    const kept = decl('127.0.0.1:0');
    const first = await holder.request<BindReply>('bind', { decls: [kept] });
    const keptPort = portOf(first.bound![0]!.bound);

    const fresh = decl('127.0.0.1:0');
    const reply = await holder.request<BindReply>('bind', { decls: [fresh, decl(`127.0.0.1:${busyPort}`)] });
    assert.equal(reply.failures!.length, 1);
    assert.match(reply.failures![0]!.message, new RegExp(`^127\\.0\\.0\\.1:${busyPort}: address already in use`));
    const after = await holder.request<BindReply>('bind', { decls: [] });
    assert.deepEqual(after.held!.map((h) => h.identity), [kept.identity], 'the fresh socket of the failed request was closed');

    const { pid } = await holder.request<{ pid: number }>('spawn', {
      fds: [kept.identity],
      code: `import socket\nc, _ = socket.socket(fileno=3).accept()\nc.sendall(b'still here')\nc.close()\n`,
    });
    assert.equal(await exchange({ host: '127.0.0.1', port: keptPort }, ''), 'still here');
    assert.equal((await holder.childOutput(pid)).code, 0);
  });
});

describe('bind error wording (pure)', () => {
  const inet = (text: string) => {
    const a = parseAddress(text);
    if (typeof a === 'string') throw new Error(a);
    return a;
  };
  const base = { syscall: 'bind', detail: 'bind: x', owners: [], unixPathMax: 103, isRoot: false };

  test('an address in use with no known owner points at the right tool per platform', () => {
    assert.deepEqual(describeBindFailure({ ...base, address: inet('0.0.0.0:8080'), code: 'EADDRINUSE', platform: 'linux' }), {
      message: '0.0.0.0:8080: address already in use', hint: "see who holds it with: ss -ltnup 'sport = :8080'",
    });
    assert.deepEqual(describeBindFailure({ ...base, address: inet('0.0.0.0:8080'), code: 'EADDRINUSE', platform: 'freebsd' }), {
      message: '0.0.0.0:8080: address already in use', hint: 'see who holds it with: sockstat -l -p 8080',
    });
  });

  test('several owners are all named', () => {
    const owners = [{ pid: 10, command: 'nginx' }, { pid: 11, command: 'nginx' }];
    assert.equal(describeBindFailure({ ...base, address: inet('[::]:80'), code: 'EADDRINUSE', platform: 'linux', owners }).message, '[::]:80: address already in use by pid 10 (nginx), pid 11 (nginx)');
  });

  test('root that is still refused a low port is told about policy, not about root', () => {
    assert.equal(describeBindFailure({ ...base, address: inet('127.0.0.1:80'), code: 'EACCES', platform: 'freebsd', isRoot: true }).hint, 'a security policy forbids it; check the jail or MAC settings');
  });

  test('the FreeBSD unix path limit is the one reported', () => {
    const p = '/var/run/' + 'y'.repeat(100);
    assert.equal(describeBindFailure({ ...base, address: inet(p), code: 'ENAMETOOLONG', platform: 'freebsd' }).message, `${p}: unix socket path is 109 bytes; the limit here is 103`);
  });

  test('unknown errors keep the system message with the address', () => {
    assert.deepEqual(describeBindFailure({ ...base, address: inet('127.0.0.1:1'), code: 'EMFILE', detail: 'socket: Too many open files', platform: 'linux' }), {
      message: '127.0.0.1:1: socket: Too many open files',
    });
  });
});
