import { AGENTS_GROUP, JOBS_STREAM, JobQueue, JobStore } from '@raibid/common';
import { startRedis, type TestRedis, waitFor } from '@raibid/common/testing';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { watchJob } from '../src/job-watch.js';

let redis: TestRedis;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

/** How long a stream entry has gone without a claim or renewal (XPENDING idle). */
async function idleMs(client: Redis, entryId: string): Promise<number> {
  const [entry] = (await client.xpending(JOBS_STREAM, AGENTS_GROUP, entryId, entryId, 1)) as [
    string,
    string,
    number,
    number,
  ][];
  return entry![2];
}

describe('watchJob', () => {
  it('renews the hold at once: a job claimed with the previous finish may have waited through its clean-up', async () => {
    const client = redis.client();
    const queue = new JobQueue(client, new JobStore(client));
    await queue.ensureGroup();
    await queue.enqueue({
      repo: { owner: 'a', name: 'b', cloneUrl: 'http://127.0.0.1:9/a/b.git' },
      ref: 'main',
      sha: null,
      trigger: 'api',
    });
    const claimed = (await queue.claim('agent-1', 1_000))!;
    await new Promise((resolve) => setTimeout(resolve, 400)); // the previous job's clean-up
    const watch = watchJob({
      queue,
      claimed,
      heartbeatMs: 60_000,
      onCancel: () => {},
      onLost: () => {
        throw new Error('the job should still be ours');
      },
      onError: (error) => {
        throw error;
      },
    });
    try {
      // Renewed by the first check, not a heartbeat (60 s) later.
      await waitFor('the entry renewed', async () => (await idleMs(client, claimed.entryId)) < 400, 2_000);
    } finally {
      await watch.stop();
      client.disconnect();
    }
  });
});
