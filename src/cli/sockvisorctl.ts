#!/usr/bin/env node
/**
 * sockvisorctl: controls a running sockvisord over its control socket, the way supervisorctl
 * controls supervisord: the same commands, output layout and exit codes. With no command it is an
 * interactive shell (ctl-shell.ts) whose lines go through the same commands as the command line.
 *
 * Startup time matters (it is compared with supervisorctl's), so only commander, the control
 * client and the formatter are loaded up front; the shell and the YAML config parser on demand.
 */
import { createRequire } from 'node:module';
import type * as CommanderModule from 'commander';
import { ControlClient, ControlConfigError, ControlError, ControlUnreachable, locateControlSocket } from '../control/client.js';
import {
  EXIT,
  formatActionResults,
  formatAvail,
  formatChanges,
  formatPid,
  formatStatus,
  namesForCompletion,
  noSuchProcess,
  type ActionResult,
  type AvailResult,
  type ChangesResult,
  type Formatted,
  type PidResult,
  type StatusResult,
} from './ctl-format.js';
import { VERSION } from '../version.js';

// commander is CommonJS: required directly, it skips the ESM loader's scan of its exports, which
// is a noticeable part of a one-shot command's start-up.
const { Argument, Command, CommanderError, InvalidArgumentError, Option } = createRequire(import.meta.url)('commander') as typeof CommanderModule;
type Command = CommanderModule.Command;

/** What the commands share: where the socket is, and how a command may be interrupted. */
interface Context {
  /** Running inside the interactive shell. */
  readonly shell: boolean;
  /** Aborted by Ctrl-C in the shell; undefined on the command line. */
  readonly signal: AbortSignal | undefined;
  readonly socketPath: () => Promise<string>;
  exitCode: number;
}

function print(lines: readonly string[]): void {
  if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
}

function printError(line: string): void {
  process.stderr.write(line + '\n');
}

function show(f: Formatted): number {
  print(f.lines);
  return f.exitCode;
}

function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/**
 * Runs `fn` on a fresh connection and turns every way of failing into supervisorctl's output and
 * exit code. `name` is what a NO_SUCH_PROCESS error is about, for commands naming one process.
 */
async function withClient(ctx: Context, fn: (client: ControlClient) => Promise<number>, name?: string): Promise<void> {
  let socketPath: string;
  try {
    socketPath = await ctx.socketPath();
  } catch (e) {
    if (!(e instanceof ControlConfigError)) throw e;
    printError(`sockvisorctl: ${e.message}`);
    ctx.exitCode = EXIT.FAILED;
    return;
  }
  const client = new ControlClient(socketPath);
  try {
    ctx.exitCode = await fn(client);
  } catch (e) {
    ctx.exitCode = reportFailure(e, socketPath, name);
  } finally {
    client.close();
  }
}

function reportFailure(e: unknown, socketPath: string, name: string | undefined): number {
  if (e instanceof ControlUnreachable) {
    printError(`sockvisorctl: ${e.message}`);
    return EXIT.UNREACHABLE;
  }
  if (!(e instanceof ControlError)) throw e;
  switch (e.code) {
    case 'FORBIDDEN':
      printError(`sockvisorctl: cannot reach sockvisord at ${socketPath}: permission denied (${e.message})`);
      return EXIT.UNREACHABLE;
    case 'CANCELLED':
      printError('interrupted');
      return EXIT.FAILED;
    case 'NO_SUCH_PROCESS':
      if (name !== undefined) {
        print([noSuchProcess(name)]);
        return EXIT.FAILED;
      }
      break;
  }
  printError(`sockvisorctl: ERROR (${e.message})`);
  return EXIT.FAILED;
}

const requestOptions = (ctx: Context) => (ctx.signal ? { signal: ctx.signal } : {});

function lineCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a whole number of lines');
  return n;
}

/** On the command line, Ctrl-C ends a `tail -f` cleanly; the shell has its own Ctrl-C. */
function interruptible(ctx: Context): { signal: AbortSignal; dispose(): void } {
  if (ctx.signal) return { signal: ctx.signal, dispose() {} };
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.on('SIGINT', onSigint);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', onSigint) };
}

async function tail(ctx: Context, cmd: 'tail' | 'maintail', args: Record<string, unknown>, follow: boolean, name?: string): Promise<void> {
  await withClient(
    ctx,
    async (client) => {
      if (!follow) {
        const r = await client.request<{ text?: string }>(cmd, args, requestOptions(ctx));
        process.stdout.write(r.text ?? '');
        return EXIT.OK;
      }
      const interrupt = interruptible(ctx);
      // Only once connected: with the daemon gone, the one line naming the socket is all there is.
      await client.connect();
      process.stderr.write('==> Press Ctrl-C to exit <==\n');
      try {
        await client.stream(cmd, { ...args, follow: true }, (text) => process.stdout.write(text), { signal: interrupt.signal });
      } finally {
        interrupt.dispose();
      }
      return EXIT.OK;
    },
    name,
  );
}

