"""sockvisor's Python runner: CloudABI Python on stock CPython, locked in a sandbox.

Started by sockvisord as ``PYTHON -I -S -c "<import this module; main()>" --daemon-pid PID ...``
(imported, not run by path, so its bytecode is cached)
with an empty environment and this fd layout:

    0      /dev/null
    1, 2   the service's stdout and stderr (the daemon logs them)
    3      the argdata document, read to EOF
    4 + i  entry i of the argdata fd table

It decodes the argdata, builds ``sys.argdata`` and ``sys.path`` (directory fds) the way the
CloudABI CPython port did, locks the process down (Landlock on Linux, Capsicum on FreeBSD), and
runs ``script`` or ``command`` as ``__main__``.

One file, standard library only, CPython 3.8 or newer.
"""

import errno
import io
import os
import signal
import socket
import stat
import sys
import types

import importlib.machinery
# The concrete loader base: importlib.abc would pull in importlib.resources, tempfile, shutil,
# random and more, which costs start-up time that every service pays.
from importlib._bootstrap_external import SourceLoader as _SourceLoader

EXIT_RUNNER_FAILED = 127
ARGDATA_FD = 3
FD_TABLE_BASE = 4

FLAG_KEYS = ('dontwritebytecode', 'optimize', 'verbose', 'unbufferedstdio', 'debug', 'inspect', 'bytescompare')


class RunnerError(Exception):
    """A failure of the runner itself: reported as one line, exit status 127, no traceback."""


# ---------------------------------------------------------------------------------------------
# argdata decoding (format: NuxiNL argdata, as sockvisord encodes it)
# ---------------------------------------------------------------------------------------------

ADT_BINARY, ADT_BOOL, ADT_FD, ADT_FLOAT, ADT_INT, ADT_MAP, ADT_SEQ, ADT_STR, ADT_TIMESTAMP = range(1, 10)


class ArgdataError(RunnerError):
    def __init__(self, message, offset):
        RunnerError.__init__(self, 'argdata: %s at byte offset %d' % (message, offset))
        self.offset = offset


class FdRef(object):
    """An fd table index met while decoding; turned into a file, socket or int afterwards."""

    __slots__ = ('index',)

    def __init__(self, index):
        self.index = index


def _read_length(buf, pos, end):
    """Big-endian base 128; the high bit marks the last byte. Returns (length, next position)."""
    start = pos
    value = 0
    while True:
        if pos >= end:
            raise ArgdataError('truncated entry length', start)
        byte = buf[pos]
        if pos == start and byte == 0:
            raise ArgdataError('entry length with a leading zero byte', start)
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if byte & 0x80:
            return value, pos


def _decode_scalar(kind, payload, offset):
    if kind == ADT_BINARY:
        return bytes(payload)
    if kind == ADT_BOOL:
        if len(payload) == 0:
            return False
        if payload == b'\x01':
            return True
        raise ArgdataError('bad boolean', offset)
    if kind == ADT_FD:
        if len(payload) != 4:
            raise ArgdataError('fd payload is not 4 bytes', offset)
        return FdRef(int.from_bytes(payload, 'big'))
    if kind == ADT_FLOAT:
        if len(payload) != 8:
            raise ArgdataError('float payload is not 8 bytes', offset)
        import struct
        return struct.unpack('>d', payload)[0]
    if kind == ADT_INT:
        return int.from_bytes(payload, 'big', signed=True)
    if kind == ADT_STR:
        if len(payload) == 0 or payload[-1] != 0:
            raise ArgdataError('string without its terminating zero byte', offset)
        try:
            return bytes(payload[:-1]).decode('utf-8')
        except UnicodeDecodeError:
            raise ArgdataError('string is not valid UTF-8', offset)
    if kind == ADT_TIMESTAMP:
        import datetime
        nanoseconds = int.from_bytes(payload, 'big', signed=True)
        # Naive UTC, truncated to microseconds (floor, so times before 1970 stay right).
        try:
            return datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=nanoseconds // 1000)
        except OverflowError:
            raise ArgdataError('timestamp out of range', offset)
    raise ArgdataError('unknown type byte 0x%02x' % kind, offset)


def decode_argdata(data):
    """Decodes a whole argdata buffer into Python values, with FdRef for fds.

    Iterative, so a deeply nested document cannot exhaust the interpreter's stack. Corrupt input
    raises ArgdataError naming the offset; it never raises anything else.
    """
    buf = bytes(data)
    # Open containers: [kind, offset of the type byte, end, offset of the next entry, items].
    stack = []

    def open_value(start, end):
        if start == end:
            return True, None
        kind = buf[start]
        if kind in (ADT_MAP, ADT_SEQ):
            stack.append([kind, start, end, start + 1, []])
            return False, None
        return True, _decode_scalar(kind, buf[start + 1:end], start)

    done, value = open_value(0, len(buf))
    while True:
        if done:
            if not stack:
                return value
            stack[-1][4].append(value)
        frame = stack[-1]
        kind, start, end, pos, items = frame
        if pos < end:
            length, value_start = _read_length(buf, pos, end)
            value_end = value_start + length
            if value_end > end:
                raise ArgdataError('entry runs past the end of its container', pos)
            frame[3] = value_end
            done, value = open_value(value_start, value_end)
            continue
        stack.pop()
        if kind == ADT_SEQ:
            value = items
        else:
            if len(items) % 2:
                raise ArgdataError('map with a key but no value', start)
            value = {}
            for i in range(0, len(items), 2):
                value[_hashable(items[i], start)] = items[i + 1]
        done = True


def _hashable(key, offset):
    """Sequence keys become tuples, as in the CloudABI port, so they can be dict keys."""
    if isinstance(key, list):
        return tuple(_hashable(k, offset) for k in key)
    if isinstance(key, dict):
        raise ArgdataError('a map cannot be a map key', offset)
    return key


# ---------------------------------------------------------------------------------------------
# fds: what an fd table entry becomes in Python
# ---------------------------------------------------------------------------------------------

