import type { Redis } from 'ioredis';
import { type ClaimedJob, ClaimScripts, claimOf } from './claims.js';
import type { Job, NewJob } from './job.js';
import { AGENTS_GROUP, cancelKey, jobsStream } from './keys.js';
import { DEFAULT_POOL, type Pool } from './pool.js';
import { isNoGroupError, PoolGroups, type QueueStats } from './queue-groups.js';
import { EntryReaper, type ReapedEntry } from './queue-reaping.js';
import { fieldsToObject } from './redis.js';
import type { JobStatus } from './status.js';
import { CorruptJobError, type JobChange, JobNotFoundError, JobStore } from './store.js';

export type { ClaimedJob } from './claims.js';
export type { QueueStats } from './queue-groups.js';
export type { ReapedEntry } from './queue-reaping.js';

export type FinalStatus = Extract<JobStatus, 'succeeded' | 'failed' | 'cancelled' | 'error'>;

export interface Outcome {
  status: FinalStatus;
  exitCode?: number | null;
  error?: string | null;
  steps?: Job['steps'];
}

/**
 * Renews an agent's hold on its entry: only if the entry is still pending for this
 * consumer (the reaper may have taken it, or Redis lost the group), reset its idle
 * time with XCLAIM JUSTID.
 */
const RENEW_SCRIPT = `
local pending = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if pending.err or #pending == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
`;

export interface JobQueueOptions {
  /** The pool whose stream `claim` reads (an agent serves one pool); default `cpu`. */
  pool?: Pool;
  /** Reports problems that are handled but worth knowing (bad entries, corrupt records). */
  onProblem?: (message: string, detail: Record<string, unknown>) => void;
}

/**
 * The job queue: one Redis stream per pool (`raibid:jobs` for cpu, `raibid:jobs:gpu`),
 * each with group `raibid-agents` (CONTRACT.md, "Redis"). A job's entry lives in its
 * pool's stream; `claim` reads this queue's pool; the reaper's work (reap, repairLag,
 * trim) covers every pool. Entries are never XDEL'ed: that would break `lag`.
 * `claim` blocks its connection while waiting: give agents a connection of their own.
 * The hot path's scripts are in claims.ts, the reaper's side in queue-reaping.ts, the
 * groups (lag, pending, trim) in queue-groups.ts; this class is what callers use.
 */
export class JobQueue {
  readonly pool: Pool;
  private readonly onProblem: NonNullable<JobQueueOptions['onProblem']>;
  private readonly scripts: ClaimScripts;
  private readonly groups: PoolGroups;
  private readonly reaper: EntryReaper;

  constructor(
    private readonly redis: Redis,
    readonly store: JobStore,
    options: JobQueueOptions = {},
  ) {
    this.pool = options.pool ?? DEFAULT_POOL;
    this.onProblem = options.onProblem ?? (() => {});
    this.scripts = new ClaimScripts(redis, store.eventsMaxLen);
    this.groups = new PoolGroups(redis, this.onProblem);
    this.reaper = new EntryReaper(redis, store, this.groups, this.onProblem);
    redis.defineCommand('raibidRenewClaim', { numberOfKeys: 1, lua: RENEW_SCRIPT });
  }

  /**
   * Stores a new queued job and its entry in its pool's stream in one atomic write,
   * with `systemLines` (e.g. how it was routed) as the first lines of its log.
   */
  async enqueue(input: NewJob, systemLines: string[] = []): Promise<Job> {
    const job = JobStore.newRecord(input);
    await this.store.insert(job, true, systemLines);
    return job;
  }

  /**
   * Stores a job that ends `error` before it is queued (its pipeline file is broken):
   * no stream entry, so no agent starts for it. `systemLines` explain it in its log.
   */
  async reject(input: NewJob, error: string, systemLines: string[]): Promise<Job> {
    const job = JobQueue.rejectedRecord(input, error);
    await this.store.insert(job, false, systemLines);
    return job;
  }

  /** The record of a job that ends `error` at once (not yet stored). */
  static rejectedRecord(input: NewJob, error: string, now = new Date()): Job {
    return { ...JobStore.newRecord(input, now), status: 'error', error, finishedAt: now.toISOString() };
  }

