/*
 * The few socket and process calls Node cannot make: bind and listen without ever accepting,
 * close-on-exec and blocking-mode control, peer credentials, and user/group lookups.
 *
 * Everything here is synchronous and cheap except connect(), which runs on the libuv thread pool
 * so that a slow peer never stalls the daemon's event loop.
 *
 * Platform differences are confined to the blocks marked LINUX / FREEBSD.
 */
#define _GNU_SOURCE
#include <node_api.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/syscall.h>
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#elif defined(__FreeBSD__)
#include <sys/param.h>
#include <sys/ucred.h>
#endif

/* ---- errors ------------------------------------------------------------------------------ */

static const char *errno_name(int err) {
  switch (err) {
    case EACCES: return "EACCES";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case EEXIST: return "EEXIST";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EINVAL: return "EINVAL";
    case EISDIR: return "EISDIR";
    case ELOOP: return "ELOOP";
    case EMFILE: return "EMFILE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENETUNREACH: return "ENETUNREACH";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOENT: return "ENOENT";
    case ENOMEM: return "ENOMEM";
    case ENOTDIR: return "ENOTDIR";
    case ENOTSOCK: return "ENOTSOCK";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EPERM: return "EPERM";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EPROTOTYPE: return "EPROTOTYPE";
    case EROFS: return "EROFS";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return "EUNKNOWN";
  }
}

/* Throws an Error carrying .code, .errno and .syscall, like Node's own system errors. */
static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", syscall, strerror(err));
  napi_value msg, code, error, num, sc;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &num);
  napi_set_named_property(env, error, "errno", num);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, error, "syscall", sc);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

/* ---- argument helpers -------------------------------------------------------------------- */

#define MAX_ARGS 8
#define GET_ARGS(n)                                                     \
  size_t argc = MAX_ARGS;                                               \
  napi_value argv[MAX_ARGS];                                            \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);                 \
  if (argc < (n)) return throw_type(env, "missing arguments");

static int arg_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static int arg_bool(napi_env env, napi_value v, bool *out) {
  return napi_get_value_bool(env, v, out) == napi_ok;
}

/* Copies a JS string into buf; fails if it does not fit, so paths are never silently cut. */
static int arg_string(napi_env env, napi_value v, char *buf, size_t size, size_t *len) {
  size_t n;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return 0;
  if (len) *len = n;
  if (n + 1 > size) return -1;
  napi_get_value_string_utf8(env, v, buf, size, &n);
  return 1;
}

static napi_value make_int(napi_env env, int64_t value) {
  napi_value v;
  napi_create_int64(env, value, &v);
  return v;
}

static void set_int(napi_env env, napi_value obj, const char *name, int64_t value) {
  napi_set_named_property(env, obj, name, make_int(env, value));
}

static void set_string(napi_env env, napi_value obj, const char *name, const char *value) {
  napi_value v;
  napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, name, v);
}

static int socket_type(const char *name) {
  if (strcmp(name, "stream") == 0) return SOCK_STREAM;
  if (strcmp(name, "dgram") == 0) return SOCK_DGRAM;
  if (strcmp(name, "seqpacket") == 0) return SOCK_SEQPACKET;
  return -1;
}

/* Fills an inet sockaddr from a numeric address (host names are resolved in TypeScript). */
static int fill_inet(int family, const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (family == 4) {
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) return 0;
    *len = sizeof *sin;
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) return 0;
    *len = sizeof *sin6;
  }
#if defined(__FreeBSD__)
  ((struct sockaddr *)ss)->sa_len = (uint8_t)*len;
#endif
  return 1;
}

static int fill_unix(const char *path, struct sockaddr_un *sun, socklen_t *len) {
  size_t n = strlen(path);
  if (n >= sizeof sun->sun_path) return 0;
  memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  memcpy(sun->sun_path, path, n + 1);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
#if defined(__FreeBSD__)
  sun->sun_len = (uint8_t)*len;
#endif
  return 1;
}

/* ---- listening sockets ------------------------------------------------------------------- */

/* listenInet(family: 4|6, host: string, port: number, type: 'stream'|'dgram', backlog: number)
 *   -> { fd, port }   backlog < 0 means the system maximum (both kernels clamp it there). */
