/** Delay before restarting after an early exit. Pure. */
import type { Backoff } from '../config/supervise.js';

/**
 * `initial * factor^level`, capped at `max`, spread by ±jitter so that services failing together
 * do not restart in lock-step. `random` is in [0, 1).
 */
export function backoffDelay(level: number, backoff: Backoff, random: number): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * backoff.factor ** level);
  const spread = 1 - backoff.jitter + 2 * backoff.jitter * random;
  return Math.round(Math.min(backoff.maxMs, base * spread));
}
