"""Unit tests of the runner's pure decisions, run under every CPython the test suite finds.

The runner path comes from SOCKVISOR_RUNNER. Nothing here opens a sandbox; the held listener's
accept() is tried on loopback sockets with real signals.
"""

import datetime
import os
import signal
import socket
import sys
import threading
import unittest

import importlib.util

_spec = importlib.util.spec_from_file_location('sockvisor_runner', os.environ['SOCKVISOR_RUNNER'])
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)


def h(text):
    return bytes.fromhex(text.replace(' ', ''))


class DecoderVectors(unittest.TestCase):
    """The test vectors of the argdata format, decoded."""

    def test_vectors(self):
        self.assertEqual(runner.decode_argdata(h('07 81 05 82 02 01 83 08 41 00')), [0, True, 'A'])
        self.assertEqual(runner.decode_argdata(h('07 81 02 80 82 02 01')), [False, None, True])
        self.assertEqual(runner.decode_argdata(h('06')), {})
        self.assertEqual(runner.decode_argdata(h('07')), [])
        self.assertIsNone(runner.decode_argdata(b''))
        for data, value in [('05', 0), ('05 00 80', 128), ('05 FF 7F', -129), ('05 00 80 00', 32768), ('05 80 00 00 00 00 00 00 00', -2 ** 63)]:
            self.assertEqual(runner.decode_argdata(h(data)), value, data)
        self.assertEqual(runner.decode_argdata(h('04 3F F0 00 00 00 00 00 00')), 1.0)
        self.assertEqual(runner.decode_argdata(h('08 48 65 6C 6C 6F 00 77 6F 72 6C 64 00')), 'Hello\x00world')
        self.assertEqual(runner.decode_argdata(h('01 00 ff')), b'\x00\xff')

    def test_fds_are_table_indices(self):
        value = runner.decode_argdata(h('07 85 03 00 00 00 02'))
        self.assertEqual(len(value), 1)
        self.assertIsInstance(value[0], runner.FdRef)
        self.assertEqual(value[0].index, 2)

    def test_timestamps_are_naive_utc_truncated_to_microseconds(self):
        # 2016-08-01T12:00:00.123456789Z in nanoseconds
        ns = 1470052800123456789
        self.assertEqual(runner.decode_argdata(b'\x09' + ns.to_bytes(8, 'big', signed=True)), datetime.datetime(2016, 8, 1, 12, 0, 0, 123456))
        self.assertEqual(runner.decode_argdata(b'\x09\xff'), datetime.datetime(1969, 12, 31, 23, 59, 59, 999999))

    def test_seq_keys_become_tuples(self):
        # {[1, 2]: "x"}
        data = h('06 87 07 82 05 01 82 05 02 83 08 78 00')
        self.assertEqual(runner.decode_argdata(data), {(1, 2): 'x'})

    def test_corrupt_input_names_the_offset(self):
        cases = [
            ('07 85 05', 1, 'entry runs past'),
            ('07 00 85 05', 1, 'leading zero'),
            ('08 41', 0, 'terminating zero'),
            ('08 FF 00', 0, 'UTF-8'),
            ('0A', 0, 'unknown type byte 0x0a'),
            ('07 84 03 00 00 00', 2, 'not 4 bytes'),
            ('06 81 05', 0, 'key but no value'),
            ('07 01', 1, 'truncated entry length'),
            ('02 02', 0, 'bad boolean'),
        ]
        for data, offset, text in cases:
            with self.assertRaises(runner.ArgdataError, msg=data) as caught:
                runner.decode_argdata(h(data))
            self.assertEqual(caught.exception.offset, offset, data)
            self.assertIn(text, str(caught.exception), data)

    def test_deep_nesting_does_not_exhaust_the_stack(self):
        depth = 100000
        data = b'\x07'
        for _ in range(depth):
            n = len(data)
            length = bytearray()
            while True:
                length.insert(0, n & 0x7F)
                n >>= 7
                if not n:
                    break
            length[-1] |= 0x80
            data = b'\x07' + bytes(length) + data
        value = runner.decode_argdata(data)
        for _ in range(depth):
            value = value[0]
        self.assertEqual(value, [])


