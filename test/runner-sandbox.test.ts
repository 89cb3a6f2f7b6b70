import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { describe, test } from 'node:test';
import { HEADER } from './helpers/cli.js';
import { startService, writeService } from './helpers/service.js';
import { exchange, portOf } from './helpers/sockets.js';

type TestContext = { after: (fn: () => Promise<void>) => void };

/** Listeners outside the sandbox that count whatever reaches them. */
async function targets(t: TestContext) {
  const hits = { tcp: 0, udp: 0, abstract: 0 };
  const tcp = net.createServer((c) => ((hits.tcp += 1), c.destroy()));
  await new Promise<void>((resolve) => tcp.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const udp = dgram.createSocket('udp4');
  udp.on('message', () => (hits.udp += 1));
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  // Node (libuv) pads abstract names with NULs, so the abstract listener is a Python process,
  // which binds the name exactly as a Python peer spells it; it prints a line per connection.
  const abstractName = `sockvisor-test-${process.pid}-${Date.now()}`;
  const abstract = spawn('python3', ['-c', `import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind('\\0' + sys.argv[1])
s.listen()
print('ready', flush=True)
while True:
    c, _ = s.accept()
    print('hit', flush=True)
    c.close()
`, abstractName], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => abstract.stdout.on('data', (d: Buffer) => {
    if (d.includes('ready')) resolve();
    hits.abstract += (d.toString().match(/hit/g) ?? []).length;
  }));
  t.after(async () => {
    await new Promise((r) => tcp.close(r));
    abstract.kill('SIGKILL');
    await new Promise((r) => abstract.once('exit', r));
    await new Promise<void>((r) => udp.close(() => r()));
  });
  return { hits, tcpPort: (tcp.address() as net.AddressInfo).port, udpPort: udp.address().port, abstractName };
}

const ATTACKS = `
import errno, json, os, socket, sys
a = sys.argdata
results = {}
def attempt(name, action):
    try:
        action()
        results[name] = 'ALLOWED'
    except OSError as e:
        results[name] = 'denied: ' + errno.errorcode.get(e.errno, str(e.errno))
def tcp_bind():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    s.listen()
attempt('read /etc/passwd', lambda: open('/etc/passwd', 'rb').read())
attempt('write a file in /tmp', lambda: open('/tmp/sockvisor-attack-%d' % os.getpid(), 'wb').write(b'x'))
attempt('list /', lambda: os.listdir('/'))
attempt('tcp connect to loopback', lambda: socket.create_connection(('127.0.0.1', a['tcp_port']), timeout=2).close())
attempt('tcp bind of a new port', tcp_bind)
attempt('udp sendto loopback', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', a['udp_port'])))
attempt('connect to an abstract unix socket', lambda: socket.socket(socket.AF_UNIX).connect('\\0' + a['abstract']))
attempt('kill(daemon, 0)', lambda: os.kill(a['daemon_pid'], 0))
attempt('exec /bin/sh', lambda: os.execv('/bin/sh', ['sh', '-c', 'exit 0']))
import attack_helper
results['import from path'] = attack_helper.VALUE
print(json.dumps(results), flush=True)
c, _ = a['listener'].accept()
c.sendall(b'accepted')
c.close()
`;

function serviceFile(sandbox: string, ports: { tcpPort: number; udpPort: number; abstractName: string }): string {
  return `${HEADER}supervise: {sandbox: ${sandbox}}
stderr: !fd stderr
path:
  - !file {path: /usr/local/x86_64-unknown-cloudabi/lib/python3.6}
  - !file {path: lib}
args:
  listener: !socket {bind: 127.0.0.1:0}
  tcp_port: ${ports.tcpPort}
  udp_port: ${ports.udpPort}
  abstract: "${ports.abstractName}"
  daemon_pid: ${process.pid}
command: |
${ATTACKS.split('\n').map((l) => `  ${l}`).join('\n')}
`;
}

describe('the sandbox denies the attack matrix and keeps the service working', () => {
  test('strict: every attempt is denied; accept() and imports from path: work', async (t) => {
    const ports = await targets(t);
    const { file } = await writeService(t, serviceFile('strict', ports), { 'lib/attack_helper.py': 'VALUE = "imported"\n' });
    const svc = await startService(t, file);
    await svc.waitForOutput('stdout', '}\n');
    const results = JSON.parse(svc.stdout()) as Record<string, string>;
    t.diagnostic(JSON.stringify(results));
    assert.deepEqual(results, {
      'read /etc/passwd': 'denied: EACCES',
      'write a file in /tmp': 'denied: EACCES',
      'list /': 'denied: EACCES',
      'tcp connect to loopback': 'denied: EACCES',
      'tcp bind of a new port': 'denied: EACCES',
      'udp sendto loopback': 'denied: ENETUNREACH',
      // The fresh network namespace has its own abstract socket table; Landlock's scope would
      // answer EPERM without it.
      'connect to an abstract unix socket': 'denied: ECONNREFUSED',
      'kill(daemon, 0)': 'denied: EPERM',
      'exec /bin/sh': 'denied: EACCES',
      'import from path': 'imported',
    });
    assert.equal(await exchange({ host: '127.0.0.1', port: portOf(svc.bound.get('args.listener')!) }, ''), 'accepted');
    assert.deepEqual(await svc.exited, { code: 0, signal: null });
    assert.deepEqual(ports.hits, { tcp: 0, udp: 0, abstract: 0 }, 'nothing reached the listeners outside');
    assert.match(svc.stderr(), /^sandbox: landlock abi \d+ \(fs, tcp, scope\), netns, no_new_privs, pdeathsig$/m);
  });

  test('off: the same attempts succeed, so the matrix can tell', async (t) => {
    const ports = await targets(t);
    const { file } = await writeService(t, serviceFile('off', ports).replace("attempt('exec /bin/sh'", "# attempt('exec /bin/sh'"), { 'lib/attack_helper.py': 'VALUE = "imported"\n' });
    const svc = await startService(t, file);
    await svc.waitForOutput('stdout', '}\n');
    const results = JSON.parse(svc.stdout()) as Record<string, string>;
    for (const name of ['read /etc/passwd', 'list /', 'tcp connect to loopback', 'udp sendto loopback', 'connect to an abstract unix socket', 'kill(daemon, 0)']) {
      assert.equal(results[name], 'ALLOWED', name);
    }
    await exchange({ host: '127.0.0.1', port: portOf(svc.bound.get('args.listener')!) }, '');
    assert.deepEqual(await svc.exited, { code: 0, signal: null });
    assert.match(svc.stderr(), /^sandbox: off$/m);
  });
});