/** The commands, for the command line (`shell` false) or one shell line. */
function buildProgram(ctx: Context): Command {
  const program = new Command('sockvisorctl');
  program.description('Control a running sockvisord, as supervisorctl controls supervisord.\nWith no command, an interactive shell.');
  if (ctx.shell) {
    // Inherited by the commands below: a mistake or `help` must not end the shell.
    program.exitOverride();
    program.addHelpText('after', '\nIn this shell, quit or exit (or Ctrl-D) leaves, Tab completes commands and names,\nand Ctrl-C ends tail -f.');
  } else {
    program
      .version(VERSION, '-V, --version', 'print the version of sockvisorctl')
      .option('-c, --config <file>', 'the daemon config, to find the control socket in (default: /etc/sockvisor.yaml; /usr/local/etc/sockvisor.yaml on FreeBSD)')
      .option('-s, --socket <path>', 'the control socket itself (wins over -c)');
  }
  program.helpCommand('help [command]', 'show help for a command');

  const names = (verb: string) => new Argument('<NAME...>', `processes to ${verb}: all, a service (web), a process (web:0) or a glob (web*)`);

  program
    .command('status')
    .description('show the status of processes (all by default)')
    .argument('[NAME...]', 'all, a service (web), a process (web:0) or a glob (web*)')
    .option('--json', 'print the result as JSON')
    .action((list: string[], opts: { json?: boolean }) =>
      withClient(ctx, async (client) => {
        const r = await client.request<StatusResult>('status', list.length > 0 ? { names: list } : {}, requestOptions(ctx));
        const f = formatStatus(r);
        if (opts.json) {
          printJson(r);
          return f.exitCode;
        }
        return show(f);
      }),
    );

  const action = (cmd: 'start' | 'stop' | 'clear', verb: string, description: string) =>
    program
      .command(cmd)
      .description(description)
      .addArgument(names(cmd))
      .action((list: string[]) =>
        withClient(ctx, async (client) => show(formatActionResults(await client.request<ActionResult>(cmd, { names: list }, requestOptions(ctx)), verb))),
      );
  action('start', 'started', 'start processes');
  action('stop', 'stopped', 'stop processes');

  program
    .command('restart')
    .description('replace processes: each new one starts before the old one stops')
    .addArgument(names('restart'))
    .option('--hard', 'stop first, then start (for programs that cannot run twice at once)')
    .action((list: string[], opts: { hard?: boolean }) =>
      withClient(ctx, async (client) => {
        const args = opts.hard ? { names: list, hard: true } : { names: list };
        return show(formatActionResults(await client.request<ActionResult>('restart', args, requestOptions(ctx)), 'restarted'));
      }),
    );

  program
    .command('signal')
    .description('send a signal to processes')
    .argument('<SIG>', 'a signal name or number: HUP, SIGUSR1, ...')
    .addArgument(names('signal'))
    .action((sig: string, list: string[]) =>
      withClient(ctx, async (client) =>
        show(formatActionResults(await client.request<ActionResult>('signal', { signal: /^[a-z0-9]+$/i.test(sig) ? sig.toUpperCase() : sig, names: list }, requestOptions(ctx)), 'signalled')),
      ),
    );

  program
    .command('pid')
    .description("print a process's pid, or the daemon's without a name")
    .argument('[NAME]', 'a process (web:0) or a service')
    .option('--json', 'print the result as JSON')
    .action((name: string | undefined, opts: { json?: boolean }) =>
      withClient(ctx, async (client) => {
        const r = await client.request<PidResult>('pid', name !== undefined ? { name } : {}, requestOptions(ctx));
        const f = formatPid(r);
        if (opts.json) {
          printJson(r);
          return f.exitCode;
        }
        return show(f);
      }),
    );

  program
    .command('tail')
    .description("print the end of a process's log; -f keeps following it (Ctrl-C ends)")
    .argument('<NAME>', 'a process (web:0) or a service')
    .addArgument(new Argument('[stream]', 'which log').choices(['stdout', 'stderr']).default('stdout'))
    .option('-f, --follow', 'keep printing what is written')
    .addOption(new Option('-n, --lines <LINES>', 'how many lines').argParser(lineCount).default(10))
    .action((name: string, stream: string, opts: { follow?: boolean; lines: number }) => tail(ctx, 'tail', { name, stream, lines: opts.lines }, opts.follow === true, name));

  program
    .command('maintail')
    .description("print the end of the daemon's own log; -f keeps following it (Ctrl-C ends)")
    .option('-f, --follow', 'keep printing what is written')
    .addOption(new Option('-n, --lines <LINES>', 'how many lines').argParser(lineCount).default(10))
    .action((opts: { follow?: boolean; lines: number }) => tail(ctx, 'maintail', { lines: opts.lines }, opts.follow === true));

  action('clear', 'cleared', "clear processes' logs");

  program
    .command('avail')
    .description('list the configured services')
    .option('--json', 'print the result as JSON')
    .action((opts: { json?: boolean }) =>
      withClient(ctx, async (client) => {
        const r = await client.request<AvailResult>('avail', {}, requestOptions(ctx));
        if (opts.json) {
          printJson(r);
          return EXIT.OK;
        }
        return show(formatAvail(r));
      }),
    );

  program
    .command('reread')
    .description('reread the config and show what reload would change (changes nothing)')
    .option('--json', 'print the result as JSON')
    .action((opts: { json?: boolean }) =>
      withClient(ctx, async (client) => {
        const r = await client.request<ChangesResult>('reread', {}, requestOptions(ctx));
        const f = formatChanges(r);
        if (opts.json) {
          printJson(r);
          return f.exitCode;
        }
        return show(f);
      }),
    );

  program
    .command('reload')
    .description('reread the config and apply the changes')
    .action(() => withClient(ctx, async (client) => show(formatChanges(await client.request<ChangesResult>('reload', {}, requestOptions(ctx))))));

  program
    .command('shutdown')
    .description('stop every process, then the daemon')
    .action(() =>
      withClient(ctx, async (client) => {
        try {
          await client.request('shutdown', {}, requestOptions(ctx));
        } catch (e) {
          // The daemon going away before it answered is what was asked for.
          if (!(e instanceof ControlError && e.code === 'DISCONNECTED')) throw e;
        }
        print(['Shut down']);
        return EXIT.OK;
      }),
    );

  program
    .command('version')
    .description("print the daemon's version")
    .action(() =>
      withClient(ctx, async (client) => {
        const r = await client.request<{ version?: string }>('version', {}, requestOptions(ctx));
        print([String(r.version ?? '?')]);
        return EXIT.OK;
      }),
    );

  return program;
}

