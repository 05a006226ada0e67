import { createRedis, LogStore } from '@raibid/common';
import { startRedis, type TestRedis, waitFor } from '@raibid/common/testing';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { JobLog } from '../src/job-log.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

/** A LogStore that counts its writes. */
function countingStore(options: ConstructorParameters<typeof LogStore>[1] = {}) {
  const store = new LogStore(redis.client(), options);
  const calls: number[] = [];
  const append = store.append.bind(store);
  store.append = (jobId, lines) => {
    calls.push(lines.length);
    return append(jobId, lines);
  };
  return { store, calls };
}

/**
 * A LogStore whose writes wait until the test lets them through (`release`), so a test
 * can look at what is written while a write is in flight without timing anything.
 */
function gatedStore() {
  const store = new LogStore(redis.client());
  const writes: string[][] = [];
  const gates: { open(): void; stored: Promise<unknown> }[] = [];
  const append = store.append.bind(store);
  store.append = (jobId, lines) => {
    writes.push(lines.map((entry) => entry.line));
    let open = () => {};
    const stored = new Promise<void>((resolve) => {
      open = resolve;
    }).then(() => append(jobId, lines));
    gates.push({ open, stored });
    return stored as ReturnType<LogStore['append']>;
  };
  return {
    store,
    writes,
    /** Lets the oldest waiting write go to Redis; resolves once it is stored. */
    release: async () => {
      const gate = gates.shift()!;
      gate.open();
      await gate.stored;
    },
  };
}

