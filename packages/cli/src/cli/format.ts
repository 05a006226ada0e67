import { formatDuration, type JobStatus, type StepStatus } from '@raibid/common';
import type { Colors } from './io.js';

/** The color of a job or step status in a terminal. */
export function statusColor(status: JobStatus | StepStatus, c: Colors): (text: string) => string {
  switch (status) {
    case 'succeeded':
      return c.green;
    case 'failed':
      return c.red;
    case 'error':
      return c.magenta;
    case 'cancelled':
      return c.yellow;
    case 'running':
      return c.cyan;
    case 'queued':
      return c.blue;
    case 'pending':
    case 'skipped':
      return c.dim;
  }
}

export function statusText(status: JobStatus | StepStatus, c: Colors): string {
  return statusColor(status, c)(status);
}

/** `3s ago`, `5m ago`, `2h ago`, `4d ago`. */
export function ago(iso: string, now: number = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3_600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3_600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}

/** Run time of a job: until it finished, or until now while it runs; empty before it started. */
export function jobDuration(
  job: { startedAt: string | null; finishedAt: string | null },
  now: number = Date.now(),
): string {
  if (!job.startedAt) return '';
  const end = job.finishedAt ? Date.parse(job.finishedAt) : now;
  return formatDuration(Math.max(0, end - Date.parse(job.startedAt)));
}

export function repoName(job: { repo: { owner: string; name: string } }): string {
  return `${job.repo.owner}/${job.repo.name}`;
}

export function shortSha(sha: string | null): string {
  return sha ? sha.slice(0, 7) : '';
}

export interface Column<T> {
  header: string;
  value(row: T): string;
  /** Colors the cell after it was padded (so ANSI codes do not count towards widths). */
  color?(text: string, row: T): string;
  /** Can be cut down to `minWidth` (with …) when the table is too wide. */
  shrink?: boolean;
  minWidth?: number;
  /** When shrinking is not enough, columns are dropped lowest priority first (default 0: kept). */
  dropPriority?: number;
  align?: 'left' | 'right';
}

function truncate(text: string, width: number): string {
  if (text.length <= width) return text;
  if (width <= 1) return text.slice(0, width);
  return `${text.slice(0, width - 1)}…`;
}

const GAP = 2;

export interface TableOptions {
  /** The terminal's width; undefined when output is not a terminal: nothing is cut. */
  maxWidth?: number | undefined;
  headerColor?: (text: string) => string;
}

/** Natural widths, then shrinkable columns narrowed (widest first) until the table fits, if it can. */
function fitWidths<T>(
  columns: readonly Column<T>[],
  body: string[][],
  maxWidth: number | undefined,
): number[] {
  const widths = columns.map((col, i) => Math.max(col.header.length, ...body.map((r) => r[i]!.length)));
  if (maxWidth === undefined) return widths;
  const total = () => widths.reduce((a, b) => a + b, 0) + GAP * (widths.length - 1);
  while (total() > maxWidth) {
    let widest = -1;
    columns.forEach((col, i) => {
      const min = Math.max(col.minWidth ?? 8, 1);
      if (col.shrink && widths[i]! > min && (widest === -1 || widths[i]! > widths[widest]!)) widest = i;
    });
    if (widest === -1) break;
    widths[widest]! -= 1;
  }
  return widths;
}

/**
 * Lays rows out in columns that fit `maxWidth`: shrinkable columns are narrowed first, then optional
 * columns are dropped (highest dropPriority first). Returns the lines, header first.
 */
export function table<T>(
  rows: readonly T[],
  columns: readonly Column<T>[],
  options: TableOptions = {},
): string[] {
  const { maxWidth } = options;
  let shown = [...columns];
  let body: string[][];
  let widths: number[];
  for (;;) {
    body = rows.map((row) => shown.map((col) => col.value(row).replace(/\s+/g, ' ')));
    widths = fitWidths(shown, body, maxWidth);
    const total = widths.reduce((a, b) => a + b, 0) + GAP * (widths.length - 1);
    if (maxWidth === undefined || total <= maxWidth) break;
    const drop = shown
      .filter((col) => (col.dropPriority ?? 0) > 0)
      .sort((a, b) => (b.dropPriority ?? 0) - (a.dropPriority ?? 0))[0];
    if (!drop) break;
    shown = shown.filter((col) => col !== drop);
  }

  const render = (values: string[], row: T | null): string =>
    values
      .map((value, i) => {
        const col = shown[i]!;
        const width = widths[i]!;
        const cut = truncate(value, width);
        const last = i === values.length - 1;
        const padded = col.align === 'right' ? cut.padStart(width) : last ? cut : cut.padEnd(width);
        if (row === null) return options.headerColor ? options.headerColor(padded) : padded;
        return col.color ? col.color(padded, row) : padded;
      })
      .join(' '.repeat(GAP));
  return [
    render(
      shown.map((col) => col.header),
      null,
    ),
    ...body.map((values, r) => render(values, rows[r]!)),
  ];
}