class SandboxDecisions(unittest.TestCase):
    def test_landlock_rights_follow_the_abi(self):
        fs1, net1, scope1 = runner.landlock_rights(1)
        self.assertEqual((fs1, net1, scope1), ((1 << 13) - 1, 0, 0))
        fs4, net4, scope4 = runner.landlock_rights(4)
        self.assertEqual(fs4, (1 << 15) - 1)
        self.assertEqual(net4, 3)
        self.assertEqual(scope4, 0)
        self.assertEqual(runner.landlock_rights(7), ((1 << 16) - 1, 3, 3))
        self.assertEqual(runner.landlock_layers(0), [])
        self.assertEqual(runner.landlock_layers(3), ['fs'])
        self.assertEqual(runner.landlock_layers(5), ['fs', 'tcp'])
        self.assertEqual(runner.landlock_layers(7), ['fs', 'tcp', 'scope'])

    def test_net_layer_choice(self):
        self.assertEqual(runner.choose_net_layer(True, False), 'netns')
        self.assertEqual(runner.choose_net_layer(False, True), 'userns+netns')
        self.assertEqual(runner.choose_net_layer(False, False), 'seccomp')

    @staticmethod
    def run_bpf(program, nr, arch, arg0):
        """A classic-BPF interpreter for the three instructions the filter uses."""
        data = {0: nr, 4: arch, 16: arg0}
        pc, acc = 0, 0
        while True:
            code, jt, jf, k = program[pc]
            if code == 0x20:
                acc = data[k]
                pc += 1
            elif code == 0x15:
                pc += 1 + (jt if acc == k else jf)
            elif code == 0x06:
                return k
            else:
                raise AssertionError('unexpected instruction %r' % (program[pc],))

    def test_seccomp_filter_refuses_only_new_inet_sockets(self):
        allow, eacces = 0x7FFF0000, 0x00050000 | 13
        for machine, arch, nr_socket in (('x86_64', 0xC000003E, 41), ('aarch64', 0xC00000B7, 198)):
            prog = runner.seccomp_socket_filter(machine)
            self.assertEqual(self.run_bpf(prog, nr_socket, arch, socket.AF_INET), eacces, machine)
            self.assertEqual(self.run_bpf(prog, nr_socket, arch, socket.AF_INET6), eacces, machine)
            self.assertEqual(self.run_bpf(prog, nr_socket, arch, socket.AF_UNIX), allow, machine)
            self.assertEqual(self.run_bpf(prog, 0, arch, socket.AF_INET), allow, machine)
            self.assertEqual(self.run_bpf(prog, nr_socket + 1, arch, 0), allow, machine)
            self.assertEqual(self.run_bpf(prog, nr_socket, 0x40000003, socket.AF_INET), allow, 'another architecture is left alone')
        self.assertIsNone(runner.seccomp_socket_filter('mips'))

    def test_strict_refuses_anything_missing_best_effort_does_not(self):
        report = runner.SandboxReport()
        report.applied += ['pdeathsig', 'landlock abi 3 (fs)']
        report.missing += ['tcp', 'scope']
        with self.assertRaises(runner.RunnerError) as caught:
            runner.sandbox_verdict('strict', report)
        self.assertIn('tcp, scope could not be applied', str(caught.exception))
        runner.sandbox_verdict('best-effort', report)
        self.assertEqual(report.line(), 'sandbox: landlock abi 3 (fs), pdeathsig; missing: tcp, scope')

    def test_report_line_order(self):
        report = runner.SandboxReport()
        report.applied += ['pdeathsig', 'no_new_privs', 'netns', 'landlock abi 7 (fs, tcp, scope)']
        self.assertEqual(report.line(), 'sandbox: landlock abi 7 (fs, tcp, scope), netns, no_new_privs, pdeathsig')
        self.assertEqual(runner.SandboxReport().line(), 'sandbox: off')


