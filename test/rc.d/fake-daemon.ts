/**
 * A stand-in for FreeBSD's daemon(8), for testing rc.d scripts on Linux: the options rc.d
 * scripts use, with daemon(8)'s behaviour where a script can get it wrong.
 *
 *   daemon [-f] [-S] [-T tag] [-o file] [-P supervisor_pidfile] [-p child_pidfile] [-r] [-R secs] command ...
 *
 * - It detaches: the caller gets its exit status at once.
 * - The supervisor retitles itself `daemon: COMMAND[PID] (daemon)`, as setproctitle(3) shows it.
 * - SIGHUP to the supervisor is ignored (daemon(8) without -H).
 * - SIGTERM to the supervisor goes to the child, and the supervisor exits once the child has;
 *   with -r, a child that exits for any other reason is started again after -R seconds (1).
 * - Output goes to -o FILE, or with -S to the file FAKE_SYSLOG names (syslog here), each line
 *   prefixed with the -T tag.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

interface Options {
  syslog: boolean;
  tag: string;
  output: string | undefined;
  supervisorPidfile: string | undefined;
  childPidfile: string | undefined;
  restart: boolean;
  restartDelayS: number;
  command: string[];
}

function parse(args: string[]): Options {
  const o: Options = { syslog: false, tag: 'daemon', output: undefined, supervisorPidfile: undefined, childPidfile: undefined, restart: false, restartDelayS: 1, command: [] };
  let i = 0;
  const value = () => {
    const v = args[++i];
    if (v === undefined) usage();
    return v!;
  };
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-') || a === '-') break;
    if (a === '--') {
      i++;
      break;
    }
    switch (a) {
      case '-f': break;
      case '-S': o.syslog = true; break;
      case '-T': o.tag = value(); o.syslog = true; break;
      case '-o': o.output = value(); break;
      case '-P': o.supervisorPidfile = value(); break;
      case '-p': o.childPidfile = value(); break;
      case '-r': o.restart = true; break;
      case '-R': o.restartDelayS = Number(value()); o.restart = true; break;
      default: usage();
    }
  }
  o.command = args.slice(i);
  if (o.command.length === 0) usage();
  return o;
}

function usage(): never {
  process.stderr.write('usage: daemon [-f] [-S] [-T tag] [-o file] [-P supervisor_pidfile] [-p child_pidfile] [-r] [-R secs] command arguments ...\n');
  process.exit(1);
}

const SUPERVISE = '--fake-daemon-supervise';

if (process.argv[2] !== SUPERVISE) {
  const options = parse(process.argv.slice(2));
  // Detach as daemon(3) does: a new session, no terminal, the caller returns at once.
  const supervisor = spawn(process.execPath, [process.argv[1]!, SUPERVISE, ...process.argv.slice(2)], { detached: true, stdio: 'ignore' });
  supervisor.unref();
  void options;
  process.exit(0);
} else {
  supervise(parse(process.argv.slice(3)));
}

function supervise(o: Options): void {
  const sink = o.output ?? (o.syslog ? process.env['FAKE_SYSLOG'] ?? '/dev/null' : '/dev/null');
  const out = fs.openSync(sink, 'a');
  const prefix = o.output === undefined && o.syslog ? `${o.tag}: ` : '';
  if (o.supervisorPidfile) fs.writeFileSync(o.supervisorPidfile, `${process.pid}\n`);
  let child: ChildProcess | undefined;
  let terminating = false;

  const start = () => {
    child = spawn(o.command[0]!, o.command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const c = child;
    process.title = `daemon: ${o.command[0]}[${c.pid}] (daemon)`;
    if (o.childPidfile && c.pid !== undefined) fs.writeFileSync(o.childPidfile, `${c.pid}\n`);
    for (const stream of [c.stdout!, c.stderr!]) {
      let rest = '';
      stream.on('data', (d: Buffer) => {
        const lines = (rest + d.toString()).split('\n');
        rest = lines.pop()!;
        for (const line of lines) fs.writeSync(out, `${prefix}${line}\n`);
      });
    }
    c.once('exit', () => {
      if (o.childPidfile) fs.rmSync(o.childPidfile, { force: true });
      if (!terminating && o.restart) {
        setTimeout(start, o.restartDelayS * 1000);
        return;
      }
      if (o.supervisorPidfile) fs.rmSync(o.supervisorPidfile, { force: true });
      process.exit(0);
    });
  };

  process.on('SIGHUP', () => {});
  process.on('SIGTERM', () => {
    terminating = true;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    else {
      if (o.supervisorPidfile) fs.rmSync(o.supervisorPidfile, { force: true });
      process.exit(0);
    }
  });
  start();
}
