/**
 * `npm run bench`: every bench, one after the other, each as a child process with `--json FILE`;
 * their figures go into BENCHMARKS.md at the repository root: sockvisord beside its baseline
 * (measured in the same run), the ratio, the machine and the exact command. Each child's own
 * report is printed as it runs.
 *
 *   npm run build && npm run bench [-- --quick]
 *
 * `--quick` cuts the repeats and durations (10 s CPU window instead of 60 s, 5 kills instead of
 * 20, ...) for trying it out; it writes BENCHMARKS.quick.md instead, so the committed file is
 * always from a full run. Every child cleans up after itself, also on SIGINT or SIGTERM, which
 * this script passes on to the running child before it exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureSupervisor, exitOf, procKb, realInterpreter, tryKill, withTimeout } from './common.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const quick = values.quick!;
const command = quick ? 'npm run bench -- --quick' : 'npm run bench';
const outFile = path.join(REPO, quick ? 'BENCHMARKS.quick.md' : 'BENCHMARKS.md');

interface Bench {
  readonly name: string;
  readonly script: string;
  readonly args: readonly string[];
}

const BENCHES: readonly Bench[] = [
  { name: 'config', script: 'config-load.js', args: ['--runs', quick ? '3' : '9'] },
  { name: 'bind', script: 'bind.js', args: ['--runs', quick ? '2' : '7'] },
  { name: 'runner', script: 'runner-startup.js', args: ['--runs', quick ? '5' : '20'] },
  { name: 'ctl', script: 'ctl.js', args: ['--runs', quick ? '5' : '20'] },
  { name: 'recovery', script: 'recovery.js', args: ['--kills', quick ? '5' : '20'] },
  { name: 'reload', script: 'reload.js', args: quick ? ['--restarts', '3', '--reloads', '2', '--services', '200'] : ['--restarts', '11', '--reloads', '5', '--services', '1000'] },
  { name: 'fleet', script: 'fleet.js', args: ['--services', '200', '--starts', quick ? '1' : '3', '--cpu-seconds', quick ? '10' : '60'] },
  { name: 'logs', script: 'log-capture.js', args: quick ? ['--mb', '50', '--runs', '2'] : ['--mb', '200', '--runs', '5'] },
];

// ---------------------------------------------------------------------------------------------
// Running the children; the one running now is stopped on the way out, whatever the way.

let current: ChildProcess | undefined;
/** Set by SIGINT or SIGTERM: no further bench starts. */
let stopping = false;
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sockvisor-bench-all-'));

async function stopCurrent(signal: NodeJS.Signals): Promise<void> {
  const child = current;
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  // The child's own handler stops what it started and removes its temp dir.
  tryKill(child.pid!, signal);
  await withTimeout(exitOf(child), 60_000, `${child.spawnargs[1]} exit after ${signal}`).catch(() => tryKill(child.pid!));
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stopping = true;
    console.error(`${signal}: stopping the running bench (it cleans up after itself)`);
    void stopCurrent(signal).finally(() => {
      rmSync(tmp, { recursive: true, force: true });
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  });
}

interface Outcome {
  readonly bench: Bench;
  readonly seconds: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly json?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function runBench(bench: Bench): Promise<Outcome> {
  const jsonFile = path.join(tmp, `${bench.name}.json`);
  const args = [path.join(HERE, bench.script), ...bench.args, '--json', jsonFile];
  console.log(`\n===== ${bench.name}: node dist/bench/${bench.script} ${bench.args.join(' ')} =====\n`);
  const start = performance.now();
  // stdout and stderr straight through: each bench's full report is part of this run's output.
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: REPO });
  current = child;
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(-1));
    child.once('exit', (c) => resolve(c));
  });
  current = undefined;
  const seconds = (performance.now() - start) / 1000;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(jsonFile, 'utf8'));
  } catch {
    json = undefined;
  }
  if (code !== 0 || json === undefined) return { bench, seconds, ok: false, error: `exit ${code}${json === undefined ? ', no figures written' : ''}` };
  return { bench, seconds, ok: true, json };
}

// ---------------------------------------------------------------------------------------------
// The machine.

