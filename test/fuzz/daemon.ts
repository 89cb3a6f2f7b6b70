/** A real sockvisord with one running service, for the control fuzz (test and long run alike). */
import fs from 'node:fs/promises';
import { DaemonProcess, daemonFiles, webService } from '../helpers/daemon.js';

type TestContext = { after: (fn: () => Promise<void>) => void };

export async function fuzzDaemon(t: TestContext): Promise<DaemonProcess> {
  const files = await daemonFiles(t, { web: webService('start_seconds: 0.1, stop_timeout: 2s') });
  await fs.writeFile(files.config, (await fs.readFile(files.config, 'utf8')).replace('control: {socket: ctl.sock}', 'control: {socket: ctl.sock, idle_timeout: 5s}'));
  const d = await DaemonProcess.start(t, files);
  await d.waitForState('web:0', 'RUNNING');
  return d;
}

/** What the daemon logged at level error or above (pino levels), for the report. */
export function severeRecords(d: DaemonProcess): string[] {
  return d.records.filter((r) => typeof r['level'] === 'number' && (r['level'] as number) >= 50).map((r) => JSON.stringify(r).slice(0, 300));
}
