import { decodeTime, isValid } from 'ulidx';
import { describe, expect, it } from 'vitest';
import { JOB_ID_PATTERN, newJobId } from '../src/ids.js';

describe('newJobId', () => {
  it('is a lowercase ULID whose time is the given millisecond', () => {
    const now = Date.UTC(2026, 10, 30, 9, 0, 0, 123);
    const id = newJobId(now);
    expect(id).toMatch(JOB_ID_PATTERN);
    expect(isValid(id.toUpperCase())).toBe(true);
    expect(decodeTime(id.toUpperCase())).toBe(now);
  });

  it('sorts in creation order within one millisecond, across milliseconds and when the clock steps back', () => {
    const start = Date.UTC(2030, 0, 1);
    const times = [start, start, start, start + 1, start + 1, start - 5, start + 2];
    const ids = times.map((time) => newJobId(time));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('draws a fresh random part in each new millisecond', () => {
    const start = Date.UTC(2031, 0, 1);
    const randomParts = new Set(Array.from({ length: 50 }, (_, i) => newJobId(start + i).slice(10)));
    expect(randomParts.size).toBe(50);
  });
});