function machine(): string[] {
  const cpus = os.cpus();
  const memGb = (procKb('/proc/meminfo', 'MemTotal') / 2 ** 20).toFixed(1);
  let kernel = `${os.type()} ${os.release()}`;
  try {
    kernel = readFileSync('/proc/version', 'utf8').trim();
  } catch {
    // os.release() it is
  }
  const py = (name: string) => {
    try {
      const p = realInterpreter(name);
      return `${name} → ${p.executable}, Python ${p.version}`;
    } catch {
      return `${name}: not found`;
    }
  };
  const sup = ensureSupervisor();
  const distro = /^PRETTY_NAME="?([^"\n]*)"?/m.exec((() => {
    try {
      return readFileSync('/etc/os-release', 'utf8');
    } catch {
      return '';
    }
  })())?.[1];
  return [
    `- CPU: ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown model'}`,
    `- memory: ${memGb} GiB (MemTotal)`,
    `- kernel: ${kernel}`,
    ...(distro ? [`- system: ${distro}`] : []),
    `- Node ${process.version}`,
    `- ${py('/usr/bin/python3')} (the services' interpreter in recovery, reload, fleet; the runner's default)`,
    `- ${py('python3')} (on PATH: the interpreter of bench:ctl and bench:recovery)`,
    `- supervisord ${sup.version} (${sup.supervisord}), Debian's \`supervisor\` package`,
    `- open-files limit: ${spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim()}`,
  ];
}

// ---------------------------------------------------------------------------------------------
// The report.

type Stats = { median: number; min: number; max: number };

const f1 = (n: number) => n.toFixed(n >= 100 ? 0 : 1);
const ms = (s: Stats) => `${f1(s.median)} ms (${f1(s.min)} to ${f1(s.max)})`;
const int = (n: number) => n.toLocaleString('en-US');
const megabytes = (kb: Stats) => `${(kb.median / 1024).toFixed(1)} MB (${(kb.min / 1024).toFixed(1)} to ${(kb.max / 1024).toFixed(1)})`;
const seconds = (s: Stats) => `${s.median.toFixed(2)} s (${s.min.toFixed(2)} to ${s.max.toFixed(2)})`;
const pct = (failed: number, requests: number) => `${((100 * failed) / Math.max(requests, 1)).toFixed(2)} %`;

interface Row {
  readonly figure: string;
  readonly ours: string;
  readonly theirs: string;
  readonly baseline: string;
  /** sockvisord ÷ baseline, or a word where a ratio means nothing (0 vs N). */
  readonly ratio: string;
  /** Whether sockvisord does worse here (higher time, memory, CPU, failures). */
  readonly worse: boolean;
}

function ratioRow(figure: string, ours: number, theirs: number, show: (n: number) => string, baseline: string, oursText?: string, theirsText?: string): Row {
  return { figure, ours: oursText ?? show(ours), theirs: theirsText ?? show(theirs), baseline, ratio: theirs === 0 ? '–' : `${(ours / theirs).toFixed(2)}×`, worse: ours > theirs };
}

function countRow(figure: string, ours: number, oursOf: number, theirs: number, theirsOf: number, baseline: string, what: string): Row {
  return {
    figure,
    ours: `${int(ours)} of ${int(oursOf)} ${what}${oursOf ? ` (${pct(ours, oursOf)})` : ''}`,
    theirs: `${int(theirs)} of ${int(theirsOf)} ${what}${theirsOf ? ` (${pct(theirs, theirsOf)})` : ''}`,
    baseline,
    ratio: ours === 0 && theirs === 0 ? 'both 0' : ours === 0 ? `0 vs ${int(theirs)}` : `${(ours / Math.max(theirs, 1)).toFixed(2)}×`,
    worse: ours > theirs,
  };
}

