/** The daemon's pidfile: one daemon per pidfile, and a stale one from a dead daemon is taken over. */
import fs from 'node:fs/promises';
import path from 'node:path';

export class AlreadyRunningError extends Error {
  constructor(readonly pid: number, readonly where: string) {
    super(`sockvisord is already running as pid ${pid} (${where})`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, it is just not ours to signal.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquirePidfile(file: string): Promise<{ release(): Promise<void> }> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const mine = `${process.pid}\n`;
  try {
    await fs.writeFile(file, mine, { flag: 'wx', mode: 0o644 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw new AlreadyRunningError(pid, `pidfile ${file}`);
    // Stale: its daemon is gone. Replace it in one step so no reader sees it half-written.
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, mine, { mode: 0o644 });
    await fs.rename(tmp, file);
  }
  return {
    async release() {
      const current = (await fs.readFile(file, 'utf8').catch(() => '')).trim();
      if (current === String(process.pid)) await fs.rm(file, { force: true });
    },
  };
}
