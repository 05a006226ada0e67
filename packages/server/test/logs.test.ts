import { request as httpRequest } from 'node:http';
import {
  type ClaimedJob,
  type Job,
  type LogEvent,
  type LogLine,
  logEventSchema,
  logKey,
  logMetaKey,
  type NewJob,
} from '@raibid/common';

import { waitFor } from '@raibid/common/testing';
import { describe, expect, it } from 'vitest';
import { LogFollower } from '../src/live/log-follower.js';
import { useRedis, useTestServer } from './support/server.js';
import { openSse, parseSse, type SseConnection, type SseEvent } from './support/sse.js';

const redis = useRedis();
const server = useTestServer(redis, {
  listen: true,
  env: { RAIBID_LOG_CAP_BYTES: String(64 * 1024 * 1024) },
  app: { logs: { keepAliveMs: 100, lingerMs: 50 } },
});

const newJob: NewJob = {
  repo: { owner: 'alice', name: 'hello', cloneUrl: 'http://gitea-http:3000/alice/hello.git' },
  ref: 'main',
  sha: null,
  trigger: 'api',
};

async function runningJob(): Promise<ClaimedJob> {
  await server.deps.queue.enqueue(newJob);
  const claimed = (await server.deps.queue.claim('agent-1', 1_000))!;
  // These tests are about the lines they write: drop the claim's "picked up" line so seqs start at 1.
  await server.deps.redis.del(logKey(claimed.job.id), logMetaKey(claimed.job.id));
  return claimed;
}

const lines = (from: number, count: number, size = 0): LogLine[] =>
  Array.from({ length: count }, (_, i) => ({
    stream: 'stdout' as const,
    step: 'test',
    line: `line ${from + i}${size ? ` ${'x'.repeat(size)}` : ''}`,
  }));

const logsOf = (events: SseEvent[]): LogEvent[] =>
  events.filter((e) => e.event === 'log').map((e) => logEventSchema.parse(JSON.parse(e.data)));
const statusesOf = (events: SseEvent[]): string[] =>
  events.filter((e) => e.event === 'status').map((e) => (JSON.parse(e.data) as Job).status);

function follow(jobId: string, headers: Record<string, string> = {}): Promise<SseConnection> {
  return openSse(`${server.url}/api/v1/jobs/${jobId}/logs`, headers);
}