static napi_value listen_inet(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t family, port, backlog;
  char host[64], type_name[16];
  if (!arg_int(env, argv[0], &family) || (family != 4 && family != 6)) return throw_type(env, "family must be 4 or 6");
  if (arg_string(env, argv[1], host, sizeof host, NULL) != 1) return throw_type(env, "host must be a numeric address");
  if (!arg_int(env, argv[2], &port) || port < 0 || port > 65535) return throw_type(env, "port out of range");
  if (arg_string(env, argv[3], type_name, sizeof type_name, NULL) != 1) return throw_type(env, "type must be a string");
  if (!arg_int(env, argv[4], &backlog)) return throw_type(env, "backlog must be a number");
  int type = socket_type(type_name);
  if (type != SOCK_STREAM && type != SOCK_DGRAM) return throw_type(env, "inet sockets are stream or dgram");

  struct sockaddr_storage ss;
  socklen_t len = 0;
  if (!fill_inet(family, host, port, &ss, &len)) return throw_type(env, "host is not a numeric address");
  int fd = socket(family == 4 ? AF_INET : AF_INET6, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) goto fail_setsockopt;
  /* One family per socket on both kernels, so [::]:80 and 0.0.0.0:80 are two declarations. */
  if (family == 6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) goto fail_setsockopt;
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind");
  }
  if (type == SOCK_STREAM && listen(fd, backlog < 0 ? -1 : backlog) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "listen");
  }
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &bound_len);
  int bound_port = family == 4 ? ntohs(((struct sockaddr_in *)&bound)->sin_port) : ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
  napi_value result;
  napi_create_object(env, &result);
  set_int(env, result, "fd", fd);
  set_int(env, result, "port", bound_port);
  return result;

fail_setsockopt: {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "setsockopt");
  }
}

/* Is anything accepting on this unix path? Decides whether an existing socket file is stale. */
static int unix_path_answers(const struct sockaddr_un *sun, socklen_t len, int type) {
  int probe = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (probe < 0) return 1; /* cannot tell: assume live, never delete what may be in use */
  int rc = connect(probe, (const struct sockaddr *)sun, len);
  int err = errno;
  close(probe);
  if (rc == 0) return 1;
  /* Refused: a file with no listener behind it. Any other error (a listener of another socket
   * type answers EPROTOTYPE, a full backlog EAGAIN) means someone is there. */
  return !(err == ECONNREFUSED || err == ENOENT);
}

/* listenUnix(path, type: 'stream'|'seqpacket'|'dgram', backlog, mode, uid, gid) -> fd
 *   uid/gid -1 leave the owner as is. A stale socket file (nothing answers) is replaced. */
static napi_value listen_unix(napi_env env, napi_callback_info info) {
  GET_ARGS(6);
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1], type_name[16];
  size_t path_len;
  int32_t backlog, mode, uid, gid;
  int got = arg_string(env, argv[0], path, sizeof path, &path_len);
  if (got == 0) return throw_type(env, "path must be a string");
  if (got < 0 || path_len >= sizeof(((struct sockaddr_un *)0)->sun_path)) return throw_errno(env, ENAMETOOLONG, "bind");
  if (arg_string(env, argv[1], type_name, sizeof type_name, NULL) != 1) return throw_type(env, "type must be a string");
  if (!arg_int(env, argv[2], &backlog) || !arg_int(env, argv[3], &mode) || !arg_int(env, argv[4], &uid) || !arg_int(env, argv[5], &gid))
    return throw_type(env, "backlog, mode, uid and gid must be numbers");
  int type = socket_type(type_name);
  if (type < 0) return throw_type(env, "type must be stream, seqpacket or dgram");

  struct sockaddr_un sun;
  socklen_t len = 0;
  fill_unix(path, &sun, &len);
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  if (bind(fd, (struct sockaddr *)&sun, len) < 0) {
    int err = errno;
    struct stat st;
    if (err == EADDRINUSE && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && !unix_path_answers(&sun, len, type)) {
      unlink(path);
      if (bind(fd, (struct sockaddr *)&sun, len) == 0) goto bound;
      err = errno;
    } else if (err == EADDRINUSE && lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
      err = EEXIST; /* a regular file or directory: never ours to remove */
    }
    close(fd);
    return throw_errno(env, err, "bind");
  }
