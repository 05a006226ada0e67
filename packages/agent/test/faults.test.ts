import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createRepo, waitFor } from '@raibid/common/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './support/harness.js';
import { killGroup, processesInGroup } from './support/processes.js';

let h: Harness;
const leftovers: number[] = [];

beforeAll(async () => {
  h = await startHarness();
});
afterEach(() => {
  for (const pgid of leftovers.splice(0)) killGroup(pgid);
});
afterAll(async () => {
  await h?.close();
});

/** A step that records its process group, and on the first run of the job waits "forever". */
const slowFirstRun = (marker: string) => `version: 1
steps:
  - name: work
    run: |
      echo "pgid $$"
      if [ ! -e "${marker}" ]; then touch "${marker}"; echo "first run: waiting"; sleep 120; fi
      echo "finished on attempt $RAIBID_ATTEMPT"
`;

async function pgidOf(jobId: string, nth: number): Promise<number> {
  const line = await waitFor(`step output "pgid" #${nth}`, async () =>
    (await h.events(jobId)).filter((e) => e.line.startsWith('pgid ')).at(nth - 1),
  );
  return Number(line.line.split(' ')[1]);
}

describe('agent faults', () => {
  it('a job whose agent is killed with -9 is reclaimed and finished by a second agent', async () => {
    const marker = path.join(h.workDir, 'kill9-marker');
    const repo = await createRepo(h.reposDir, 'kill9', { '.raibid.yml': slowFirstRun(marker) });
    const stopReaper = h.reaper(1_000, 200);
    try {
      const queued = await h.enqueue(repo);
      const first = await h.agent();
      const orphan = await pgidOf(queued.id, 1);
      leftovers.push(orphan); // an agent killed with -9 cannot stop its step; the pod would take it down
      await waitFor('the first run to wait', async () =>
        (await h.events(queued.id)).some((e) => e.line === 'first run: waiting'),
      );
      first.child.kill('SIGKILL');
      expect((await first.exited).signal).toBe('SIGKILL');

      await h.waitForStatus(queued.id, ['queued'], 10_000); // re-queued by the reaper
      const second = await h.agent();
      const job = await h.waitForStatus(queued.id, ['succeeded', 'failed', 'error', 'cancelled']);
      expect((await second.exited).code).toBe(0);
      expect(job.status).toBe('succeeded');
      expect(job.attempts).toBe(2);
      const text = (await h.events(queued.id)).map((e) => e.line).join('\n');
      expect(text).toMatch(
        /\[raibid\] agent agent-\d+ stopped heart-beating; job re-queued for attempt 2 of 3/,
      );
      expect(text).toContain('[raibid] this job is being retried: attempt 2 of 3');
      expect(text).toContain('finished on attempt 2');
      expect(job.agent).not.toBe(null);
    } finally {
      await stopReaper();
    }
  });

  it('SIGTERM stops the step, hands the job back (not a failure) and exits 0; another agent finishes it', async () => {
    const marker = path.join(h.workDir, 'sigterm-marker');
    const repo = await createRepo(h.reposDir, 'sigterm', { '.raibid.yml': slowFirstRun(marker) });
    const queued = await h.enqueue(repo);
    const first = await h.agent();
    const pgid = await pgidOf(queued.id, 1);
    leftovers.push(pgid);
    await waitFor('the first run to wait', async () =>
      (await h.events(queued.id)).some((e) => e.line === 'first run: waiting'),
    );
    first.child.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });

    const released = (await h.store.get(queued.id))!;
    expect(released.status).toBe('queued');
    expect(released.attempts).toBe(0); // the attempt does not count
    expect(released.agent).toBeNull();
    expect(await h.queue.stats()).toEqual({ lag: 1, pending: 0 }); // back in the queue KEDA watches
    expect(await processesInGroup(pgid)).toEqual([]);
    expect(await h.workspaces(queued.id)).toEqual([]);
    const log = (await h.events(queued.id)).map((e) => e.line).join('\n');
    expect(log).toMatch(
      /\[raibid\] agent agent-\d+ is shutting down \(SIGTERM\); the job goes back to the queue for another agent/,
    );
    expect(log).not.toContain('job failed');
    expect(await readFile(marker, 'utf8')).toBe('');

    const second = await h.agent();
    const job = await h.waitForStatus(queued.id, ['succeeded', 'failed', 'error', 'cancelled']);
    expect((await second.exited).code).toBe(0);
    expect(job.status).toBe('succeeded');
    expect(job.attempts).toBe(1);
    expect((await h.events(queued.id)).map((e) => e.line)).toContain('finished on attempt 1');
  });

  it('a cancel kills a step that ignores SIGTERM without waiting out a long RAIBID_KILL_GRACE_MS', async () => {
    const repo = await createRepo(h.reposDir, 'stubborn', {
      '.raibid.yml': `version: 1
steps:
  - name: stubborn
    run: |
      trap '' TERM
      echo "pgid $$"
      sleep 300
`,
    });
    const queued = await h.enqueue(repo);
    // A grace period far beyond the contract's 5 s: a cancel must not wait for it.
    const agent = await h.agent({ RAIBID_KILL_GRACE_MS: '600000' });
    const pgid = await pgidOf(queued.id, 1);
    leftovers.push(pgid);
    await h.queue.requestCancel(queued.id);
    const job = await h.waitForStatus(queued.id, ['cancelled', 'failed', 'succeeded', 'error']);
    expect(job.status).toBe('cancelled');
    expect(await processesInGroup(pgid)).toEqual([]);
    expect(await agent.exited).toEqual({ code: 0, signal: null });
  });

  it('an agent whose hold lapsed stops working on the job and leaves it to the next agent', async () => {
    const repo = await createRepo(h.reposDir, 'lapsed', {
      '.raibid.yml': 'version: 1\nsteps:\n  - name: work\n    run: echo "pgid $$"; sleep 120\n',
    });
    const queued = await h.enqueue(repo);
    // Heart-beating less often than the lease: the reaper takes the job while its step runs.
    const agent = await h.agent({ RAIBID_HEARTBEAT_MS: '1500' });
    const pgid = await pgidOf(queued.id, 1);
    leftovers.push(pgid);
    const stopReaper = h.reaper(300, 100);
    try {
      expect(await agent.exited).toEqual({ code: 0, signal: null });
      expect(await processesInGroup(pgid)).toEqual([]);
      const job = (await h.store.get(queued.id))!;
      expect(job.status).toBe('queued'); // the reaper's decision stands; the agent did not finish it
      const log = (await h.events(queued.id)).map((e) => e.line).join('\n');
      expect(log).toContain('re-queued for attempt 2 of 3');
      expect(log).toMatch(/\[raibid\] agent agent-\d+ lost its hold on the job .*; stopping here/);
      expect(log).not.toMatch(/job (succeeded|failed|cancelled)/);
    } finally {
      await stopReaper();
    }
  });
});