function rowsFor(o: Outcome): Row[] {
  const j = o.json;
  switch (o.bench.name) {
    case 'recovery': {
      const sup = `supervisord ${j.supervisord}, [program:web] server.py binding its own port, autorestart`;
      return [
        ratioRow(`crash-to-served p50, \`standby: true\` (${j.kills} SIGKILLs)`, j.standby.p50, j.supervisordSide.p50, (n) => `${f1(n)} ms`, sup),
        ratioRow('crash-to-served p90, `standby: true`', j.standby.p90, j.supervisordSide.p90, (n) => `${f1(n)} ms`, sup),
        ratioRow('crash-to-served p50, cold (no standby)', j.cold.p50, j.supervisordSide.p50, (n) => `${f1(n)} ms`, sup),
        ratioRow('crash-to-served p90, cold', j.cold.p90, j.supervisordSide.p90, (n) => `${f1(n)} ms`, sup),
        countRow('refused connections during recovery (standby + cold, all kills)', j.standby.refused + j.cold.refused, j.standby.attempts + j.cold.attempts, j.supervisordSide.refused, j.supervisordSide.attempts, sup, 'attempts'),
      ];
    }
    case 'reload': {
      const r = j.restart;
      const l = j.reload;
      return [
        countRow(`failed requests across ${j.restarts} restarts, ${j.clients} clients loading`, r.sockvisord.failed, r.sockvisord.requests, r.supervisord.failed, r.supervisord.requests, `supervisord ${j.supervisord}, \`supervisorctl restart web\``, 'requests'),
        countRow(`failed requests across ${j.restarts} reloads of a changed service, ${j.clients} clients loading`, l.sockvisord.failed, l.sockvisord.requests, l.supervisord.failed, l.supervisord.requests, 'supervisord: command line changed, `supervisorctl reread` + `supervisorctl update`', 'requests'),
        {
          ...ratioRow('requests served per second by the one server process during the restart load', r.sockvisord.requests / r.sockvisord.seconds, r.supervisord.requests / r.supervisord.seconds, (n) => `${n.toFixed(0)}/s`, 'the same server code, unsandboxed, under supervisord'),
          // Fewer is worse here.
          worse: r.sockvisord.requests / r.sockvisord.seconds < r.supervisord.requests / r.supervisord.seconds,
        },
        ratioRow('restart: client wall time (`sockvisorctl restart` vs `supervisorctl restart`)', r.sockvisord.clientMs.median, r.supervisord.clientMs.median, () => '', 'as above', ms(r.sockvisord.clientMs), ms(r.supervisord.clientMs)),
        ratioRow('reload: edit until the new process is RUNNING', l.sockvisord.clientMs.median, l.supervisord.clientMs.median, () => '', '`reread` + `update` until RUNNING', ms(l.sockvisord.clientMs), ms(l.supervisord.clientMs)),
        { figure: `reload planning with ${int(j.services)} services, one changed: plan + apply (${j.reloads} reloads)`, ours: ms(j.scale.planApply), theirs: '–', baseline: 'no baseline measured; target at most 100 ms', ratio: '–', worse: false },
        { figure: `… the same reload: config load, and \`sockvisorctl reload\` wall time`, ours: `load ${ms(j.scale.load)}; wall ${ms(j.scale.wall)}`, theirs: '–', baseline: '–', ratio: '–', worse: false },
        { figure: `… daemon RSS with ${int(j.services)} services running`, ours: `${(j.scale.rssKb / 1024).toFixed(0)} MB (all started in ${j.scale.startSeconds.toFixed(1)} s)`, theirs: '–', baseline: '–', ratio: '–', worse: false },
      ];
    }
    case 'ctl': {
      const c = Object.fromEntries(j.clients.map((x: Stats & { label: string }) => [x.label, x]));
      const sup = c['supervisorctl -c CONF status'];
      const base = `\`supervisorctl -c CONF status\` (${j.services} programs)`;
      return [
        ratioRow(`\`sockvisorctl -s SOCKET status\`, ${j.services} services, wall time`, c['sockvisorctl -s SOCKET status'].median, sup.median, () => '', base, ms(c['sockvisorctl -s SOCKET status']), ms(sup)),
        ratioRow('`sockvisorctl -c CONFIG status`, wall time', c['sockvisorctl -c CONFIG status'].median, sup.median, () => '', base, ms(c['sockvisorctl -c CONFIG status']), ms(sup)),
        { figure: '… for reference: `node -e 0`', ours: ms(c['node -e 0 (reference)']), theirs: '–', baseline: 'Node start-up, the floor of any Node client', ratio: '–', worse: false },
      ];
    }
    case 'fleet': {
      const s = j.sockvisord;
      const t = j.supervisordSide;
      const sup = `supervisord ${j.supervisord}, ${j.services} programs`;
      return [
        ratioRow(`time to start ${j.services} services, daemon spawn until all RUNNING (${j.starts} starts each)`, s.start.median, t.start.median, () => '', sup, seconds(s.start), seconds(t.start)),
        ratioRow(`daemon RSS with ${j.services} services running (at each start)`, s.rss.median, t.rss.median, () => '', sup, megabytes(s.rss), megabytes(t.rss)),
        ratioRow(`daemon CPU over ${j.cpuSeconds} s with ${j.services} idle services (utime+stime)`, s.idle.cpuSeconds, t.idle.cpuSeconds, (n) => `${n.toFixed(2)} s`, sup,
          `${s.idle.cpuSeconds.toFixed(2)} s (${s.idle.cpuPercent.toFixed(2)} % of a core)`, `${t.idle.cpuSeconds.toFixed(2)} s (${t.idle.cpuPercent.toFixed(2)} % of a core)`),
        ratioRow(`daemon wake-ups over the same ${j.cpuSeconds} s (context switches, all threads)`, s.idle.wakeupsPerSecond, t.idle.wakeupsPerSecond, (n) => `${n.toFixed(1)}/s`, sup,
          `${s.idle.wakeupsPerSecond.toFixed(1)}/s (${int(s.idle.voluntary)} voluntary, ${int(s.idle.nonvoluntary)} involuntary)`, `${t.idle.wakeupsPerSecond.toFixed(1)}/s (${int(t.idle.voluntary)} voluntary, ${int(t.idle.nonvoluntary)} involuntary)`),
      ];
    }
    case 'logs': {
      const mib = (j.bytes / 2 ** 20).toFixed(0);
      const show = (x: Stats & { mbPerSecond: number }) => `${ms(x)}, ${x.mbPerSecond.toFixed(0)} MB/s`;
      return [
        ratioRow(`log capture: ${mib} MiB of lines from a \`[/bin/cat, FILE]\` program until all in its log file`, j.sockvisord.median, j.cat.median, () => '', '`cat FILE > OUT`, same bytes, same file system', show(j.sockvisord), show(j.cat)),
        ratioRow('… the same capture beside supervisord\'s', j.sockvisord.median, j.supervisordSide.median, () => '', `supervisord ${j.supervisord}, stdout_logfile, maxbytes=0`, show(j.sockvisord), show(j.supervisordSide)),
      ];
    }
    case 'config':
      return [ratioRow(`config load and check, ${int(j.files)} service files`, j.sockvisor.median, j.baseline.median, () => '', 'bare `yaml` parsing of the same files', ms(j.sockvisor), ms(j.baseline))];
    case 'bind':
      return [ratioRow(`bind and listen ${int(j.sockets)} TCP sockets (fds before/held/after: ${j.fds.before}/${j.fds.held}/${j.fds.after})`, j.sockvisor.median, j.baseline.median, () => '', 'Node `net.Server.listen`, one at a time', ms(j.sockvisor), ms(j.baseline))];
    case 'runner':
      return [
        ratioRow('runner start, strict sandbox, until the first response byte', j.strict.median, j.baseline.median, () => '', `bare Python start-up: \`python3 -I -c "${j.baselineCode}"\``, ms(j.strict), ms(j.baseline)),
        ratioRow('runner start, `sandbox: off`', j.off.median, j.baseline.median, () => '', 'as above', ms(j.off), ms(j.baseline)),
      ];
    default:
      return [];
  }
}

