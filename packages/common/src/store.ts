import type { Redis } from 'ioredis';
import { newJobId } from './ids.js';
import { type Job, jobSchema, type NewJob } from './job.js';
import {
  AGENTS_GROUP,
  cancelKey,
  EVENTS_STREAM,
  JOBS_INDEX,
  jobKey,
  jobsStream,
  logKey,
  logMetaKey,
  repoIndexKey,
  statusIndexKey,
} from './keys.js';
import { DEFAULT_POOL } from './pool.js';
import { recordJson } from './record-json.js';
import { assertTransition, type JobStatus } from './status.js';

/**
 * Writes a job record with compare-and-set on `rev`, moves it between status indexes
 * (the all-jobs and repo indexes are written once, when it is created), and in the
 * same atomic script optionally XACKs the job's stream entry, XADDs a fresh one (so
 * a re-queued job counts in the group's lag again), appends system lines to the job's
 * log (as LogStore does) and appends the change to the events stream.
 */
const COMMIT_SCRIPT = `
local rev = redis.call('HGET', KEYS[1], 'rev')
if ARGV[1] == '' then
  if rev then return {-1, ''} end
elseif rev ~= ARGV[1] then
  return {-1, ''}
end
local newRev = (tonumber(rev) or 0) + 1
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'rev', newRev)
if KEYS[2] ~= KEYS[3] then redis.call('ZREM', KEYS[2], ARGV[3]) end
redis.call('ZADD', KEYS[3], 0, ARGV[3])
if ARGV[1] == '' then
  redis.call('ZADD', KEYS[7], 0, ARGV[3])
  redis.call('ZADD', KEYS[8], 0, ARGV[3])
end
if ARGV[4] ~= '' then redis.call('XACK', KEYS[5], ARGV[10], ARGV[4]) end
local entry = ''
if ARGV[5] ~= '' then entry = redis.call('XADD', KEYS[5], '*', 'jobId', ARGV[3], 'attempt', ARGV[5]) end
if ARGV[9] == '1' then redis.call('DEL', KEYS[6]) end
for i = 12, #ARGV do
  local seq = redis.call('HINCRBY', KEYS[10], 'seq', 1)
  redis.call('HINCRBY', KEYS[10], 'bytes', #ARGV[i])
  redis.call('XADD', KEYS[9], seq .. '-0', 'ts', ARGV[11], 'stream', 'system', 'step', '', 'line', ARGV[i])
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[8], '*', 'jobId', ARGV[3], 'from', ARGV[6], 'status', ARGV[7], 'job', ARGV[2])
return {newRev, entry}
`;

/** A record in Redis that does not parse as a Job: reported, never crashed on. */
export class CorruptJobError extends Error {
  override name = 'CorruptJobError';
  constructor(
    readonly jobId: string,
    reason: string,
  ) {
    super(`job record ${jobId} in Redis is corrupt: ${reason}`);
  }
}

export class JobNotFoundError extends Error {
  override name = 'JobNotFoundError';
  constructor(readonly jobId: string) {
    super(`job ${jobId} does not exist`);
  }
}

/** What `JobStore.update` should write, decided from the current record. */
export interface JobChange {
  job: Job;
  /** XACK this entry of the job's pool stream (`raibid:jobs`, `raibid:jobs:gpu`) in the same atomic write. */
  ackEntry?: string;
  /** XADD a fresh entry for the job to its pool's stream (its attempt number). */
  requeueAttempt?: number;
  /** Remove a pending cancellation request. */
  clearCancel?: boolean;
  /** raibid's own lines for the job's log, written with the change (so the log never misses them). */
  systemLines?: string[];
}

export interface JobListFilter {
  status?: JobStatus;
  /** `owner/name` */
  repo?: string;
  limit: number;
  /** Id of the last job of the previous page. */
  cursor?: string;
}

export interface JobPage {
  jobs: Job[];
  nextCursor: string | null;
}

export interface JobStoreOptions {
  /** Called for records that fail to parse while listing (they are skipped). */
  onCorrupt?: (error: CorruptJobError) => void;
  /** Approximate cap of the events stream. */
  eventsMaxLen?: number;
}

const MAX_CAS_RETRIES = 50;

export class JobStore {
  private readonly onCorrupt: (error: CorruptJobError) => void;
  /** Approximate cap of the events stream (the queue's scripts append to it too). */
  readonly eventsMaxLen: number;

  constructor(
    private readonly redis: Redis,
    options: JobStoreOptions = {},
  ) {
    this.onCorrupt = options.onCorrupt ?? (() => {});
    this.eventsMaxLen = options.eventsMaxLen ?? 10_000;
    redis.defineCommand('raibidCommitJob', { numberOfKeys: 10, lua: COMMIT_SCRIPT });
  }

  /** Builds a new queued job record (not yet stored). */
  static newRecord(input: NewJob, now = new Date()): Job {
    return {
      id: newJobId(now.getTime()),
      repo: input.repo,
      ref: input.ref,
      sha: input.sha,
      trigger: input.trigger,
      status: 'queued',
      attempts: 0,
      createdAt: now.toISOString(),
      startedAt: null,
      finishedAt: null,
      exitCode: null,
      error: null,
      agent: null,
      steps: [],
      retryOf: input.retryOf ?? null,
      pool: input.pool ?? DEFAULT_POOL,
      env: input.env ?? {},
    };
  }

