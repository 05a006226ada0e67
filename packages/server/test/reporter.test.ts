import {
  createLogger,
  createRedis,
  EVENTS_STREAM,
  type Job,
  JobQueue,
  JobStore,
  type NewJob,
  REPORTER_GROUP,
} from '@raibid/common';
import { useRedis, waitFor } from '@raibid/common/testing';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommitStatusClient, commitStatusFor } from '../src/gitea/commit-status.js';
import { type StatusReporter, startStatusReporter } from '../src/reporter.js';
import { type FakeGitea, startFakeGitea } from './support/fake-gitea.js';

const PUBLIC_URL = 'http://ci.example.test';
const SHA = '2bc79fac5130b1d51eb5f3e5ab304de8f247a89d';
const logger = createLogger({ name: 'reporter-test', level: 'silent' });

const redis = useRedis();
let gitea: FakeGitea;
let connection: Redis;
let queue: JobQueue;
const reporters: StatusReporter[] = [];

function startReporter(options: { attempts?: number } = {}): StatusReporter {
  const reporter = startStatusReporter({
    redis: createRedis(redis.url, { maxRetriesPerRequest: null }),
    client: new CommitStatusClient({
      giteaUrl: gitea.url,
      token: gitea.token,
      logger,
      attempts: options.attempts ?? 5,
      baseDelayMs: 5,
      maxDelayMs: 20,
    }),
    publicUrl: PUBLIC_URL,
    logger,
    consumer: 'test-server',
    blockMs: 200,
  });
  reporters.push(reporter);
  return reporter;
}

const newJob = (sha: string | null = SHA): NewJob => ({
  repo: { owner: 'alice', name: 'hello', cloneUrl: 'http://gitea-http:3000/alice/hello.git' },
  ref: 'refs/pull/3/head',
  sha,
  trigger: 'pull_request',
});

/** queued → running → final, through the real queue (as an agent would). */
async function runJob(status: 'succeeded' | 'failed' | 'error', sha: string | null = SHA): Promise<Job> {
  const job = await queue.enqueue(newJob(sha));
  const claimed = (await queue.claim('agent-1', 1_000))!;
  expect(claimed.job.id).toBe(job.id);
  const final = await queue.finish(claimed, {
    status,
    exitCode: status === 'failed' ? 2 : status === 'succeeded' ? 0 : null,
    error: status === 'error' ? 'clone failed: repository not found' : null,
    steps:
      status === 'failed'
        ? [
            {
              name: 'test',
              status: 'failed',
              exitCode: 2,
              startedAt: claimed.job.startedAt,
              finishedAt: claimed.job.startedAt,
            },
          ]
        : [],
  });
  return final!;
}

async function reporterPending(): Promise<number> {
  const summary = (await connection.xpending(EVENTS_STREAM, REPORTER_GROUP)) as [number, ...unknown[]];
  return summary[0];
}

beforeEach(async () => {
  gitea = await startFakeGitea();
  connection = redis.client();
  queue = new JobQueue(connection, new JobStore(connection));
  await queue.ensureGroup();
});
afterEach(async () => {
  await Promise.all(reporters.splice(0).map((r) => r.stop()));
  await gitea.close();
});

