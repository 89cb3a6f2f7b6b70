/**
 * Tells the daemon when its config changed on disk: the config file, or the `*.yaml` files of the
 * services directory. The daemon re-reads everything on a call, so the watcher errs towards
 * calling: a spurious reload is cheap, a missed one leaves a stale config running.
 */
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { watch, type ChokidarOptions, type FSWatcher } from 'chokidar';
import { SERVICE_SUFFIX } from '../config/service.js';
import { Debouncer } from './debounce.js';

export interface ConfigWatcherOptions {
  readonly configFile: string;
  readonly servicesDir: string;
  /** The changed paths in the burst, de-duplicated; services are named under `servicesDir` as given. */
  readonly onChange: (paths: readonly string[]) => void;
  /** A watch that failed (permissions, say); watching goes on where it can. */
  readonly onError?: (error: Error) => void;
  /** A burst ends after this long without a change. Default 300. */
  readonly debounceMs?: number;
  /** A burst that does not end is reported this long after it began anyway. Default 2000. */
  readonly maxWaitMs?: number;
}

/**
 * A file written in several steps (an editor saving in place, a copy over the network) must not be
 * reported after the first: the reload would read half a document. chokidar's awaitWriteFinish
 * holds a file's event back until the file has gone stabilityThreshold without another event or a
 * change of size (polled every pollInterval). 150 ms is long next to the gaps within one save and
 * short next to the debounce, so a reload waits little for it. The raw events of a file still being
 * written keep the whole burst from going quiet, so another file's settled change does not start a
 * reload that would read this one half done. A file that never settles is still reported when the
 * maximum wait runs out; otherwise a file saved over and over would never be reloaded.
 */
const SETTLE = { stabilityThreshold: 150, pollInterval: 50 } as const;

const IDENTITY_CHECK_MS = 1000;

/** What the services path resolves to: a different one is another directory, even at the same path. */
interface DirIdentity {
  readonly real: string;
  readonly dev: number;
  readonly ino: number;
}

export class ConfigWatcher {
  private readonly debouncer: Debouncer<string>;
  private configFile: string;
  private servicesDir: string;
  /** The config file. When it is deleted, chokidar watches its directory for it to come back. */
  private configWatcher: FSWatcher | undefined;
  /** Where the config path led when configWatcher was started; undefined if nowhere. */
  private configReal: string | undefined;
  private readonly configRecheck = new QueuedRecheck((task) => this.serially(task), (announced) => this.recheckConfigFileNow(announced), (e) => this.reportError(e));
  private readonly servicesRecheck = new QueuedRecheck((task) => this.serially(task), (announced) => this.recheckServicesDirNow(announced), (e) => this.reportError(e));
  /** The service files: the real services directory (symlinks resolved) at depth 0. */
  private contentsWatcher: FSWatcher | undefined;
  /** The directory contentsWatcher watches; undefined while the services path is no directory. */
  private contents: DirIdentity | undefined;
  /**
   * The services directory's own entry in its parent, and nothing else there: a symlink swapped to
   * another directory, or the directory removed or made. Watching its contents cannot show these.
   */
  private entryWatcher: FSWatcher | undefined;
  /** Starting and stopping watchers, one at a time, so two re-targets never interleave. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  /**
   * A look at what the services path and the config path lead to, every second. Events about a
   * directory that is removed and made again at once can be lost under load (the parent's listing
   * may never show it missing, and a dead directory's watch says nothing more), and no watch on the
   * config file sees a symlinked directory above it swapped to another release. A few system calls
   * a second make sure the new ones are watched all the same.
   */
  private readonly identityCheck: NodeJS.Timeout;

  private constructor(private readonly options: ConfigWatcherOptions) {
    this.configFile = path.resolve(options.configFile);
    this.servicesDir = path.resolve(options.servicesDir);
    this.debouncer = new Debouncer(options.debounceMs ?? 300, options.maxWaitMs ?? 2000, (paths) => {
      if (!this.closed) this.options.onChange(paths);
    });
    this.identityCheck = setInterval(() => {
      this.servicesRecheck.request(false);
      this.configRecheck.request(true);
    }, IDENTITY_CHECK_MS).unref();
  }

