import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AGENTS_GROUP,
  type ClaimedJob,
  GPU_JOBS_STREAM,
  IllegalTransitionError,
  JOBS_STREAM,
  type Job,
  JobQueue,
  JobStore,
  jobKey,
  LogStore,
  MAX_ATTEMPTS,
  type NewJob,
  reapOnce,
} from '../src/index.js';
import { createLogger } from '../src/logger.js';
import { startRedis, type TestRedis, waitFor } from '../test/support/index.js';

const newJob = (n = 0): NewJob => ({
  repo: { owner: 'alice', name: 'hello', cloneUrl: 'http://gitea.test/alice/hello.git' },
  ref: 'main',
  sha: null,
  trigger: 'api',
  env: { N: String(n) },
});

const silent = createLogger({ name: 'test', level: 'silent' });

let server: TestRedis;
let redis: Redis;
let problems: string[];
let store: JobStore;
let queue: JobQueue;

async function groupInfo(): Promise<{ lag: number | null; pending: number }> {
  const groups = (await redis.xinfo('GROUPS', JOBS_STREAM)) as unknown[][];
  const g = groups.find((x) => x[x.indexOf('name') + 1] === AGENTS_GROUP)!;
  return { lag: g[g.indexOf('lag') + 1] as number | null, pending: g[g.indexOf('pending') + 1] as number };
}

/** A queue on its own connection, as each agent has (claim blocks its connection). */
function agentQueue(pool: 'cpu' | 'gpu' = 'cpu'): JobQueue {
  const connection = server.client();
  return new JobQueue(connection, new JobStore(connection), { pool, onProblem: (m) => problems.push(m) });
}

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server.stop();
});
beforeEach(async () => {
  await server.flush();
  redis = server.client();
  problems = [];
  store = new JobStore(redis, { onCorrupt: (e) => problems.push(e.message) });
  queue = new JobQueue(redis, store, { onProblem: (m) => problems.push(m) });
});
afterEach(() => {
  redis.disconnect();
});

