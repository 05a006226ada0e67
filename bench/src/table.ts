import { median, quantile, type Totals } from './measure.js';

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

/** A Markdown table, columns padded (it reads in a terminal and pastes into docs/PERFORMANCE.md as is). */
function markdownTable(header: readonly string[], lines: readonly string[][]): string {
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i]!.length)));
  const format = (cells: readonly string[]) =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  return [format(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(format)].join(
    '\n',
  );
}

/** The throughput comparisons: ops/s, latency, CPU per operation and the ratio of throughputs. */
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
  return markdownTable(header, lines);
}

/** One target of the dispatch comparison: submit → first log line of each job. */
export interface DispatchRow {
  target: string;
  latenciesMs: readonly number[];
  /** Jobs claimed by an agent that was already waiting when the job was submitted. */
  waitingAgentStarts: number;
  failed: number;
}

const seconds = (ms: number) => fixed(ms / 1_000, 2);
/** Two significant digits: a warm start is thousands of times faster than a 30 s poll, and 0.000× would hide it. */
const ratioOf = (value: number) => (Number.isFinite(value) ? String(Number(value.toPrecision(2))) : '-');

/** Dispatch latency per target, with p50 and p95 as a share of the reference target's (lower is faster). */
export function renderDispatchTable(rows: readonly DispatchRow[], reference: string): string {
  const header = [
    'target',
    'jobs',
    'p50 s',
    'p95 s',
    'max s',
    'agent was waiting',
    'failed',
    'p50 ratio',
    'p95 ratio',
  ];
  const base = rows.find((row) => row.target === reference)!;
  const ratio = (row: DispatchRow, q: number) =>
    row === base
      ? '1 (reference)'
      : `${ratioOf(quantile(row.latenciesMs, q) / quantile(base.latenciesMs, q))}× ${reference}`;
  const lines = rows.map((row) => [
    row.target,
    String(row.latenciesMs.length + row.failed),
    seconds(quantile(row.latenciesMs, 0.5)),
    seconds(quantile(row.latenciesMs, 0.95)),
    seconds(Math.max(...row.latenciesMs)),
    `${row.waitingAgentStarts} of ${row.latenciesMs.length}`,
    String(row.failed),
    ratio(row, 0.5),
    ratio(row, 0.95),
  ]);
  return markdownTable(header, lines);
}