  /**
   * Takes ONE entry of this queue's pool for `consumer` and marks its job running. The
   * claim script reads the entry itself (XREADGROUP COUNT 1 >) when one is waiting, so
   * a busy queue costs one call per claim; otherwise a blocking XREADGROUP waits and
   * the script claims what it delivers. Entries of jobs that are no longer queued
   * (cancelled while waiting) and malformed entries are ACKed and skipped. Returns
   * null when nothing arrives within `blockMs`.
   */
  async claim(consumer: string, blockMs: number): Promise<ClaimedJob | null> {
    const deadline = Date.now() + blockMs;
    let delivered: { id: string; jobId: string } | undefined;
    for (;;) {
      const reply = await this.scripts.claim(this.pool, consumer, delivered);
      delivered = undefined;
      if (reply.kind === 'nogroup') {
        await this.groups.recreateGroup(this.pool);
        continue;
      }
      if (reply.kind === 'empty') {
        delivered = await this.waitForEntry(consumer, Math.max(1, deadline - Date.now()));
        if (delivered) continue;
      } else {
        const claimed = claimOf(reply, consumer, this.store, this.onProblem);
        if (claimed) return claimed;
      }
      if (Date.now() >= deadline) return null;
    }
  }

  /**
   * Blocks until an entry arrives for `consumer` (or `waitMs` passes). An entry without
   * a jobId is ACKed and reported here; undefined means nothing to claim yet.
   */
  private async waitForEntry(
    consumer: string,
    waitMs: number,
  ): Promise<{ id: string; jobId: string } | undefined> {
    let reply: [string, [string, string[]][]][] | null;
    try {
      reply = (await this.redis.xreadgroup(
        'GROUP',
        AGENTS_GROUP,
        consumer,
        'COUNT',
        1,
        'BLOCK',
        waitMs,
        'STREAMS',
        jobsStream(this.pool),
        '>',
      )) as [string, [string, string[]][]][] | null;
    } catch (error) {
      if (!isNoGroupError(error)) throw error;
      await this.groups.recreateGroup(this.pool);
      return undefined;
    }
    const entry = reply?.[0]?.[1]?.[0];
    if (!entry) return undefined;
    const jobId = fieldsToObject(entry[1]).jobId;
    if (jobId) return { id: entry[0], jobId };
    this.onProblem('queue entry without jobId skipped', { entryId: entry[0] });
    await this.ack(this.pool, entry[0]);
    return undefined;
  }

  private async ack(pool: Pool, entryId: string): Promise<void> {
    await this.redis.xack(jobsStream(pool), AGENTS_GROUP, entryId);
  }

  /**
   * Renews the hold on a claimed entry (the reaper reclaims entries idle longer
   * than the lease). Returns false when the entry is no longer this agent's.
   */
  async renew(claimed: ClaimedJob): Promise<boolean> {
    const held = await (this.redis as unknown as QueueCommands).raibidRenewClaim(
      jobsStream(claimed.job.pool),
      AGENTS_GROUP,
      claimed.consumer,
      claimed.entryId,
    );
    return held === 1;
  }

  /**
   * Updates the record of a claimed job. A record that is gone (Redis lost its data)
   * is no longer this claim's either: null, like any other change refused by `decide`.
   */
  private async updateClaimed(
    claimed: ClaimedJob,
    decide: (current: Job) => JobChange | null,
  ): Promise<{ job: Job } | null> {
    try {
      return await this.store.update(claimed.job.id, decide);
    } catch (error) {
      if (!(error instanceof JobNotFoundError)) throw error;
      this.onProblem('the record of a claimed job is gone', {
        jobId: claimed.job.id,
        entryId: claimed.entryId,
      });
      return null;
    }
  }

  /** Whether this claim still owns the job record (the reaper may have moved it on). */
  private owns(claimed: ClaimedJob, job: Job): boolean {
    return job.status === 'running' && job.agent === claimed.consumer && job.attempts === claimed.attempt;
  }

  /**
   * Records progress of a running job: its steps and, once checked out, the commit
   * it runs (a job submitted by ref only learns its sha here). Returns false if the
   * job is no longer this claim's.
   */
  async updateSteps(claimed: ClaimedJob, steps: Job['steps'], sha?: string): Promise<boolean> {
    let owned = false;
    await this.updateClaimed(claimed, (job) => {
      owned = this.owns(claimed, job);
      return owned ? { job: { ...job, steps, sha: sha ?? job.sha } } : null;
    });
    return owned;
  }

  /** Ends the job and ACKs its entry, atomically. Returns the final job, or null if no longer ours. */
  async finish(claimed: ClaimedJob, outcome: Outcome): Promise<Job | null> {
    return (await this.finishClaim(claimed, outcome, false)).job;
  }

  /**
   * Finishes like `finish` and, in the same atomic call, claims the next waiting entry of
   * the job's pool for the same consumer (an agent that loops). `next` is null when none
   * waits (or the finish was refused): then `claim` waits for one as usual.
   */
  finishAndClaimNext(
    claimed: ClaimedJob,
    outcome: Outcome,
  ): Promise<{ job: Job | null; next: ClaimedJob | null }> {
    return this.finishClaim(claimed, outcome, true);
  }

