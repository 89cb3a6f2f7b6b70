/** The loader's side effects: stat paths, resolve host names, ask interpreters where they live. */
import { execFile } from 'node:child_process';
import dns from 'node:dns/promises';
import fs from 'node:fs/promises';
import path from 'node:path';
import { native } from '../sockets/native.js';
import type { HostFacts, PathKind, UserFacts } from './host-facts.js';
import type { PythonInfo } from './spec.js';
import { runnerInvocation } from '../runner-path.js';

export interface FactRequests {
  readonly paths: Iterable<string>;
  readonly hosts: Iterable<string>;
  readonly pythons: Iterable<string>;
  /** Programs named without a path, to look up in PATH. */
  readonly executables?: Iterable<string>;
}

/** Interpreter answers from earlier loads, each with the stamp of the binary that gave it. */
export class HostProbeCache {
  readonly pythons = new Map<string, { readonly exe: string; readonly stamp: string; readonly info: PythonInfo }>();
}

/** Identifies a file's current content well enough to tell a replaced binary or directory. */
export async function fileStamp(file: string): Promise<string> {
  try {
    const st = await fs.stat(file);
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

/** Looks everything up in parallel, once per distinct name, and answers from the results. */
export async function probeHost(requests: FactRequests, envPath = process.env['PATH'] ?? '', cache?: HostProbeCache): Promise<HostFacts> {
  const pythons = new Map<string, PythonInfo | { error: string }>();
  await Promise.all([...new Set(requests.pythons)].map(async (p) => pythons.set(p, await probePythonCached(p, envPath, cache))));
  // Interpreter trees are statted too, so mapping can tell whether a CloudABI path exists here.
  const pathSet = new Set(requests.paths);
  for (const info of pythons.values()) {
    if (!('error' in info)) {
      pathSet.add(info.stdlib);
      if (info.dynload) pathSet.add(info.dynload);
    }
  }
  const paths = new Map<string, PathKind>();
  const hosts = new Map<string, readonly string[] | { error: string }>();
  const executables = new Map<string, string | undefined>();
  await Promise.all([
    ...[...new Set(requests.executables ?? [])].map(async (name) => executables.set(name, await findInPath(name, envPath))),
    ...[...pathSet].map(async (p) => paths.set(p, await probePath(p))),
    ...[...new Set(requests.hosts)].map(async (h) => hosts.set(h, await probeHostName(h))),
  ]);
  return {
    pathKind: (p) => paths.get(p) ?? 'missing',
    hostAddresses: (h) => hosts.get(h) ?? { error: 'not looked up' },
    python: (p) => pythons.get(p) ?? { error: 'not looked up' },
    user: lookupUser,
    group: lookupGroup,
    executable: (name) => executables.get(name),
  };
}

// getpwnam(3) and getgrnam(3) through the addon, so NSS sources (LDAP, NIS) count as well.
function lookupUser(nameOrId: string): UserFacts | undefined {
  const entry = native.lookupUser(/^[0-9]+$/.test(nameOrId) ? Number(nameOrId) : nameOrId);
  if (entry) return { uid: entry.uid, gid: entry.gid, groups: entry.groups };
  // A bare uid with no passwd entry is still a valid identity to run as.
  return /^[0-9]+$/.test(nameOrId) ? { uid: Number(nameOrId), gid: Number(nameOrId), groups: [] } : undefined;
}

function lookupGroup(nameOrId: string): number | undefined {
  if (/^[0-9]+$/.test(nameOrId)) return Number(nameOrId);
  return native.lookupGroup(nameOrId)?.gid;
}

export async function probePath(p: string): Promise<PathKind> {
  try {
    const st = await fs.stat(p);
    if (st.isDirectory()) return 'directory';
    return st.isFile() ? 'file' : 'other';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'EACCES' || code === 'EPERM' ? 'unreadable' : 'missing';
  }
}

async function probeHostName(host: string): Promise<readonly string[] | { error: string }> {
  try {
    const found = await dns.lookup(host, { all: true, verbatim: true });
    return [...new Set(found.map((a) => a.address))];
  } catch (e) {
    return { error: (e as NodeJS.ErrnoException).code ?? String(e) };
  }
}

/**
 * The library files that the extension modules in `directories` load, as the runner's own probe
 * finds them (Linux; elsewhere the sandbox needs no such list). Asked once per interpreter and
 * set of directories.
 */
export async function probeLibraries(python: string, runner: string, directories: readonly string[]): Promise<string[]> {
  if (process.platform !== 'linux' || directories.length === 0) return [];
  return new Promise((resolve) => {
    // Run as the services run it, which also leaves the runner's bytecode cache for them.
    execFile(python, ['-I', '-S', ...runnerInvocation(runner), '--probe-libraries', ...directories], { timeout: 20_000, env: {} }, (err, stdout) => {
      try {
        resolve(err ? [] : (JSON.parse(stdout) as string[]));
      } catch {
        resolve([]);
      }
    });
  });
}

/** A bare name is looked up in PATH once, at load, like a shell would. */
export async function findInPath(name: string, envPath: string): Promise<string | undefined> {
  if (name.startsWith('/')) return name;
  for (const dir of envPath.split(':')) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      await fs.access(candidate, fs.constants.X_OK);
      if ((await fs.stat(candidate)).isFile()) return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

// Asks the interpreter itself, since shims (pyenv) and venvs put the real tree elsewhere.
const PYTHON_QUERY = [
  'import json, os, sys, sysconfig',
  'd = sysconfig.get_config_var("DESTSHARED")',
  'p = os.path.join(sysconfig.get_path("platstdlib"), "lib-dynload")',
  'print(json.dumps({"executable": os.path.realpath(sys.executable), "version": "%d.%d.%d" % sys.version_info[:3],',
  '  "stdlib": sysconfig.get_path("stdlib"), "dynload": d if d and os.path.isdir(d) else (p if os.path.isdir(p) else None)}))',
].join('\n');

/**
 * Asking an interpreter costs a process start, so a reload reuses the answer while the binary
 * found in PATH is the same file, unchanged, and is itself the interpreter. A shim (pyenv) or a
 * wrapper script may pick another interpreter at any time, so those are asked every time.
 */
async function probePythonCached(nameOrPath: string, envPath: string, cache: HostProbeCache | undefined): Promise<PythonInfo | { error: string }> {
  const exe = await findInPath(nameOrPath, envPath);
  if (exe === undefined || cache === undefined) return probePython(nameOrPath, envPath);
  const stamp = await fileStamp(exe);
  const cached = cache.pythons.get(nameOrPath);
  if (cached && cached.exe === exe && cached.stamp === stamp) return cached.info;
  const info = await probePython(nameOrPath, envPath);
  const real = await fs.realpath(exe).catch(() => exe);
  if ('error' in info || real !== info.executable) cache.pythons.delete(nameOrPath);
  else cache.pythons.set(nameOrPath, { exe, stamp, info });
  return info;
}

async function probePython(nameOrPath: string, envPath: string): Promise<PythonInfo | { error: string }> {
  const exe = await findInPath(nameOrPath, envPath);
  if (exe === undefined) return { error: `not found in PATH (${envPath})` };
  return new Promise((resolve) => {
    execFile(exe, ['-I', '-S', '-c', PYTHON_QUERY], { timeout: 10_000, env: { PATH: envPath } }, (err, stdout, stderr) => {
      if (err) {
        const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (stderr.trim().split('\n').pop() || err.message);
        resolve({ error: `cannot run ${exe}: ${why}` });
        return;
      }
      try {
        const info = JSON.parse(stdout) as { executable: string; version: string; stdlib: string; dynload: string | null };
        const [major, minor] = info.version.split('.').map(Number);
        if (major !== 3 || minor! < 8) {
          resolve({ error: `${exe} is Python ${info.version}; the runner needs CPython 3.8 or newer` });
          return;
        }
        resolve({ executable: info.executable, version: info.version, stdlib: info.stdlib, dynload: info.dynload ?? undefined });
      } catch {
        resolve({ error: `${exe} did not answer like a Python interpreter` });
      }
    });
  });
}
