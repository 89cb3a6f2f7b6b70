import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { describe, test, type TestContext } from 'node:test';
import { findOwners, parseProcNet, parseProcNetUnix, parseSockstat, type InetQuery } from '../src/sockets/port-owner.js';

const tcp = (host: string, port: number): InetQuery => ({ family: 'inet', host, port, proto: 'tcp' });
const udp = (host: string, port: number): InetQuery => ({ family: 'inet', host, port, proto: 'udp' });

// Port 8080 is 1F90, 53 is 0035; addresses as an x86 kernel prints them.
const TCP4 = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1001 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 1003 1 0000000000000000 20 4 30 10 -1
   3: 0200007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1004 1 0000000000000000 100 0 0 10 0
   4: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1005 1 0000000000000000 100 0 0 10 0
   5: 0100007F:1F90 0100007F:C000 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
`;

const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2003 1 0000000000000000 100 0 0 10 0
   3: B80D0120000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2004 1 0000000000000000 100 0 0 10 0
   4: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:9E8D 01 00000000:00000000 00:00000000 00000000     0        0 2005 1 0000000000000000 20 4 30 10 -1
`;

const UDP4 = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  101: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 3001 2 0000000000000000 0
  102: 0100007F:0035 0100007F:8000 01 00000000:00000000 00:00000000 00000000  1000        0 3002 2 0000000000000000 0
  103: 0100007F:0036 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 3003 2 0000000000000000 0
`;

describe('parseProcNet', () => {
  test('IPv4 TCP: listeners on the address or the wildcard, not connections, other hosts or TIME_WAIT', () => {
    assert.deepEqual(parseProcNet(TCP4, tcp('127.0.0.1', 8080), true), [1001, 1002]);
    assert.deepEqual(parseProcNet(TCP4, tcp('127.0.0.2', 8080), true), [1002, 1004]);
    assert.deepEqual(parseProcNet(TCP4, tcp('10.1.2.3', 8080), true), [1002]);
    assert.deepEqual(parseProcNet(TCP4, tcp('127.0.0.1', 8081), true), [1005]);
    assert.deepEqual(parseProcNet(TCP4, tcp('127.0.0.1', 9999), true), []);
  });

  test('binding the wildcard is blocked by every specific address, IPv4-mapped :: included', () => {
    assert.deepEqual(parseProcNet(TCP4, tcp('0.0.0.0', 8080), true), [1001, 1002, 1004]);
    assert.deepEqual(parseProcNet(TCP4, tcp('::', 8080), true), [1001, 1002, 1004]);
    assert.deepEqual(parseProcNet(TCP4, tcp('::ffff:127.0.0.1', 8080), true), [1001, 1002]);
  });

  test('IPv6 TCP: :: is assumed dual-stack, so it blocks IPv4 too; v4-mapped rows count as IPv4', () => {
    assert.deepEqual(parseProcNet(TCP6, tcp('127.0.0.1', 8080), true), [2001, 2003]);
    assert.deepEqual(parseProcNet(TCP6, tcp('::1', 8080), true), [2001, 2002]);
    assert.deepEqual(parseProcNet(TCP6, tcp('0:0::1', 8080), true), [2001, 2002]);
    assert.deepEqual(parseProcNet(TCP6, tcp('2001:DB8::1', 8080), true), [2001, 2004]);
    assert.deepEqual(parseProcNet(TCP6, tcp('fe80::1%eth0', 8080), true), [2001]);
    assert.deepEqual(parseProcNet(TCP6, tcp('::', 8080), true), [2001, 2002, 2003, 2004]);
  });

  test('a host name (not resolved by the caller) matches anything on the port', () => {
    assert.deepEqual(parseProcNet(TCP4, tcp('localhost', 8080), true), [1001, 1002, 1004]);
  });

  test('UDP: every socket on the port counts, connected or not', () => {
    assert.deepEqual(parseProcNet(UDP4, udp('127.0.0.1', 53), true), [3002]);
    assert.deepEqual(parseProcNet(UDP4, udp('127.0.0.53', 53), true), [3001]);
    assert.deepEqual(parseProcNet(UDP4, udp('0.0.0.0', 53), true), [3001, 3002]);
  });

  test('a big-endian kernel prints the words in network order', () => {
    const be = TCP4.replace(/0100007F:/g, '7F000001:').replace(/0200007F:/g, '7F000002:');
    assert.deepEqual(parseProcNet(be, tcp('127.0.0.1', 8080), false), [1001, 1002]);
    const be6 = '   0: 20010DB8000000000000000000000001:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7 1 0 100 0 0 10 0\n';
    assert.deepEqual(parseProcNet(be6, tcp('2001:db8::1', 8080), false), [7]);
  });

  test('empty or foreign text gives nothing', () => {
    assert.deepEqual(parseProcNet('', tcp('127.0.0.1', 8080)), []);
    assert.deepEqual(parseProcNet('garbage\n  0: nothing here\n', tcp('127.0.0.1', 8080)), []);
  });
});

describe('parseProcNetUnix', () => {
  const UNIX = `Num       RefCount Protocol Flags    Type St Inode Path
