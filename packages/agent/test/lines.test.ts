import { describe, expect, it } from 'vitest';
import { LineSplitter, MAX_PENDING_CHARS } from '../src/lines.js';

function collect() {
  const lines: string[] = [];
  return { lines, splitter: new LineSplitter((line) => lines.push(line)) };
}

describe('LineSplitter', () => {
  it('splits on \\n and \\r\\n and emits the unterminated rest at the end', () => {
    const { lines, splitter } = collect();
    splitter.write(Buffer.from('one\r\ntwo\nthr'));
    expect(lines).toEqual(['one', 'two']);
    splitter.write(Buffer.from('ee\n\nfour'));
    expect(lines).toEqual(['one', 'two', 'three', '']);
    splitter.end();
    expect(lines).toEqual(['one', 'two', 'three', '', 'four']);
  });

  it('decodes UTF-8 characters split across chunks', () => {
    const { lines, splitter } = collect();
    const bytes = Buffer.from('naïve 🚀 日本\n');
    for (let i = 0; i < bytes.length; i++) splitter.write(bytes.subarray(i, i + 1));
    splitter.end();
    expect(lines).toEqual(['naïve 🚀 日本']);
  });

  it('emits a partial line that stalled, but not one still growing', () => {
    const { lines, splitter } = collect();
    splitter.write(Buffer.from('Downloading'));
    splitter.flushStalled(); // first look: written since the last check
    expect(lines).toEqual([]);
    splitter.write(Buffer.from('...'));
    splitter.flushStalled();
    expect(lines).toEqual([]);
    splitter.flushStalled(); // nothing new since: it stalled
    expect(lines).toEqual(['Downloading...']);
    splitter.write(Buffer.from(' done\n'));
    splitter.end();
    expect(lines).toEqual(['Downloading...', ' done']);
  });

  it('emits a line longer than the limit in pieces without splitting a surrogate pair', () => {
    const { lines, splitter } = collect();
    const long = `${'a'.repeat(MAX_PENDING_CHARS - 1)}🚀${'b'.repeat(10)}`;
    splitter.write(Buffer.from(long));
    splitter.end();
    expect(lines.join('')).toBe(long);
    expect(lines[0]).toBe('a'.repeat(MAX_PENDING_CHARS - 1));
    expect(lines.every((l) => l.length <= MAX_PENDING_CHARS)).toBe(true);
  });
});