const escape = (s: string) => s.replace(/\|/g, '\\|');

/** The 1-minute load average every 5 s through the run: other work on the machine skews every figure. */
const loadSamples: number[] = [];
const loadTimer = setInterval(() => loadSamples.push(os.loadavg()[0]!), 5000);
loadTimer.unref();

function loadLines(): string[] {
  if (loadSamples.length === 0) return [];
  const mean = loadSamples.reduce((a, b) => a + b, 0) / loadSamples.length;
  const max = Math.max(...loadSamples);
  const cores = os.cpus().length;
  const lines = [`- load average (1 min) during the run: mean ${mean.toFixed(1)}, max ${max.toFixed(1)}, on ${cores} cores (sampled every 5 s; the benches themselves add about 1 to 3)`];
  if (max > cores + 2) {
    lines.push('', `**The load average went above the core count during this run** (up to ${max.toFixed(1)} on ${cores} cores). The benches' own fleets (1,000 and 200 service processes starting at once) raise it that far by themselves; other work on the machine raises it further. Figures taken under load are slower and noisier; the two sides of a row were measured under the same conditions, so the ratios are the figures to read.`);
  }
  return lines;
}

function report(outcomes: readonly Outcome[], startedAt: Date, totalSeconds: number, machineLines: readonly string[]): string {
  const rows: Row[] = [];
  const failures: string[] = [];
  for (const o of outcomes) {
    if (!o.ok) {
      failures.push(`- \`node dist/bench/${o.bench.script} ${o.bench.args.join(' ')}\` failed (${o.error}); see the run's output`);
      continue;
    }
    rows.push(...rowsFor(o));
  }
  const notes = outcomes.flatMap((o) => (o.ok && Array.isArray(o.json.notes) ? o.json.notes.map((n: string) => `- ${o.bench.name}: ${n}`) : []));
  const worse = rows.filter((r) => r.worse);
  return [
    '# Benchmarks',
    '',
    `Generated by \`${command}\` (after \`npx tsc -p tsconfig.json\`) on ${startedAt.toISOString().replace('T', ' ').slice(0, 19)} UTC; the whole run took ${(totalSeconds / 60).toFixed(1)} minutes.`,
    quick ? '\n**This is a `--quick` run: fewer repeats and shorter windows. The committed BENCHMARKS.md comes from a full run.**\n' : '',
    'Every figure was measured in this one run, sockvisord and its baseline side by side (one after the other, or at once where said), on this machine:',
    '',
    ...machineLines,
    ...loadLines(),
    '',
    'Timings are medians over the repeats, with min to max in parentheses. The ratio is sockvisord ÷ baseline: below 1 is sockvisord faster, smaller or fewer.',
    '',
    '| figure | sockvisord | baseline | baseline is | ratio |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${escape(r.figure)} | ${escape(r.ours)} | ${escape(r.theirs)} | ${escape(r.baseline)} | ${r.ratio}${r.worse ? ' (worse)' : ''} |`),
    '',
    '## Where sockvisord does worse than its baseline',
    '',
    ...(worse.length === 0 ? ['Nowhere in this run.'] : worse.map((r) => `- ${r.figure}: ${r.ours} against ${r.theirs} (${r.baseline}).`)),
    ...explanations(outcomes),
    '',
    '## How each figure is measured',
    '',
    ...outcomes.map((o) => `- **${o.bench.name}**: \`node dist/bench/${o.bench.script} ${o.bench.args.join(' ')}\`, ${o.seconds.toFixed(0)} s. ${HOW[o.bench.name] ?? ''}`),
    '',
    ...(failures.length > 0 ? ['## Failures', '', ...failures, ''] : []),
    ...(notes.length > 0 ? ['## Noticed during the run', '', ...notes, ''] : []),
  ].join('\n');
}

