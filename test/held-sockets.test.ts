import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { tempDir } from './helpers/cli.js';
import { Holder } from './helpers/holder.js';
import { decl, exchange, portOf, socketInodes, tcpStates } from './helpers/sockets.js';

type Bound = { bound: { identity: string; fd: number; bound: string }[] };

async function startHolder(t: { after: (fn: () => Promise<void>) => void }, options?: Parameters<typeof Holder.start>[0]): Promise<Holder> {
  const holder = await Holder.start(options);
  t.after(() => holder.stop());
  return holder;
}

/** A Python server loop on fd 3: accept, read one request, answer `served <request>`, close. */
const serveOnFd3 = (count: number) => `
import socket
s = socket.socket(fileno=3)
for i in range(${count}):
    c, _ = s.accept()
    c.settimeout(10)
    c.sendall(b'served ' + c.recv(100))
    c.close()
print('done')
`;

describe('held sockets', () => {
  test('the daemon never accepts: 50 connections wait in the backlog and a later child serves them all', async (t) => {
    const holder = await startHolder(t);
    const { bound } = await holder.request<Bound>('bind', { decls: [decl('127.0.0.1:0')] });
    const identity = bound[0]!.identity;
    const port = portOf(bound[0]!.bound);

    // Each connection completes its handshake in the kernel while no process accepts.
    const connected: net.Socket[] = [];
    const answers: Promise<string>[] = [];
    for (let i = 0; i < 50; i++) {
      const socket = net.connect({ host: '127.0.0.1', port });
      t.after(() => socket.destroy());
      const chunks: Buffer[] = [];
      socket.on('data', (d) => chunks.push(d));
      answers.push(new Promise((resolve, reject) => {
        socket.on('end', () => resolve(Buffer.concat(chunks).toString()));
        socket.on('error', reject);
      }));
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('error', reject);
      });
      socket.write(`r${i}`);
      connected.push(socket);
    }
    assert.equal(connected.length, 50, 'every connection was accepted by the kernel, none refused');

    // The holder's only TCP socket is the listener: it has no connected sockets of its own.
    const states = tcpStates(socketInodes(holder.pid));
    assert.deepEqual([...states.values()], ['0A'], `holder TCP sockets by state: ${JSON.stringify([...states])}`);

    const { pid } = await holder.request<{ pid: number }>('spawn', { fds: [identity], code: serveOnFd3(50) });
    const replies = await Promise.all(answers);
    assert.deepEqual(replies, Array.from({ length: 50 }, (_, i) => `served r${i}`));
    const child = await holder.childOutput(pid);
    assert.equal(child.code, 0, child.stderr);
    assert.equal(child.stdout, 'done\n');
    assert.deepEqual([...tcpStates(socketInodes(holder.pid)).values()], ['0A']);
  });

  test('a child has exactly fds 0-3, even when the daemon inherited extra fds', async (t) => {
    const extra = fs.openSync('/dev/null', 'r');
    t.after(() => fs.closeSync(extra));
    const holder = await startHolder(t, { extraStdio: [extra, 'pipe'] });
    const holderFds = (await holder.request<{ fds: number[] }>('fds')).fds;
    assert.ok(holderFds.includes(3) && holderFds.includes(4), `the holder inherited fds 3 and 4: ${holderFds.join(',')}`);
    const { bound } = await holder.request<Bound>('bind', { decls: [decl('127.0.0.1:0')] });
    assert.ok(bound[0]!.fd > 4);

    const { pid } = await holder.request<{ pid: number }>('spawn', {
      fds: [bound[0]!.identity],
      code: `import socket, sys\nprint('ready', flush=True)\nc, _ = socket.socket(fileno=3).accept()\nc.close()\n`,
    });
    await holder.waitFor((e) => e.event === 'stdout' && e.pid === pid && (e.data ?? '').includes('ready'));
    const fds = Object.fromEntries(fs.readdirSync(`/proc/${pid}/fd`).map((fd) => [fd, fs.readlinkSync(`/proc/${pid}/fd/${fd}`)]));
    const heldListener = fs.readlinkSync(`/proc/${holder.pid}/fd/${bound[0]!.fd}`);
    await exchange({ host: '127.0.0.1', port: portOf(bound[0]!.bound) }, '');
    assert.deepEqual(Object.keys(fds).map(Number).sort(), [0, 1, 2, 3], JSON.stringify(fds));
    assert.equal(fds['0'], '/dev/null');
    // libuv makes stdio "pipes" from socketpairs.
    assert.match(fds['1']!, /^(pipe|socket):/);
    assert.match(fds['2']!, /^(pipe|socket):/);
    assert.equal(fds['3'], heldListener, 'fd 3 is the very socket the daemon holds');
    assert.equal((await holder.childOutput(pid)).code, 0);
  });

  test('blocking mode is restored: child 1 sets O_NONBLOCK, child 2 still accepts', async (t) => {
    const holder = await startHolder(t);
    const { bound } = await holder.request<Bound>('bind', { decls: [decl('127.0.0.1:0')] });
    const identity = bound[0]!.identity;
    const port = portOf(bound[0]!.bound);
    const setNonBlocking = 'import fcntl, os\nfcntl.fcntl(3, fcntl.F_SETFL, fcntl.fcntl(3, fcntl.F_GETFL) | os.O_NONBLOCK)\n';

    const first = await holder.request<{ pid: number }>('spawn', { fds: [identity], code: setNonBlocking });
    assert.equal((await holder.childOutput(first.pid)).code, 0);
    // The flag lives on the shared open file description, so the holder sees it too.
    assert.equal((await holder.request<{ nonBlocking: boolean }>('isNonBlocking', { identity })).nonBlocking, true);

    // Without the restore, a plain blocking accept() fails at once: the check can fail.
    const broken = await holder.request<{ pid: number }>('spawn', { fds: [identity], code: serveOnFd3(1), restoreBlocking: false });
    const brokenOut = await holder.childOutput(broken.pid);
    assert.notEqual(brokenOut.code, 0);
    assert.match(brokenOut.stderr, /BlockingIOError/);

    const second = await holder.request<{ pid: number }>('spawn', { fds: [identity], code: serveOnFd3(1) });
    assert.equal(await exchange({ host: '127.0.0.1', port }, 'x'), 'served x');
    assert.equal((await holder.childOutput(second.pid)).code, 0);
  });

  test('the same identity keeps the same fd; unused sockets close and free their address', async (t) => {
    const holder = await startHolder(t);
    const a = decl('127.0.0.1:0');
    const first = await holder.request<Bound>('bind', { decls: [a] });
    const again = await holder.request<Bound & { held: Bound['bound'] }>('bind', { decls: [a] });
    assert.deepEqual(again.bound, [], 'nothing new was bound');
    assert.deepEqual(again.held, first.bound);
    await holder.request('setUser', { service: 'web', identities: [a.identity] });
    assert.deepEqual((await holder.request<{ closed: string[] }>('closeUnused')).closed, []);
    await holder.request('setUser', { service: 'web', identities: [] });
    assert.deepEqual((await holder.request<{ closed: string[] }>('closeUnused')).closed, [a.identity]);
    await assert.rejects(exchange({ host: '127.0.0.1', port: portOf(first.bound[0]!.bound) }, ''), { code: 'ECONNREFUSED' });
  });
});