/** One shell line, through the same commands as the command line. */
async function runShellLine(words: string[], signal: AbortSignal, socketPath: () => Promise<string>, known: ReadonlySet<string>): Promise<number> {
  if (!known.has(words[0]!)) {
    print([`*** Unknown syntax: ${words.join(' ')}`]);
    return EXIT.FAILED;
  }
  const ctx: Context = { shell: true, signal, socketPath, exitCode: EXIT.OK };
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(words, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    throw e;
  }
  return ctx.exitCode;
}

async function main(): Promise<void> {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0); // `sockvisorctl tail -f web | head`
    throw e;
  });
  let located: Promise<string> | undefined;
  const socketPath = () =>
    (located ??= locateControlSocket(program.opts<{ config?: string; socket?: string }>()).then(({ socketPath, warnings }) => {
      for (const w of warnings) printError(`sockvisorctl: ${w}`);
      return socketPath;
    }));
  const ctx: Context = { shell: false, signal: undefined, socketPath, exitCode: EXIT.OK };
  const program = buildProgram(ctx);
  // No command: the shell. Set after the commands so they do not inherit it.
  program.allowExcessArguments(true).action(async () => {
    if (program.args.length > 0) program.error(`error: unknown command '${program.args[0]}' (see sockvisorctl help)`);
    const { runShell } = await import('./ctl-shell.js');
    const commands = buildProgram({ ...ctx, shell: true }).commands.map((c) => c.name());
    const known = new Set([...commands, 'help']);
    await runShell({
      commands: [...commands, 'help', 'quit', 'exit'],
      dispatch: (words, signal) => runShellLine(words, signal, socketPath, known),
      refreshNames: async () => {
        const client = new ControlClient(await socketPath(), { connectTimeoutMs: 1000 });
        try {
          return namesForCompletion(await client.request<StatusResult>('status'));
        } catch {
          return undefined;
        } finally {
          client.close();
        }
      },
    });
    ctx.exitCode = EXIT.OK; // the shell's own exit status, as supervisorctl's, is always 0
  });
  await program.parseAsync(process.argv);
  process.exitCode = ctx.exitCode;
}

await main();