000000000d84ad7d: 00000002 00000000 00010000 0001 01 16140 /tmp/xx.sock
000000007f16a70a: 00000003 00000000 00000000 0001 03 16142 /tmp/xx.sock
0000000000000000: 00000003 00000000 00000000 0001 03 16143
0000000000000000: 00000002 00000000 00000000 0002 01 16150 /run/systemd/notify
0000000000000000: 00000002 00000000 00000000 0002 03 16151 /run/dgram-connected.sock
0000000000000000: 00000002 00000000 00010000 0001 01 16152 /tmp/dir with space/s.sock
0000000000000000: 00000002 00000000 00010000 0001 01 16153 @/tmp/xx.sock
0000000000000000: 00000002 00000000 00010000 0005 01 16154 /tmp/xx.sock.old
`;

  test('finds the listener but not the connections it accepted, which carry its path', () => {
    assert.deepEqual(parseProcNetUnix(UNIX, '/tmp/xx.sock'), [16140]);
  });

  test('datagram sockets, paths with spaces; abstract names and prefixes do not match', () => {
    assert.deepEqual(parseProcNetUnix(UNIX, '/run/systemd/notify'), [16150]);
    assert.deepEqual(parseProcNetUnix(UNIX, '/run/dgram-connected.sock'), [16151]);
    assert.deepEqual(parseProcNetUnix(UNIX, '/tmp/dir with space/s.sock'), [16152]);
    assert.deepEqual(parseProcNetUnix(UNIX, '/tmp/xx.sock.old'), [16154]);
    assert.deepEqual(parseProcNetUnix(UNIX, '/tmp/missing.sock'), []);
  });
});

describe('parseSockstat', () => {
  // Column layout as FreeBSD's sockstat.c prints it; IPv6 addresses come unbracketed from getnameinfo.
  const INET = `USER     COMMAND    PID   FD  PROTO  LOCAL ADDRESS         FOREIGN ADDRESS      