def fd_object(fd):
    """A socket fd becomes a socket, a directory fd an int, anything else an unbuffered file."""
    try:
        st = os.fstat(fd)
    except OSError as e:
        raise RunnerError('fd %d from the fd table is not open (%s)' % (fd, e.strerror))
    if stat.S_ISSOCK(st.st_mode):
        sock = socket.socket(fileno=fd)
        if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            return sock
        sock.detach()
        _load_accept4()
        return HeldListener(fileno=fd)
    if stat.S_ISDIR(st.st_mode):
        return fd
    import fcntl
    access = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    mode = {os.O_RDONLY: 'rb', os.O_WRONLY: 'wb', os.O_RDWR: 'r+b'}.get(access, 'rb')
    return io.FileIO(fd, mode.replace('b', ''), closefd=True)


_accept4 = []  # [(accept4, get_errno)] once looked up; [None] where there is none


def _load_accept4():
    """libc's accept4() for HeldListener, looked up before the sandbox closes the libraries."""
    if _accept4:
        return
    try:
        import ctypes
        function = ctypes.CDLL(None, use_errno=True).accept4
        function.restype = ctypes.c_int
        function.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
        _accept4.append((function, ctypes.get_errno))
    except (ImportError, OSError, AttributeError):
        _accept4.append(None)  # no ctypes, or a libc without accept4: Python's accept() then


class HeldListener(socket.socket):
    """A listening socket handed in by the daemon, whose accept() gives up on the stop signal.

    Every process waiting on a held socket wakes for a new connection, and only one gets it. In
    socketserver's select-then-accept loop the others go on to block in accept(). Python's own
    accept() resumes after a signal (PEP 475), so such a process would see its stop signal only
    with the next connection, and an idle service's stop would take stop_timeout and end in
    SIGKILL. Interrupted by the stop signal, this accept() raises InterruptedError instead, which
    socketserver takes as "nothing to accept"; it holds no connection then, so none is lost."""

    __slots__ = ()

    def accept(self):
        libc = _accept4[0] if _accept4 else None
        if libc is None or self.gettimeout() is not None:
            return socket.socket.accept(self)
        accept4, get_errno = libc
        while True:
            fd = accept4(self.fileno(), None, None, socket.SOCK_CLOEXEC)
            if fd < 0:
                err = get_errno()
                if err != errno.EINTR:
                    raise OSError(err, os.strerror(err))
                if _stop_requested:
                    raise InterruptedError(errno.EINTR, 'accept() interrupted by the stop signal')
                continue
            conn = socket.socket(self.family, self.type, self.proto, fileno=fd)
            try:
                return conn, conn.getpeername()
            except OSError:
                conn.close()  # reset by its client before it was accepted: nothing to serve


def resolve_fds(value, objects):
    """Replaces FdRefs by their objects; one object per fd, however often it appears."""
    stack = [value]
    if isinstance(value, FdRef):
        return _fd_for(value, objects)
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, FdRef):
                    node[i] = _fd_for(item, objects)
                elif isinstance(item, (list, dict)):
                    stack.append(item)
        elif isinstance(node, dict):
            for key in list(node):
                item = node[key]
                if isinstance(item, FdRef):
                    node[key] = _fd_for(item, objects)
                elif isinstance(item, (list, dict)):
                    stack.append(item)
    return value


def _fd_for(ref, objects):
    if ref.index not in objects:
        objects[ref.index] = fd_object(FD_TABLE_BASE + ref.index)
    return objects[ref.index]


# ---------------------------------------------------------------------------------------------
# imports through directory fds
# ---------------------------------------------------------------------------------------------

def _split_entry(entry):
    """A sys.path or __path__ entry: an int dir fd, or (fd, 'sub/dir') for a package."""
    if isinstance(entry, int) and not isinstance(entry, bool):
        return entry, ''
    if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], int) and isinstance(entry[1], str):
        return entry
    return None


def _join(directory, name):
    return name if not directory else directory + '/' + name


class DirFdFinder(object):
    """Finds modules and packages in directories given as fds, with *at() calls only.

    That is the only way to import once Capsicum is entered, and under Landlock it keeps imports
    within the directories the service was handed.
    """

    def find_spec(self, fullname, path=None, target=None):
        entries = sys.path if path is None else path
        tail = fullname.rpartition('.')[2]
        for entry in entries:
            where = _split_entry(entry)
            if where is None:
                continue
            fd, directory = where
            spec = self._find_in(fullname, tail, fd, directory)
            if spec is not None:
                return spec
        return None

    def _find_in(self, fullname, tail, fd, directory):
        package_dir = _join(directory, tail)
        if _is_dir(fd, package_dir):
            for init in ('__init__.py',):
                relpath = _join(package_dir, init)
                if _is_file(fd, relpath):
                    loader = DirFdSourceLoader(fullname, fd, relpath)
                    spec = importlib.machinery.ModuleSpec(fullname, loader, origin=relpath, is_package=True)
                    spec.submodule_search_locations = [(fd, package_dir)]
                    spec.has_location = True
                    return spec
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            relpath = _join(directory, tail + suffix)
            if _is_file(fd, relpath):
                return _extension_spec(fullname, fd, relpath)
        relpath = _join(directory, tail + '.py')
        if _is_file(fd, relpath):
            spec = importlib.machinery.ModuleSpec(fullname, DirFdSourceLoader(fullname, fd, relpath), origin=relpath)
            spec.has_location = True
            return spec
        relpath = _join(directory, tail + '.pyc')
        if _is_file(fd, relpath):
            spec = importlib.machinery.ModuleSpec(fullname, DirFdSourcelessLoader(fullname, fd, relpath), origin=relpath)
            spec.has_location = True
            return spec
        return None


def _stat_at(fd, relpath):
    try:
        return os.stat(relpath, dir_fd=fd)
    except OSError:
        return None


def _is_dir(fd, relpath):
    st = _stat_at(fd, relpath)
    return st is not None and stat.S_ISDIR(st.st_mode)


