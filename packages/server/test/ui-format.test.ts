import { describe, expect, it } from 'vitest';
import { formatAge, formatDuration, isFinal, shortId, shortSha, spanMs } from '../src/ui/assets/format.js';

describe('UI formatting', () => {
  it('formats durations from under a second to days', () => {
    expect(formatDuration(-5)).toBe('<1s');
    expect(formatDuration(999)).toBe('<1s');
    expect(formatDuration(45_900)).toBe('45s');
    expect(formatDuration(185_000)).toBe('3m 05s');
    expect(formatDuration(2 * 3_600_000 + 3 * 60_000)).toBe('2h 03m');
    expect(formatDuration(4 * 86_400_000 + 6 * 3_600_000)).toBe('4d 06h');
  });

  it('formats ages relative to now', () => {
    const now = Date.parse('2024-05-01T12:00:00Z');
    expect(formatAge('2024-05-01T11:59:58Z', now)).toBe('just now');
    expect(formatAge('2024-05-01T11:59:18Z', now)).toBe('42s ago');
    expect(formatAge('2024-05-01T11:55:00Z', now)).toBe('5m ago');
    expect(formatAge('2024-05-01T09:00:00Z', now)).toBe('3h ago');
    expect(formatAge('2024-04-28T12:00:00Z', now)).toBe('3d ago');
  });

  it('measures a span to its end, or to now while it is open, and nothing before it starts', () => {
    const now = Date.parse('2024-05-01T12:00:10Z');
    expect(spanMs({ startedAt: null, finishedAt: null }, now)).toBeNull();
    expect(spanMs({ startedAt: '2024-05-01T12:00:00Z', finishedAt: null }, now)).toBe(10_000);
    expect(spanMs({ startedAt: '2024-05-01T12:00:00Z', finishedAt: '2024-05-01T12:00:03Z' }, now)).toBe(
      3_000,
    );
  });

  it('shortens shas and ids, and knows the final statuses', () => {
    expect(shortSha(null)).toBe('—');
    expect(shortSha('0123456789abcdef0123456789abcdef01234567')).toBe('0123456');
    expect(shortId('01hzy3q5k8m2n4p6r8t0v2w4x6')).toBe('r8t0v2w4x6'.slice(-8));
    expect(['queued', 'running', 'succeeded', 'failed', 'cancelled', 'error'].map(isFinal)).toEqual([
      false,
      false,
      true,
      true,
      true,
      true,
    ]);
  });
});