/** One turn of the event loop: what `setImmediate` was asked to do has run. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('JobLog', () => {
  it('writes a line in the next turn of the event loop, with no timer', async () => {
    // Timers do not run here: a log that waited for one would never write.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const { store, writes, release } = gatedStore();
    const log = new JobLog({ logs: store, jobId: 'at-once', onError: (e) => expect.fail(String(e)) });
    log.output('stdout', 'build', 'one');
    log.output('stdout', 'build', 'two'); // the same callback: the same write
    expect(writes).toEqual([]);
    await nextTurn();
    expect(writes).toEqual([['one', 'two']]);
    await release();
    await log.flush();
    expect((await store.read('at-once')).map((e) => e.line)).toEqual(['one', 'two']);
  });

  it('starts writes at least minWriteIntervalMs apart: a line printed sooner waits for the interval', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const { store, writes, release } = gatedStore();
    const log = new JobLog({
      logs: store,
      jobId: 'spaced',
      minWriteIntervalMs: 20,
      onError: (e) => expect.fail(String(e)),
    });
    log.output('stdout', null, 'a');
    await nextTurn();
    await release();
    log.output('stdout', null, 'b'); // no write in flight, but the last one started just now
    await nextTurn();
    expect(writes).toEqual([['a']]);
    vi.advanceTimersByTime(19);
    await nextTurn();
    expect(writes).toEqual([['a']]);
    vi.advanceTimersByTime(1);
    await nextTurn();
    expect(writes).toEqual([['a'], ['b']]);
    await release();

    vi.advanceTimersByTime(20); // a line after a quiet interval goes out in the next turn
    log.output('stdout', null, 'c');
    await nextTurn();
    expect(writes).toEqual([['a'], ['b'], ['c']]);
    await release();
    await log.flush();
    expect((await store.read('spaced')).map((e) => e.line)).toEqual(['a', 'b', 'c']);
  });

  it('batches the lines that arrive during a write behind it, up to maxBatch per write, in order', async () => {
    const { store, writes, release } = gatedStore();
    const log = new JobLog({
      logs: store,
      jobId: 'behind',
      maxBatch: 3,
      onError: (e) => expect.fail(String(e)),
    });
    log.output('stdout', null, 'a');
    await nextTurn();
    expect(writes).toEqual([['a']]); // in flight

    for (const line of ['b', 'c']) log.output('stdout', null, line);
    await nextTurn();
    expect(writes).toEqual([['a']]); // b and c wait for the write in flight
    for (const line of ['d', 'e', 'f']) log.output('stdout', null, line);
    expect(writes).toEqual([['a']]); // a full batch (b, c, d) is queued behind it, e and f wait

    await release();
    await vi.waitFor(() => expect(writes).toHaveLength(2));
    expect(writes[1]).toEqual(['b', 'c', 'd']);
    await release();
    await vi.waitFor(() => expect(writes).toHaveLength(3));
    expect(writes[2]).toEqual(['e', 'f']); // sent once the writes before them ended
    await release();
    await log.flush();
    expect(writes).toHaveLength(3);
    expect((await store.read('behind')).map((e) => e.line)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('stores a line soon without being asked to flush', async () => {
    const { store } = countingStore();
    const log = new JobLog({
      logs: store,
      jobId: 'soon',
      onError: (e) => expect.fail(String(e)),
    });
    log.output('stdout', 'build', 'hello');
    const events = await waitFor(
      'the line',
      async () => (await store.read('soon')).length > 0 && store.read('soon'),
    );
    expect(events).toMatchObject([{ seq: 1, stream: 'stdout', step: 'build', line: 'hello' }]);
  });

  it('batches many lines into few writes, in order', async () => {
    const { store, calls } = countingStore();
    const log = new JobLog({
      logs: store,
      jobId: 'many',
      maxBatch: 200,
      onError: (e) => expect.fail(String(e)),
    });
    for (let i = 1; i <= 1_000; i++) log.output('stdout', null, `line ${i}`);
    await log.flush();
    expect(calls.length).toBeLessThanOrEqual(6);
    const events = await store.read('many', 0, 2_000);
    expect(events.map((e) => e.line)).toEqual(Array.from({ length: 1_000 }, (_, i) => `line ${i + 1}`));
  });

  it('stops sending output once the cap is reached but keeps raibid’s own lines', async () => {
    const { store, calls } = countingStore({ capBytes: 100 });
    const log = new JobLog({
      logs: store,
      jobId: 'capped',
      maxBatch: 5,
      onError: (e) => expect.fail(String(e)),
    });
    for (let i = 0; i < 10; i++) log.output('stdout', null, 'x'.repeat(30));
    await log.flush();
    expect(log.truncated).toBe(true);
    const writes = calls.length;
    for (let i = 0; i < 100; i++) log.output('stdout', null, 'dropped here');
    log.system('[raibid] still here');
    await log.flush();
    expect(calls.length).toBe(writes + 1);
    expect(calls.at(-1)).toBe(1);
    expect(log.dropped).toBe(100 + 7);
    const text = await store.text('capped');
    expect(text).toContain('log truncated');
    expect(text).toContain('[raibid] still here');
  });

  it('says in the log how many lines were lost while Redis was unreachable', async () => {
    const own = await startRedis();
    onTestFinished(() => own.stop());
    const connection = own.client(); // gives up on a command after 3 reconnect attempts
    const store = new LogStore(connection);
    const errors: number[] = [];
    const log = new JobLog({ logs: store, jobId: 'outage', onError: (_e, lines) => errors.push(lines) });
    log.output('stdout', null, 'before');
    await log.flush();
    const kept = await store.read('outage');

    await own.down();
    log.output('stdout', null, 'lost 1');
    log.output('stdout', null, 'lost 2');
    await log.flush();
    expect(errors).toEqual([2]);
    await own.up(); // an empty Redis: what was written before the outage is gone with it
    await waitFor('the connection back', async () => (await connection.ping().catch(() => null)) === 'PONG');

    log.output('stdout', null, 'after');
    await log.flush();
    expect(kept.map((e) => e.line)).toEqual(['before']);
    expect((await store.read('outage')).map((e) => e.line)).toEqual([
      '[raibid] 2 log line(s) before this one could not be stored: Redis was unreachable',
      'after',
    ]);
  });

  it('keeps lines written while Redis is unreachable, up to its buffer, and marks where output was not kept', async () => {
    const own = await startRedis();
    onTestFinished(() => own.stop());
    const connection = createRedis(own.url, { maxRetriesPerRequest: null }); // as the agent's: waits out outages
    connection.on('error', () => {});
    onTestFinished(() => connection.disconnect());
    expect(await connection.ping()).toBe('PONG');
    const store = new LogStore(connection);
    const log = new JobLog({
      logs: store,
      jobId: 'buffered',
      maxBufferedChars: 100,
      onError: (e) => expect.fail(String(e)),
    });

    await own.down();
    for (let i = 1; i <= 12; i++) log.output('stdout', null, `line ${String(i).padStart(5, '0')}`); // 10 chars each
    log.system('[raibid] step work: exit 0');
    const flushed = log.flush();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await own.up();
    await flushed;

    const expected = Array.from({ length: 10 }, (_, i) => `line ${String(i + 1).padStart(5, '0')}`);
    expect((await store.read('buffered')).map((e) => e.line)).toEqual([
      ...expected,
      "[raibid] 2 output line(s) here were not stored: Redis was unreachable and the agent's buffer was full",
      '[raibid] step work: exit 0',
    ]);
  });
});