def _is_file(fd, relpath):
    st = _stat_at(fd, relpath)
    return st is not None and stat.S_ISREG(st.st_mode)


def _read_at(fd, relpath):
    file_fd = os.open(relpath, os.O_RDONLY | getattr(os, 'O_CLOEXEC', 0), dir_fd=fd)
    with io.FileIO(file_fd, 'r', closefd=True) as f:
        return f.readall()


def _extension_spec(fullname, fd, relpath):
    # dlopen() needs a path; /proc/self/fd/N names the directory fd without needing its host path.
    origin = '/proc/self/fd/%d/%s' % (fd, relpath)
    spec = importlib.machinery.ModuleSpec(fullname, importlib.machinery.ExtensionFileLoader(fullname, origin), origin=origin)
    spec.has_location = True
    return spec


class _DirFdLoaderMixin(object):
    def __init__(self, fullname, fd, relpath):
        self.name = fullname
        self.fd = fd
        self.path = relpath

    def get_filename(self, fullname=None):
        return self.path

    def get_data(self, path):
        # Paths are relative to the directory fd: the module's own file, its bytecode cache, or a
        # package data file (pkgutil.get_data joins it to __file__).
        return _read_at(self.fd, path)

    def get_resource_reader(self, fullname=None):
        if self.path.endswith('/__init__.py') or self.path == '__init__.py':
            return DirFdResourceReader(self.fd, self.path.rpartition('/')[0])
        return None


class DirFdSourceLoader(_DirFdLoaderMixin, _SourceLoader):
    def path_stats(self, path):
        st = os.stat(path, dir_fd=self.fd)
        return {'mtime': st.st_mtime, 'size': st.st_size}

    def set_data(self, path, data):
        # Bytecode caches go through the same fd; a read-only sandbox just means no cache.
        if sys.dont_write_bytecode:
            return
        directory = path.rpartition('/')[0]
        try:
            if directory:
                try:
                    os.mkdir(directory, 0o755, dir_fd=self.fd)
                except FileExistsError:
                    pass
            tmp = '%s.%d.tmp' % (path, os.getpid())
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0), 0o644, dir_fd=self.fd)
            try:
                with io.FileIO(out, 'w', closefd=True) as f:
                    f.write(data)
                os.replace(tmp, path, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            except OSError:
                try:
                    os.unlink(tmp, dir_fd=self.fd)
                except OSError:
                    pass
        except OSError:
            pass

    def source_to_code(self, data, path, *, _optimize=-1):
        return compile(data, path, 'exec', dont_inherit=True)


class DirFdSourcelessLoader(_DirFdLoaderMixin):
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        import marshal
        data = self.get_data(self.path)
        exec(marshal.loads(data[16:]), module.__dict__)

    def get_code(self, fullname):
        import marshal
        return marshal.loads(self.get_data(self.path)[16:])

    def get_source(self, fullname):
        return None


class DirFdTraversable(object):
    """importlib.resources' view of a file or directory beneath a directory fd."""

    def __init__(self, fd, relpath):
        self._fd = fd
        self._relpath = relpath

    @property
    def name(self):
        return self._relpath.rpartition('/')[2]

    def iterdir(self):
        sub = os.open(self._relpath or '.', os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0) | getattr(os, 'O_CLOEXEC', 0), dir_fd=self._fd)
        try:
            names = os.listdir(sub)
        finally:
            os.close(sub)
        return iter([DirFdTraversable(self._fd, _join(self._relpath, n)) for n in sorted(names)])

    def is_dir(self):
        return _is_dir(self._fd, self._relpath or '.')

    def is_file(self):
        return _is_file(self._fd, self._relpath)

    def joinpath(self, *parts):
        relpath = self._relpath
        for part in parts:
            for piece in str(part).split('/'):
                if piece in ('', '.'):
                    continue
                relpath = _join(relpath, piece)
        return DirFdTraversable(self._fd, relpath)

    __truediv__ = joinpath

    def open(self, mode='r', *args, **kwargs):
        data = _read_at(self._fd, self._relpath)
        if 'b' in mode:
            return io.BytesIO(data)
        return io.TextIOWrapper(io.BytesIO(data), *args, **kwargs)

    def read_bytes(self):
        return _read_at(self._fd, self._relpath)

    def read_text(self, encoding=None, errors=None):
        return self.read_bytes().decode(encoding or 'utf-8', errors or 'strict')

    def __repr__(self):
        return 'DirFdTraversable(%d, %r)' % (self._fd, self._relpath)


class DirFdResourceReader(object):
    """Both the modern ``files()`` reader and the 3.8-era ResourceReader methods."""

    def __init__(self, fd, package_dir):
        self._root = DirFdTraversable(fd, package_dir)

    def files(self):
        return self._root

    def open_resource(self, resource):
        return self._root.joinpath(resource).open('rb')

    def resource_path(self, resource):
        raise FileNotFoundError(resource)

    def is_resource(self, name):
        return self._root.joinpath(name).is_file()

    def contents(self):
        return [t.name for t in self._root.iterdir()]


# ---------------------------------------------------------------------------------------------
# shared libraries of extension modules (Linux)
#
# Extension modules such as binascii need libraries (libz) from system directories that the
# sandbox does not open. sockvisord asks once, at config load, which files those are
# (probe_libraries, run in a separate process), and the runner grants read access to exactly
# those files, plus the loader's cache, so the dynamic loader can still open them.
# ---------------------------------------------------------------------------------------------

LOADER_CACHE = '/etc/ld.so.cache'


def preload_unwinder():
    """glibc opens libgcc_s.so.1 the first time a thread is ended by pthread_exit(), which is how
    CPython ends daemon threads (ThreadingHTTPServer's) at exit; inside the sandbox that open fails
    and glibc aborts the process. Loaded now, the later open finds it already mapped by name."""
    try:
        import _ctypes
        _ctypes.dlopen('libgcc_s.so.1', os.RTLD_NOW)
    except (ImportError, OSError):
        pass  # a libc that needs no separate unwinder, or an interpreter built without ctypes


