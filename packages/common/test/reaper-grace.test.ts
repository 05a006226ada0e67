// The reaper after a Redis restart from its AOF: entries' idle times then include the
// outage, so without a grace period every running job would look abandoned.
import { describe, expect, it, onTestFinished } from 'vitest';
import { createLogger, createRedis, JobQueue, JobStore, LogStore, startReaper } from '../src/index.js';
import { startRedis, waitFor } from './support/index.js';

const LEASE_MS = 1_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('startReaper after a Redis restart', () => {
  it('gives live agents a lease to renew before reclaiming, then still reclaims the jobs of agents that are gone', async () => {
    const redis = await startRedis({ aof: true });
    onTestFinished(() => redis.stop());
    // As the server's and an agent's connections are made.
    const serverConnection = createRedis(redis.url, { maxRetriesPerRequest: 3 });
    const agentConnection = createRedis(redis.url, { maxRetriesPerRequest: null });
    for (const connection of [serverConnection, agentConnection]) {
      connection.on('error', () => {});
      onTestFinished(() => connection.disconnect());
    }
    const queue = new JobQueue(serverConnection, new JobStore(serverConnection));
    const agentQueue = new JobQueue(agentConnection, new JobStore(agentConnection));
    await queue.ensureGroup();
    const job = await queue.enqueue({
      repo: { owner: 'alice', name: 'hello', cloneUrl: 'http://gitea.test/alice/hello.git' },
      ref: 'main',
      sha: null,
      trigger: 'api',
      env: {},
    });
    const claimed = (await agentQueue.claim('alive', 1_000))!;
    const stopReaper = startReaper({
      queue,
      connection: serverConnection,
      logs: new LogStore(serverConnection),
      logger: createLogger({ name: 'test-reaper', level: 'silent' }),
      leaseMs: LEASE_MS,
      intervalMs: 100,
    });
    onTestFinished(stopReaper);

    // Redis is away for longer than the lease; the agent cannot renew meanwhile.
    expect(await agentQueue.renew(claimed)).toBe(true);
    await redis.down('SIGKILL');
    await sleep(LEASE_MS * 1.5);
    await redis.up();
    await waitFor('the reaper’s connection back', () => serverConnection.status === 'ready');

    // The agent renews half a lease after Redis is back (its heartbeat came round): still its job.
    await sleep(LEASE_MS / 2);
    expect(await agentQueue.renew(claimed)).toBe(true);
    expect(await queue.store.get(job.id)).toMatchObject({ status: 'running', attempts: 1, agent: 'alive' });

    // An agent that never renews again is gone: its job is re-queued after the grace and the lease.
    const requeued = await waitFor(
      'the job re-queued',
      async () => {
        const current = await queue.store.get(job.id);
        return current?.status === 'queued' ? current : null;
      },
      LEASE_MS * 5,
    );
    expect(requeued.attempts).toBe(1);
    expect(await agentQueue.renew(claimed)).toBe(false);
  });
});
