import type { Redis } from 'ioredis';
import { ClaimScripts } from './claims.js';
import { type Job, MAX_ATTEMPTS, type NewJob } from './job.js';
import { AGENTS_GROUP, cancelKey, jobsStream } from './keys.js';
import { DEFAULT_POOL, POOLS, type Pool } from './pool.js';
import { compareStreamIds, fieldsToObject } from './redis.js';
import { isFinalStatus, type JobStatus } from './status.js';
import { CorruptJobError, type JobChange, JobNotFoundError, JobStore } from './store.js';

/** A job an agent holds: its stream entry stays pending (un-ACKed) until the job is final. */
export interface ClaimedJob {
  entryId: string;
  consumer: string;
  /** The attempt number this claim runs (job.attempts after the claim). */
  attempt: number;
  job: Job;
}

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

export interface QueueStats {
  /** Entries not yet delivered to any agent (what KEDA scales on). */
  lag: number;
  /** Entries delivered and not yet ACKed (jobs held by agents). */
  pending: number;
}

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

/**
 * After an AOF replay (reads are replayed as XCLAIM) Redis may have lost count of
 * the entries the group read: `lag` is nil, or a number left stale. KEDA cannot
 * scale on a nil lag (queued jobs would wait forever) and scales for jobs that are
 * not there on a stale one. The true lag is the number of entries after the group's
 * last-delivered id (entries are never XDEL'ed); when `lag` differs, this gives the
 * group its count back — entries added minus that number — with XGROUP SETID …
 * ENTRIESREAD, atomically, so no read can slip in between.
 * Returns 1 when it repaired the group, 0 when there was nothing to repair.
 */
const REPAIR_LAG_SCRIPT = `
local function field(reply, name)
  for i = 1, #reply, 2 do
    if reply[i] == name then return reply[i + 1] end
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  if field(group, 'name') == ARGV[1] then
    local lastId = field(group, 'last-delivered-id')
    local undelivered = #redis.call('XRANGE', KEYS[1], '(' .. lastId, '+')
    if field(group, 'lag') == undelivered then return 0 end
    local added = field(redis.call('XINFO', 'STREAM', KEYS[1]), 'entries-added')
    redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], lastId, 'ENTRIESREAD', added - undelivered)
    return 1
  end
end
return 0
`;

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
 */
export class JobQueue {
  readonly pool: Pool;
  private readonly onProblem: NonNullable<JobQueueOptions['onProblem']>;
  private readonly scripts: ClaimScripts;

  constructor(
    private readonly redis: Redis,
    readonly store: JobStore,
    options: JobQueueOptions = {},
  ) {
    this.pool = options.pool ?? DEFAULT_POOL;
    this.onProblem = options.onProblem ?? (() => {});
    this.scripts = new ClaimScripts(redis, store.eventsMaxLen);
    redis.defineCommand('raibidRenewClaim', { numberOfKeys: 1, lua: RENEW_SCRIPT });
    redis.defineCommand('raibidRepairLag', { numberOfKeys: 1, lua: REPAIR_LAG_SCRIPT });
  }

  /**
   * Creates every pool's group at id 0 with MKSTREAM, so entries added before it
   * still get delivered (and KEDA finds the GPU pool's group before its first job).
   */
  async ensureGroup(): Promise<void> {
    for (const pool of POOLS) {
      try {
        await this.redis.xgroup('CREATE', jobsStream(pool), AGENTS_GROUP, '0', 'MKSTREAM');
      } catch (error) {
        if (!(error instanceof Error && error.message.includes('BUSYGROUP'))) throw error;
      }
    }
  }

  /**
   * The group vanished (Redis came back empty, or someone deleted the stream): create
   * it again at 0, so jobs enqueued since are delivered and counted in lag.
   */
  private async recreateGroup(pool: Pool): Promise<void> {
    this.onProblem('consumer group raibid-agents was missing (Redis lost its data?); created it again', {
      stream: jobsStream(pool),
      group: AGENTS_GROUP,
    });
    await this.ensureGroup();
  }

  /** Whether every pool's stream and group exist (readiness). */
  async groupExists(): Promise<boolean> {
    for (const pool of POOLS) if ((await this.agentsGroup(pool)) === null) return false;
    return true;
  }