class FreeBSDPreloadPlan(unittest.TestCase):
    """What the Capsicum path imports before cap_enter(), decided without FreeBSD."""

    def test_defaults_skip_builtins_and_absent_modules(self):
        builtin = ('math', '_socket', 'sys')
        present = {'select', '_struct', 'zlib', '_json'}
        to_import, refused = runner.freebsd_preload_plan([], builtin, present.__contains__)
        self.assertEqual(to_import, ['select', '_struct', 'zlib', '_json'])
        self.assertEqual(refused, [])

    def test_requested_modules_are_added_once_and_missing_ones_refused(self):
        present = {'_ssl', '_hashlib', 'select'}
        to_import, refused = runner.freebsd_preload_plan(['_ssl', '_hashlib', 'select', '_missing', 'bad-name'], (), present.__contains__)
        self.assertEqual(to_import, ['select', '_ssl', '_hashlib'])
        self.assertEqual(refused, [('_missing', 'not found in the service path or the standard library'), ('bad-name', 'not a module name')])


class Arguments(unittest.TestCase):
    def test_parse_args(self):
        options = runner.parse_args(['--daemon-pid', '42', '--sandbox', 'best-effort', '--stop-signal', 'SIGINT', '--preload', '_ssl,_hashlib'])
        self.assertEqual(options, {'daemon_pid': 42, 'sandbox': 'best-effort', 'stop_signal': 'SIGINT', 'preload': ['_ssl', '_hashlib'], 'lc_ctype_given': False, 'libraries': [], 'run_as': None})
        self.assertEqual(runner.parse_args(['--run-as', '65534:65534:65534,27'])['run_as'], (65534, 65534, [65534, 27]))
        self.assertEqual(runner.parse_args(['--run-as', '-1:80:'])['run_as'], (-1, 80, []))
        self.assertEqual(runner.parse_args(['--library', '/a.so', '--library', '/b.so'])['libraries'], ['/a.so', '/b.so'])
        self.assertTrue(runner.parse_args(['--lc-ctype-given'])['lc_ctype_given'])
        with self.assertRaises(runner.RunnerError):
            runner.parse_args(['--sandbox', 'loose'])
        with self.assertRaises(runner.RunnerError):
            runner.parse_args(['--bogus'])

    def test_program_arguments(self):
        options = runner.parse_args(['--sandbox', 'strict', '--fd-order', '2,0,1', '--grant-exec', '/srv/app', '--grant-exec', '/usr',
                                     '--grant-read', '/etc/ssl', '--grant-write', '/var/tmp/x', '--exec', '/usr/bin/gunicorn', 'gunicorn', '--bind', 'fd://3'])
        self.assertEqual(options['fd_order'], [2, 0, 1])
        self.assertEqual(options['exec'], ['/usr/bin/gunicorn', 'gunicorn', '--bind', 'fd://3'])
        self.assertEqual(runner.program_path_grants(options), [
            ('/srv/app', runner.FS_READ_EXEC), ('/usr', runner.FS_READ_EXEC), ('/etc/ssl', runner.FS_READ), ('/var/tmp/x', runner.FS_WRITE_BENEATH)])
        # Writing beneath a writable directory never includes executing what was written there.
        self.assertFalse(runner.FS_WRITE_BENEATH & runner.FS_EXECUTE)
        self.assertTrue(runner.FS_WRITE_BENEATH & runner.FS_WRITE_FILE and runner.FS_WRITE_BENEATH & runner.FS_READ_FILE)
        with self.assertRaises(runner.RunnerError):
            runner.parse_args(['--fd-order', 'a,b'])
        with self.assertRaises(runner.RunnerError):
            runner.parse_args(['--exec'])


