import type { Redis } from 'ioredis';
import { type Job, MAX_ATTEMPTS } from './job.js';
import { AGENTS_GROUP, cancelKey, jobsStream } from './keys.js';
import { POOLS, type Pool } from './pool.js';
import { isNoGroupError, type PoolGroups } from './queue-groups.js';
import { fieldsToObject } from './redis.js';
import { isFinalStatus } from './status.js';
import { CorruptJobError, type JobStore } from './store.js';

/** What the reaper did with one entry whose agent stopped heart-beating. */
export interface ReapedEntry {
  entryId: string;
  jobId: string | null;
  action: 'requeued' | 'errored' | 'cancelled' | 'dropped';
  /** The agent that lost it, when the job was running. */
  agent: string | null;
  /** For `requeued`: the attempt the job will run next. */
  nextAttempt: number | null;
  reason?: string;
}

/**
 * Steps of a job that ended without its agent (lost, or gone while cancelling): the
 * step that was running is `cancelled`, the ones that never started are `skipped`.
 * A re-queued job instead starts its next attempt with no steps.
 */
function settleSteps(steps: Job['steps'], finishedAt: string): Job['steps'] {
  return steps.map((step) => {
    if (step.status === 'running') return { ...step, status: 'cancelled', finishedAt };
    if (step.status === 'pending') return { ...step, status: 'skipped' };
    return step;
  });
}

/** The reaper's side of the queue: taking over the entries of agents that stopped heart-beating. */
export class EntryReaper {
  constructor(
    private readonly redis: Redis,
    private readonly store: JobStore,
    private readonly groups: PoolGroups,
    private readonly onProblem: (message: string, detail: Record<string, unknown>) => void,
  ) {}

  /**
   * Takes over entries of every pool idle longer than `leaseMs` (their agent stopped
   * heart-beating) with XAUTOCLAIM and decides: re-queue with a fresh XADD (so it
   * counts in lag again), end `error` after MAX_ATTEMPTS, or end `cancelled` if that was asked.
   */
  async reap(reaperName: string, leaseMs: number): Promise<ReapedEntry[]> {
    const results: ReapedEntry[] = [];
    for (const pool of POOLS) results.push(...(await this.reapPool(pool, reaperName, leaseMs)));
    return results;
  }

  private async reapPool(pool: Pool, reaperName: string, leaseMs: number): Promise<ReapedEntry[]> {
    const results: ReapedEntry[] = [];
    let cursor = '0-0';
    do {
      let reply: [string, [string, string[] | null][], string[]?];
      try {
        reply = (await this.redis.xautoclaim(
          jobsStream(pool),
          AGENTS_GROUP,
          reaperName,
          leaseMs,
          cursor,
          'COUNT',
          100,
        )) as [string, [string, string[] | null][], string[]?];
      } catch (error) {
        if (!isNoGroupError(error)) throw error;
        await this.groups.recreateGroup(pool); // a new group holds nothing to reclaim
        return results;
      }
      const [next, entries] = reply;
      cursor = next;
      for (const [entryId, fields] of entries) {
        if (fields === null) continue; // trimmed entry
        results.push(await this.reapEntry(pool, entryId, fieldsToObject(fields).jobId ?? null));
      }
    } while (cursor !== '0-0');
    return results;
  }

  private async reapEntry(pool: Pool, entryId: string, jobId: string | null): Promise<ReapedEntry> {
    const dropped = (reason: string): ReapedEntry => ({
      entryId,
      jobId,
      action: 'dropped',
      agent: null,
      nextAttempt: null,
      reason,
    });
    if (jobId === null) {
      await this.ack(pool, entryId);
      return dropped('entry has no jobId');
    }
    const cancelRequested = (await this.redis.exists(cancelKey(jobId))) === 1;
    let outcome: ReapedEntry | null = null;
    try {
      await this.store.update(jobId, (job) => {
        const finishedAt = new Date().toISOString();
        const agent = job.agent;
        if (isFinalStatus(job.status)) {
          outcome = dropped(`job already ${job.status}`);
          return null;
        }
        if (cancelRequested) {
          outcome = { entryId, jobId, action: 'cancelled', agent, nextAttempt: null };
          return {
            job: {
              ...job,
              status: 'cancelled',
              finishedAt,
              agent: null,
              steps: settleSteps(job.steps, finishedAt),
            },
            ackEntry: entryId,
            clearCancel: true,
          };
        }
        if (job.status === 'running' && job.attempts >= MAX_ATTEMPTS) {
          const error = `agent lost ${job.attempts} times (last: ${agent ?? 'unknown'}); giving up`;
          outcome = { entryId, jobId, action: 'errored', agent, nextAttempt: null, reason: error };
          return {
            job: { ...job, status: 'error', error, finishedAt, steps: settleSteps(job.steps, finishedAt) },
            ackEntry: entryId,
          };
        }
        const nextAttempt = job.attempts + 1;
        outcome = { entryId, jobId, action: 'requeued', agent, nextAttempt };
        return {
          job: { ...job, status: 'queued', agent: null, startedAt: null, steps: [] },
          ackEntry: entryId,
          requeueAttempt: nextAttempt,
        };
      });
    } catch (error) {
      if (error instanceof CorruptJobError || (error instanceof Error && error.name === 'JobNotFoundError')) {
        this.onProblem('reclaimed entry for a missing or corrupt job dropped', {
          entryId,
          jobId,
          error: error.message,
        });
        await this.ack(pool, entryId);
        return dropped(error.message);
      }
      throw error;
    }
    const result = outcome ?? dropped('no change');
    if (result.action === 'dropped') await this.ack(pool, entryId);
    return result;
  }

  private async ack(pool: Pool, entryId: string): Promise<void> {
    await this.redis.xack(jobsStream(pool), AGENTS_GROUP, entryId);
  }
}
