import { describe, expect, it } from 'vitest';
import { Progress } from '../src/cli/progress.js';

const CLEAR = '\r\x1b[2K';

function terminal(isTTY: boolean) {
  const writes: string[] = [];
  return { stream: { isTTY, columns: 30, write: (text: string) => writes.push(text) }, writes };
}

describe('Progress', () => {
  it('draws one line on a terminal, clears it around printed output, and erases it on stop', () => {
    const { stream, writes } = terminal(true);
    const progress = new Progress(stream);
    progress.set('waiting for an agent');
    expect(writes).toEqual([`${CLEAR}⠙ waiting for an agent`]);
    progress.print(() => writes.push('log line\n'));
    expect(writes.slice(1)).toEqual([CLEAR, 'log line\n', `${CLEAR}⠹ waiting for an agent`]);
    progress.stop();
    expect(writes.at(-1)).toBe(CLEAR);
  });

  it('cuts the line to the terminal width', () => {
    const { stream, writes } = terminal(true);
    const progress = new Progress(stream);
    progress.set('x'.repeat(100));
    expect(writes[0]!.slice(CLEAR.length)).toHaveLength(29);
    progress.stop();
  });

  it('draws nothing when the stream is not a terminal', () => {
    const { stream, writes } = terminal(false);
    const progress = new Progress(stream);
    progress.set('waiting');
    progress.print(() => writes.push('log line\n'));
    progress.stop();
    expect(writes).toEqual(['log line\n']);
  });
});
