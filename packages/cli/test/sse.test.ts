import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SseParser } from '../src/api/sse.js';

const STREAM =
  ': comment\r\n' +
  'retry: 1000\n' +
  'id: 1\nevent: log\ndata: {"a":1}\n\n' +
  'event: status\ndata: line one\ndata:line two\r\n\r\n' +
  'id: 7\rdata\r\r' +
  'id\nevent: end\ndata: {}\n\n' +
  'event: ignored-without-data\n\n';

describe('SseParser', () => {
  it('parses events, multi-line data, ids and comments (WHATWG rules)', () => {
    expect(new SseParser().feed(STREAM)).toEqual([
      { event: 'log', data: '{"a":1}', lastEventId: '1' },
      { event: 'status', data: 'line one\nline two', lastEventId: '1' },
      { event: 'message', data: '', lastEventId: '7' },
      { event: 'end', data: '{}', lastEventId: '' },
    ]);
  });

  it('yields the same events however the stream is split into chunks', () => {
    const whole = new SseParser().feed(STREAM);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: STREAM.length }), { maxLength: 12 }), (cuts) => {
        const points = [...new Set([0, ...cuts, STREAM.length])].sort((a, b) => a - b);
        const parser = new SseParser();
        const events = points.slice(1).flatMap((end, i) => parser.feed(STREAM.slice(points[i], end)));
        expect(events).toEqual(whole);
      }),
    );
  });

  it('starts from the Last-Event-ID it resumes with', () => {
    expect(new SseParser('41').feed('event: log\ndata: x\n\n')).toEqual([
      { event: 'log', data: 'x', lastEventId: '41' },
    ]);
  });
});
