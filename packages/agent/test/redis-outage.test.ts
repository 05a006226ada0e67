// Agents against a Redis that is killed and restarted from its AOF, as a Redis pod
// restart on k3s does. The outage outlasts what a Redis client retries by default
// (about 10 s), so waiting it out is the agent's doing, not the client's.
import { createRepo, waitFor } from '@raibid/common/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './support/harness.js';
import { killGroup, processesInGroup } from './support/processes.js';

/** Longer than ioredis' default 20 retries (≈ 10.5 s) take. */
const OUTAGE_MS = 12_000;
const FINAL = ['succeeded', 'failed', 'error', 'cancelled'] as const;

let h: Harness;
const leftovers: number[] = [];

beforeAll(async () => {
  h = await startHarness({ aof: true });
});
afterEach(() => {
  for (const pgid of leftovers.splice(0)) killGroup(pgid);
});
afterAll(async () => {
  await h?.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function lines(jobId: string): Promise<string[]> {
  return (await h.events(jobId)).map((e) => e.line);
}

describe('agents across a Redis outage', () => {
  it('a step that ends while Redis is away is recorded as it ended, with its output; an idle --loop agent carries on', async () => {
    const repo = await createRepo(h.reposDir, 'outage', {
      '.raibid.yml': `version: 1
steps:
  - name: work
    run: |
      echo before
      sleep 1
      echo "during 1"
      echo "during 2"
  - name: next
    run: echo after
`,
    });
    const queued = await h.enqueue(repo);
    const worker = await h.agent();
    await waitFor('the step to start', async () => (await lines(queued.id)).includes('before'));
    const idle = await h.agent({ HOSTNAME: 'idle-loop' }, ['--loop']);
    await waitFor('the --loop agent to wait for jobs', () => idle.output().includes('agent started'));

    await h.redis.down('SIGKILL');
    await sleep(OUTAGE_MS);
    await h.redis.up();

    const job = await h.waitForStatus(queued.id, [...FINAL], 30_000);
    expect(job.status).toBe('succeeded');
    expect(job.attempts).toBe(1);
    expect(job.steps.map((s) => [s.name, s.status])).toEqual([
      ['work', 'succeeded'],
      ['next', 'succeeded'],
    ]);
    const log = await lines(queued.id);
    const output = log.filter((line) => /^(before|during \d|after)$/.test(line));
    expect(output).toEqual(['before', 'during 1', 'during 2', 'after']);
    expect(log.some((line) => line.includes('could not be stored'))).toBe(false);
    expect(await worker.exited).toEqual({ code: 0, signal: null });

    // The --loop agent lived through the outage and takes the next job.
    const next = await h.enqueue(repo);
    const done = await h.waitForStatus(next.id, [...FINAL], 30_000);
    expect(done).toMatchObject({ status: 'succeeded', agent: 'idle-loop' });
    idle.child.kill('SIGTERM');
    expect(await idle.exited).toEqual({ code: 0, signal: null });
  });

  it('an agent told to stop while Redis is away exits within seconds, leaving its job to the reaper', async () => {
    const repo = await createRepo(h.reposDir, 'stop-in-outage', {
      '.raibid.yml': 'version: 1\nsteps:\n  - name: work\n    run: echo "pgid $$"; sleep 120\n',
    });
    const queued = await h.enqueue(repo);
    const agent = await h.agent();
    const pgidLine = await waitFor('the step to start', async () =>
      (await lines(queued.id)).find((line) => line.startsWith('pgid ')),
    );
    const pgid = Number(pgidLine.split(' ')[1]);
    leftovers.push(pgid);

    await h.redis.down('SIGKILL');
    agent.child.kill('SIGTERM');
    // Kubernetes allows 30 s before SIGKILL; Redis stays away longer than that here.
    const exit = await Promise.race([agent.exited, sleep(15_000).then(() => 'still running')]);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(await processesInGroup(pgid)).toEqual([]);
    await h.redis.up();

    // The job is still held by the agent that left; the reaper re-queues it after the lease.
    expect(await h.store.get(queued.id)).toMatchObject({ status: 'running', attempts: 1 });
    const stopReaper = h.reaper(1_000, 200);
    try {
      const requeued = await h.waitForStatus(queued.id, ['queued'], 10_000);
      expect(requeued.attempts).toBe(1);
      await waitFor('the reaper’s notice', async () =>
        /\[raibid\] agent agent-\d+ stopped heart-beating; job re-queued for attempt 2 of 3/.test(
          (await lines(queued.id)).join('\n'),
        ),
      );
    } finally {
      await stopReaper();
    }
  });
});