bound:
  /* Permissions are set before listen(), while every connect() is still refused. */
  if (chmod(path, (mode_t)mode) < 0 || ((uid >= 0 || gid >= 0) && chown(path, (uid_t)uid, (gid_t)gid) < 0)) {
    int err = errno;
    unlink(path);
    close(fd);
    return throw_errno(env, err, uid >= 0 || gid >= 0 ? "chown" : "chmod");
  }
  if (type != SOCK_DGRAM && listen(fd, backlog < 0 ? -1 : backlog) < 0) {
    int err = errno;
    unlink(path);
    close(fd);
    return throw_errno(env, err, "listen");
  }
  return make_int(env, fd);
}

/* ---- connect (thread pool) --------------------------------------------------------------- */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int family; /* 4, 6 or 0 for unix */
  int type;
  char host[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  int port;
  int timeout_ms;
  int fd;
  int err;
  const char *syscall;
} connect_job;

static void connect_execute(napi_env env, void *data) {
  (void)env;
  connect_job *job = data;
  struct sockaddr_storage ss;
  socklen_t len = 0;
  if (job->family == 0) {
    /* Unix: a blocking connect bounded by SO_SNDTIMEO, which both kernels apply to connect()
     * on local sockets; a full backlog then waits instead of failing at once. */
    fill_unix(job->host, (struct sockaddr_un *)&ss, &len);
    job->fd = socket(AF_UNIX, job->type | SOCK_CLOEXEC, 0);
    if (job->fd < 0) goto socket_failed;
    struct timeval tv = {.tv_sec = job->timeout_ms / 1000, .tv_usec = (job->timeout_ms % 1000) * 1000};
    setsockopt(job->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(job->fd, (struct sockaddr *)&ss, len) < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS) errno = ETIMEDOUT;
      goto failed;
    }
    struct timeval none = {0, 0};
    setsockopt(job->fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
    job->err = 0;
    return;
  }
  fill_inet(job->family, job->host, job->port, &ss, &len);
  job->fd = socket(job->family == 4 ? AF_INET : AF_INET6, job->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (job->fd < 0) goto socket_failed;
  if (connect(job->fd, (struct sockaddr *)&ss, len) < 0) {
    if (errno != EINPROGRESS) goto failed;
    struct pollfd pfd = {.fd = job->fd, .events = POLLOUT};
    int ready = poll(&pfd, 1, job->timeout_ms);
    if (ready == 0) errno = ETIMEDOUT;
    if (ready <= 0) goto failed;
    int soerr = 0;
    socklen_t soerr_len = sizeof soerr;
    getsockopt(job->fd, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len);
    if (soerr != 0) {
      errno = soerr;
      goto failed;
    }
  }
  /* Children get an ordinary blocking socket, as if they had connected themselves. */
  fcntl(job->fd, F_SETFL, fcntl(job->fd, F_GETFL) & ~O_NONBLOCK);
  job->err = 0;
  return;
socket_failed:
  job->err = errno;
  job->syscall = "socket";
  return;
failed:
  job->err = errno;
  job->syscall = "connect";
  close(job->fd);
  job->fd = -1;
}

static void connect_complete(napi_env env, napi_status status, void *data) {
  connect_job *job = data;
  if (status == napi_ok && job->err == 0) {
    napi_resolve_deferred(env, job->deferred, make_int(env, job->fd));
  } else {
    int err = job->err ? job->err : ECANCELED;
    char message[256];
    snprintf(message, sizeof message, "%s: %s", job->syscall ? job->syscall : "connect", strerror(err));
    napi_value msg, code, error;
    napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
    napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, msg, &error);
    set_int(env, error, "errno", err);
    set_string(env, error, "syscall", job->syscall ? job->syscall : "connect");
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

/* connect(family: 0|4|6, hostOrPath, port, type, timeoutMs) -> Promise<fd> */
static napi_value connect_socket(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  connect_job *job = calloc(1, sizeof *job);
  if (!job) return throw_errno(env, ENOMEM, "connect");
  char type_name[16];
  size_t host_len;
  int got;
  if (!arg_int(env, argv[0], &job->family) || (job->family != 0 && job->family != 4 && job->family != 6)) goto bad;
  got = arg_string(env, argv[1], job->host, sizeof job->host, &host_len);
  if (got == 0) goto bad;
  if (got < 0 || (job->family == 0 && host_len >= sizeof(((struct sockaddr_un *)0)->sun_path))) {
    free(job);
    return throw_errno(env, ENAMETOOLONG, "connect");
  }
  if (!arg_int(env, argv[2], &job->port) || arg_string(env, argv[3], type_name, sizeof type_name, NULL) != 1 ||
      !arg_int(env, argv[4], &job->timeout_ms))
    goto bad;
  job->type = socket_type(type_name);
  if (job->type < 0) goto bad;
  if (job->family != 0) {
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (!fill_inet(job->family, job->host, job->port, &ss, &len)) goto bad;
  }
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "sockvisor:connect", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, connect_execute, connect_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
bad:
  free(job);
  return throw_type(env, "connect(family, address, port, type, timeoutMs): bad arguments");
}

/* ---- fd flags ---------------------------------------------------------------------------- */

static napi_value set_blocking(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  int32_t fd;
  bool blocking;
  if (!arg_int(env, argv[0], &fd) || !arg_bool(env, argv[1], &blocking)) return throw_type(env, "setBlocking(fd, blocking)");
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return throw_errno(env, errno, "fcntl");
  int wanted = blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK;
  if (wanted != flags && fcntl(fd, F_SETFL, wanted) < 0) return throw_errno(env, errno, "fcntl");
  return NULL;
}

static napi_value is_nonblocking(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int32_t fd;
  if (!arg_int(env, argv[0], &fd)) return throw_type(env, "isNonBlocking(fd)");
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return throw_errno(env, errno, "fcntl");
  napi_value v;
  napi_get_boolean(env, (flags & O_NONBLOCK) != 0, &v);
  return v;
}

static napi_value set_cloexec(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  int32_t fd;
  bool on;
  if (!arg_int(env, argv[0], &fd) || !arg_bool(env, argv[1], &on)) return throw_type(env, "setCloexec(fd, on)");
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) return throw_errno(env, errno, "fcntl");
  if (fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC) < 0) return throw_errno(env, errno, "fcntl");
  return NULL;
}

