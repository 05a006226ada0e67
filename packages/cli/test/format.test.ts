import pc from 'picocolors';
import { describe, expect, it } from 'vitest';
import { ago, type Column, jobDuration, table } from '../src/cli/format.js';

interface Row {
  id: string;
  name: string;
  note: string;
}

const rows: Row[] = [
  { id: 'a1', name: 'short', note: 'x' },
  { id: 'b22', name: 'a considerably longer name', note: 'something to say' },
];
const columns: Column<Row>[] = [
  { header: 'ID', value: (r) => r.id },
  { header: 'NAME', value: (r) => r.name, shrink: true, minWidth: 6 },
  { header: 'NOTE', value: (r) => r.note, dropPriority: 1 },
];

describe('table', () => {
  it('pads columns to their widest cell, without trailing spaces', () => {
    expect(table(rows, columns)).toEqual([
      'ID   NAME                        NOTE',
      'a1   short                       x',
      'b22  a considerably longer name  something to say',
    ]);
  });

  it('shrinks a shrinkable column with an ellipsis, then drops optional columns', () => {
    expect(table(rows, columns, { maxWidth: 40 })).toEqual([
      'ID   NAME               NOTE',
      'a1   short              x',
      'b22  a considerably l…  something to say',
    ]);
    expect(table(rows, columns, { maxWidth: 20 })).toEqual([
      'ID   NAME',
      'a1   short',
      'b22  a considerably…',
    ]);
  });

  it('colors cells after padding, so colors do not change the layout', () => {
    const c = pc.createColors(true);
    const colored = table(rows, [{ ...columns[0]!, color: (t) => c.red(t) }, columns[1]!], {
      headerColor: c.dim,
    });
    expect(colored[1]).toBe(`${c.red('a1 ')}  short`);
    expect(colored[0]).toBe(`${c.dim('ID ')}  ${c.dim('NAME')}`);
  });
});

describe('times', () => {
  it('says how long ago', () => {
    const now = Date.parse('2025-01-01T12:00:00Z');
    expect(ago('2025-01-01T11:59:58Z', now)).toBe('2s ago');
    expect(ago('2025-01-01T11:30:00Z', now)).toBe('30m ago');
    expect(ago('2024-12-30T12:00:00Z', now)).toBe('2d ago');
  });

  it('measures a job until it finished, or until now while it runs', () => {
    const startedAt = '2025-01-01T12:00:00Z';
    expect(jobDuration({ startedAt, finishedAt: '2025-01-01T12:01:30Z' })).toBe('1m30s');
    expect(jobDuration({ startedAt, finishedAt: null }, Date.parse('2025-01-01T12:00:05Z'))).toBe('5s');
    expect(jobDuration({ startedAt: null, finishedAt: null })).toBe('');
  });
});