describe('JobQueue', () => {
  it('delivers an entry enqueued before any group existed', async () => {
    const job = await queue.enqueue(newJob());
    expect(await redis.exists(JOBS_STREAM)).toBe(1);
    await queue.ensureGroup(); // created at 0, not $
    await queue.ensureGroup(); // idempotent
    expect((await groupInfo()).lag).toBe(1);
    const claimed = await agentQueue().claim('agent-a', 1_000);
    expect(claimed?.job.id).toBe(job.id);
    expect(claimed?.job.status).toBe('running');
    expect(claimed?.job.attempts).toBe(1);
    expect(await groupInfo()).toEqual({ lag: 0, pending: 1 });
  });

  it('recreates a lost group (Redis restarted empty) when an agent claims, and delivers what was enqueued since', async () => {
    await queue.ensureGroup();
    await redis.flushall(); // a Redis without persistence came back empty
    const job = await queue.enqueue(newJob()); // XADD makes the stream, but no group
    const claimed = await agentQueue().claim('agent-a', 1_000);
    expect(claimed?.job.id).toBe(job.id);
    expect(await groupInfo()).toEqual({ lag: 0, pending: 1 });
  });

  it('recreates a lost group when the reaper runs, so the queue is ready again without an agent', async () => {
    await queue.ensureGroup();
    await redis.flushall();
    await queue.enqueue(newJob());
    expect(await queue.groupExists()).toBe(false);
    expect(await reapOnce({ queue, logs: new LogStore(redis), logger: silent, leaseMs: 100 })).toEqual([]);
    expect(await queue.groupExists()).toBe(true);
    expect((await groupInfo()).lag).toBe(1);
  });

  it('runs a job whose strings hold a lone UTF-16 surrogate (stored as U+FFFD, which the Lua scripts can decode)', async () => {
    await queue.ensureGroup();
    const job = await queue.enqueue({ ...newJob(), env: { ODD: 'a\ud800b' } });
    const claimed = await agentQueue().claim('agent-a', 1_000);
    expect(claimed?.job.id).toBe(job.id);
    expect(claimed?.job.env.ODD).toBe('a\ufffdb');
    const done = await queue.finish(claimed!, { status: 'failed', exitCode: 1, error: 'lone \udc00 here' });
    expect(done).toMatchObject({ status: 'failed', error: 'lone \ufffd here' });
    expect(problems).toEqual([]);
    expect(await groupInfo()).toEqual({ lag: 0, pending: 0 });
  });

  it('returns null when nothing arrives within the block time', async () => {
    await queue.ensureGroup();
    expect(await agentQueue().claim('idle', 100)).toBeNull();
  });

  it('never gives the same job to two consumers', async () => {
    await queue.ensureGroup();
    const jobs = await Promise.all([queue.enqueue(newJob(1)), queue.enqueue(newJob(2))]);
    const [a, b, c] = await Promise.all([
      agentQueue().claim('a', 500),
      agentQueue().claim('b', 500),
      agentQueue().claim('c', 500),
    ]);
    const got = [a, b, c].filter(Boolean).map((x) => x!.job.id);
    expect(got.sort()).toEqual(jobs.map((j) => j.id).sort());
  });

  it('acks only at a final state, atomically with the record', async () => {
    await queue.ensureGroup();
    await queue.enqueue(newJob());
    const claimed = (await agentQueue().claim('a', 1_000))!;
    expect((await groupInfo()).pending).toBe(1);
    const done = await queue.finish(claimed, { status: 'succeeded', exitCode: 0 });
    expect(done?.status).toBe('succeeded');
    expect(done?.finishedAt).not.toBeNull();
    expect(await groupInfo()).toEqual({ lag: 0, pending: 0 });
    expect(await redis.xlen(JOBS_STREAM)).toBe(1); // never XDEL'ed
  });

  it('finishes a job and claims the next one in the same call, as a looping agent does', async () => {
    await queue.ensureGroup();
    const first = await queue.enqueue(newJob(1));
    const cancelled = await queue.enqueue(newJob(2));
    const second = await queue.enqueue(newJob(3));
    await queue.requestCancel(cancelled.id);
    const agent = agentQueue();
    const claimed = (await agent.claim('a', 1_000))!;
    expect(claimed.job.id).toBe(first.id);

    // The cancelled job's entry comes next: it is ACKed and skipped, so no claim this time.
    const one = await agent.finishAndClaimNext(claimed, { status: 'succeeded', exitCode: 0 });
    expect(one.job?.status).toBe('succeeded');
    expect(one.next).toBeNull();
    expect((await store.get(cancelled.id))?.status).toBe('cancelled');

    const again = (await agent.claim('a', 1_000))!;
    expect(again.job.id).toBe(second.id);
    const third = await queue.enqueue(newJob(4));
    const two = await agent.finishAndClaimNext(again, { status: 'failed', exitCode: 1 });
    expect(two.job).toMatchObject({ id: second.id, status: 'failed', exitCode: 1 });
    expect(two.next).toMatchObject({ consumer: 'a', attempt: 1, job: { id: third.id, status: 'running' } });
    expect(await store.get(third.id)).toMatchObject({ status: 'running', agent: 'a', attempts: 1 });
    expect((await new LogStore(redis).read(third.id)).map((e) => e.line)).toEqual([
      `[raibid] agent a picked up job ${third.id} (attempt 1 of 3)`,
    ]);
    expect(await groupInfo()).toEqual({ lag: 0, pending: 1 });

    const last = await agent.finishAndClaimNext(two.next!, { status: 'succeeded', exitCode: 0 });
    expect(last).toMatchObject({ job: { id: third.id, status: 'succeeded' }, next: null });
    expect(await groupInfo()).toEqual({ lag: 0, pending: 0 });
    // A claim that is no longer ours finishes nothing and claims nothing.
    await queue.enqueue(newJob(5));
    expect(await agent.finishAndClaimNext(two.next!, { status: 'succeeded', exitCode: 0 })).toEqual({
      job: null,
      next: null,
    });
    expect(await groupInfo()).toEqual({ lag: 1, pending: 0 });
  });

  it('reclaims a crashed consumer’s job, counts it in lag again, and another agent finishes it', async () => {
    await queue.ensureGroup();
    const job = await queue.enqueue(newJob());
    const crashed = (await agentQueue().claim('crashed', 1_000))!;
    expect(await groupInfo()).toEqual({ lag: 0, pending: 1 });

    // The live agent renews its hold; the crashed one does not.
    await new Promise((resolve) => setTimeout(resolve, 150));
    const logs = new LogStore(redis);
    const reaped = await reapOnce({ queue, logs, logger: silent, leaseMs: 100 });
    expect(reaped).toMatchObject([{ jobId: job.id, action: 'requeued', agent: 'crashed', nextAttempt: 2 }]);
    expect(await groupInfo()).toEqual({ lag: 1, pending: 0 });
    expect((await store.get(job.id))?.status).toBe('queued');
    expect(await logs.text(job.id)).toContain('re-queued for attempt 2 of 3');

    // The crashed agent's late result is refused: the job is no longer its.
    expect(await queue.finish(crashed, { status: 'succeeded', exitCode: 0 })).toBeNull();
    expect(await queue.renew(crashed)).toBe(false);

    const second = (await agentQueue().claim('second', 1_000))!;
    expect(second.attempt).toBe(2);
    expect((await queue.finish(second, { status: 'succeeded', exitCode: 0 }))?.attempts).toBe(2);
  });

  it('keeps a job whose agent renews its hold', async () => {
    await queue.ensureGroup();
    await queue.enqueue(newJob());
    const claimed = (await agentQueue().claim('alive', 1_000))!;
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(await queue.renew(claimed)).toBe(true);
      expect(await queue.reap('raibid-reaper', 100)).toEqual([]);
    }
  });

  it(`ends a job "error" after ${MAX_ATTEMPTS} lost agents`, async () => {
    await queue.ensureGroup();
    const job = await queue.enqueue(newJob());
    const logs = new LogStore(redis);
    const step = (name: string, status: 'succeeded' | 'running' | 'pending') => ({
      name,
      status,
      exitCode: status === 'succeeded' ? 0 : null,
      startedAt: status === 'pending' ? null : new Date().toISOString(),
      finishedAt: status === 'succeeded' ? new Date().toISOString() : null,
    });
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const q = agentQueue();
      const claimed = (await q.claim(`lost-${attempt}`, 1_000))!;
      expect(claimed.attempt).toBe(attempt);
      expect(claimed.job.steps).toEqual([]); // each attempt starts afresh
      await q.updateSteps(claimed, [
        step('build', 'succeeded'),
        step('test', 'running'),
        step('deploy', 'pending'),
      ]);
      await new Promise((resolve) => setTimeout(resolve, 60));
      await reapOnce({ queue, logs, logger: silent, leaseMs: 50 });
    }
    const final = (await store.get(job.id))!;
    expect(final.status).toBe('error');
    expect(final.steps.map((s) => s.status)).toEqual(['succeeded', 'cancelled', 'skipped']);
    expect(final.error).toMatch(/agent lost 3 times/);
    expect(await groupInfo()).toEqual({ lag: 0, pending: 0 });
  });

  it('writes each attempt’s "picked up" line with its claim, so an agent killed at once still leaves it in the log', async () => {
    await queue.ensureGroup();
    const job = await queue.enqueue(newJob());
    const logs = new LogStore(redis);
    for (let attempt = 1; attempt <= 2; attempt++) {
      // Claimed, then nothing more from this agent: it was killed right after.
      expect((await agentQueue().claim(`killed-${attempt}`, 1_000))?.attempt).toBe(attempt);
      await new Promise((resolve) => setTimeout(resolve, 60));
      await reapOnce({ queue, logs, logger: silent, leaseMs: 50 });
    }
    const lines = (await logs.read(job.id)).map((e) => [e.seq, e.stream, e.line]);
    expect(lines).toEqual([
      [1, 'system', `[raibid] agent killed-1 picked up job ${job.id} (attempt 1 of 3)`],
      [2, 'system', '[raibid] agent killed-1 stopped heart-beating; job re-queued for attempt 2 of 3'],
      [3, 'system', `[raibid] agent killed-2 picked up job ${job.id} (attempt 2 of 3)`],
      [4, 'system', '[raibid] this job is being retried: attempt 2 of 3, an earlier agent did not finish it'],
      [5, 'system', '[raibid] agent killed-2 stopped heart-beating; job re-queued for attempt 3 of 3'],
    ]);
    // The job's later lines follow on from the claim's (one sequence).
    expect((await logs.append(job.id, [{ stream: 'stdout', step: null, line: 'next' }])).written).toBe(1);
    expect((await logs.read(job.id, 5)).map((e) => e.seq)).toEqual([6]);
  });

  it('hands a job back on release without counting the attempt', async () => {
    await queue.ensureGroup();
    const job = await queue.enqueue(newJob());
    const claimed = (await agentQueue().claim('leaving', 1_000))!;
    const released = await queue.release(claimed);
    expect(released).toMatchObject({ status: 'queued', attempts: 0, agent: null, steps: [] });
    expect(await groupInfo()).toEqual({ lag: 1, pending: 0 });
    const again = (await agentQueue().claim('next', 1_000))!;
    expect(again.job.id).toBe(job.id);
    expect(again.attempt).toBe(1);
  });

  it('tells an agent whose job record vanished (Redis lost its data) that the job is no longer its, without throwing', async () => {
    await queue.ensureGroup();
    const job = await queue.enqueue(newJob());
    const claimed = (await agentQueue().claim('orphaned', 1_000))!;
    await redis.del(jobKey(job.id));
    expect(await queue.updateSteps(claimed, [])).toBe(false);
    await redis.del(JOBS_STREAM); // and the stream with its group
    expect(await queue.renew(claimed)).toBe(false);
    expect(await queue.finish(claimed, { status: 'succeeded', exitCode: 0 })).toBeNull();
    expect(await queue.release(claimed)).toBeNull();
  });

  it.each([
    ['finish, then claim', false],
    ['finishAndClaimNext', true],
  ])('runs 200 jobs through 8 concurrent consumers exactly once each (%s)', async (_, together) => {
    await queue.ensureGroup();
    const ids = new Set<string>();
    for (let i = 0; i < 200; i++) ids.add((await queue.enqueue(newJob(i))).id);
    const ran: string[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async (_, n) => {
        const q = agentQueue();
        let next: ClaimedJob | null = null;
        for (;;) {
          const claimed: ClaimedJob | null = next ?? (await q.claim(`worker-${n}`, 200));
          if (!claimed) return;
          ran.push(claimed.job.id);
          const outcome = { status: 'succeeded', exitCode: 0 } as const;
          const done: { job: Job | null; next: ClaimedJob | null } = together
            ? await q.finishAndClaimNext(claimed, outcome)
            : { job: await q.finish(claimed, outcome), next: null };
          expect(done.job).not.toBeNull();
          next = done.next;
        }
      }),
    );
    expect(ran).toHaveLength(200);
    expect(new Set(ran)).toEqual(ids);
    expect(await store.countByStatus('succeeded')).toBe(200);
    expect(await groupInfo()).toEqual({ lag: 0, pending: 0 });
  });

  it('cancels a queued job at once and skips its entry', async () => {
    await queue.ensureGroup();
    const job = await queue.enqueue(newJob());
    expect((await queue.requestCancel(job.id))?.status).toBe('cancelled');
    expect(await agentQueue().claim('a', 200)).toBeNull();
    expect(await groupInfo()).toEqual({ lag: 0, pending: 0 });
  });

  it('asks the agent of a running job to cancel', async () => {
    await queue.ensureGroup();
    const job = await queue.enqueue(newJob());
    const claimed = (await agentQueue().claim('a', 1_000))!;
    expect((await queue.requestCancel(job.id))?.status).toBe('running');
    expect(await queue.isCancelRequested(job.id)).toBe(true);
    await queue.finish(claimed, { status: 'cancelled' });
    expect(await queue.isCancelRequested(job.id)).toBe(false);
    expect(await queue.requestCancel('nope')).toBeNull();
  });

  it('refuses illegal transitions', async () => {
    const job = await queue.enqueue(newJob());
    await expect(
      store.update(job.id, (j) => ({ job: { ...j, status: 'succeeded' } })),
    ).rejects.toBeInstanceOf(IllegalTransitionError);
    await queue.requestCancel(job.id);
    await expect(store.update(job.id, (j) => ({ job: { ...j, status: 'running' } }))).rejects.toThrow(
      /cannot go from cancelled to running/,
    );
  });

  it('reports bad payloads in Redis instead of crashing', async () => {
    await queue.ensureGroup();
    await redis.xadd(JOBS_STREAM, '*', 'nonsense', '1');
    await redis.xadd(JOBS_STREAM, '*', 'jobId', 'missing-job');
    const corrupt = await queue.enqueue(newJob());
    await redis.hset(jobKey(corrupt.id), 'data', '{"id": 42}');
    const good = await queue.enqueue(newJob());

    const claimed = await agentQueue().claim('a', 1_000);
    expect(claimed?.job.id).toBe(good.id);
    expect(problems.join('\n')).toMatch(/without jobId/);
    expect(problems.join('\n')).toMatch(/missing or corrupt/);
    await expect(store.get(corrupt.id)).rejects.toThrow(/corrupt/);

    const page = await store.list({ limit: 10 });
    expect(page.jobs.map((j) => j.id)).toEqual([good.id]);
    expect(problems.some((p) => p.includes(corrupt.id))).toBe(true);
  });

  it('repairs a lag Redis lost count of (as after an AOF replay), so KEDA can scale again', async () => {
    await queue.ensureGroup();
    const jobs = [];
    for (let i = 0; i < 4; i++) jobs.push(await queue.enqueue(newJob(i)));
    const q = agentQueue();
    await q.finish((await q.claim('a', 500))!, { status: 'succeeded' });
    await q.claim('b', 500); // still running
    // An AOF replay restores the group's position (XCLAIM … LASTID / SETID) but not its read count.
    const [, second] = await redis.xrange(JOBS_STREAM, '-', '+');
    await redis.xgroup('SETID', JOBS_STREAM, AGENTS_GROUP, second![0]);
    expect((await groupInfo()).lag).toBeNull();
    expect(await queue.stats()).toEqual({ lag: 2, pending: 1 });

    await reapOnce({ queue, logs: new LogStore(redis), logger: silent, leaseMs: 60_000 });
    expect(await groupInfo()).toEqual({ lag: 2, pending: 1 });
    expect(await queue.repairLag()).toBe(false); // nothing left to repair
    const third = (await agentQueue().claim('c', 500))!;
    expect(third.job.id).toBe(jobs[2]!.id); // nothing re-delivered, nothing skipped
    expect((await groupInfo()).lag).toBe(1);
  });

  it('repairs a lag that is a number but wrong (a read count left stale by an AOF replay), so KEDA does not scale for jobs that are not there', async () => {
    await queue.ensureGroup();
    const q = agentQueue();
    for (let i = 0; i < 3; i++) {
      await queue.enqueue(newJob(i));
      await q.finish((await q.claim('a', 500))!, { status: 'succeeded' });
    }
    // The read count as a replay can leave it: behind the entries the group really read.
    const [, , last] = await redis.xrange(JOBS_STREAM, '-', '+');
    await redis.xgroup('SETID', JOBS_STREAM, AGENTS_GROUP, last![0], 'ENTRIESREAD', 1);
    expect((await groupInfo()).lag).toBe(2);

    expect(await queue.repairLag()).toBe(true);
    expect(await groupInfo()).toEqual({ lag: 0, pending: 0 });
    expect(await queue.repairLag()).toBe(false);
  });

  it('counts a numeric lag once per Redis run: a new run (restart from the AOF) is counted again, passes in between read no backlog', async () => {
    const aofRedis = await startRedis({ aof: true });
    try {
      const connection = aofRedis.client();
      const q = new JobQueue(connection, new JobStore(connection));
      await q.ensureGroup();
      for (let i = 0; i < 3; i++) await q.enqueue(newJob(i));
      await q.finish((await q.claim('a', 500))!, { status: 'succeeded' });
      expect(await q.repairLag()).toBe(false); // counted: right
      await connection.config('RESETSTAT');
      expect(await q.repairLag()).toBe(false);
      const stats = await connection.info('commandstats');
      expect(stats).not.toMatch(/cmdstat_xrange:/); // the second pass read no entry

      await aofRedis.down();
      await aofRedis.up();
      await waitFor('the connection back after the restart', async () => connection.status === 'ready');
      // What a replay can leave: the read count behind what the group really read.
      const [first] = await connection.xrange(JOBS_STREAM, '-', '+');
      await connection.xgroup('SETID', JOBS_STREAM, AGENTS_GROUP, first![0], 'ENTRIESREAD', 0);
      expect(await q.stats()).toEqual({ lag: 3, pending: 0 });
      expect(await q.repairLag()).toBe(true); // a new run_id: counted again
      expect(await q.stats()).toEqual({ lag: 2, pending: 0 });
    } finally {
      await aofRedis.stop();
    }
  });

  it('reports lag and pending like XINFO GROUPS, and trims only below what agents read', async () => {
    await queue.ensureGroup();
    for (let i = 0; i < 30; i++) await queue.enqueue(newJob(i));
    const q = agentQueue();
    for (let i = 0; i < 20; i++) {
      const claimed = (await q.claim('a', 500))!;
      if (i >= 2) await q.finish(claimed, { status: 'succeeded' });
    }
    expect(await queue.stats()).toEqual({ lag: 10, pending: 2 });
    const trimmed = await queue.trim(5);
    expect(trimmed).toBe(0); // the oldest entries are still pending
    expect(await queue.stats()).toEqual({ lag: 10, pending: 2 });
    expect((await groupInfo()).lag).toBe(10);
  });
});

