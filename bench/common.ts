/** What every bench script shares: summary statistics and flag parsing. */

/** Median, min and max of a set of timings. */
export function stats(samples: readonly number[]): { median: number; min: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** A `--name N` flag that must be a positive integer; exits 2 with a message otherwise. */
export function positiveIntFlag(value: string | undefined, name: string, fallback: number): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} expects a positive integer, got "${value}"`);
    process.exit(2);
  }
  return n;
}