def mapped_libraries():
    libraries = set()
    with open('/proc/self/maps') as maps:
        for line in maps:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith('/') and '.so' in parts[5]:
                libraries.add(parts[5].rstrip('\n'))
    return libraries


def probe_libraries(directories):
    """Loads every extension module file in the directories without initialising it, and
    returns the libraries that brought in beyond what a bare interpreter has mapped."""
    import ctypes
    before = mapped_libraries()
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    modules = set()
    for directory in directories:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if name.endswith(suffixes):
                path = os.path.join(directory, name)
                modules.add(os.path.realpath(path))
                try:
                    ctypes.CDLL(path)
                except OSError:
                    pass  # a module that cannot load here will fail the same way at import
    return sorted(p for p in mapped_libraries() - before if p not in modules)


# ---------------------------------------------------------------------------------------------
# graceful stop for socketserver-based services
# ---------------------------------------------------------------------------------------------

_serving = set()
_stop_requested = []


def install_graceful_stop(signum):
    """On the stop signal, servers in serve_forever() stop accepting, finish what they accepted,
    and return, so the service's own code ends normally with exit status 0. Connections not yet
    accepted stay in the shared socket's backlog for the next process. A process that is not
    serving gets the signal's default action, as without the runner."""
    import socketserver
    import threading

    original = socketserver.BaseServer.serve_forever
    if getattr(original, '_sockvisor', False):
        return
    # Requests handed to threads (ThreadingMixIn): serve_forever() waits for them after a stop,
    # since daemon threads (ThreadingHTTPServer's) would otherwise die with the process.
    in_flight = {}
    changed = threading.Condition()

    def serve_forever(self, poll_interval=0.5):
        _serving.add(self)
        try:
            return original(self, poll_interval)
        finally:
            _serving.discard(self)
            if _stop_requested:
                with changed:
                    changed.wait_for(lambda: in_flight.get(id(self), 0) == 0)

    serve_forever._sockvisor = True
    socketserver.BaseServer.serve_forever = serve_forever

    start_thread = socketserver.ThreadingMixIn.process_request
    run_thread = socketserver.ThreadingMixIn.process_request_thread

    def count(server, delta):
        with changed:
            in_flight[id(server)] = in_flight.get(id(server), 0) + delta
            changed.notify_all()

    def process_request(self, request, client_address):
        # Counted on the serving thread, before the handler thread exists, so a stop that ends
        # the loop right after cannot miss it.
        count(self, 1)
        try:
            start_thread(self, request, client_address)
        except BaseException:
            count(self, -1)
            raise

    def process_request_thread(self, request, client_address):
        try:
            run_thread(self, request, client_address)
        finally:
            count(self, -1)

    socketserver.ThreadingMixIn.process_request = process_request
    socketserver.ThreadingMixIn.process_request_thread = process_request_thread

    def on_stop(sig, frame):
        if not _serving:
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
            return
        _stop_requested.append(sig)
        for server in list(_serving):
            # The flag serve_forever() checks after each select(); shutdown() would deadlock here,
            # since the handler runs on the serving thread itself.
            server._BaseServer__shutdown_request = True

    signal.signal(signum, on_stop)


# ---------------------------------------------------------------------------------------------
# sandbox: what to apply, and the report line
# ---------------------------------------------------------------------------------------------

class SandboxReport(object):
    def __init__(self):
        self.applied = []
        self.missing = []

    def line(self):
        # The lock-down itself first, then the layers around it.
        rank = (('landlock', 'capsicum'), ('netns', 'seccomp'), ('no_new_privs',), ('pdeathsig',))

        def order(layer):
            return next((i for i, prefixes in enumerate(rank) if layer.startswith(prefixes)), len(rank))
        ordered = sorted(self.applied, key=order)
        text = 'sandbox: ' + (', '.join(ordered) if ordered else 'off')
        if self.missing:
            text += '; missing: ' + ', '.join(self.missing)
        return text


def sandbox_verdict(mode, report):
    """strict refuses to run with any layer missing; best-effort runs with what it has."""
    if mode == 'strict' and report.missing:
        raise RunnerError('sandbox: strict mode, but %s could not be applied; use sandbox: best-effort to run without it' % ', '.join(report.missing))


# ---------------------------------------------------------------------------------------------
# Linux: no_new_privs, parent-death signal, Landlock, and a network namespace or seccomp
# ---------------------------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000

LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446

FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_ABI1_ALL = (1 << 13) - 1
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1


def landlock_rights(abi):
    """Rights to handle (deny unless granted) for a kernel's Landlock ABI version."""
    fs = FS_ABI1_ALL
    if abi >= 2:
        fs |= FS_REFER
    if abi >= 3:
        fs |= FS_TRUNCATE
    if abi >= 5:
        fs |= FS_IOCTL_DEV
    net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    return fs, net, scoped


def landlock_layers(abi):
    """The names of what a given ABI can restrict, for the report."""
    if abi < 1:
        return []
    layers = ['fs']
    if abi >= 4:
        layers.append('tcp')
    if abi >= 6:
        layers.append('scope')
    return layers


# Seccomp fallback: deny socket(AF_INET/AF_INET6, ...) with EACCES; everything else is allowed.
AUDIT_ARCH = {'x86_64': (0xC000003E, 41), 'aarch64': (0xC00000B7, 198)}
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000