describe('plain text', () => {
  it('returns the whole log as text/plain, one line per event', async () => {
    const claimed = await runningJob();
    await server.deps.logs.append(claimed.job.id, [
      ...lines(1, 3),
      { stream: 'stderr', step: null, line: 'oops' },
    ]);
    const response = await fetch(`${server.url}/api/v1/jobs/${claimed.job.id}/logs`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await response.text()).toBe('line 1\nline 2\nline 3\noops\n');
  });

  it('is empty for a job with no output yet, and 404 for an unknown job', async () => {
    const job = await server.deps.queue.enqueue(newJob);
    expect(await (await fetch(`${server.url}/api/v1/jobs/${job.id}/logs`)).text()).toBe('');
    const missing = await fetch(`${server.url}/api/v1/jobs/01hzzzzzzzzzzzzzzzzzzzzzzz/logs`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found');
    const sse = await follow('01hzzzzzzzzzzzzzzzzzzzzzzz');
    expect(sse.status).toBe(404);
  });
});

describe('SSE follow', () => {
  it('of a finished job: status, every line with its seq as id, end; then the stream closes', async () => {
    const claimed = await runningJob();
    await server.deps.logs.append(claimed.job.id, lines(1, 5));
    await server.deps.queue.finish(claimed, { status: 'succeeded', exitCode: 0 });

    const sse = await follow(claimed.job.id);
    expect(sse.status).toBe(200);
    expect(sse.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(sse.headers.get('cache-control')).toBe('no-cache, no-transform');
    await sse.ended;
    expect(sse.events.map((e) => e.event)).toEqual(['status', 'log', 'log', 'log', 'log', 'log', 'end']);
    expect(sse.events.filter((e) => e.event === 'log').map((e) => e.id)).toEqual(['1', '2', '3', '4', '5']);
    expect(sse.events.filter((e) => e.event !== 'log').every((e) => e.id === undefined)).toBe(true);
    expect(logsOf(sse.events).map((l) => l.line)).toEqual(['line 1', 'line 2', 'line 3', 'line 4', 'line 5']);
    expect(logsOf(sse.events)[0]).toMatchObject({ seq: 1, stream: 'stdout', step: 'test' });
    expect(JSON.parse(sse.events.at(-1)!.data)).toEqual({ status: 'succeeded' });
    expect(JSON.parse(sse.events[0]!.data)).not.toHaveProperty('env');
  });

  it('?follow=1 streams without the Accept header; ?follow=0 does not', async () => {
    const job = await server.deps.queue.enqueue(newJob);
    await server.deps.queue.requestCancel(job.id);
    const streamed = await fetch(`${server.url}/api/v1/jobs/${job.id}/logs?follow=1`);
    expect(streamed.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(parseSse(await streamed.text()).events.map((e) => e.event)).toEqual(['status', 'end']);
    const plain = await fetch(`${server.url}/api/v1/jobs/${job.id}/logs?follow=0`, {
      headers: { accept: 'text/event-stream' },
    });
    expect(plain.headers.get('content-type')).toMatch(/^text\/plain/);
    expect((await fetch(`${server.url}/api/v1/jobs/${job.id}/logs?follow=maybe`)).status).toBe(400);
  });

  it('live: lines as they are written, a status event per transition, end after the final state', async () => {
    const job = await server.deps.queue.enqueue(newJob);
    const sse = await follow(job.id);
    await waitFor('initial status', () => sse.events.length >= 1);
    const claimed = (await server.deps.queue.claim('agent-1', 1_000))!;
    await waitFor('running status', () => statusesOf(sse.events).includes('running'));
    for (let i = 0; i < 10; i++) await server.deps.logs.append(job.id, lines(i * 3 + 1, 3));
    // The claim's "picked up" line, then the 30 written here.
    await waitFor('31 lines', () => logsOf(sse.events).length === 31);
    await server.deps.logs.append(job.id, lines(31, 2));
    await server.deps.queue.finish(claimed, { status: 'failed', exitCode: 1 });
    await sse.ended;

    expect(statusesOf(sse.events)).toEqual(['queued', 'running', 'failed']);
    expect(logsOf(sse.events)[0]!.line).toMatch(/^\[raibid\] agent agent-1 picked up job /);
    expect(logsOf(sse.events).map((l) => l.seq)).toEqual(Array.from({ length: 33 }, (_, i) => i + 1));
    const kinds = sse.events.map((e) => e.event);
    // The final status comes after every line written before it, then end, last.
    expect(kinds.lastIndexOf('log')).toBeLessThan(kinds.lastIndexOf('status'));
    expect(kinds.at(-1)).toBe('end');
    expect(JSON.parse(sse.events.at(-1)!.data)).toEqual({ status: 'failed' });
  });

  it('shows a re-queue (agent lost) as its own status events', async () => {
    const job = await server.deps.queue.enqueue(newJob);
    const sse = await follow(job.id);
    const first = (await server.deps.queue.claim('agent-1', 1_000))!;
    await waitFor('running', () => statusesOf(sse.events).includes('running'));
    await server.deps.queue.release(first);
    const second = (await server.deps.queue.claim('agent-2', 1_000))!;
    await server.deps.queue.finish(second, { status: 'succeeded' });
    await sse.ended;
    expect(statusesOf(sse.events)).toEqual(['queued', 'running', 'queued', 'running', 'succeeded']);
  });

  it('sends keep-alive comments while nothing happens', async () => {
    const job = await server.deps.queue.enqueue(newJob);
    const sse = await follow(job.id);
    await waitFor('two keep-alives', () => sse.comments >= 2);
    sse.abort();
  });

  it('400 for a Last-Event-ID that is not a log seq', async () => {
    const job = await server.deps.queue.enqueue(newJob);
    const response = await fetch(`${server.url}/api/v1/jobs/${job.id}/logs`, {
      headers: { accept: 'text/event-stream', 'last-event-id': 'abc' },
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { details: { path: string }[] } };
    expect(body.error.details[0]!.path).toBe('headers.last-event-id');
  });

  it('resumes from Last-Event-ID across many reconnects with nothing lost and nothing repeated', async () => {
    const claimed = await runningJob();
    const jobId = claimed.job.id;
    const total = 3_000;
    // A writer appends in small batches while clients keep dropping and reconnecting.
    const writer = (async () => {
      for (let n = 1; n <= total; n += 25) {
        await server.deps.logs.append(jobId, lines(n, Math.min(25, total - n + 1)));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await server.deps.queue.finish(claimed, { status: 'succeeded', exitCode: 0 });
    })();

    const received: LogEvent[] = [];
    let lastId: string | undefined;
    let sawEnd = false;
    for (let round = 0; !sawEnd && round < 1_000; round++) {
      const sse = await follow(jobId, lastId === undefined ? {} : { 'last-event-id': lastId });
      const target = received.length + 100 + ((round * 37) % 250);
      await waitFor(
        'progress or end',
        () => logsOf(sse.events).length + received.length >= target || sse.events.at(-1)?.event === 'end',
        10_000,
        2,
      );
      sse.abort();
      await sse.ended;
      // What the client had when it dropped; the id of the last log event is the resume point.
      const got = logsOf(sse.events);
      received.push(...got);
      const lastLog = sse.events.filter((e) => e.event === 'log').at(-1);
      if (lastLog) lastId = lastLog.id;
      sawEnd = sse.events.some((e) => e.event === 'end');
    }
    await writer;
    expect(sawEnd).toBe(true);
    expect(received.map((l) => l.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(received.map((l) => l.line)).toEqual(Array.from({ length: total }, (_, i) => `line ${i + 1}`));
  });

  it('many followers of one job share one Redis reader: one channel, no extra connections', async () => {
    const claimed = await runningJob();
    const jobId = claimed.job.id;
    const clientsBefore = String(await server.deps.redis.client('LIST'))
      .trim()
      .split('\n').length;
    const followers = await Promise.all(Array.from({ length: 25 }, () => follow(jobId)));
    await waitFor('all connected', () => followers.every((f) => f.events.length >= 1));
    expect(server.deps.feed.followedJobs).toBe(1);
    const clientsDuring = String(await server.deps.redis.client('LIST'))
      .trim()
      .split('\n').length;
    expect(clientsDuring).toBe(clientsBefore);

    await server.deps.logs.append(jobId, lines(1, 200));
    await server.deps.queue.finish(claimed, { status: 'succeeded' });
    await Promise.all(followers.map((f) => f.ended));
    for (const f of followers) {
      expect(logsOf(f.events).map((l) => l.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      expect(f.events.at(-1)?.event).toBe('end');
    }
    await waitFor('channel dropped', () => server.deps.feed.followedJobs === 0);
  });

  it('a slow client that stops reading gets everything, in order, once it reads again', async () => {
    const claimed = await runningJob();
    const jobId = claimed.job.id;
    const port = new URL(server.url).port;
    const chunks: Buffer[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path: `/api/v1/jobs/${jobId}/logs`,
          headers: { accept: 'text/event-stream' },
        },
        (res) => {
          res.pause(); // a client that does not read
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', resolve);
          res.on('error', reject);
          paused = res;
        },
      );
      req.on('error', reject);
      req.end();
    });
    let paused: import('node:http').IncomingMessage | null = null;
    await waitFor('response', () => paused);
    // ~13 MB of events: more than the socket buffers hold, so the server must stop and resume.
    const total = 24_000;
    for (let n = 1; n <= total; n += 1_000) await server.deps.logs.append(jobId, lines(n, 1_000, 500));
    await server.deps.queue.finish(claimed, { status: 'succeeded' });
    paused!.resume();
    await ended;
    const { events } = parseSse(Buffer.concat(chunks).toString('utf8'));
    const logs = logsOf(events);
    expect(logs.length).toBe(total);
    expect(logs.every((l, i) => l.seq === i + 1)).toBe(true);
    expect(events.at(-1)?.event).toBe('end');
  });

  it('a client that keeps up gets a flood from the feed alone: no line is read from Redis again', async () => {
    const claimed = await runningJob();
    const sse = await follow(claimed.job.id);
    await waitFor('initial status', () => sse.events.length >= 1);
    const xrangeCalls = async () =>
      Number(/cmdstat_xrange:calls=(\d+)/.exec(await server.deps.redis.info('commandstats'))?.[1] ?? 0);
    const before = await xrangeCalls();
    // 20,000 lines in the agent's largest batches, as fast as Redis takes them.
    for (let n = 1; n <= 20_000; n += 500) await server.deps.logs.append(claimed.job.id, lines(n, 500, 40));
    await waitFor('every line', () => logsOf(sse.events).length === 20_000);
    expect(await xrangeCalls()).toBe(before);
    expect(logsOf(sse.events).map((l) => l.seq)).toEqual(Array.from({ length: 20_000 }, (_, i) => i + 1));
    sse.abort();
  });

  it('holds at most about one batch for a client that never reads (Redis is the buffer)', async () => {
    const claimed = await runningJob();
    const jobId = claimed.job.id;
    const follower = new LogFollower({
      jobId,
      job: claimed.job,
      afterSeq: 0,
      feed: server.deps.feed,
      logs: server.deps.logs,
      store: server.deps.store,
      logger: server.deps.logger,
      lingerMs: 0,
    });
    try {
      for (let n = 1; n <= 5_000; n += 500) await server.deps.logs.append(jobId, lines(n, 500, 200));
      await waitFor('the feed delivered the last batch', async () => {
        // The follower is full and ignores the feed; the feed itself has moved on.
        return follower.readableLength >= follower.readableHighWaterMark;
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      // One line over the mark at most: nothing beyond is read while the client does not read.
      expect(follower.readableLength).toBeLessThan(follower.readableHighWaterMark + 1_000);
      // Reading it all now gives every line once, in order.
      await server.deps.queue.finish(claimed, { status: 'succeeded' });
      const text: string[] = [];
      for await (const chunk of follower) text.push(String(chunk));
      const logs = logsOf(parseSse(text.join('')).events);
      expect(logs.map((l) => l.seq)).toEqual(Array.from({ length: 5_000 }, (_, i) => i + 1));
    } finally {
      follower.destroy();
    }
  });

  it('ends even when the job ended between reading it and starting to watch', async () => {
    const claimed = await runningJob();
    const seen = new Promise<void>((resolve) => {
      const off = server.deps.feed.onJobEvent((event) => {
        if (event.job.id === claimed.job.id && event.job.status === 'succeeded') {
          off();
          resolve();
        }
      });
    });
    await server.deps.queue.finish(claimed, { status: 'succeeded' });
    await seen; // the feed has gone past the final event; nobody was watching
    const follower = new LogFollower({
      jobId: claimed.job.id,
      job: claimed.job, // the stale read: still running
      afterSeq: 0,
      feed: server.deps.feed,
      logs: server.deps.logs,
      store: server.deps.store,
      logger: server.deps.logger,
      lingerMs: 0,
    });
    const text: string[] = [];
    for await (const chunk of follower) text.push(String(chunk));
    const { events } = parseSse(text.join(''));
    expect(statusesOf(events)).toEqual(['running', 'succeeded']);
    expect(events.at(-1)?.event).toBe('end');
  });

  it('closes open streams when the server shuts down, and app.close() does not wait for them', async () => {
    const job = await server.deps.queue.enqueue(newJob);
    const followers = await Promise.all([follow(job.id), follow(job.id), follow(job.id)]);
    await waitFor('connected', () => followers.every((f) => f.events.length >= 1));
    await server.app.close();
    await Promise.all(followers.map((f) => f.ended));
    expect(followers.every((f) => f.events.every((e) => e.event !== 'end'))).toBe(true);
  });
});
