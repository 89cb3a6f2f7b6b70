/**
 * Loads the daemon config and its services directory into checked specs, reporting every problem
 * at once. The only I/O is reading files and asking the host about names (see host-probe.ts).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseAddress } from './address.js';
import { findBindConflicts } from './crosscheck.js';
import { defaultDaemonConfig, parseDaemonConfig, type DaemonConfig } from './daemon-config.js';
import { compareDiagnostics, error, hasErrors, warning, type Diagnostic } from './diagnostics.js';
import { fileStamp, HostProbeCache, probeHost, probeLibraries } from './host-probe.js';
import { RUNNER_PATH } from '../runner-path.js';
import { programFactRequests, resolveService } from './resolve.js';
import { classifyServiceFileName, parseServiceFile, type ParsedService, type ServiceSource } from './service.js';
import type { ServiceSpec } from './spec.js';

export interface LoadResult {
  readonly config: DaemonConfig;
  readonly services: readonly ServiceSpec[];
  /** Sorted by file and position; errors and warnings alike. */
  readonly diagnostics: readonly Diagnostic[];
  readonly ok: boolean;
}

export interface LoadOptions {
  /** The daemon config file. */
  readonly configFile?: string;
  /** Check these service files instead of the config's services directory. */
  readonly serviceFiles?: readonly string[];
  /** How file names appear in messages; by default relative to the working directory. */
  readonly displayPath?: (absolute: string) => string;
  /** What the last load found, so a reload re-does only what changed (the daemon keeps one). */
  readonly cache?: LoadCache;
}

/**
 * Results of the last load that the next one may reuse: a service file with the same text parses
 * the same, and an interpreter binary that has not changed answers the same.
 */
export class LoadCache {
  readonly parsed = new Map<string, { readonly text: string; readonly shown: string; readonly result: ParsedService }>();
  readonly host = new HostProbeCache();
  /** Library lists by interpreter and directories, with the stamps they were found under. */
  readonly libraries = new Map<string, { readonly stamp: string; readonly files: string[] }>();
}

export function relativeToCwd(absolute: string): string {
  const rel = path.relative(process.cwd(), absolute);
  return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? absolute : rel;
}

export async function loadConfig(options: LoadOptions): Promise<LoadResult> {
  const display = options.displayPath ?? relativeToCwd;
  const diagnostics: Diagnostic[] = [];

  let config: DaemonConfig;
  if (options.configFile !== undefined) {
    const file = path.resolve(options.configFile);
    const text = await readText(file, display(file), diagnostics);
    if (text === undefined) config = defaultDaemonConfig(path.dirname(file), file);
    else {
      const parsed = parseDaemonConfig(text, display(file), file);
      config = parsed.config;
      diagnostics.push(...parsed.diagnostics);
    }
  } else {
    config = defaultDaemonConfig(process.cwd(), undefined);
  }

  const files = options.serviceFiles?.map((f) => path.resolve(f)) ?? (await listServiceFiles(config.servicesDir, display, diagnostics));
  // Read in parallel: a thousand small files are a thousand round trips to the thread pool.
  const accepted: { file: string; shown: string; name: string; text: Promise<string | undefined> }[] = [];
  const sources: ServiceSource[] = [];
  const parseDiagnostics = new Map<ServiceSource, Diagnostic[]>();
  const seenNames = new Map<string, string>();
  for (const file of files) {
    const shown = display(file);
    const verdict = classifyServiceFileName(path.basename(file));
    if ('skip' in verdict) {
      diagnostics.push(warning({ file: shown, line: 1, col: 1 }, `skipped: ${verdict.skip}`));
      continue;
    }
    if ('invalid' in verdict) {
      diagnostics.push(error({ file: shown, line: 1, col: 1 }, verdict.invalid, 'rename the file, e.g. my-service.yaml'));
      continue;
    }
    const other = seenNames.get(verdict.name);
    if (other !== undefined) {
      diagnostics.push(error({ file: shown, line: 1, col: 1 }, `service name "${verdict.name}" is also used by ${other}`));
      continue;
    }
    seenNames.set(verdict.name, shown);
    accepted.push({ file, shown, name: verdict.name, text: readText(file, shown, diagnostics) });
  }
  for (const { file, shown, name, text: reading } of accepted) {
    const text = await reading;
    if (text === undefined) continue;
    const cached = options.cache?.parsed.get(file);
    const parsed = cached && cached.text === text && cached.shown === shown ? cached.result : parseServiceFile(text, shown, name, path.dirname(file));
    options.cache?.parsed.set(file, { text, shown, result: parsed });
    diagnostics.push(...parsed.diagnostics);
    // Positions show the display path; the spec keeps the real one for the daemon.
    if (parsed.service) {
      const source = { ...parsed.service, file };
      sources.push(source);
      parseDiagnostics.set(source, parsed.diagnostics.filter((d) => d.severity === 'warning'));
    }
  }

  const current = new Set(accepted.map((a) => a.file));
  if (options.cache) for (const file of options.cache.parsed.keys()) if (!current.has(file)) options.cache.parsed.delete(file);
  const facts = await probeHost(factRequests(sources, config), undefined, options.cache?.host);
  const services: ServiceSpec[] = [];
  for (const source of sources) {
    const resolved = resolveService(source, config.python, facts);
    diagnostics.push(...resolved.diagnostics);
    if (resolved.spec) {
      const parseWarnings = parseDiagnostics.get(source) ?? [];
      services.push({ ...resolved.spec, warnings: [...parseWarnings, ...resolved.spec.warnings].sort(compareDiagnostics) });
    }
  }
  await attachLibraries(services, options.cache);
  diagnostics.push(...findBindConflicts(services));
  diagnostics.sort(compareDiagnostics);
  return { config, services, diagnostics, ok: !hasErrors(diagnostics) };
}