  parse(id: string, raw: string): Job {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      throw new CorruptJobError(id, 'not JSON');
    }
    const result = jobSchema.safeParse(value);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      throw new CorruptJobError(id, `${issue.path.join('.') || 'record'}: ${issue.message}`);
    }
    return result.data;
  }

  /** The job, or null when there is none. Throws CorruptJobError for a bad record. */
  async get(id: string): Promise<Job | null> {
    const raw = await this.redis.hget(jobKey(id), 'data');
    return raw === null ? null : this.parse(id, raw);
  }

  private async getWithRev(id: string): Promise<{ job: Job; rev: string } | null> {
    const [raw, rev] = await this.redis.hmget(jobKey(id), 'data', 'rev');
    if (raw === null || raw === undefined || rev === null || rev === undefined) return null;
    return { job: this.parse(id, raw), rev };
  }

  /**
   * Stores a new job and, when `enqueue`, its stream entry — atomically, with
   * `systemLines` as the first lines of its log.
   */
  async insert(job: Job, enqueue: boolean, systemLines: string[] = []): Promise<string | null> {
    const result = await this.commit(job, null, {
      job,
      systemLines,
      ...(enqueue ? { requeueAttempt: job.attempts + 1 } : {}),
    });
    if (result === null) throw new Error(`job ${job.id} already exists`);
    return result.entryId;
  }

  /**
   * Reads the job, asks `decide` what to write, and writes it if nobody changed
   * the record meanwhile (else reads again). `decide` returning null means no change.
   * Status changes are checked against the legal transitions.
   */
  async update(
    id: string,
    decide: (current: Job) => JobChange | null,
  ): Promise<{ job: Job; entryId: string | null } | null> {
    for (let attempt = 0; attempt < MAX_CAS_RETRIES; attempt++) {
      const current = await this.getWithRev(id);
      if (current === null) throw new JobNotFoundError(id);
      const change = decide(current.job);
      if (change === null) return null;
      if (change.job.status !== current.job.status)
        assertTransition(id, current.job.status, change.job.status);
      const result = await this.commit(current.job, current.rev, change);
      if (result !== null) return { job: change.job, entryId: result.entryId };
    }
    throw new Error(`job ${id} kept changing under ${MAX_CAS_RETRIES} attempts to update it`);
  }

  private async commit(
    before: Job,
    rev: string | null,
    change: JobChange,
  ): Promise<{ entryId: string | null } | null> {
    const { job } = change;
    const from = rev === null ? '' : before.status;
    const reply = (await (this.redis as unknown as CommitCommand).raibidCommitJob(
      jobKey(job.id),
      statusIndexKey(rev === null ? job.status : before.status),
      statusIndexKey(job.status),
      EVENTS_STREAM,
      jobsStream(job.pool),
      cancelKey(job.id),
      JOBS_INDEX,
      repoIndexKey(job.repo.owner, job.repo.name),
      logKey(job.id),
      logMetaKey(job.id),
      rev ?? '',
      recordJson(job),
      job.id,
      change.ackEntry ?? '',
      change.requeueAttempt === undefined ? '' : String(change.requeueAttempt),
      from,
      job.status,
      String(this.eventsMaxLen),
      change.clearCancel ? '1' : '0',
      AGENTS_GROUP,
      new Date().toISOString(),
      ...(change.systemLines ?? []),
    )) as [number, string];
    if (reply[0] === -1) return null;
    return { entryId: reply[1] === '' ? null : reply[1] };
  }

  /** Newest first, `limit` jobs after `cursor`, filtered by status and/or repo. */
  async list(filter: JobListFilter): Promise<JobPage> {
    const [owner, name] = filter.repo?.split('/') ?? [];
    const index = filter.status
      ? statusIndexKey(filter.status)
      : owner && name
        ? repoIndexKey(owner, name)
        : JOBS_INDEX;
    const matches = (job: Job): boolean =>
      (!filter.status || job.status === filter.status) &&
      (!filter.repo || `${job.repo.owner}/${job.repo.name}` === filter.repo);

    const jobs: Job[] = [];
    let start = filter.cursor ? `(${filter.cursor}` : '+';
    const batch = Math.min(500, filter.limit * 2 + 1);
    for (;;) {
      const ids = await this.redis.zrange(index, start, '-', 'BYLEX', 'REV', 'LIMIT', 0, batch);
      if (ids.length === 0) return { jobs, nextCursor: null };
      const raws = await this.redis.pipeline(ids.map((id) => ['hget', jobKey(id), 'data'])).exec();
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        const raw = raws?.[i]?.[1];
        if (typeof raw !== 'string') continue; // index entry of a record that expired
        let job: Job;
        try {
          job = this.parse(id, raw);
        } catch (error) {
          if (error instanceof CorruptJobError) {
            this.onCorrupt(error);
            continue;
          }
          throw error;
        }
        if (!matches(job)) continue;
        if (jobs.length === filter.limit) return { jobs, nextCursor: jobs[jobs.length - 1]!.id };
        jobs.push(job);
      }
      start = `(${ids[ids.length - 1]}`;
    }
  }

  /** How many jobs are in a status (cheap: the index cardinality). */
  countByStatus(status: JobStatus): Promise<number> {
    return this.redis.zcard(statusIndexKey(status));
  }
}

interface CommitCommand {
  raibidCommitJob(...args: string[]): Promise<unknown>;
}
