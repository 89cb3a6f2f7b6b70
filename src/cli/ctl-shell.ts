/**
 * sockvisorctl's interactive shell, as supervisorctl has one: a `sockvisor> ` prompt, history,
 * tab completion of commands and of process and service names. Each line is split into words and
 * handed to the same dispatcher the one-shot command line uses.
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

export const PROMPT = 'sockvisor> ';
export const HISTORY_SIZE = 1000;

export class ShellSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShellSyntaxError';
  }
}

interface Split {
  readonly words: string[];
  /** The word being typed at the end of the line ('' after whitespace). */
  readonly current: string;
  readonly openQuote: boolean;
}

function split(line: string): Split {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) word += line[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new ShellSyntaxError('a backslash ends the line');
      word += line[++i];
      inWord = true;
    } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  return { words: inWord || quote ? [...words, word] : words, current: inWord || quote ? word : '', openQuote: quote !== undefined };
}

/**
 * Shell words, as sh splits them: whitespace separates, 'single quotes' keep everything, "double
 * quotes" keep all but \" \\ \$ \`, and a backslash outside quotes takes the next character as is.
 */
export function splitShellWords(line: string): string[] {
  const s = split(line);
  if (s.openQuote) throw new ShellSyntaxError('a quote is not closed');
  return s.words;
}

/** For completion: the finished words before the cursor, and the one being typed. */
export function splitForCompletion(line: string): { words: string[]; current: string } {
  let s: Split;
  try {
    s = split(line);
  } catch {
    s = split(line.slice(0, -1)); // a trailing backslash: complete what is before it
  }
  const endsInWord = s.words.length > 0 && (s.openQuote || !/[ \t]$/.test(line));
  return endsInWord ? { words: s.words.slice(0, -1), current: s.current } : { words: s.words, current: '' };
}

export const SIGNAL_NAMES = ['HUP', 'INT', 'QUIT', 'KILL', 'USR1', 'USR2', 'TERM', 'STOP', 'CONT', 'WINCH'] as const;

/** What each argument position of a command completes to. */
type ArgKind = 'names' | 'signal' | 'stream' | 'command' | 'none';

function argKind(command: string, position: number): ArgKind {
  switch (command) {
    case 'status':
    case 'start':
    case 'stop':
    case 'restart':
    case 'clear':
      return 'names';
    case 'pid':
      return position === 0 ? 'names' : 'none';
    case 'signal':
      return position === 0 ? 'signal' : 'names';
    case 'tail':
      return position === 0 ? 'names' : position === 1 ? 'stream' : 'none';
    case 'help':
      return position === 0 ? 'command' : 'none';
    default:
      return 'none';
  }
}

/** Options that take a value, so the value is not counted as an argument. */
const OPTIONS_WITH_VALUE = new Set(['-n', '--lines']);

/** readline's completer: `[candidates, the text they replace]`; a unique candidate ends in a space. */
export function completeLine(line: string, commands: readonly string[], names: readonly string[]): [string[], string] {
  const { words, current } = splitForCompletion(line);
  const match = (candidates: readonly string[]): [string[], string] => {
    const hits = candidates.filter((c) => c.startsWith(current));
    // A unique completion is a finished word: the space after it saves a keystroke, as in sh.
    return [hits.length === 1 ? [`${hits[0]} `] : hits, current];
  };
  if (words.length === 0) return match(commands);
  const [command, ...rest] = words as [string, ...string[]];
  if (current.startsWith('-')) return [[], current];
  let position = 0;
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i]!;
    if (OPTIONS_WITH_VALUE.has(w)) {
      if (i === rest.length - 1) return [[], current]; // the option's value is being typed
      i++;
    } else if (!w.startsWith('-')) position++;
  }
  switch (argKind(command, position)) {
    case 'names':
      return match(names);
    case 'signal':
      return match(SIGNAL_NAMES);
    case 'stream':
      return match(['stdout', 'stderr']);
    case 'command':
      return match(commands.filter((c) => c !== 'quit' && c !== 'exit'));
    default:
      return [[], current];
  }
}

export function loadHistory(file: string | undefined): string[] {
  if (file === undefined) return [];
  try {
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
    return lines.slice(-HISTORY_SIZE).reverse(); // readline keeps the newest first
  } catch {
    return [];
  }
}

