import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  BadEventError,
  createMasker,
  EVENTS_STREAM,
  JobQueue,
  JobStore,
  LogStore,
  logKey,
  MAX_LINE_CHARS,
  parseJobEvent,
  secretValuesFromEnv,
} from '../src/index.js';
import { startRedis, type TestRedis } from './support/index.js';

let server: TestRedis;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = server.client();
});
afterAll(async () => {
  await server.stop();
});
beforeEach(async () => {
  await redis.flushall();
});

describe('LogStore', () => {
  it('numbers lines 1, 2, 3… across appends and reads after a seq', async () => {
    const logs = new LogStore(redis);
    await logs.append('j1', [
      { stream: 'stdout', step: 'build', line: 'one' },
      { stream: 'stderr', step: 'build', line: 'two' },
    ]);
    await logs.append('j1', [{ stream: 'system', step: null, line: 'three' }]);
    const all = await logs.read('j1');
    expect(all.map((e) => [e.seq, e.stream, e.step, e.line])).toEqual([
      [1, 'stdout', 'build', 'one'],
      [2, 'stderr', 'build', 'two'],
      [3, 'system', null, 'three'],
    ]);
    expect((await logs.read('j1', 2)).map((e) => e.line)).toEqual(['three']);
    expect(await logs.text('j1')).toBe('one\ntwo\nthree\n');
    expect(await logs.text('nothing')).toBe('');
  });

  it('masks secrets before they are stored', async () => {
    const mask = createMasker(
      secretValuesFromEnv({ RAIBID_SECRET_DB: 'hunter22', GITEA_TOKEN: 'tok-123', PATH: '/bin' }),
    );
    const logs = new LogStore(redis, { mask });
    await logs.append('j2', [{ stream: 'stdout', step: 's', line: 'login hunter22 with tok-123 via /bin' }]);
    const raw = JSON.stringify(await redis.xrange(logKey('j2'), '-', '+'));
    expect(raw).not.toContain('hunter22');
    expect(raw).not.toContain('tok-123');
    expect(await logs.text('j2')).toBe('login *** with *** via /bin\n');
  });

  it('caps a job log with one truncation notice, and still writes system lines', async () => {
    const logs = new LogStore(redis, { capBytes: 100 });
    const line = 'x'.repeat(30);
    const first = await logs.append(
      'j3',
      Array.from({ length: 5 }, () => ({ stream: 'stdout' as const, step: 's', line })),
    );
    expect(first).toEqual({ written: 3, dropped: 2 });
    const second = await logs.append('j3', [
      { stream: 'stdout', step: 's', line },
      { stream: 'system', step: null, line: '[raibid] step s: exit 0' },
    ]);
    expect(second).toEqual({ written: 1, dropped: 1 });
    const events = await logs.read('j3');
    expect(events.map((e) => e.stream)).toEqual(['stdout', 'stdout', 'stdout', 'system', 'system']);
    expect(events[3]!.line).toMatch(/log truncated/);
    expect(events.filter((e) => /truncated/.test(e.line))).toHaveLength(1);
  });

  it('counts bytes, not characters, and keeps unicode intact', async () => {
    const logs = new LogStore(redis, { capBytes: 10 });
    expect(await logs.append('j4', [{ stream: 'stdout', step: null, line: 'ééé' }])).toEqual({
      written: 1,
      dropped: 0,
    });
    expect(await logs.append('j4', [{ stream: 'stdout', step: null, line: '🚀🚀' }])).toEqual({
      written: 0,
      dropped: 1,
    });
    expect((await logs.read('j4'))[0]!.line).toBe('ééé');
  });

  it('splits very long lines without breaking surrogate pairs', async () => {
    const logs = new LogStore(redis);
    const long = `${'a'.repeat(MAX_LINE_CHARS - 1)}🚀${'b'.repeat(10)}`;
    await logs.append('j5', [{ stream: 'stdout', step: null, line: long }]);
    const events = await logs.read('j5');
    expect(events).toHaveLength(2);
    expect(events.map((e) => e.line).join('')).toBe(long);
    expect(events[0]!.line.endsWith('a')).toBe(true);
  });

  it('reports a malformed entry instead of crashing', async () => {
    const problems: string[] = [];
    const logs = new LogStore(redis, {
      onCorrupt: (job, id, reason) => problems.push(`${job} ${id} ${reason}`),
    });
    await logs.append('j6', [{ stream: 'stdout', step: null, line: 'fine' }]);
    await redis.xadd(logKey('j6'), '99-0', 'line', 'no ts or stream');
    expect((await logs.read('j6')).map((e) => e.line)).toEqual(['fine']);
    expect(problems).toEqual([expect.stringMatching(/^j6 99-0 /)]);
  });
});

describe('createMasker', () => {
  it('masks longer secrets first and ignores tiny values', () => {
    const mask = createMasker(['abcdef', 'abc', 'x']);
    expect(mask('abcdef abc x')).toBe('*** *** x');
    expect(createMasker([])('same')).toBe('same');
  });
});

describe('job events', () => {
  it('records every write of a job and parses it back', async () => {
    const store = new JobStore(redis);
    const queue = new JobQueue(redis, store);
    const job = await queue.enqueue({
      repo: { owner: 'a', name: 'b', cloneUrl: 'http://x/a/b.git' },
      ref: 'main',
      sha: null,
      trigger: 'api',
    });
    await queue.requestCancel(job.id);
    const entries = await redis.xrange(EVENTS_STREAM, '-', '+');
    const events = entries.map(([id, fields]) => parseJobEvent(id, fields));
    expect(events.map((e) => [e.from, e.job.status])).toEqual([
      [null, 'queued'],
      ['queued', 'cancelled'],
    ]);
    expect(() => parseJobEvent('1-0', ['jobId', 'x', 'from', '', 'status', 'queued', 'job', '{'])).toThrow(
      BadEventError,
    );
  });
});