static napi_value is_cloexec(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int32_t fd;
  if (!arg_int(env, argv[0], &fd)) return throw_type(env, "isCloexec(fd)");
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) return throw_errno(env, errno, "fcntl");
  napi_value v;
  napi_get_boolean(env, (flags & FD_CLOEXEC) != 0, &v);
  return v;
}

/* Marks every fd from `first` up close-on-exec, so whatever the daemon inherited never reaches a
 * child. close_range() does it in one call where the kernel has it; otherwise each open fd. */
static napi_value cloexec_from(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int32_t first;
  if (!arg_int(env, argv[0], &first) || first < 0) return throw_type(env, "cloexecFrom(firstFd)");
#if defined(__linux__) && defined(SYS_close_range)
  if (syscall(SYS_close_range, (unsigned)first, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return NULL;
#elif defined(__FreeBSD__) && defined(CLOSE_RANGE_CLOEXEC)
  if (close_range((unsigned)first, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return NULL;
#endif
  /* Older kernels: walk the fds that are actually open (/proc/self/fd or fdescfs's /dev/fd). */
  DIR *dir = opendir("/proc/self/fd");
  if (!dir) dir = opendir("/dev/fd");
  if (dir) {
    int self = dirfd(dir);
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
      if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
      int fd = atoi(entry->d_name);
      if (fd >= first && fd != self) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
      }
    }
    closedir(dir);
    return NULL;
  }
  long max = sysconf(_SC_OPEN_MAX);
  for (long fd = first; fd < (max > 0 ? max : 65536); fd++) {
    int flags = fcntl((int)fd, F_GETFD);
    if (flags >= 0) fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
  }
  return NULL;
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int32_t fd;
  if (!arg_int(env, argv[0], &fd)) return throw_type(env, "close(fd)");
  /* EINTR after close() still means the fd is gone (Linux, FreeBSD); retrying would be wrong. */
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, errno, "close");
  return NULL;
}

/*
 * Stops a listening socket taking connections while its fd stays open in the processes still
 * finishing their work: on Linux, shutdown(SHUT_RD) takes a TCP listener out of LISTEN (new
 * connections are refused) and marks a unix listener so connect() is refused. Returns false where
 * the system does not allow shutdown on a listener (ENOTCONN, as older FreeBSD says); the caller
 * then simply closes later.
 */
static napi_value stop_listening(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int32_t fd;
  if (!arg_int(env, argv[0], &fd)) return throw_type(env, "stopListening(fd)");
  napi_value result;
  if (shutdown(fd, SHUT_RD) == 0) {
    napi_get_boolean(env, true, &result);
    return result;
  }
  if (errno != ENOTCONN && errno != EINVAL && errno != EOPNOTSUPP) return throw_errno(env, errno, "shutdown");
  napi_get_boolean(env, false, &result);
  return result;
}

/* pipe() -> [readFd, writeFd], both close-on-exec: the daemon decides which child gets which end. */
static napi_value make_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return throw_errno(env, errno, "pipe2");
  napi_value result;
  napi_create_array_with_length(env, 2, &result);
  napi_set_element(env, result, 0, make_int(env, fds[0]));
  napi_set_element(env, result, 1, make_int(env, fds[1]));
  return result;
}

