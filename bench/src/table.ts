import { median, type Totals } from './measure.js';

/** One line of the results: a target's figures and its ratio to the comparison's reference. */
export interface Row {
  comparison: string;
  target: string;
  /** What `ops` counts (requests, lines, jobs). */
  unit: string;
  totals: Totals;
  /** Whose CPU `cpuMicros` is (the server process, bench + redis-server, ...). */
  cpuOf: string;
  /** Throughput of this row divided by the reference row's; null on the reference row. */
  ratio: number | null;
  reference: string;
}

export const throughput = (totals: Totals): number => totals.ops / totals.seconds;

/** Rows of one comparison, each with its ratio to the `reference` target. */
export function compare(
  comparison: string,
  unit: string,
  cpuOf: string,
  results: Map<string, Totals>,
  reference: string,
): Row[] {
  const base = results.get(reference)!;
  return [...results].map(([target, totals]) => ({
    comparison,
    target,
    unit,
    totals,
    cpuOf,
    ratio: target === reference ? null : throughput(totals) / throughput(base),
    reference,
  }));
}

const fixed = (value: number, digits: number): string =>
  Number.isFinite(value) ? value.toFixed(digits) : '-';

/** A Markdown table (it reads in a terminal and pastes into docs/PERFORMANCE.md as is). */
export function renderTable(rows: readonly Row[]): string {
  const header = ['comparison', 'target', 'ops/s', 'p50 ms', 'p99 ms', 'CPU µs/op', 'CPU of', 'ratio'];
  const lines = rows.map((row) => [
    row.comparison,
    row.target,
    `${Math.round(throughput(row.totals)).toLocaleString('en-US')} ${row.unit}/s`,
    fixed(median(row.totals.p50), 1),
    fixed(median(row.totals.p99), 1),
    fixed(row.totals.cpuMicros / row.totals.ops, 0),
    row.cpuOf,
    row.ratio === null ? '1 (reference)' : `${row.ratio.toFixed(2)}× ${row.reference}`,
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i]!.length)));
  const format = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  return [format(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(format)].join(
    '\n',
  );
}