  /** Resolves once every watch is in place, so a change made after it is reported. */
  static async start(options: ConfigWatcherOptions): Promise<ConfigWatcher> {
    const watcher = new ConfigWatcher(options);
    try {
      await watcher.serially(async () => {
        await watcher.watchConfigFile();
        await watcher.watchServicesDir();
      });
    } catch (e) {
      await watcher.close();
      throw e;
    }
    return watcher;
  }

  /** The config now names other paths (after a reload): watch those instead. No-op if unchanged. */
  retarget(configFile: string, servicesDir: string): Promise<void> {
    const nextConfig = path.resolve(configFile);
    const nextServices = path.resolve(servicesDir);
    return this.serially(async () => {
      if (this.closed) return;
      if (nextConfig !== this.configFile) {
        this.configFile = nextConfig;
        await this.watchConfigFile();
      }
      if (nextServices !== this.servicesDir) {
        this.servicesDir = nextServices;
        await this.watchServicesDir();
      }
    });
  }

  /** No callbacks after it resolves, and no watch is left open. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.identityCheck);
    this.debouncer.cancel();
    await this.serially(async () => {
      const watchers = [this.configWatcher, this.entryWatcher, this.contentsWatcher];
      this.configWatcher = this.entryWatcher = this.contentsWatcher = undefined;
      this.contents = undefined;
      await Promise.all(watchers.map((w) => w?.close()));
    });
  }

  private serially(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async watchConfigFile(): Promise<void> {
    await this.configWatcher?.close();
    this.configWatcher = undefined;
    const file = this.configFile;
    // Taken first: a swap that comes before the watch is in place is then seen as a move.
    this.configReal = await realPath(file);
    this.configWatcher = await this.startWatcher(file, { awaitWriteFinish: SETTLE }, {
      event: (_event, changed) => {
        if (changed !== file) return;
        this.changed(file);
        // A symlink swapped: reported already; the check only makes sure the new file is watched.
        this.configRecheck.request(false);
      },
      // Missing, the file is watched through its directory, whose raw events name its siblings too.
      raw: (name, watched) => {
        const changed = watched === file || name === undefined ? watched : path.join(watched, name);
        if (changed === file) this.debouncer.notice(file);
      },
    });
  }

  /**
   * If the config path now leads to another file (a symlink swapped, at the file or a directory
   * above it), watch that one instead; `announced` reports it as changed.
   */
  private async recheckConfigFileNow(announced: boolean): Promise<void> {
    if (this.closed) return;
    const now = await realPath(this.configFile);
    // A missing file is chokidar's to report, and to report again when it is back.
    if (now === undefined || now === this.configReal) return;
    await this.watchConfigFile();
    if (announced) this.changed(this.configFile);
  }

  private async watchServicesDir(): Promise<void> {
    await this.entryWatcher?.close();
    this.entryWatcher = undefined;
    this.entryWatcher = await this.watchServicesEntry();
    await this.watchContents(await dirIdentity(this.servicesDir));
  }

  private async watchServicesEntry(): Promise<FSWatcher | undefined> {
    let parent: string;
    try {
      parent = await fs.realpath(path.dirname(this.servicesDir));
    } catch (e) {
      // Without a parent there is no entry to watch; the config checks report the missing directory.
      if (isMissing(e)) return undefined;
      throw e;
    }
    const entry = path.join(parent, path.basename(this.servicesDir));
    return this.startWatcher(parent, {
      depth: 0,
      // Not followed, a symlink is compared by its target on each read of the parent, and a swap is
      // reported as a change. Followed, chokidar treats it as the directory it first pointed at and
      // reports nothing when it is swapped.
      followSymlinks: false,
      // Everything else in the parent (it may be /etc) is no business of ours.
      ignored: (p) => p !== parent && p !== entry,
    }, { event: () => this.servicesRecheck.request(true) });
  }

  /**
   * Something happened at or in the services directory. If the path now leads to another directory
   * (a swapped symlink; a directory removed and made again), watch that one instead. `announced`
   * reports the directory as changed even when it is the same one.
   */
  private async recheckServicesDirNow(announced: boolean): Promise<void> {
    if (this.closed) return;
    const now = await dirIdentity(this.servicesDir);
    const moved = !sameDir(now, this.contents);
    if (moved) await this.watchContents(now);
    // Only now, with the new directory watched: a reload cannot start before a change in it would be seen.
    if (moved || announced) this.changed(this.servicesDir);
  }

