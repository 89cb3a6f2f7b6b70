/** How `status` describes a process, in supervisorctl's words. Pure. */
import type { SlotState } from '../supervise/process-state.js';

export function formatUptime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

export function describeProcess(slot: SlotState, now: number): { uptime: number; description: string } {
  if ((slot.state === 'RUNNING' || slot.state === 'STARTING' || slot.state === 'STOPPING') && slot.pid !== undefined) {
    const since = slot.spawnedAt ?? now;
    const uptime = Math.floor((now - since) / 1000);
    return { uptime, description: `pid ${slot.pid}, uptime ${formatUptime(uptime)}` };
  }
  if (slot.state === 'EXITED' && slot.lastExit) {
    const how = slot.lastExit.signal !== null ? `killed by ${slot.lastExit.signal}` : `exit status ${slot.lastExit.code}`;
    return { uptime: 0, description: how };
  }
  return { uptime: 0, description: slot.reason || (slot.state === 'STOPPED' ? 'Not started' : '') };
}