/* ---- introspection ----------------------------------------------------------------------- */

/* localAddress(fd) -> { family: 'inet4'|'inet6', host, port } | { family: 'unix', path } */
static napi_value local_address(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int32_t fd;
  if (!arg_int(env, argv[0], &fd)) return throw_type(env, "localAddress(fd)");
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return throw_errno(env, errno, "getsockname");
  napi_value result;
  napi_create_object(env, &result);
  char host[INET6_ADDRSTRLEN];
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    set_string(env, result, "family", "inet4");
    set_string(env, result, "host", host);
    set_int(env, result, "port", ntohs(sin->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
    set_string(env, result, "family", "inet6");
    set_string(env, result, "host", host);
    set_int(env, result, "port", ntohs(sin6->sin6_port));
  } else if (ss.ss_family == AF_UNIX) {
    struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
    size_t max = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
    napi_value p;
    napi_create_string_utf8(env, sun->sun_path, strnlen(sun->sun_path, max), &p);
    set_string(env, result, "family", "unix");
    napi_set_named_property(env, result, "path", p);
  } else {
    set_string(env, result, "family", "other");
  }
  return result;
}

/* peerCredentials(fd) -> { uid, gid, pid }   pid is -1 where the kernel does not say. */
static napi_value peer_credentials(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int32_t fd;
  if (!arg_int(env, argv[0], &fd)) return throw_type(env, "peerCredentials(fd)");
  napi_value result;
  napi_create_object(env, &result);
#if defined(__linux__) /* LINUX: socket(7) SO_PEERCRED */
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return throw_errno(env, errno, "getsockopt");
  set_int(env, result, "uid", cred.uid);
  set_int(env, result, "gid", cred.gid);
  set_int(env, result, "pid", cred.pid);
#elif defined(__FreeBSD__) /* FREEBSD: unix(4) LOCAL_PEERCRED, a struct xucred */
  struct xucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED, &cred, &len) < 0) return throw_errno(env, errno, "getsockopt");
  if (cred.cr_version != XUCRED_VERSION) return throw_errno(env, EINVAL, "getsockopt");
  set_int(env, result, "uid", cred.cr_uid);
  set_int(env, result, "gid", cred.cr_ngroups > 0 ? cred.cr_groups[0] : -1);
#if __FreeBSD_version >= 1300030
  set_int(env, result, "pid", cred.cr_pid);
#else
  set_int(env, result, "pid", -1);
#endif
#else
#error "peer credentials are implemented for Linux and FreeBSD"
#endif
  return result;
}

/* ---- users and groups -------------------------------------------------------------------- */

static napi_value passwd_object(napi_env env, struct passwd *pw) {
  napi_value result, groups;
  napi_create_object(env, &result);
  set_string(env, result, "name", pw->pw_name);
  set_int(env, result, "uid", pw->pw_uid);
  set_int(env, result, "gid", pw->pw_gid);
  set_string(env, result, "home", pw->pw_dir);
  /* Supplementary groups, for dropping privileges the way login(1) would. */
  int n = 64;
  gid_t *list = NULL;
  for (;;) {
    gid_t *grown = realloc(list, sizeof(gid_t) * (size_t)n);
    if (!grown) break;
    list = grown;
    int count = n;
    if (getgrouplist(pw->pw_name, pw->pw_gid, list, &count) >= 0) {
      n = count;
      break;
    }
    if (n >= 65536) {
      n = 0;
      break;
    }
    n = count > n ? count : n * 2;
  }
  napi_create_array(env, &groups);
  for (int i = 0; list && i < n; i++) napi_set_element(env, groups, (uint32_t)i, make_int(env, list[i]));
  free(list);
  napi_set_named_property(env, result, "groups", groups);
  return result;
}