def seccomp_socket_filter(machine):
    """BPF instructions (code, jt, jf, k) that refuse new inet sockets on this architecture."""
    arch = AUDIT_ARCH.get(machine)
    if arch is None:
        return None
    audit_arch, nr_socket = arch
    ld_w_abs, jeq_k, ret_k = 0x20, 0x15, 0x06
    return [
        (ld_w_abs, 0, 0, 4),                    # A = seccomp_data.arch
        (jeq_k, 1, 0, audit_arch),              # same arch: go on; else allow
        (ret_k, 0, 0, SECCOMP_RET_ALLOW),
        (ld_w_abs, 0, 0, 0),                    # A = seccomp_data.nr
        (jeq_k, 0, 3, nr_socket),               # socket(): check the domain; else allow
        (ld_w_abs, 0, 0, 16),                   # A = low 32 bits of args[0], the domain
        (jeq_k, 2, 0, socket.AF_INET),
        (jeq_k, 1, 0, socket.AF_INET6),
        (ret_k, 0, 0, SECCOMP_RET_ALLOW),
        (ret_k, 0, 0, SECCOMP_RET_ERRNO | errno.EACCES),
    ]


def choose_net_layer(is_root, userns_allowed):
    """How UDP, MPTCP and the like are shut off, which Landlock (ABI 7) does not cover."""
    if is_root:
        return 'netns'
    if userns_allowed:
        return 'userns+netns'
    return 'seccomp'


# What a program service may do beneath each kind of grant (see exec_program).
FS_READ = FS_READ_FILE | FS_READ_DIR
FS_READ_EXEC = FS_READ | FS_EXECUTE
FS_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
# Everything but executing: write, create and remove files and directories, rename within.
FS_WRITE_BENEATH = (FS_ABI1_ALL & ~FS_EXECUTE) | FS_REFER | FS_TRUNCATE