describe('commit statuses', () => {
  it('posts pending, pending, success for a succeeded job: path, auth header and body as Gitea takes them', async () => {
    startReporter();
    const job = await runJob('succeeded');
    await waitFor('three statuses', () => gitea.statuses.length === 3);
    expect(gitea.statuses.map((s) => [s.owner, s.repo, s.sha, s.authorization])).toEqual(
      Array(3).fill(['alice', 'hello', SHA, `token ${gitea.token}`]),
    );
    expect(gitea.statuses.map((s) => s.body)).toEqual([
      {
        state: 'pending',
        target_url: `${PUBLIC_URL}/jobs/${job.id}`,
        description: 'Queued',
        context: 'raibid-ci',
      },
      {
        state: 'pending',
        target_url: `${PUBLIC_URL}/jobs/${job.id}`,
        description: 'Running on agent-1',
        context: 'raibid-ci',
      },
      {
        state: 'success',
        target_url: `${PUBLIC_URL}/jobs/${job.id}`,
        description: expect.stringMatching(/^Succeeded in \d+s$/),
        context: 'raibid-ci',
      },
    ]);
    await waitFor('all events acked', async () => (await reporterPending()) === 0);
  });

  it('maps failed → failure (naming the step), error → error, cancelled → failure', async () => {
    startReporter();
    await runJob('failed');
    await runJob('error');
    const cancelled = await queue.enqueue(newJob());
    await queue.requestCancel(cancelled.id);
    await waitFor('all statuses', () => gitea.statuses.length === 3 + 3 + 2);
    const finals = gitea.statuses.filter((s) => s.body.state !== 'pending').map((s) => s.body);
    // Each job's statuses are posted in order; different jobs' may interleave.
    expect(finals).toHaveLength(3);
    expect(finals).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          state: 'failure',
          description: expect.stringMatching(/^Failed in \d+s: step "test" exited 2$/),
        }),
        expect.objectContaining({ state: 'error', description: 'Error: clone failed: repository not found' }),
        expect.objectContaining({ state: 'failure', description: 'Cancelled' }),
      ]),
    );
  });

  it('posts nothing for a job without a sha, and only on status changes', async () => {
    startReporter();
    await runJob('succeeded', null);
    // A steps-only write is not a transition.
    const job = await queue.enqueue(newJob());
    const claimed = (await queue.claim('agent-2', 1_000))!;
    await queue.updateSteps(claimed, [
      {
        name: 'build',
        status: 'running',
        exitCode: null,
        startedAt: new Date().toISOString(),
        finishedAt: null,
      },
    ]);
    await waitFor('events acked', async () => (await reporterPending()) === 0 && gitea.statuses.length >= 2);
    await waitFor('events consumed', async () => {
      const groups = (await connection.xinfo('GROUPS', EVENTS_STREAM)) as unknown[][];
      const group = groups.find((g) => g[g.indexOf('name') + 1] === REPORTER_GROUP)!;
      return group[group.indexOf('lag') + 1] === 0 && (await reporterPending()) === 0;
    });
    expect(gitea.statuses.map((s) => [s.sha, s.body.description])).toEqual([
      [SHA, 'Queued'],
      [SHA, 'Running on agent-2'],
    ]);
    expect(job.sha).toBe(SHA);
  });

  it('retries a failing Gitea with backoff and posts once it recovers', async () => {
    gitea.failNext(3, 503);
    startReporter();
    await queue.enqueue(newJob());
    await waitFor('status after recovery', () => gitea.statuses.length === 1);
    expect(gitea.requests).toBe(4);
    expect(gitea.statuses[0]!.body.state).toBe('pending');
    await waitFor('acked', async () => (await reporterPending()) === 0);
  });

  it('retries when the connection drops', async () => {
    gitea.failNext(2, 0);
    startReporter();
    await queue.enqueue(newJob());
    await waitFor('status after dropped connections', () => gitea.statuses.length === 1);
    expect(gitea.requests).toBe(3);
  });

  it('does not retry what retrying cannot fix (404), and gives up after the bounded attempts (500)', async () => {
    gitea.failNext(1, 404);
    startReporter({ attempts: 3 });
    await queue.enqueue(newJob());
    await waitFor('acked', async () => (await reporterPending()) === 0 && gitea.requests === 1);

    gitea.failAll(500);
    await queue.enqueue(newJob());
    await waitFor(
      'gave up after 3 attempts',
      async () => gitea.requests === 4 && (await reporterPending()) === 0,
    );
    gitea.failAll(null);
    // The reporter keeps going afterwards.
    await queue.enqueue(newJob());
    await waitFor('next status posted', () => gitea.statuses.length === 1);
    expect(gitea.requests).toBe(5);
  });

  it('loses nothing across a restart: events written while it was down, and posts cut off mid-retry', async () => {
    const job = await queue.enqueue(newJob()); // before any reporter exists
    gitea.failAll(503);
    const first = startReporter({ attempts: 1_000 });
    await waitFor('retrying', () => gitea.requests >= 2);
    await first.stop();
    expect(await reporterPending()).toBe(1); // not ACKed: it was never posted

    const claimed = (await queue.claim('agent-1', 1_000))!; // while no reporter runs
    await queue.finish(claimed, { status: 'succeeded', exitCode: 0 });
    gitea.failAll(null);
    startReporter();
    await waitFor('all three statuses', () => gitea.statuses.length === 3);
    expect(gitea.statuses.map((s) => s.body.state)).toEqual(['pending', 'pending', 'success']);
    expect(gitea.statuses.every((s) => s.body.target_url === `${PUBLIC_URL}/jobs/${job.id}`)).toBe(true);
    await waitFor('acked', async () => (await reporterPending()) === 0);
  });

  it('creates its group again when Redis comes back empty, and posts what happens afterwards', async () => {
    startReporter();
    await queue.enqueue(newJob());
    await waitFor('first status', () => gitea.statuses.length === 1);
    await connection.flushall(); // a Redis without persistence restarted
    await queue.ensureGroup();
    const job = await queue.enqueue(newJob());
    await waitFor('status of the job enqueued after the data loss', () => gitea.statuses.length === 2);
    expect(gitea.statuses[1]!.body.target_url).toBe(`${PUBLIC_URL}/jobs/${job.id}`);
  });

  it('keeps each job in order while jobs are posted in parallel', async () => {
    startReporter();
    for (let i = 0; i < 5; i++) await runJob('succeeded');
    await waitFor('fifteen statuses', () => gitea.statuses.length === 15);
    const byUrl = new Map<string, string[]>();
    for (const status of gitea.statuses) {
      byUrl.set(status.body.target_url, [
        ...(byUrl.get(status.body.target_url) ?? []),
        status.body.description,
      ]);
    }
    expect(byUrl.size).toBe(5);
    for (const descriptions of byUrl.values()) {
      expect(descriptions.map((d) => d.split(' ')[0])).toEqual(['Queued', 'Running', 'Succeeded']);
    }
  });
});

describe('commitStatusFor', () => {
  const base = JobStore.newRecord(newJob());

  it('says re-queued for a job whose agent was lost, and truncates long errors', () => {
    expect(commitStatusFor({ ...base, attempts: 1 }, PUBLIC_URL).description).toBe(
      'Re-queued (agent lost), attempt 2',
    );
    const long = commitStatusFor({ ...base, status: 'error', error: 'x'.repeat(500) }, `${PUBLIC_URL}/`);
    expect(long.description.length).toBeLessThanOrEqual(140);
    expect(long.target_url).toBe(`${PUBLIC_URL}/jobs/${base.id}`);
  });
});