describe('JobQueue pools', () => {
  it('creates the group on every pool stream, so KEDA finds the GPU one before its first job', async () => {
    await queue.ensureGroup();
    expect(await queue.groupExists()).toBe(true);
    const groups = (await redis.xinfo('GROUPS', GPU_JOBS_STREAM)) as unknown[][];
    expect(groups.map((g) => g[g.indexOf('name') + 1])).toEqual([AGENTS_GROUP]);
    await redis.del(GPU_JOBS_STREAM);
    expect(await queue.groupExists()).toBe(false); // readiness needs every pool
  });

  it('puts a gpu job in raibid:jobs:gpu, where only a gpu queue claims it; lag counts per pool', async () => {
    await queue.ensureGroup();
    const cpuJob = await queue.enqueue(newJob(1));
    const gpuJob = await queue.enqueue({ ...newJob(2), pool: 'gpu' });
    expect(gpuJob.pool).toBe('gpu');
    expect(cpuJob.pool).toBe('cpu');
    expect(await redis.xlen(JOBS_STREAM)).toBe(1);
    expect(await redis.xlen(GPU_JOBS_STREAM)).toBe(1);
    expect(await queue.stats('gpu')).toEqual({ lag: 1, pending: 0 });

    const cpuAgent = agentQueue('cpu');
    const gpuAgent = agentQueue('gpu');
    expect((await cpuAgent.claim('cpu-1', 300))!.job.id).toBe(cpuJob.id);
    expect(await cpuAgent.claim('cpu-1', 300)).toBeNull(); // the gpu job is not the cpu pool's
    const claimed = (await gpuAgent.claim('gpu-1', 300))!;
    expect(claimed.job.id).toBe(gpuJob.id);
    expect(await queue.stats('gpu')).toEqual({ lag: 0, pending: 1 });
    expect(await gpuAgent.renew(claimed)).toBe(true);
    await gpuAgent.finish(claimed, { status: 'succeeded' });
    expect(await queue.stats('gpu')).toEqual({ lag: 0, pending: 0 }); // ACKed in its own stream
  });

  it('reaps a lost gpu job back into the gpu stream, and trims and repairs every pool', async () => {
    await queue.ensureGroup();
    const job = await queue.enqueue({ ...newJob(), pool: 'gpu' });
    const gpuAgent = agentQueue('gpu');
    await gpuAgent.claim('gpu-lost', 300);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const reaped = await reapOnce({ queue, logs: new LogStore(redis), logger: silent, leaseMs: 10 });
    expect(reaped).toEqual([expect.objectContaining({ jobId: job.id, action: 'requeued' })]);
    expect(await queue.stats('gpu')).toEqual({ lag: 1, pending: 0 });
    expect(await queue.stats('cpu')).toEqual({ lag: 0, pending: 0 });
    expect((await gpuAgent.claim('gpu-2', 300))!.attempt).toBe(2);

    // A read count left stale (as an AOF replay can): the gpu group's lag says 2, none is waiting.
    // A server that starts after the replay counts once (this queue already counted this run).
    const last = (await redis.xrange(GPU_JOBS_STREAM, '-', '+')).at(-1)!;
    await redis.xgroup('SETID', GPU_JOBS_STREAM, AGENTS_GROUP, last[0], 'ENTRIESREAD', 0);
    expect(await queue.stats('gpu')).toEqual({ lag: 2, pending: 1 });
    expect(await queue.repairLag()).toBe(false);
    expect(await new JobQueue(redis, store).repairLag()).toBe(true);
    expect(await queue.stats('gpu')).toEqual({ lag: 0, pending: 1 });

    for (let i = 0; i < 8; i++) await queue.enqueue({ ...newJob(i), pool: 'gpu' });
    for (let i = 0; i < 8; i++)
      await gpuAgent.finish((await gpuAgent.claim('gpu-3', 300))!, { status: 'succeeded' });
    expect(await queue.trim(2)).toBeGreaterThan(0);
    expect(await redis.xlen(GPU_JOBS_STREAM)).toBeLessThan(10);
  });

  it('stores a job refused before queueing as error, with no entry in any stream', async () => {
    await queue.ensureGroup();
    const job = await queue.reject({ ...newJob(), pool: 'gpu' }, 'invalid pipeline file: x', ['[raibid] x']);
    expect(await store.get(job.id)).toMatchObject({ status: 'error', error: 'invalid pipeline file: x' });
    expect(await queue.stats('gpu')).toEqual({ lag: 0, pending: 0 });
    expect(await queue.stats('cpu')).toEqual({ lag: 0, pending: 0 });
    expect((await new LogStore(redis).read(job.id, 0, 10)).map((e) => e.line)).toEqual(['[raibid] x']);
  });
});

