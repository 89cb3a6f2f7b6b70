/**
 * The properties one fuzzed service file must have, checked against the real pipeline:
 * parseServiceFile + resolveService (with deterministic host facts) + planLaunch, and, for a
 * sample, loadConfig on a real file. Returns the violations found, never throws.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Diagnostic } from '../../src/config/diagnostics.js';
import type { HostFacts } from '../../src/config/host-facts.js';
import { LoadCache, loadConfig } from '../../src/config/load.js';
import { resolveService } from '../../src/config/resolve.js';
import { parseServiceFile } from '../../src/config/service.js';
import { planLaunch } from '../../src/supervise/launch-plan.js';

export const SHOWN = 'svc.yaml';

/** A host where every name means something fixed, so a case resolves the same everywhere. */
export const FAKE_FACTS: HostFacts = {
  pathKind: (p) => {
    if (/missing|nope/.test(p)) return 'missing';
    if (/secret/.test(p)) return 'unreadable';
    if (p.startsWith('/dev/')) return 'other';
    if (/\.[A-Za-z0-9]+$/.test(p) || p.startsWith('/usr/bin/')) return 'file';
    return 'directory';
  },
  hostAddresses: (h) => (h === 'db.internal' ? ['10.0.0.5'] : h === 'multi.internal' ? ['10.0.0.6', '10.0.0.7'] : h === 'localhost' ? ['127.0.0.1'] : { error: 'ENOTFOUND' }),
  python: (p) => (p === 'python2' ? { error: 'not a supported Python' } : { executable: '/usr/bin/python3.11', version: '3.11.2', stdlib: '/usr/lib/python3.11', dynload: '/usr/lib/python3.11/lib-dynload' }),
  user: (u) => (u === 'www' || u === 'nobody' ? { uid: 33, gid: 33, groups: [33] } : /^[0-9]+$/.test(u) ? { uid: Number(u), gid: Number(u), groups: [] } : undefined),
  group: (g) => (g === 'www' ? 33 : /^[0-9]+$/.test(g) ? Number(g) : undefined),
  executable: (name) => (name === 'missing' ? undefined : `/usr/bin/${name}`),
};

export interface CheckOutcome {
  readonly problems: string[];
  /** Whether the pure pipeline found errors. */
  readonly hadErrors: boolean;
  readonly planned: boolean;
  readonly loaderOk?: boolean;
}

function describeThrow(where: string, e: unknown): string {
  return `${where} threw: ${e instanceof Error ? (e.stack ?? e.message).split('\n').slice(0, 6).join('\n') : String(e)}`;
}

/** Position and message checks for every diagnostic, against the text as read. */
export function diagnosticProblems(where: string, diagnostics: readonly Diagnostic[], text: string): string[] {
  const problems: string[] = [];
  const lines = text.split('\n');
  for (const d of diagnostics) {
    const { line, col, file } = d.pos;
    const show = `${where}: ${d.severity} ${JSON.stringify(d.message).slice(0, 200)} at ${file}:${line}:${col}`;
    if (typeof d.message !== 'string' || d.message.trim() === '') problems.push(`${show}: empty message`);
    if (file !== SHOWN) problems.push(`${show}: file is not ${SHOWN}`);
    if (!Number.isInteger(line) || line < 1 || line > lines.length + 1) problems.push(`${show}: line out of range 1..${lines.length + 1}`);
    else if (!Number.isInteger(col) || col < 1) problems.push(`${show}: column below 1`);
    else {
      const lineLength = line <= lines.length ? lines[line - 1]!.length : 0;
      if (col > lineLength + 1) problems.push(`${show}: column beyond the end of line ${line} (length ${lineLength})`);
    }
  }
  return problems;
}

export function checkPure(text: string): CheckOutcome {
  const problems: string[] = [];
  let parsed;
  try {
    parsed = parseServiceFile(text, SHOWN, 'svc', '/srv/app');
  } catch (e) {
    return { problems: [describeThrow('parseServiceFile', e)], hadErrors: true, planned: false };
  }
  if (!parsed || !Array.isArray(parsed.diagnostics)) return { problems: ['parseServiceFile returned no diagnostics list'], hadErrors: true, planned: false };
  const diagnostics = [...parsed.diagnostics];
  problems.push(...diagnosticProblems('parse', parsed.diagnostics, text));
  let spec;
  if (parsed.service === undefined) {
    if (!parsed.diagnostics.some((d) => d.severity === 'error')) problems.push('parse: no service and no error diagnostic');
  } else {
    try {
      const resolved = resolveService(parsed.service, 'python3', FAKE_FACTS);
      problems.push(...diagnosticProblems('resolve', resolved.diagnostics, text));
      diagnostics.push(...resolved.diagnostics);
      spec = resolved.spec;
    } catch (e) {
      problems.push(describeThrow('resolveService', e));
      return { problems, hadErrors: true, planned: false };
    }
  }
  const hadErrors = diagnostics.some((d) => d.severity === 'error');
  let planned = false;
  if (!hadErrors) {
    if (spec === undefined) problems.push('no error diagnostics, but no spec');
    else {
      try {
        const plan = planLaunch(spec, { daemonPid: 1 });
        if (!Array.isArray(plan.argv) || plan.argv.length === 0 || !(plan.argdata instanceof Uint8Array)) problems.push('planLaunch returned an incomplete plan');
        planned = true;
      } catch (e) {
        problems.push(describeThrow('planLaunch', e));
      }
    }
  }
  return { problems, hadErrors, planned };
}

/** loadConfig on a real directory: the same file, read from disk with the host's real facts. */
export async function checkLoader(bytes: Uint8Array, dir: string, cache: LoadCache): Promise<{ problems: string[]; ok: boolean }> {
  const file = path.join(dir, SHOWN);
  await fs.writeFile(file, bytes);
  cache.parsed.clear();
  const problems: string[] = [];
  let result;
  try {
    result = await loadConfig({ serviceFiles: [file], displayPath: () => SHOWN, cache });
  } catch (e) {
    return { problems: [describeThrow('loadConfig', e)], ok: false };
  }
  const text = Buffer.from(bytes).toString('utf8');
  problems.push(...diagnosticProblems('loadConfig', result.diagnostics, text));
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  if (result.ok !== (errors.length === 0)) problems.push(`loadConfig: ok is ${result.ok} with ${errors.length} errors`);
  if (result.ok) {
    if (result.services.length !== 1) problems.push(`loadConfig: ok, but ${result.services.length} services`);
    for (const s of result.services) {
      try {
        planLaunch(s, { daemonPid: 1 });
      } catch (e) {
        problems.push(describeThrow('planLaunch (after loadConfig)', e));
      }
    }
  }
  return { problems, ok: result.ok };
}
