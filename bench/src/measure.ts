import { readFileSync } from 'node:fs';

/** CPU time (user + system) a process has used so far, in microseconds, from /proc (Linux). */
export function processCpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  return (ticks * 1_000_000) / CLOCK_TICKS;
}

/** Linux's USER_HZ: /proc counts CPU time in 1/100 s on every architecture Node runs on. */
const CLOCK_TICKS = 100;

/** The q-quantile (0..1) of unsorted samples; NaN when there are none. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** What one target did over all its slices of one comparison. */
export interface Totals {
  ops: number;
  seconds: number;
  cpuMicros: number;
  /** Per-slice latency percentiles in ms (reported as the median over slices). */
  p50: number[];
  p99: number[];
}

export function emptyTotals(): Totals {
  return { ops: 0, seconds: 0, cpuMicros: 0, p50: [], p99: [] };
}

/**
 * Runs `slices` rounds; each round measures every target once, in an order that rotates
 * from round to round, so noise from the (shared) machine falls on all of them alike.
 */
export async function alternate<T extends string>(
  targets: readonly T[],
  slices: number,
  measure: (target: T, slice: number) => Promise<void>,
): Promise<void> {
  for (let slice = 0; slice < slices; slice++) {
    for (let i = 0; i < targets.length; i++) {
      await measure(targets[(i + slice) % targets.length]!, slice);
    }
  }
}