/**
 * Fills in ServiceSpec.libraries for sandboxed runner services, one probe per distinct set. A
 * cached list is reused while the interpreter and the directories (their entries) are unchanged;
 * an extension module rewritten in place to load other libraries needs a daemon restart.
 */
async function attachLibraries(services: ServiceSpec[], cache: LoadCache | undefined): Promise<void> {
  const probes = new Map<string, Promise<string[]>>();
  const probe = async (python: string, dirs: string[], key: string): Promise<string[]> => {
    const stamp = (await Promise.all([python, ...dirs].map(fileStamp))).join(' ');
    const cached = cache?.libraries.get(key);
    if (cached && cached.stamp === stamp) return cached.files;
    const files = await probeLibraries(python, RUNNER_PATH, dirs);
    cache?.libraries.set(key, { stamp, files });
    return files;
  };
  for (let i = 0; i < services.length; i++) {
    const s = services[i]!;
    // Programs get the system's library directories instead (system grants).
    if (s.python === undefined || s.program !== undefined || s.supervise.sandbox === 'off') continue;
    const dirs = s.files.filter((f) => f.isDirectory).map((f) => f.path);
    const key = JSON.stringify([s.python.executable, dirs]);
    if (!probes.has(key)) probes.set(key, probe(s.python.executable, dirs, key));
    services[i] = { ...s, libraries: await probes.get(key)! };
  }
}

function factRequests(sources: readonly ServiceSource[], config: DaemonConfig) {
  const paths: string[] = [];
  const hosts: string[] = [];
  const executables: string[] = [];
  const pythons = new Set<string>();
  for (const s of sources) {
    pythons.add(s.supervise.python ?? config.python);
    const program = programFactRequests(s);
    paths.push(...program.paths);
    executables.push(...program.executables);
    if (s.supervise.directory !== '/') paths.push(s.supervise.directory);
    for (const { node } of s.fds) {
      if (node.fd.type === 'file') paths.push(node.fd.path);
      if (node.fd.type === 'socket') {
        const a = parseAddress(node.fd.address);
        if (typeof a !== 'string' && a.family === 'inet' && a.hostKind === 'name') hosts.push(a.host);
      }
    }
  }
  return { paths, hosts, pythons, executables };
}

async function readText(file: string, shown: string, diagnostics: Diagnostic[]): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    diagnostics.push(error({ file: shown, line: 1, col: 1 }, `cannot read: ${describeErrno(e)}`));
    return undefined;
  }
}

async function listServiceFiles(dir: string, display: (p: string) => string, diagnostics: Diagnostic[]): Promise<string[]> {
  try {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    return entries
      .filter((e) => !e.isDirectory())
      .map((e) => path.join(dir, e.name))
      .sort();
  } catch (e) {
    diagnostics.push(error({ file: display(dir), line: 1, col: 1 }, `cannot read the services directory: ${describeErrno(e)}`));
    return [];
  }
}

function describeErrno(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ENOENT': return 'no such file or directory';
    case 'EACCES': return 'permission denied';
    case 'EISDIR': return 'is a directory';
    case 'ENOTDIR': return 'not a directory';
    default: return err.message;
  }
}