/** What a reader needs to know about the figures where sockvisord does worse, from what they are. */
function explanations(outcomes: readonly Outcome[]): string[] {
  const out: string[] = [];
  const fleet = outcomes.find((o) => o.ok && o.bench.name === 'fleet')?.json;
  if (fleet && fleet.sockvisord.rss.median > fleet.supervisordSide.rss.median) {
    out.push('', 'The daemon RSS is a Node process (V8 heap, pino, the native addon) against a Python one; it is the daemon alone, not its children.');
  }
  const logs = outcomes.find((o) => o.ok && o.bench.name === 'logs')?.json;
  if (logs && logs.sockvisord.median > logs.supervisordSide.median) {
    out.push('', 'Log capture: sockvisord reads each pipe and writes whole lines (never a cut line, never two replicas\' lines mixed, back-pressure instead of dropping), in its JavaScript event loop; supervisord copies what it reads in chunks. The sockvisord figure also includes the runner\'s start (a Python interpreter that applies the sandbox, then executes /bin/cat), which supervisord does not have.');
  }
  const reload = outcomes.find((o) => o.ok && o.bench.name === 'reload')?.json;
  if (reload && reload.scale.planApply.median > 100) {
    out.push('', `Reload planning has no baseline, but its target is plan + apply at most 100 ms (median) with ${int(reload.services)} services; this run measured ${ms(reload.scale.planApply)}: over the target.`);
  }
  return out;
}