  private async finishClaim(
    claimed: ClaimedJob,
    outcome: Outcome,
    claimNext: boolean,
  ): Promise<{ job: Job | null; next: ClaimedJob | null }> {
    const { job, entryId, consumer, attempt } = claimed;
    const fields = {
      status: outcome.status,
      exitCode: outcome.exitCode ?? null,
      error: outcome.error ?? null,
      finishedAt: new Date().toISOString(),
      ...(outcome.steps === undefined ? {} : { steps: outcome.steps }),
    };
    const reply = await this.scripts.finish(job.pool, entryId, job.id, consumer, attempt, fields, claimNext);
    if (reply.kind === 'corrupt') throw new CorruptJobError(job.id, 'not a job record');
    if (reply.kind !== 'finished') {
      if (reply.kind === 'missing')
        this.onProblem('the record of a claimed job is gone', { jobId: job.id, entryId });
      return { job: null, next: null };
    }
    // The script wrote it from the record claim parsed plus this outcome: no second
    // validation. A record from before pools has no `pool`; its pool never changes.
    const finished = { ...(JSON.parse(reply.data) as Omit<Job, 'pool'>), pool: job.pool };
    const next = reply.next ? claimOf(reply.next, consumer, this.store, this.onProblem) : null;
    return { job: finished, next };
  }

  /**
   * Hands a running job back (agent shutting down): it becomes queued again with a
   * fresh entry, and this attempt does not count against MAX_ATTEMPTS.
   */
  async release(claimed: ClaimedJob): Promise<Job | null> {
    const result = await this.updateClaimed(claimed, (job) =>
      this.owns(claimed, job)
        ? {
            job: {
              ...job,
              status: 'queued',
              attempts: job.attempts - 1,
              agent: null,
              startedAt: null,
              steps: [],
            },
            ackEntry: claimed.entryId,
            requeueAttempt: job.attempts,
          }
        : null,
    );
    return result?.job ?? null;
  }

  /**
   * Cancels a job: a queued one ends `cancelled` at once (its entry is ACKed when
   * an agent meets it); a running one gets a cancellation request its agent acts on.
   * Returns the job as it now is, or null if there is no such job.
   */
  async requestCancel(jobId: string): Promise<Job | null> {
    const current = await this.store.get(jobId);
    if (current === null) return null;
    if (current.status === 'running') {
      await this.redis.set(cancelKey(jobId), '1', 'PX', 24 * 3_600_000);
      return current;
    }
    const result = await this.store.update(jobId, (job) => {
      if (job.status !== 'queued') return null;
      return { job: { ...job, status: 'cancelled', finishedAt: new Date().toISOString() } };
    });
    if (result) return result.job;
    // It started meanwhile: ask its agent.
    const now = await this.store.get(jobId);
    if (now?.status === 'running') await this.redis.set(cancelKey(jobId), '1', 'PX', 24 * 3_600_000);
    return now;
  }

  async isCancelRequested(jobId: string): Promise<boolean> {
    return (await this.redis.exists(cancelKey(jobId))) === 1;
  }

  /**
   * Creates every pool's group at id 0 with MKSTREAM, so entries added before it
   * still get delivered (and KEDA finds the GPU pool's group before its first job).
   */
  ensureGroup(): Promise<void> {
    return this.groups.ensureGroup();
  }

  /** Whether every pool's stream and group exist (readiness). */
  groupExists(): Promise<boolean> {
    return this.groups.groupExists();
  }

  /**
   * Takes over entries of every pool idle longer than `leaseMs` (their agent stopped
   * heart-beating): re-queues, ends `error` after MAX_ATTEMPTS, or ends `cancelled`.
   */
  reap(reaperName: string, leaseMs: number): Promise<ReapedEntry[]> {
    return this.reaper.reap(reaperName, leaseMs);
  }

  /** How long the Redis server has been up, in ms. */
  redisUptimeMs(): Promise<number> {
    return this.groups.redisUptimeMs();
  }

  /** Lag and pending of a pool's agents group (what KEDA reads). */
  stats(pool: Pool = DEFAULT_POOL): Promise<QueueStats> {
    return this.groups.stats(pool);
  }

  /** Makes every pool group's `lag` right again when Redis reports it nil or stale. */
  repairLag(): Promise<boolean> {
    return this.groups.repairLag();
  }

  /** Trims every pool's stream below what is pending or undelivered, keeping `keep` entries each. */
  trim(keep = 1_000): Promise<number> {
    return this.groups.trim(keep);
  }
}

interface QueueCommands {
  raibidRenewClaim(...args: string[]): Promise<number>;
}