export function saveHistory(file: string | undefined, newestFirst: readonly string[]): void {
  if (file === undefined) return;
  try {
    const lines = newestFirst.slice(0, HISTORY_SIZE).reverse();
    fs.writeFileSync(file, lines.length > 0 ? lines.join('\n') + '\n' : '', { mode: 0o600 });
  } catch {
    // A read-only or missing home only costs the history.
  }
}

export function defaultHistoryFile(): string | undefined {
  const home = process.env['HOME'];
  return home ? path.join(home, '.sockvisorctl_history') : undefined;
}

export interface ShellHooks {
  /** Runs one command line (already split); the exit code is not the shell's business. */
  dispatch(words: string[], signal: AbortSignal): Promise<number>;
  /** Process and service names for completion, from the daemon; undefined when it cannot say. */
  refreshNames(): Promise<readonly string[] | undefined>;
  /** Command names for completion (help, quit and exit included). */
  readonly commands: readonly string[];
}

export interface ShellOptions {
  readonly input?: NodeJS.ReadableStream;
  readonly output?: NodeJS.WritableStream;
  /** Undefined: no history file. Default: ~/.sockvisorctl_history. */
  readonly historyFile?: string | undefined;
  /** Run `status` first, as supervisorctl does. Default: when the input is a terminal. */
  readonly statusFirst?: boolean;
}

/** Runs until quit, exit or end of input. */
export async function runShell(hooks: ShellHooks, options: ShellOptions = {}): Promise<void> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const terminal = Boolean((input as { isTTY?: boolean }).isTTY && (output as { isTTY?: boolean }).isTTY);
  const historyFile = 'historyFile' in options ? options.historyFile : defaultHistoryFile();
  let history = terminal ? loadHistory(historyFile) : [];
  let names: readonly string[] = [];

  const rl = readline.createInterface({
    input,
    output,
    terminal,
    prompt: PROMPT,
    history,
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: true,
    completer: (line: string) => completeLine(line, hooks.commands, names),
  });
  rl.on('history', (h: string[]) => {
    history = h;
  });

  let running: AbortController | undefined;
  /** The input ended (EOF, Ctrl-D) or the shell was told to leave. */
  let inputEnded = false;
  let quitting = false;
  const interrupt = () => {
    if (running) {
      running.abort(); // ends a `tail -f`, or stops waiting for an answer
      return;
    }
    if (rl.line.length > 0) {
      // Like a shell: the line is dropped and a fresh prompt shown.
      output.write('^C\n');
      rl.write(null, { ctrl: true, name: 'e' });
      rl.write(null, { ctrl: true, name: 'u' });
      rl.prompt();
      return;
    }
    output.write('\n');
    if (!inputEnded) rl.close();
  };
  rl.on('SIGINT', interrupt);
  // Ctrl-C reaches readline as a key on a terminal; elsewhere (a pipe, kill -INT) it is a signal.
  process.on('SIGINT', interrupt);

  const refresh = async () => {
    const fresh = await hooks.refreshNames().catch(() => undefined);
    if (fresh) names = fresh;
  };

  const run = async (words: string[]) => {
    running = new AbortController();
    try {
      await hooks.dispatch(words, running.signal);
    } catch (e) {
      output.write(`error: ${(e as Error).message}\n`);
    } finally {
      running = undefined;
    }
  };

  /** True when the shell should end. */
  const handle = async (line: string): Promise<boolean> => {
    let words: string[];
    try {
      words = splitShellWords(line);
    } catch (e) {
      output.write(`*** ${(e as Error).message}: ${line}\n`);
      return false;
    }
    if (words.length === 0) return false;
    if (words[0] === 'quit' || words[0] === 'exit') return true;
    await run(words);
    await refresh();
    return false;
  };

  // Lines are run one at a time, in order, even when typed (or piped) faster than they finish.
  const queue: string[] = [];
  let busy = false;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const pump = async () => {
    if (busy) return;
    busy = true;
    while (queue.length > 0 && !quitting) {
      if (await handle(queue.shift()!)) {
        quitting = true;
        rl.close();
      }
    }
    busy = false;
    if (inputEnded) finish();
    else if (terminal) rl.prompt();
  };
  rl.on('line', (line: string) => {
    queue.push(line);
    void pump();
  });
  rl.on('close', () => {
    inputEnded = true;
    void pump();
  });

  busy = true;
  if (options.statusFirst ?? terminal) await run(['status']);
  await refresh();
  busy = false;
  void pump();

  await finished;
  process.off('SIGINT', interrupt);
  if (terminal) saveHistory(historyFile, history);
}