  /** The agents group's fields from XINFO GROUPS (`lag` may be nil), or null when stream or group is missing. */
  private async agentsGroup(pool: Pool): Promise<Record<string, unknown> | null> {
    let groups: unknown[][];
    try {
      groups = (await this.redis.xinfo('GROUPS', jobsStream(pool))) as unknown[][];
    } catch (error) {
      if (error instanceof Error && error.message.includes('no such key')) return null;
      throw error;
    }
    for (const group of groups) {
      const fields: Record<string, unknown> = {};
      for (let i = 0; i + 1 < group.length; i += 2) fields[String(group[i])] = group[i + 1];
      if (fields.name === AGENTS_GROUP) return fields;
    }
    return null;
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
      switch (reply.kind) {
        case 'claimed': {
          const claimed = this.claimed(consumer, reply.entryId, reply.jobId, reply.data);
          if (claimed) return claimed;
          break;
        }
        case 'nogroup':
          await this.recreateGroup(this.pool);
          continue;
        case 'empty':
          delivered = await this.waitForEntry(consumer, Math.max(1, deadline - Date.now()));
          if (delivered) continue;
          break;
        case 'not queued':
          break; // cancelled (or otherwise finished) while it waited; ACKed
        case 'no job id':
          this.onProblem('queue entry without jobId skipped', { entryId: reply.entryId });
          break;
        default:
          this.onProblem('queue entry for a missing or corrupt job skipped', {
            entryId: reply.entryId,
            jobId: reply.jobId,
            error: reply.kind,
          });
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
      await this.recreateGroup(this.pool);
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

  /** The claim of a job the claim script marked running, or null when its record does not parse. */
  private claimed(consumer: string, entryId: string, jobId: string, data: string): ClaimedJob | null {
    let job: Job;
    try {
      job = this.store.parse(jobId, data);
    } catch (error) {
      if (!(error instanceof CorruptJobError)) throw error;
      // Marked running but unreadable: the entry stays pending, so the reaper drops it after the lease.
      this.onProblem('queue entry for a missing or corrupt job skipped', {
        entryId,
        jobId,
        error: error.message,
      });
      return null;
    }
    return { entryId, consumer, attempt: job.attempts, job };
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
    const { job, entryId, consumer, attempt } = claimed;
    const reply = await this.scripts.finish(job.pool, entryId, job.id, consumer, attempt, {
      status: outcome.status,
      exitCode: outcome.exitCode ?? null,
      error: outcome.error ?? null,
      finishedAt: new Date().toISOString(),
      ...(outcome.steps === undefined ? {} : { steps: outcome.steps }),
    });
    if (reply.kind === 'finished') {
      // The script wrote it from the record claim parsed plus this outcome: no second
      // validation. A record from before pools has no `pool`; its pool never changes.
      return { ...(JSON.parse(reply.data) as Omit<Job, 'pool'>), pool: job.pool };
    }
    if (reply.kind === 'corrupt') throw new CorruptJobError(job.id, 'not a job record');
    if (reply.kind === 'missing')
      this.onProblem('the record of a claimed job is gone', { jobId: job.id, entryId });
    return null;
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
        await this.recreateGroup(pool); // a new group holds nothing to reclaim
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
    const cancelRequested = await this.isCancelRequested(jobId);
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

  /** How long the Redis server has been up (INFO server's uptime_in_seconds), in ms. */
  async redisUptimeMs(): Promise<number> {
    const info = await this.redis.info('server');
    const seconds = /^uptime_in_seconds:(\d+)/m.exec(info)?.[1];
    if (seconds === undefined) throw new Error('INFO server has no uptime_in_seconds; is this Redis 7+?');
    return Number(seconds) * 1_000;
  }

  /** Lag and pending of a pool's agents group, from XINFO GROUPS (what KEDA reads). */
  async stats(pool: Pool = DEFAULT_POOL): Promise<QueueStats> {
    const group = await this.agentsGroup(pool);
    if (!group) return { lag: 0, pending: 0 };
    const pending = Number(group.pending ?? 0);
    if (group.lag !== null && group.lag !== undefined) return { lag: Number(group.lag), pending };
    // Redis reports lag as nil when it cannot compute it; count undelivered entries instead.
    const after = String(group['last-delivered-id'] ?? '0-0');
    const undelivered = await this.redis.xrange(jobsStream(pool), `(${after}`, '+');
    return { lag: undelivered.length, pending };
  }

  /**
   * Makes every pool group's `lag` right again when Redis reports it as nil or stale
   * (see REPAIR_LAG_SCRIPT). True when it repaired any.
   */
  async repairLag(): Promise<boolean> {
    let repaired = false;
    for (const pool of POOLS) {
      const reply = await (this.redis as unknown as QueueCommands).raibidRepairLag(
        jobsStream(pool),
        AGENTS_GROUP,
      );
      if (reply === 1) repaired = true;
    }
    return repaired;
  }

  /**
   * Trims every pool's stream below both its group's last-delivered id and the
   * oldest pending entry (MINID), keeping at least `keep` entries' worth of history
   * per stream. Returns how many entries went.
   */
  async trim(keep = 1_000): Promise<number> {
    let trimmed = 0;
    for (const pool of POOLS) trimmed += await this.trimPool(pool, keep);
    return trimmed;
  }

  private async trimPool(pool: Pool, keep: number): Promise<number> {
    const stream = jobsStream(pool);
    if ((await this.redis.xlen(stream)) <= keep) return 0;
    const group = await this.agentsGroup(pool);
    if (!group) return 0;
    let minId = String(group['last-delivered-id']);
    const summary = (await this.redis.xpending(stream, AGENTS_GROUP)) as [
      number,
      string | null,
      ...unknown[],
    ];
    if (summary[1] && compareStreamIds(summary[1], minId) < 0) minId = summary[1];
    const [keepFrom] = (await this.redis.xrevrange(stream, '+', '-', 'COUNT', keep)).slice(-1);
    if (keepFrom && compareStreamIds(keepFrom[0], minId) < 0) minId = keepFrom[0];
    return this.redis.xtrim(stream, 'MINID', minId);
  }
}

function isNoGroupError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOGROUP');
}

interface QueueCommands {
  raibidRenewClaim(...args: string[]): Promise<number>;
  raibidRepairLag(...args: string[]): Promise<number>;
}