/* getpwnam_r and friends need a caller's buffer of unknown size: one lookup, by name or id. */
typedef int (*entry_lookup)(const char *name, unsigned id, void *entry, char *buf, size_t size, void **found);

static int user_by_name_or_id(const char *name, unsigned id, void *entry, char *buf, size_t size, void **found) {
  return name ? getpwnam_r(name, entry, buf, size, (struct passwd **)found) : getpwuid_r((uid_t)id, entry, buf, size, (struct passwd **)found);
}

static int group_by_name_or_id(const char *name, unsigned id, void *entry, char *buf, size_t size, void **found) {
  return name ? getgrnam_r(name, entry, buf, size, (struct group **)found) : getgrgid_r((gid_t)id, entry, buf, size, (struct group **)found);
}

/* Runs `lookup` with a buffer that doubles until the entry fits (up to 1 MiB). Returns the entry
 * or NULL; *buf must be freed by the caller either way. */
static void *lookup_entry(entry_lookup lookup, const char *name, unsigned id, void *entry, char **buf) {
  void *found = NULL;
  size_t size = 4096;
  int rc;
  *buf = NULL;
  do {
    char *grown = realloc(*buf, size);
    if (!grown) return NULL;
    *buf = grown;
    rc = lookup(name, id, entry, *buf, size, &found);
    size *= 2;
  } while (rc == ERANGE && size <= (1 << 20));
  return rc == 0 ? found : NULL;
}

/* The argument of lookupUser/lookupGroup: a name, or a numeric id. */
static int name_or_id(napi_env env, napi_value value, char *name, size_t size, unsigned *id, const char **which) {
  napi_valuetype t;
  napi_typeof(env, value, &t);
  if (t == napi_number) {
    int32_t n;
    if (!arg_int(env, value, &n) || n < 0) return 0;
    *id = (unsigned)n;
    *which = NULL;
    return 1;
  }
  if (arg_string(env, value, name, size, NULL) != 1) return 0;
  *which = name;
  return 1;
}

/* lookupUser(nameOrUid: string|number) -> { name, uid, gid, home, groups } | null */
static napi_value lookup_user(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  char name[256], *buf;
  const char *which;
  unsigned id = 0;
  if (!name_or_id(env, argv[0], name, sizeof name, &id, &which)) return throw_type(env, "lookupUser(name or uid)");
  struct passwd pw;
  struct passwd *found = lookup_entry(user_by_name_or_id, which, id, &pw, &buf);
  napi_value result;
  if (found) result = passwd_object(env, found);
  else napi_get_null(env, &result);
  free(buf);
  return result;
}

/* lookupGroup(nameOrGid) -> { name, gid } | null */
static napi_value lookup_group(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  char name[256], *buf;
  const char *which;
  unsigned id = 0;
  if (!name_or_id(env, argv[0], name, sizeof name, &id, &which)) return throw_type(env, "lookupGroup(name or gid)");
  struct group gr;
  struct group *found = lookup_entry(group_by_name_or_id, which, id, &gr, &buf);
  napi_value result;
  if (found) {
    napi_create_object(env, &result);
    set_string(env, result, "name", found->gr_name);
    set_int(env, result, "gid", found->gr_gid);
  } else {
    napi_get_null(env, &result);
  }
  free(buf);
  return result;
}

/* ---- module ------------------------------------------------------------------------------ */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"listenInet", NULL, listen_inet, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenUnix", NULL, listen_unix, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connect", NULL, connect_socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setBlocking", NULL, set_blocking, NULL, NULL, NULL, napi_enumerable, NULL},
      {"isNonBlocking", NULL, is_nonblocking, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setCloexec", NULL, set_cloexec, NULL, NULL, NULL, napi_enumerable, NULL},
      {"isCloexec", NULL, is_cloexec, NULL, NULL, NULL, napi_enumerable, NULL},
      {"cloexecFrom", NULL, cloexec_from, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stopListening", NULL, stop_listening, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pipe", NULL, make_pipe, NULL, NULL, NULL, napi_enumerable, NULL},
      {"localAddress", NULL, local_address, NULL, NULL, NULL, napi_enumerable, NULL},
      {"peerCredentials", NULL, peer_credentials, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lookupUser", NULL, lookup_user, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lookupGroup", NULL, lookup_group, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value max;
  napi_create_int32(env, (int32_t)sizeof(((struct sockaddr_un *)0)->sun_path) - 1, &max);
  napi_set_named_property(env, exports, "unixPathMax", max);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