const HOW: Record<string, string> = {
  config: 'loadConfig() of 1,000 generated service files (tags, typed scalars, supervise keys, probes) against `YAML.parse` of the same files, alternating order, after a warm-up.',
  bind: "SocketRegistry.bindAll of 1,000 sockets on 127.0.0.1:0 against Node's net.Server, alternating, fd count checked before, held and after.",
  runner: "the seed's web.yaml launched on a held socket until the first response byte to a request already waiting in the backlog, against the bare interpreter importing the same modules.",
  ctl: 'wall time of the whole client process, spawn to exit, both daemons running 50 sleeping services, clients in rotating order, after a warm-up.',
  recovery: 'SIGKILL of the serving process, then GET / on a new connection every 2 ms after a failure until a complete response; sockvisord on a held socket (standby, then cold), supervisord with a server that binds its own port (SO_REUSEADDR); nearest-rank percentiles.',
  reload: '8 HTTP/1.0 clients loop GET / (new connection each) while the server is restarted (`sockvisorctl restart web`: a generation swap; `supervisorctl restart web`), then reloaded after a change (sockvisord: `gen: K` under args rewritten, `sockvisorctl reload`; supervisord: the command line changed, then `supervisorctl reread` and `supervisorctl update`, which is how supervisord applies a changed program; `supervisorctl reload` would restart every program). Then 1,000 sleeping services with a held socket each, one file changed, `sockvisorctl reload`; plan and apply times from the daemon\'s "reload done" line.',
  fleet: '200 services `import time; time.sleep(1e9)` (sockvisord: a held socket each, strict sandbox, start_seconds 1; supervisord: startsecs=1); start = daemon spawn until the daemon reported all RUNNING, 3 starts each (alternating which daemon goes first, each start in a fresh directory, stopped again before the next); RSS = VmRSS of the daemon process once all are RUNNING, at each start; the idle window from the last start; RSS = VmRSS of the daemon process; CPU = utime+stime from /proc/PID/stat over the window with both daemons idle side by side; wake-ups = voluntary + nonvoluntary context switches from /proc/PID/task/*/status.',
  logs: 'a file of numbered 67-byte lines; sockvisord: program service [/bin/cat, FILE] (strict sandbox, logs max_bytes 0) started by `sockvisorctl start`, from its STARTING log line until the log file size reaches the byte count; supervisord: the same program, from its "spawned" log line; baseline: /bin/cat FILE with stdout on OUT, spawn to exit; rotating order after a warm-up; the captured bytes are compared with the data.',
};

// ---------------------------------------------------------------------------------------------

const startedAt = new Date();
const t0 = performance.now();
const outcomes: Outcome[] = [];
try {
  // Installs supervisord first if missing, so no child races apt.
  const machineLines = machine();
  for (const bench of BENCHES) {
    if (stopping) break;
    outcomes.push(await runBench(bench));
  }
  // A signal's handler removes the temp dir and exits once the running bench has stopped.
  if (stopping) await new Promise(() => undefined);
  const total = (performance.now() - t0) / 1000;
  writeFileSync(outFile, `${report(outcomes, startedAt, total, machineLines)}\n`);
  console.log(`\n===== all: ${outcomes.filter((o) => o.ok).length}/${outcomes.length} benches ok in ${(total / 60).toFixed(1)} min; wrote ${path.relative(process.cwd(), outFile) || outFile} =====`);
  for (const o of outcomes) console.log(`  ${o.bench.name.padEnd(10)} ${o.ok ? 'ok    ' : 'FAILED'} ${o.seconds.toFixed(0).padStart(5)} s${o.error ? `  (${o.error})` : ''}`);
  if (outcomes.some((o) => !o.ok)) process.exitCode = 1;
} catch (e) {
  console.error(e instanceof Error ? `FAIL: ${e.message}` : e);
  process.exitCode = 1;
} finally {
  await stopCurrent('SIGTERM');
  await fs.rm(tmp, { recursive: true, force: true });
}