describe('JobStore.list', () => {
  it('pages newest first with a cursor and filters by status and repo', async () => {
    const created: string[] = [];
    for (let i = 0; i < 7; i++) {
      const input = newJob(i);
      if (i % 2) input.repo = { owner: 'bob', name: 'other', cloneUrl: 'http://gitea.test/bob/other.git' };
      created.push((await queue.enqueue(input)).id);
    }
    await queue.requestCancel(created[0]!);
    const newestFirst = [...created].reverse();

    const first = await store.list({ limit: 3 });
    expect(first.jobs.map((j) => j.id)).toEqual(newestFirst.slice(0, 3));
    const second = await store.list({ limit: 3, cursor: first.nextCursor! });
    expect(second.jobs.map((j) => j.id)).toEqual(newestFirst.slice(3, 6));
    const third = await store.list({ limit: 3, cursor: second.nextCursor! });
    expect(third).toEqual({ jobs: [expect.objectContaining({ id: created[0] })], nextCursor: null });

    const bob = await store.list({ limit: 50, repo: 'bob/other' });
    expect(bob.jobs.map((j) => j.id)).toEqual(created.filter((_, i) => i % 2).reverse());
    const cancelled = await store.list({ limit: 50, status: 'cancelled' });
    expect(cancelled.jobs.map((j) => j.id)).toEqual([created[0]]);
    expect((await store.list({ limit: 50, status: 'cancelled', repo: 'bob/other' })).jobs).toEqual([]);
  });
});
