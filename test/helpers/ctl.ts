/** Runs the real sockvisorctl against a daemon's control socket, and checks what it printed. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, run, type RunResult } from './cli.js';

export const CTL = path.join(ROOT, 'dist/src/cli/sockvisorctl.js');

/** One sockvisorctl run against the control socket `sock`. */
export function ctl(sock: string, ...args: string[]): Promise<RunResult> {
  return run(process.execPath, [CTL, '-s', sock, ...args]);
}

export function lines(text: string): string[] {
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

/** A status line in supervisorctl's columns: name (33 wide), state (10 wide), description. */
export function statusLine(name: string, state: string, description: string): string {
  return (name.padEnd(33) + state.padEnd(10) + description).trimEnd();
}

/** A RUNNING line with this pid and a young uptime (under a minute: these daemons are fresh). */
export function runningLine(name: string, pid: unknown): RegExp {
  return new RegExp(`^${escape(name.padEnd(33) + 'RUNNING'.padEnd(10))}pid ${String(pid)}, uptime 0:00:[0-5]\\d$`);
}

export function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Checks a whole run: exit code, stdout lines (strings are exact, regexps match), and stderr. */
export function expectRun(r: RunResult, code: number, stdout: readonly (string | RegExp)[], stderr: readonly (string | RegExp)[] = [], what = ''): void {
  const context = `${what}\nexit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  assert.equal(r.code, code, `exit code; ${context}`);
  for (const [name, text, want] of [['stdout', r.stdout, stdout], ['stderr', r.stderr, stderr]] as const) {
    const got = lines(text);
    assert.equal(got.length, want.length, `${name} line count; ${context}`);
    want.forEach((w, i) => {
      if (typeof w === 'string') assert.equal(got[i], w, `${name} line ${i + 1}; ${context}`);
      else assert.match(got[i]!, w, `${name} line ${i + 1}; ${context}`);
    });
  }
}

/** Pids of the listed processes, as `status --json` reports them. */
export async function statusPids(sock: string): Promise<Record<string, number>> {
  const r = await ctl(sock, 'status', '--json');
  const parsed = JSON.parse(r.stdout) as { processes: { name: string; pid: number }[] };
  return Object.fromEntries(parsed.processes.map((p) => [p.name, p.pid]));
}