www      nginx       1234 6   tcp4   *:8080                *:*
www      nginx       1234 7   tcp6   *:8080                *:*
root     python3.11  2345 3   tcp4   127.0.0.1:8080        *:*
root     python3.11  2346 3   tcp6   ::1:8080              *:*
root     sshd         812 4   tcp46  *:22                  *:*
root     v6only       900 5   tcp6   *:9090                *:*
root     scoped       901 5   tcp6   fe80::1%em0:7070      *:*
?        ?              ? ?   tcp4   127.0.0.1:8080        *:*
root     named        700 20  udp4   *:53                  *:*
`;

  test('a specific IPv4 address is held by its own listener and by the IPv4 wildcard', () => {
    assert.deepEqual(parseSockstat(INET, tcp('127.0.0.1', 8080)), [
      { pid: 1234, command: 'nginx' },
      { pid: 2345, command: 'python3.11' },
    ]);
  });

  test('IPv6 addresses, unbracketed or not, and the tcp6 wildcard', () => {
    const expected = [
      { pid: 1234, command: 'nginx' },
      { pid: 2346, command: 'python3.11' },
    ];
    assert.deepEqual(parseSockstat(INET, tcp('::1', 8080)), expected);
    assert.deepEqual(parseSockstat(INET.replace('::1:8080  ', '[::1]:8080'), tcp('::1', 8080)), expected);
    assert.deepEqual(parseSockstat(INET, tcp('fe80::1', 7070)), [{ pid: 901, command: 'scoped' }]);
  });

  test('tcp46 blocks IPv4; a tcp6 (IPv6-only) wildcard does not', () => {
    assert.deepEqual(parseSockstat(INET, tcp('127.0.0.1', 22)), [{ pid: 812, command: 'sshd' }]);
    assert.deepEqual(parseSockstat(INET, tcp('127.0.0.1', 9090)), []);
    assert.deepEqual(parseSockstat(INET, tcp('::1', 9090)), [{ pid: 900, command: 'v6only' }]);
  });

  test('the protocol must match', () => {
    assert.deepEqual(parseSockstat(INET, udp('127.0.0.1', 8080)), []);
    assert.deepEqual(parseSockstat(INET, udp('127.0.0.1', 53)), [{ pid: 700, command: 'named' }]);
    assert.deepEqual(parseSockstat(INET, tcp('127.0.0.1', 53)), []);
  });

  test('bracketed IPv6 in udp6 rows', () => {
    const out = `USER     COMMAND    PID   FD  PROTO  LOCAL ADDRESS         FOREIGN ADDRESS
root     mdnsd       4242 3   udp6   [::1]:5353            *:*
root     mdnsd       4242 4   udp4   127.0.0.1:5353        *:*
`;
    assert.deepEqual(parseSockstat(out, udp('::1', 5353)), [{ pid: 4242, command: 'mdnsd' }]);
    assert.deepEqual(parseSockstat(out, udp('127.0.0.2', 5353)), []);
  });

  test('unix sockets by exact path, with peer lists after the path', () => {
    const out = `USER     COMMAND    PID   FD  PROTO  LOCAL ADDRESS         FOREIGN ADDRESS      
