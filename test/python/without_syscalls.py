"""Runs a command on a kernel that looks as if it lacked some system calls: a seccomp filter
answers ENOSYS to them, and the filter survives exec. x86_64 and aarch64.

Usage: without_syscalls.py GROUP[,GROUP...] PROGRAM ARGS...
Groups: landlock (the three Landlock calls), unshare (no new namespaces).
"""

import ctypes
import os
import sys

MACHINE = os.uname().machine
ARCH = {'x86_64': 0xC000003E, 'aarch64': 0xC00000B7}[MACHINE]
GROUPS = {
    'landlock': (444, 445, 446),
    'unshare': {'x86_64': (272,), 'aarch64': (97,)}[MACHINE],
}
ENOSYS = 38


class SockFilter(ctypes.Structure):
    _fields_ = [('code', ctypes.c_uint16), ('jt', ctypes.c_uint8), ('jf', ctypes.c_uint8), ('k', ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.POINTER(SockFilter))]


calls = [nr for group in sys.argv[1].split(',') for nr in GROUPS[group]]
program = [(0x20, 0, 0, 4), (0x15, 1, 0, ARCH), (0x06, 0, 0, 0x7FFF0000), (0x20, 0, 0, 0)]
for i, nr in enumerate(calls):
    program.append((0x15, len(calls) - i, 0, nr))
program += [(0x06, 0, 0, 0x7FFF0000), (0x06, 0, 0, 0x00050000 | ENOSYS)]

libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) != 0:
    sys.exit('prctl(PR_SET_NO_NEW_PRIVS) failed')
filters = (SockFilter * len(program))(*[SockFilter(*ins) for ins in program])
prog = SockFprog(len(program), filters)
if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:
    sys.exit('prctl(PR_SET_SECCOMP) failed: %s' % os.strerror(ctypes.get_errno()))
os.execv(sys.argv[2], sys.argv[2:])