class ProgramFds(unittest.TestCase):
    def test_place_fds_moves_table_entries_into_the_program_order(self):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            # In a child: place_fds closes every fd from 3 to 255.
            try:
                os.dup2(write_end, 310)
                pipes = [os.pipe() for _ in range(3)]
                for i, (r, w) in enumerate(pipes):
                    os.dup2(r, 300 + i)
                    os.dup2(w, runner.FD_TABLE_BASE + i)
                runner.place_fds([2, 0, 1])
                for k in range(3):
                    os.write(3 + k, b'%d' % k)
                got = [os.read(300 + i, 10).decode() for i in range(3)]
                inheritable = [os.get_inheritable(3 + k) for k in range(3)]
                open_above = [fd for fd in range(6, 256) if _is_open(fd)]
                os.write(310, repr((got, inheritable, open_above)).encode())
                os._exit(0)
            except BaseException as e:
                os.write(310, repr(e).encode())
                os._exit(1)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        result = os.read(read_end, 1000).decode()
        os.close(read_end)
        self.assertEqual(status, 0, result)
        # Table entry 2 became fd 3, entry 0 fd 4, entry 1 fd 5; all inheritable; nothing else left open.
        self.assertEqual(result, repr((['1', '2', '0'], [True, True, True], [])))


class HeldListenerAccept(unittest.TestCase):
    """accept() on a listening socket handed in by the daemon (fd_object makes it a HeldListener)."""

    def setUp(self):
        listener = socket.socket()
        listener.bind(('127.0.0.1', 0))
        listener.listen(8)
        self.address = listener.getsockname()
        self.held = runner.fd_object(listener.detach())
        self.addCleanup(self.held.close)
        self.clients = []
        self.addCleanup(lambda: [c.close() for c in self.clients])
        self.addCleanup(signal.signal, signal.SIGALRM, signal.getsignal(signal.SIGALRM))
        self.addCleanup(signal.setitimer, signal.ITIMER_REAL, 0)
        self.addCleanup(runner._stop_requested.clear)
        self.alarms = []

    def connect_after(self, seconds):
        timer = threading.Timer(seconds, lambda: self.clients.append(socket.create_connection(self.address)))
        timer.start()
        self.addCleanup(timer.cancel)

    def test_only_listening_stream_sockets_become_held_listeners(self):
        self.assertIsInstance(self.held, runner.HeldListener)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other = runner.fd_object(udp.detach())
        self.addCleanup(other.close)
        self.assertNotIsInstance(other, runner.HeldListener)
        self.assertEqual(other.type, socket.SOCK_DGRAM)

    def test_accepts_as_python_does(self):
        self.clients.append(socket.create_connection(self.address))
        conn, address = self.held.accept()
        self.addCleanup(conn.close)
        self.assertEqual(address, self.clients[0].getsockname())
        self.assertIsNone(conn.gettimeout())
        self.assertFalse(conn.get_inheritable())
        self.clients[0].sendall(b'x')
        self.assertEqual(conn.recv(1), b'x')

    def test_another_signal_interrupts_and_accept_resumes(self):
        signal.signal(signal.SIGALRM, lambda signum, frame: self.alarms.append(signum))
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        self.connect_after(0.4)
        conn, _ = self.held.accept()
        conn.close()
        self.assertEqual(self.alarms, [signal.SIGALRM])

    def test_the_stop_signal_ends_a_waiting_accept(self):
        def on_stop(signum, frame):
            self.alarms.append(signum)
            runner._stop_requested.append(signum)
        signal.signal(signal.SIGALRM, on_stop)
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        # Should accept() wait on regardless, this connection ends it and the test fails.
        self.connect_after(5)
        with self.assertRaises(InterruptedError):
            self.held.accept()
        self.assertEqual(self.alarms, [signal.SIGALRM])


def _is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


if __name__ == '__main__':
    unittest.main()