  private async watchContents(dir: DirIdentity | undefined): Promise<void> {
    // Closed before the next one starts: chokidar shares one fs.watch per path among its watchers,
    // and a directory made again at the same path would otherwise join the old one's dead watch.
    await this.contentsWatcher?.close();
    this.contentsWatcher = undefined;
    this.contents = dir;
    if (dir === undefined || this.closed) return;
    const shown = this.servicesDir;
    const isServiceFile = (p: string) => path.dirname(p) === dir.real && p.endsWith(SERVICE_SUFFIX);
    this.contentsWatcher = await this.startWatcher(dir.real, {
      depth: 0,
      awaitWriteFinish: SETTLE,
      ignored: (p) => path.dirname(p) === dir.real && !p.endsWith(SERVICE_SUFFIX),
    }, {
      event: (_event, changed) => {
        if (isServiceFile(changed)) this.changed(path.join(shown, path.basename(changed)));
      },
      raw: (name, watched) => {
        const changed = watched === dir.real ? (name === undefined ? undefined : path.join(dir.real, name)) : watched;
        if (changed !== undefined && isServiceFile(changed)) this.debouncer.notice(path.join(shown, path.basename(changed)));
        // The cheapest way to learn that the directory went away: its own watch says something.
        this.servicesRecheck.request(false);
      },
    });
  }

  private changed(file: string): void {
    if (!this.closed) this.debouncer.push(file);
  }

  private reportError(e: unknown): void {
    if (!this.closed) this.options.onError?.(e instanceof Error ? e : new Error(String(e)));
  }

  /** A chokidar watcher that reports to us once it is ready, and never after this watcher closes. */
  private async startWatcher(
    target: string,
    options: ChokidarOptions,
    on: {
      event: (event: string, changed: string, stats?: Stats) => void;
      raw?: (name: string | undefined, watched: string) => void;
    },
  ): Promise<FSWatcher> {
    const watcher = watch(target, { ...options, ignoreInitial: true, persistent: true });
    let ready = false;
    // Before 'ready', chokidar reports a symlink it found as added even with ignoreInitial.
    watcher.on('all', (event, changed, stats) => {
      if (ready && !this.closed) on.event(event, changed, stats);
    });
    const raw = on.raw;
    if (raw) {
      watcher.on('raw', (_event, name, details) => {
        const watched = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
        if (ready && !this.closed && typeof watched === 'string') raw(typeof name === 'string' && name !== '' ? name : undefined, watched);
      });
    }
    watcher.on('error', (e) => this.reportError(e));
    await new Promise<void>((resolve) =>
      watcher.once('ready', () => {
        ready = true;
        resolve();
      }),
    );
    return watcher;
  }
}

/**
 * A check that runs on the watcher's queue, with at most one waiting: requests made while it waits
 * join it, and it announces a change if any of them asked to.
 */
class QueuedRecheck {
  private waiting = false;
  private announce = false;

  constructor(
    private readonly enqueue: (task: () => Promise<void>) => Promise<void>,
    private readonly check: (announce: boolean) => Promise<void>,
    private readonly onError: (e: unknown) => void,
  ) {}

  request(announce: boolean): void {
    this.announce ||= announce;
    if (this.waiting) return;
    this.waiting = true;
    this.enqueue(async () => {
      this.waiting = false;
      const announced = this.announce;
      this.announce = false;
      await this.check(announced);
    }).catch(this.onError);
  }
}

async function realPath(file: string): Promise<string | undefined> {
  try {
    return await fs.realpath(file);
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
}

async function dirIdentity(dir: string): Promise<DirIdentity | undefined> {
  try {
    const real = await fs.realpath(dir);
    const stats = await fs.stat(real);
    return stats.isDirectory() ? { real, dev: stats.dev, ino: stats.ino } : undefined;
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
}

function sameDir(a: DirIdentity | undefined, b: DirIdentity | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.real === b.real && a.dev === b.dev && a.ino === b.ino);
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