class LinuxSandbox(object):
    def __init__(self, daemon_pid, dir_fds, library_files, report, path_grants=()):
        import ctypes
        self.ctypes = ctypes
        self.library_files = list(library_files) + ([LOADER_CACHE] if library_files else [])
        # (path, rights) pairs granted by path: a program service's directories and files.
        self.path_grants = list(path_grants)
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long
        self.libc.prctl.restype = ctypes.c_int
        self.daemon_pid = daemon_pid
        self.dir_fds = dir_fds
        self.report = report

    def _errno(self):
        return os.strerror(self.ctypes.get_errno())

    def prctl(self, option, arg2):
        c = self.ctypes
        return self.libc.prctl(c.c_int(option), c.c_ulong(arg2), c.c_ulong(0), c.c_ulong(0), c.c_ulong(0))

    def parent_death_signal(self):
        if self.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            self.report.missing.append('pdeathsig')
            return
        # The daemon may have died between fork and prctl(); then no signal would ever come.
        if self.daemon_pid and os.getppid() != self.daemon_pid:
            raise RunnerError('sockvisord (pid %d) is gone; not starting' % self.daemon_pid)
        self.report.applied.append('pdeathsig')

    def no_new_privs(self):
        if self.prctl(PR_SET_NO_NEW_PRIVS, 1) != 0:
            self.report.missing.append('no_new_privs')
            return False
        self.report.applied.append('no_new_privs')
        return True

    def landlock_abi(self):
        c = self.ctypes
        abi = self.libc.syscall(c.c_long(SYS_LANDLOCK_CREATE_RULESET), None, c.c_size_t(0), c.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
        return abi if abi > 0 else 0

    def landlock(self):
        c = self.ctypes
        abi = self.landlock_abi()
        if abi < 1:
            self.report.missing.append('landlock (%s)' % self._errno())
            return
        fs, net, scoped = landlock_rights(abi)

        class RulesetAttr(c.Structure):
            _fields_ = [('handled_access_fs', c.c_uint64), ('handled_access_net', c.c_uint64), ('scoped', c.c_uint64)]

        class PathBeneathAttr(c.Structure):
            _pack_ = 1
            _fields_ = [('allowed_access', c.c_uint64), ('parent_fd', c.c_int32)]

        attr = RulesetAttr(fs, net, scoped)
        size = 24 if abi >= 6 else 16 if abi >= 4 else 8
        ruleset = self.libc.syscall(c.c_long(SYS_LANDLOCK_CREATE_RULESET), c.byref(attr), c.c_size_t(size), c.c_uint32(0))
        if ruleset < 0:
            self.report.missing.append('landlock (%s)' % self._errno())
            return
        try:
            def grant(fd, access, what):
                rule = PathBeneathAttr(access & fs, fd)
                if self.libc.syscall(c.c_long(SYS_LANDLOCK_ADD_RULE), c.c_int(ruleset), c.c_int(LANDLOCK_RULE_PATH_BENEATH), c.byref(rule), c.c_uint32(0)) != 0:
                    raise RunnerError('landlock: cannot grant read access to %s: %s' % (what, self._errno()))

            for fd in self.dir_fds:
                grant(fd, FS_READ_FILE | FS_READ_DIR, 'fd %d' % fd)
            for path, rights in self.path_grants:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError as e:
                    raise RunnerError('landlock: cannot open %s to grant access: %s' % (path, e.strerror))
                try:
                    # A file takes only the rights that apply to files.
                    grant(fd, rights if os.path.isdir(path) else rights & FS_FILE_RIGHTS, path)
                finally:
                    os.close(fd)
            for path in self.library_files:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue  # gone since the daemon looked; the module needing it will say so
                try:
                    grant(fd, FS_READ_FILE, path)
                finally:
                    os.close(fd)
            if self.libc.syscall(c.c_long(SYS_LANDLOCK_RESTRICT_SELF), c.c_int(ruleset), c.c_uint32(0)) != 0:
                self.report.missing.append('landlock (%s)' % self._errno())
                return
        finally:
            os.close(ruleset)
        self.report.applied.append('landlock abi %d (%s)' % (abi, ', '.join(landlock_layers(abi))))
        if abi < 6:
            self.report.missing.extend(['tcp'] if abi < 4 else [])
            self.report.missing.append('scope')

    def network(self):
        is_root = os.geteuid() == 0
        layer = choose_net_layer(is_root, True)
        if layer == 'netns' and self.libc.unshare(CLONE_NEWNET) == 0:
            self.report.applied.append('netns')
            return
        if layer != 'seccomp' and self._user_netns():
            self.report.applied.append('netns')
            return
        self.seccomp()

    def _user_netns(self):
        uid, gid = os.geteuid(), os.getegid()
        if self.libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
            return False
        # Map our own ids so files and peers still see the same user.
        try:
            for name, text in (('setgroups', 'deny'), ('uid_map', '%d %d 1' % (uid, uid)), ('gid_map', '%d %d 1' % (gid, gid))):
                fd = os.open('/proc/self/' + name, os.O_WRONLY)
                try:
                    os.write(fd, text.encode())
                finally:
                    os.close(fd)
        except OSError:
            return True
        return True

    def seccomp(self):
        c = self.ctypes
        self.prctl(PR_SET_NO_NEW_PRIVS, 1)
        program = seccomp_socket_filter(os.uname().machine)
        if program is None:
            self.report.missing.append('udp (no seccomp filter for %s)' % os.uname().machine)
            return

        class SockFilter(c.Structure):
            _fields_ = [('code', c.c_uint16), ('jt', c.c_uint8), ('jf', c.c_uint8), ('k', c.c_uint32)]

        class SockFprog(c.Structure):
            _fields_ = [('len', c.c_ushort), ('filter', c.POINTER(SockFilter))]

        filters = (SockFilter * len(program))(*[SockFilter(*ins) for ins in program])
        prog = SockFprog(len(program), filters)
        if self.libc.prctl(c.c_int(PR_SET_SECCOMP), c.c_ulong(SECCOMP_MODE_FILTER), c.byref(prog), c.c_ulong(0), c.c_ulong(0)) != 0:
            self.report.missing.append('udp (seccomp: %s)' % self._errno())
            return
        self.report.applied.append('seccomp (no new inet sockets)')

    def apply(self, run_as):
        # The namespace comes first: creating one needs root or a user namespace, and the file
        # system (uid_map), which Landlock refuses afterwards. The seccomp fallback needs
        # no_new_privs, which seccomp() sets itself.
        self.network()
        drop_privileges(run_as)
        # After the credential change, which would clear the parent-death signal.
        self.parent_death_signal()
        if self.no_new_privs():
            self.landlock()
        else:
            self.report.missing.append('landlock (needs no_new_privs)')


# ---------------------------------------------------------------------------------------------
# FreeBSD: procctl(2) parent-death signal, preloading, then cap_enter(2)
#
# This part cannot run on Linux CI. Every call is checked against the FreeBSD manual pages:
#   procctl(2): int procctl(idtype_t idtype, id_t id, int cmd, void *data);
#               PROC_PDEATHSIG_CTL (11) with idtype P_PID (0) and id 0 (the caller); data points
#               to an int signal number.
#   cap_enter(2): int cap_enter(void); afterwards only *at() lookups beneath held directory fds
#               work, so every module the service needs from outside its path fds must be
#               imported before.
#   tzset(3): reads /etc/localtime once; later localtime() uses the cached zone.
# ---------------------------------------------------------------------------------------------

FREEBSD_P_PID = 0
FREEBSD_PROC_PDEATHSIG_CTL = 11
FREEBSD_DEFAULT_PRELOAD = ('_socket', 'select', 'math', '_struct', 'binascii', 'zlib', '_json', '_datetime', '_random', '_sha1', 'unicodedata')


def freebsd_preload_plan(requested, builtin_names, importable):
    """Which modules to import before cap_enter(), and which requests are refused.

    requested: the service's supervise.preload names; builtin_names: sys.builtin_module_names;
    importable: a predicate that says whether a name can be found now. Returns (to_import,
    refused) where refused is a list of (name, reason).
    """
    to_import = []
    refused = []
    seen = set()
    for name in list(FREEBSD_DEFAULT_PRELOAD) + list(requested):
        if name in seen:
            continue
        seen.add(name)
        explicit = name in requested
        if not all(part.isidentifier() for part in name.split('.')):
            refused.append((name, 'not a module name'))
            continue
        if name in builtin_names:
            continue
        if not importable(name):
            if explicit:
                refused.append((name, 'not found in the service path or the standard library'))
            continue
        to_import.append(name)
    return to_import, refused


class FreeBSDSandbox(object):
    def __init__(self, daemon_pid, preload, report):
        import ctypes
        self.ctypes = ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.daemon_pid = daemon_pid
        self.preload = preload
        self.report = report

    def parent_death_signal(self):
        c = self.ctypes
        # procctl(2): idtype_t is an int-sized enum, id_t is 64 bits wide.
        self.libc.procctl.argtypes = [c.c_int, c.c_int64, c.c_int, c.c_void_p]
        self.libc.procctl.restype = c.c_int
        sig = c.c_int(signal.SIGKILL)
        if self.libc.procctl(FREEBSD_P_PID, 0, FREEBSD_PROC_PDEATHSIG_CTL, c.byref(sig)) != 0:
            self.report.missing.append('pdeathsig')
            return
        if self.daemon_pid and os.getppid() != self.daemon_pid:
            raise RunnerError('sockvisord (pid %d) is gone; not starting' % self.daemon_pid)
        self.report.applied.append('pdeathsig')

    def preload_modules(self):
        import importlib.util

        def importable(name):
            try:
                return importlib.util.find_spec(name) is not None
            except (ImportError, ValueError):
                return False

        to_import, refused = freebsd_preload_plan(self.preload, sys.builtin_module_names, importable)
        if refused:
            raise RunnerError('preload: ' + '; '.join('%s: %s' % r for r in refused))
        for name in to_import:
            __import__(name)
        import time
        time.tzset()
        time.localtime()
        self.report.applied.append('preloaded %d modules' % len(to_import))

    def capsicum(self):
        self.libc.cap_enter.argtypes = []
        self.libc.cap_enter.restype = self.ctypes.c_int
        if self.libc.cap_enter() != 0:
            self.report.missing.append('capsicum (%s)' % os.strerror(self.ctypes.get_errno()))
            return
        self.report.applied.append('capsicum')

    def apply(self, run_as):
        drop_privileges(run_as)
        self.parent_death_signal()
        self.preload_modules()
        self.capsicum()


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------

RUNNER_FILE = __file__
# The service's own source (command or script) by file name, for tracebacks.
MAIN_SOURCE = {}


def parse_args(argv):
    options = {'daemon_pid': 0, 'sandbox': 'strict', 'stop_signal': 'SIGTERM', 'preload': [], 'lc_ctype_given': False, 'libraries': [], 'run_as': None}
    i = 0
    while i < len(argv):
        name = argv[i]
        if name == '--exec':
            # The program and its arguments: everything after.
            if i + 2 > len(argv):
                raise RunnerError('--exec needs a program')
            options['exec'] = argv[i + 1:]
            break
        if name in ('--grant-exec', '--grant-read', '--grant-write', '--fd-order') and i + 1 < len(argv):
            value = argv[i + 1]
            i += 2
            if name == '--fd-order':
                try:
                    options['fd_order'] = [int(n) for n in value.split(',') if n != '']
                except ValueError:
                    raise RunnerError('--fd-order must be fd table indexes, not %r' % value)
            else:
                options.setdefault(name[2:].replace('-', '_'), []).append(value)
            continue
        if name == '--lc-ctype-given':
            options['lc_ctype_given'] = True
            i += 1
            continue
        if name in ('--daemon-pid', '--sandbox', '--stop-signal', '--preload', '--library', '--run-as') and i + 1 < len(argv):
            value = argv[i + 1]
            i += 2
            if name == '--run-as':
                options['run_as'] = parse_run_as(value)
            elif name == '--library':
                options['libraries'].append(value)
            elif name == '--daemon-pid':
                options['daemon_pid'] = int(value)
            elif name == '--sandbox':
                if value not in ('strict', 'best-effort', 'off'):
                    raise RunnerError('--sandbox must be strict, best-effort or off, not %r' % value)
                options['sandbox'] = value
            elif name == '--stop-signal':
                options['stop_signal'] = value
            else:
                options['preload'] = [n for n in value.split(',') if n]
        else:
            raise RunnerError('unknown runner argument %r' % name)
    return options


def parse_run_as(text):
    """`uid:gid:g1,g2`; a uid or gid of -1 keeps the current one."""
    try:
        uid, gid, groups = text.split(':')
        return int(uid), int(gid), [int(g) for g in groups.split(',') if g]
    except ValueError:
        raise RunnerError('--run-as must be uid:gid:groups, not %r' % text)


def drop_privileges(run_as):
    """Becomes the service's user, with its supplementary groups, as login(1) would."""
    if run_as is None:
        return
    uid, gid, groups = run_as
    try:
        if os.geteuid() == 0:
            os.setgroups(groups if groups else ([gid] if gid >= 0 else []))
        if gid >= 0:
            os.setgid(gid)
        if uid >= 0:
            os.setuid(uid)
    except OSError as e:
        raise RunnerError('cannot switch to uid %d gid %d: %s' % (uid, gid, e.strerror))


def read_argdata():
    chunks = []
    try:
        while True:
            chunk = os.read(ARGDATA_FD, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError as e:
        raise RunnerError('cannot read argdata from fd %d: %s' % (ARGDATA_FD, e.strerror))
    os.close(ARGDATA_FD)
    return b''.join(chunks)


def apply_sandbox(options, document, objects):
    report = SandboxReport()
    mode = options['sandbox']
    if mode == 'off':
        drop_privileges(options['run_as'])
        return report
    dir_fds = sorted(fd for fd in objects.values() if isinstance(fd, int))
    if sys.platform.startswith('linux'):
        # Modules the operator asked for are imported while the whole file system is visible.
        for name in options['preload']:
            try:
                __import__(name)
            except ImportError as e:
                raise RunnerError('preload: %s: %s' % (name, e))
        preload_unwinder()
        LinuxSandbox(options['daemon_pid'], dir_fds, options['libraries'], report).apply(options['run_as'])
    elif sys.platform.startswith('freebsd'):
        FreeBSDSandbox(options['daemon_pid'], options['preload'], report).apply(options['run_as'])
    else:
        drop_privileges(options['run_as'])
        report.missing.append('a sandbox for %s' % sys.platform)
    sandbox_verdict(mode, report)
    return report


def run_main(document):
    script = document.get('script')
    command = document.get('command')
    module = types.ModuleType('__main__')
    module.__builtins__ = __builtins__
    if script is not None:
        if not hasattr(script, 'read'):
            raise RunnerError('script must be a !file')
        source = script.read()
        filename = '<script>'
    elif command is not None:
        if not isinstance(command, str):
            raise RunnerError('command must be a string')
        source = command
        filename = '<string>'
    else:
        return 0
    text = source.decode('utf-8') if isinstance(source, bytes) else source
    MAIN_SOURCE[filename] = text
    code = compile(text, filename, 'exec', dont_inherit=True)
    sys.modules['__main__'] = module
    sys.argv = ['-c' if filename == '<string>' else filename]
    exec(code, module.__dict__)
    return 0


def exec_program(options):
    """A program service: the same sandbox as for Python code, the fds where the program expects
    them (listening sockets from fd 3, systemd style), LISTEN_PID set to this process's pid,
    which the program keeps, and then the program itself."""
    program = options['exec']
    # The argdata is for Python code; a program gets its fds and the environment instead.
    os.close(ARGDATA_FD)
    place_fds(options.get('fd_order', []))
    if not options['lc_ctype_given'] and 'LC_CTYPE' in os.environ:
        del os.environ['LC_CTYPE']
    env = dict(os.environ)
    env['LISTEN_PID'] = str(os.getpid())
    # CPython ignores these at start-up; ignored signals stay ignored across exec.
    for name in ('SIGPIPE', 'SIGXFSZ'):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    report = apply_program_sandbox(options)
    sys.stderr.write(report.line() + '\n')
    sys.stderr.flush()
    try:
        os.execve(program[0], program[1:], env)
    except OSError as e:
        hint = ' (the sandbox lets a program execute only beneath path: and the system grants)' if e.errno == errno.EACCES else ''
        raise RunnerError('cannot execute %s: %s%s' % (program[0], e.strerror, hint))


def place_fds(order):
    """Moves fd table entry order[k] (at FD_TABLE_BASE + order[k]) to fd 3 + k, inheritable, and
    closes everything else above 2."""
    import fcntl
    # Out of the way first, so no move lands on an fd still to be moved.
    parked = [fcntl.fcntl(FD_TABLE_BASE + index, fcntl.F_DUPFD_CLOEXEC, 256) for index in order]
    os.closerange(3, 256)
    for k, fd in enumerate(parked):
        os.dup2(fd, 3 + k)  # dup2 leaves the new fd inheritable
        os.close(fd)


def program_path_grants(options):
    return ([(p, FS_READ_EXEC) for p in options.get('grant_exec', [])]
            + [(p, FS_READ) for p in options.get('grant_read', [])]
            + [(p, FS_WRITE_BENEATH) for p in options.get('grant_write', [])])


def apply_program_sandbox(options):
    report = SandboxReport()
    mode = options['sandbox']
    if mode == 'off':
        drop_privileges(options['run_as'])
        return report
    if sys.platform.startswith('linux'):
        LinuxSandbox(options['daemon_pid'], [], [], report, program_path_grants(options)).apply(options['run_as'])
    else:
        drop_privileges(options['run_as'])
        if sys.platform.startswith('freebsd'):
            # Capability mode forbids execve(2) and every path lookup the program would make.
            FreeBSDSandbox(options['daemon_pid'], [], report).parent_death_signal()
            report.missing.append('capsicum (a program cannot be executed in capability mode)')
        else:
            report.missing.append('a sandbox for %s' % sys.platform)
    sandbox_verdict(mode, report)
    return report


def setup(argv):
    options = parse_args(argv)
    if 'exec' in options:
        exec_program(options)
    if not options['lc_ctype_given'] and 'LC_CTYPE' in os.environ:
        # CPython's C-locale coercion (PEP 538) put it there; the environment is supervise.env only.
        del os.environ['LC_CTYPE']
    data = read_argdata()
    document = decode_argdata(data)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise RunnerError('argdata: the document is not a map')
    objects = {}
    resolve_fds(document, objects)

    stderr_target = document.get('stderr')
    if stderr_target is not None:
        sys.stderr = _text_stream(stderr_target)
    # The flag keys (dontwritebytecode, optimize, ...) reach CPython as command-line options
    # (-B, -O, ...), which sockvisord adds; nothing to do for them here.

    path = document.get('path', [])
    if not isinstance(path, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in path):
        raise RunnerError('path must be a list of directories')
    if 'args' in document:
        sys.argdata = document['args']
    elif hasattr(sys, 'argdata'):
        del sys.argdata

    signum = getattr(signal, options['stop_signal'], None)
    if signum is None:
        raise RunnerError('unknown stop signal %r' % options['stop_signal'])
    install_graceful_stop(signum)

    report = apply_sandbox(options, document, objects)
    sys.stderr.write(report.line() + '\n')
    sys.stderr.flush()

    # After the lock-down: from here on every import goes through the handed-in directories.
    sys.path[:] = path
    sys.path_importer_cache.clear()
    # PathFinder stays, behind ours, for packages imported before the lock-down (encodings,
    # say): their __path__ holds strings, and their submodules load wherever the sandbox allows.
    sys.meta_path.insert(len(sys.meta_path) - 1 if sys.meta_path[-1] is importlib.machinery.PathFinder else len(sys.meta_path), DirFdFinder())
    return document


def _text_stream(target):
    if isinstance(target, io.FileIO):
        # Buffered, so a short write to a full pipe is completed rather than dropped.
        return io.TextIOWrapper(io.BufferedWriter(target), encoding='utf-8', errors='backslashreplace', line_buffering=True)
    if isinstance(target, socket.socket):
        return io.TextIOWrapper(target.makefile('wb'), encoding='utf-8', errors='backslashreplace', line_buffering=True)
    raise RunnerError('stderr must be an !fd')


def main():
    if sys.argv[1:2] == ['--probe-libraries']:
        # Run by sockvisord at config load, outside any sandbox: one JSON list on stdout.
        import json
        print(json.dumps(probe_libraries(sys.argv[2:])))
        return
    try:
        document = setup(sys.argv[1:])
    except RunnerError as e:
        _fail(str(e))
    except Exception as e:  # a runner bug must still end in one line and 127, not a traceback
        _fail('runner: %s: %s' % (type(e).__name__, e))
    try:
        code = run_main(document)
    except SystemExit:
        raise
    except RunnerError as e:
        _fail(str(e))
    except BaseException:
        report_exception(*sys.exc_info())
        sys.exit(1)
    sys.exit(code)


def report_exception(kind, value, tb):
    # The service's traceback starts at its own code, not in the runner.
    while tb is not None and tb.tb_frame.f_code.co_filename == RUNNER_FILE:
        tb = tb.tb_next
    if sys.excepthook is not sys.__excepthook__:
        sys.excepthook(kind, value, tb)
        return
    # The traceback module reads source through linecache and module loaders, so lines from
    # the command and from dir-fd imports show; the built-in hook only reads files by name.
    # Both are imported only now: they cost every start-up milliseconds otherwise, and after
    # the lock-down they load through the service's path like any other module.
    try:
        import linecache
        import traceback
    except ImportError:
        sys.__excepthook__(kind, value, tb)
        return
    for filename, text in MAIN_SOURCE.items():
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    traceback.print_exception(kind, value, tb)
    sys.stderr.flush()


def _fail(message):
    try:
        os.write(2, (message.replace('\n', ' ') + '\n').encode('utf-8', 'backslashreplace'))
    except OSError:
        pass
    os._exit(EXIT_RUNNER_FAILED)


if __name__ == '__main__':
    main()