root     syslogd      610 4   dgram  /var/run/log
root     devd         456 4   stream /var/run/devd.pipe
root     python3.11  2345 5   stream /tmp/sv/web.sock
root     syslogd      610 6   dgram  /var/run/logpriv <- [700 3],[701 3]
root     cron         620 3   stream (not connected)
`;
    const unix = (p: string) => parseSockstat(out, { family: 'unix', path: p });
    assert.deepEqual(unix('/var/run/log'), [{ pid: 610, command: 'syslogd' }]);
    assert.deepEqual(unix('/var/run/logpriv'), [{ pid: 610, command: 'syslogd' }]);
    assert.deepEqual(unix('/tmp/sv/web.sock'), [{ pid: 2345, command: 'python3.11' }]);
    assert.deepEqual(unix('/var/run'), []);
    assert.deepEqual(parseSockstat(out, tcp('127.0.0.1', 8080)), []);
  });

  test('no output (sockstat missing or timed out) means nobody known', () => {
    assert.deepEqual(parseSockstat('', tcp('127.0.0.1', 8080)), []);
    assert.deepEqual(parseSockstat('USER     COMMAND    PID   FD  PROTO  LOCAL ADDRESS         FOREIGN ADDRESS\n', tcp('127.0.0.1', 8080)), []);
  });
});

describe('findOwners elsewhere', () => {
  test('an OS it does not know, or a missing sockstat, gives [] rather than an error', async () => {
    assert.deepEqual(await findOwners(tcp('127.0.0.1', 8080), 'win32'), []);
    if (process.platform !== 'freebsd') assert.deepEqual(await findOwners(tcp('127.0.0.1', 8080), 'freebsd'), []);
  });
});

const linuxOnly = process.platform === 'linux' ? false : 'needs Linux /proc';

describe('findOwners on this Linux host, with real sockets', { skip: linuxOnly }, () => {
  const comm = async (pid: number | 'self'): Promise<string> => (await fs.readFile(`/proc/${pid}/comm`, 'utf8')).replace(/\n$/, '');

  async function tcpServer(t: TestContext, host: string): Promise<number> {
    const server = net.createServer();
    server.listen(0, host);
    await once(server, 'listening');
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return (server.address() as net.AddressInfo).port;
  }

  test('a TCP listener in this process', async (t) => {
    const port = await tcpServer(t, '127.0.0.1');
    const owners = await findOwners(tcp('127.0.0.1', port));
    assert.deepEqual(
      owners.filter((o) => o.pid === process.pid),
      [{ pid: process.pid, command: await comm('self') }],
    );
    // Same port, different loopback address: that socket does not stand in the way.
    assert.ok(!(await findOwners(tcp('127.0.0.2', port))).some((o) => o.pid === process.pid));
  });

  test('a dual-stack :: listener holds IPv4 addresses too (read from /proc/net/tcp6)', async (t) => {
    let port: number;
    try {
      port = await tcpServer(t, '::');
    } catch (e) {
      t.skip(`no IPv6 here: ${(e as Error).message}`);
      return;
    }
    const self = [{ pid: process.pid, command: await comm('self') }];
    assert.deepEqual((await findOwners(tcp('127.0.0.1', port))).filter((o) => o.pid === process.pid), self);
    assert.deepEqual((await findOwners(tcp('::1', port))).filter((o) => o.pid === process.pid), self);
  });

  test('a UDP socket in this process', async (t) => {
    const sock = dgram.createSocket('udp4');
    sock.bind(0, '127.0.0.1');
    await once(sock, 'listening');
    t.after(() => new Promise<void>((resolve) => sock.close(() => resolve())));
    const port = sock.address().port;
    assert.deepEqual(
      (await findOwners(udp('127.0.0.1', port))).filter((o) => o.pid === process.pid),
      [{ pid: process.pid, command: await comm('self') }],
    );
  });

  test('a unix socket server in this process', async (t) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'port-owner-'));
    t.after(() => fs.rm(dir, { recursive: true, force: true }));
    const sockPath = path.join(dir, 'svc.sock');
    const server = net.createServer();
    server.listen(sockPath);
    await once(server, 'listening');
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    assert.deepEqual(
      (await findOwners({ family: 'unix', path: sockPath })).filter((o) => o.pid === process.pid),
      [{ pid: process.pid, command: await comm('self') }],
    );
  });

  test('a port nobody holds', async () => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    assert.deepEqual(await findOwners(tcp('127.0.0.1', port)), []);
    assert.deepEqual(await findOwners({ family: 'unix', path: path.join(os.tmpdir(), 'port-owner-no-such.sock') }), []);
  });

  test('a listener in another process (python3)', async (t) => {
    const script = [
      'import socket, sys',
      's = socket.socket()',
      "s.bind(('127.0.0.1', 0))",
      's.listen()',
      'print(s.getsockname()[1], flush=True)',
      'sys.stdin.read()',
    ].join('\n');
    const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    t.after(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill();
      await exited;
    });
    const port = Number(await firstLine(child));
    assert.ok(Number.isInteger(port) && port > 0, `python printed port ${port}`);
    const pid = child.pid!;
    // The interpreter may be behind a shim (pyenv) that execs it, so ask the kernel what runs now.
    const owners = await findOwners(tcp('127.0.0.1', port));
    assert.deepEqual(owners, [{ pid, command: await comm(pid) }]);
    assert.match(owners[0]!.command, /^python/);
  });
});

/** The child's first stdout line, or a rejection if it fails to start or exits without one. */
async function firstLine(child: ChildProcess): Promise<string> {
  const failed = new Promise<never>((_, reject) => child.once('error', reject));
  const line = (async () => {
    for await (const l of readline.createInterface({ input: child.stdout! })) return l;
    throw new Error(`child exited (code ${child.exitCode}) before printing a line`);
  })();
  return Promise.race([line, failed]);
}