describe('every socket kind round-trips data with a Python child', () => {
  const echoStream = `import socket\ns = socket.socket(fileno=3)\nc, _ = s.accept()\nc.sendall(c.recv(100).upper())\nc.close()\n`;

  test('TCP over IPv4', async (t) => {
    const holder = await startHolder(t);
    const { bound } = await holder.request<Bound>('bind', { decls: [decl('127.0.0.1:0')] });
    const { pid } = await holder.request<{ pid: number }>('spawn', { fds: [bound[0]!.identity], code: echoStream });
    assert.equal(await exchange({ host: '127.0.0.1', port: portOf(bound[0]!.bound) }, 'hello v4'), 'HELLO V4');
    assert.equal((await holder.childOutput(pid)).code, 0);
  });

  test('TCP over IPv6', async (t) => {
    const probe = net.createServer();
    const ipv6 = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen({ host: '::1', port: 0 }, () => probe.close(() => resolve(true)));
    });
    if (!ipv6) {
      t.skip('::1 is not available on this host');
      return;
    }
    const holder = await startHolder(t);
    const { bound } = await holder.request<Bound>('bind', { decls: [decl('[::1]:0')] });
    assert.match(bound[0]!.bound, /^\[::1\]:\d+$/);
    const { pid } = await holder.request<{ pid: number }>('spawn', { fds: [bound[0]!.identity], code: echoStream });
    assert.equal(await exchange({ host: '::1', port: portOf(bound[0]!.bound) }, 'hello v6'), 'HELLO V6');
    assert.equal((await holder.childOutput(pid)).code, 0);
  });

  test('unix stream, with the file mode set', async (t) => {
    const dir = await tempDir(t);
    const sockPath = path.join(dir, 'web.sock');
    const holder = await startHolder(t);
    const { bound } = await holder.request<Bound>('bind', { decls: [decl(sockPath, 'stream', { unixFile: { mode: 0o640, uid: -1, gid: -1 } })] });
    assert.equal(fs.statSync(sockPath).mode & 0o777, 0o640);
    assert.ok(fs.statSync(sockPath).isSocket());
    const { pid } = await holder.request<{ pid: number }>('spawn', { fds: [bound[0]!.identity], code: echoStream });
    assert.equal(await exchange({ path: sockPath }, 'hello unix'), 'HELLO UNIX');
    assert.equal((await holder.childOutput(pid)).code, 0);
  });

  test('unix seqpacket, and a daemon-made connect: socket to it', async (t) => {
    const dir = await tempDir(t);
    const sockPath = path.join(dir, 'seq.sock');
    const holder = await startHolder(t);
    const { bound } = await holder.request<Bound>('bind', { decls: [decl(sockPath, 'seqpacket')] });
    await holder.request('connect', { name: 'client', family: 0, address: sockPath, port: 0, type: 'seqpacket' });
    const code = `import socket
s = socket.socket(fileno=3)
client = socket.socket(fileno=4)
assert s.type == socket.SOCK_SEQPACKET and client.type == socket.SOCK_SEQPACKET
c, _ = s.accept()
client.send(b'one'); client.send(b'two')
print(c.recv(100), c.recv(100))
`;
    const { pid } = await holder.request<{ pid: number }>('spawn', { fds: [bound[0]!.identity, 'client'], code });
    const out = await holder.childOutput(pid);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, "b'one' b'two'\n", 'message boundaries are kept');
  });

  test('UDP', async (t) => {
    const holder = await startHolder(t);
    const { bound } = await holder.request<Bound>('bind', { decls: [decl('127.0.0.1:0', 'dgram')] });
    const code = `import socket\ns = socket.socket(fileno=3)\ndata, peer = s.recvfrom(100)\ns.sendto(data.upper(), peer)\n`;
    const { pid } = await holder.request<{ pid: number }>('spawn', { fds: [bound[0]!.identity], code });
    const client = dgram.createSocket('udp4');
    t.after(() => client.close());
    const reply = new Promise<string>((resolve) => client.once('message', (m) => resolve(m.toString())));
    client.send('hello udp', portOf(bound[0]!.bound), '127.0.0.1');
    assert.equal(await reply, 'HELLO UDP');
    assert.equal((await holder.childOutput(pid)).code, 0);
  });

  test('unix datagram, with a daemon-made connect: socket', async (t) => {
    const dir = await tempDir(t);
    const sockPath = path.join(dir, 'dgram.sock');
    const holder = await startHolder(t);
    const { bound } = await holder.request<Bound>('bind', { decls: [decl(sockPath, 'dgram')] });
    await holder.request('connect', { name: 'client', family: 0, address: sockPath, port: 0, type: 'dgram' });
    const code = `import socket\ns = socket.socket(fileno=3)\nsocket.socket(fileno=4).send(b'hello unix dgram')\nprint(s.recv(100).decode())\n`;
    const { pid } = await holder.request<{ pid: number }>('spawn', { fds: [bound[0]!.identity, 'client'], code });
    const out = await holder.childOutput(pid);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, 'hello unix dgram\n');
  });

  async function echoServer(t: { after: (fn: () => Promise<void>) => void }, listen: net.ListenOptions): Promise<net.Server> {
    const open = new Set<net.Socket>();
    const server = net.createServer((c) => {
      open.add(c);
      c.on('close', () => open.delete(c));
      c.on('data', (d) => c.end(`echo ${d}`));
    });
    await new Promise<void>((resolve) => server.listen(listen, resolve));
    t.after(() => new Promise<void>((resolve) => {
      for (const c of open) c.destroy();
      server.close(() => resolve());
    }));
    return server;
  }
  const talkOnFd3 = `import socket\nc = socket.socket(fileno=3)\nc.sendall(b'ping')\nprint(c.recv(100).decode())\n`;

  test('TCP connect: the child gets a connected, blocking socket', async (t) => {
    const server = await echoServer(t, { host: '127.0.0.1', port: 0 });
    const holder = await startHolder(t);
    await holder.request('connect', { name: 'up', family: 4, address: '127.0.0.1', port: (server.address() as net.AddressInfo).port, type: 'stream' });
    const { pid } = await holder.request<{ pid: number }>('spawn', { fds: ['up'], code: talkOnFd3 });
    const out = await holder.childOutput(pid);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, 'echo ping\n');
  });

  test('unix connect', async (t) => {
    const dir = await tempDir(t);
    await echoServer(t, { path: path.join(dir, 'up.sock') });
    const holder = await startHolder(t);
    await holder.request('connect', { name: 'up', family: 0, address: path.join(dir, 'up.sock'), port: 0, type: 'stream' });
    const { pid } = await holder.request<{ pid: number }>('spawn', { fds: ['up'], code: talkOnFd3 });
    const out = await holder.childOutput(pid);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, 'echo ping\n');
  });

  test('a refused connect: is reported with its code', async (t) => {
    const dir = await tempDir(t);
    const holder = await startHolder(t);
    const reply = await holder.request<{ error: string; code: string }>('connect', { name: 'x', family: 0, address: path.join(dir, 'none.sock'), port: 0, type: 'stream' });
    assert.equal(reply.code, 'ENOENT');
  });
});
