import type { Redis } from 'ioredis';
import { type Job, MAX_ATTEMPTS } from './job.js';
import { AGENTS_GROUP, cancelKey, EVENTS_STREAM, jobKey, jobsStream, statusIndexKey } from './keys.js';
import type { Pool } from './pool.js';
import { recordJson } from './record-json.js';
import type { JobStatus } from './status.js';
import { CorruptJobError, type JobStore } from './store.js';

/**
 * Lua shared by the claim and finish scripts. `steps` is the record's only array and
 * cjson writes an empty table as `{}`, so the record is encoded without it and the
 * steps' JSON is put back in. cjson refuses a lone UTF-16 surrogate escape (`\ud800`), so
 * records are written with recordJson(), which never writes one.
 */
const JOB_JSON_LUA = `
local function stepsJson(steps)
  if next(steps) == nil then return '[]' end
  return cjson.encode(steps)
end
local function encodeJob(job, steps)
  job.steps = nil
  local body = cjson.encode(job)
  return string.sub(body, 1, -2) .. ',"steps":' .. steps .. '}'
end
local function decodeJob(raw)
  local ok, job = pcall(cjson.decode, raw)
  if not ok or type(job) ~= 'table' or type(job.attempts) ~= 'number' or type(job.steps) ~= 'table' then
    return nil
  end
  return job
end
`;

/**
 * claimEntry reads the next entry of the pool for a consumer (XREADGROUP COUNT 1 >, not
 * blocking) and marks its job running, atomically: checks the job is still queued, bumps
 * attempts and rev, moves the status index, writes the "picked up" lines (an agent
 * killed right after claiming still leaves its attempt in the log) and the event.
 * With an entry id (one a blocking XREADGROUP just delivered) it claims that entry
 * instead of reading. An entry without a job id, or whose job is gone, corrupt or no
 * longer queued, is ACKed and reported, so the caller can ask again.
 * The job's keys depend on the entry read, so they are built here from `prefix`
 * (jobKey('')); the suffixes are those of keys.ts.
 * Returns {'claimed', entry id, job id, data}, {'empty'}, {'nogroup'} or {reason, entry id, job id}.
 */
const CLAIM_LUA = `
local function claimEntry(stream, queuedIndex, runningIndex, events, entryId, jobId, group, consumer, now, maxAttempts, eventsMaxLen, prefix)
  if entryId == '' then
    local ok, reply = pcall(redis.call, 'XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', stream, '>')
    if not ok then
      if string.find(reply.err or tostring(reply), 'NOGROUP') then return {'nogroup'} end
      return redis.error_reply(reply.err or tostring(reply))
    end
    if not reply then return {'empty'} end
    local entry = reply[1][2][1]
    entryId, jobId = entry[1], ''
    for i = 1, #entry[2], 2 do
      if entry[2][i] == 'jobId' then jobId = entry[2][i + 1] end
    end
    if jobId == '' then
      redis.call('XACK', stream, group, entryId)
      return {'no job id', entryId, ''}
    end
  end
  local jobKey = prefix .. jobId
  local raw = redis.call('HGET', jobKey, 'data')
  local job = raw and decodeJob(raw)
  if not job or job.status ~= 'queued' then
    redis.call('XACK', stream, group, entryId)
    if not raw then return {'missing', entryId, jobId} end
    if not job then return {'corrupt', entryId, jobId} end
    return {'not queued', entryId, jobId}
  end
  job.status = 'running'
  job.attempts = job.attempts + 1
  job.agent = consumer
  job.startedAt = now
  local data = encodeJob(job, '[]')
  redis.call('HINCRBY', jobKey, 'rev', 1)
  redis.call('HSET', jobKey, 'data', data)
  redis.call('ZREM', queuedIndex, jobId)
  redis.call('ZADD', runningIndex, 0, jobId)
  local lines = {'[raibid] agent ' .. consumer .. ' picked up job ' .. jobId .. ' (attempt ' .. job.attempts .. ' of ' .. maxAttempts .. ')'}
  if job.attempts > 1 then
    table.insert(lines, '[raibid] this job is being retried: attempt ' .. job.attempts .. ' of ' .. maxAttempts .. ', an earlier agent did not finish it')
  end
  for _, line in ipairs(lines) do
    local seq = redis.call('HINCRBY', jobKey .. ':logmeta', 'seq', 1)
    redis.call('HINCRBY', jobKey .. ':logmeta', 'bytes', #line)
    redis.call('XADD', jobKey .. ':log', seq .. '-0', 'ts', now, 'stream', 'system', 'step', '', 'line', line)
  end
  redis.call('XADD', events, 'MAXLEN', '~', eventsMaxLen, '*', 'jobId', jobId, 'from', 'queued', 'status', 'running', 'job', data)
  return {'claimed', entryId, jobId, data}
end
`;

/**
 * Claims one entry (claimEntry).
 * KEYS: pool stream, queued index, running index, events.
 * ARGV: entry id or '', job id or '', group, consumer, now, max attempts, events max
 * length, job key prefix.
 */
const CLAIM_SCRIPT = `${JOB_JSON_LUA}${CLAIM_LUA}
return claimEntry(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
`;

/**
 * Ends a claimed job and ACKs its entry, in one atomic write, if the claim still owns
 * it (running, same agent, same attempt): writes the outcome, moves the status index,
 * clears a cancellation request and appends the event. With ARGV[9] = '1' it then
 * claims the pool's next entry for the same consumer (claimEntry), as a looping agent
 * would right after: one call per job instead of two while work waits.
 * KEYS: job, running index, final-status index, events, pool stream, cancel flag, queued index.
 * ARGV: entry id, group, consumer, attempt, outcome JSON, steps JSON ('' keeps them),
 * events max length, job id, claim next ('1' or ''), now, max attempts, job key prefix.
 * Returns {'finished', data[, claim reply...]} or {reason}.
 */
const FINISH_SCRIPT = `${JOB_JSON_LUA}${CLAIM_LUA}
local raw = redis.call('HGET', KEYS[1], 'data')
if not raw then return {'missing'} end
local job = decodeJob(raw)
if not job then return {'corrupt'} end
if job.status ~= 'running' or job.agent ~= ARGV[3] or job.attempts ~= tonumber(ARGV[4]) then
  return {'not ours'}
end
local outcome = cjson.decode(ARGV[5])
job.status = outcome.status
job.exitCode = outcome.exitCode
job.error = outcome.error
job.finishedAt = outcome.finishedAt
local steps = ARGV[6]
if steps == '' then steps = stepsJson(job.steps) end
local data = encodeJob(job, steps)
redis.call('HINCRBY', KEYS[1], 'rev', 1)
redis.call('HSET', KEYS[1], 'data', data)
redis.call('ZREM', KEYS[2], ARGV[8])
redis.call('ZADD', KEYS[3], 0, ARGV[8])
redis.call('XACK', KEYS[5], ARGV[2], ARGV[1])
redis.call('DEL', KEYS[6])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', 'jobId', ARGV[8], 'from', 'running', 'status', outcome.status, 'job', data)
if ARGV[9] ~= '1' then return {'finished', data} end
local next = claimEntry(KEYS[5], KEYS[7], KEYS[2], KEYS[4], '', '', ARGV[2], ARGV[3], ARGV[10], ARGV[11], ARGV[7], ARGV[12])
-- The finish is written: a claim that failed is reported with it, not raised.
if next.err then return {'finished', data, 'error', next.err} end
return {'finished', data, unpack(next)}
`;

export type ClaimReply =
  | { kind: 'claimed'; entryId: string; jobId: string; data: string }
  | { kind: 'empty' }
  | { kind: 'nogroup' }
  /** Only after a finish: the claim of the next entry failed (the finish is written). */
  | { kind: 'error'; message: string }
  | { kind: 'no job id' | 'missing' | 'corrupt' | 'not queued'; entryId: string; jobId: string };
export type FinishReply =
  | { kind: 'finished'; data: string; next?: ClaimReply }
  | { kind: 'missing' | 'corrupt' | 'not ours' };

export interface FinishFields {
  status: JobStatus;
  exitCode: number | null;
  error: string | null;
  finishedAt: string;
  /** The job's steps at the end; undefined keeps the stored ones. */
  steps?: Job['steps'];
}

interface ClaimCommands {
  raibidClaimEntry(...args: string[]): Promise<string[]>;
  raibidFinishClaim(...args: string[]): Promise<string[]>;
}

/** A job an agent holds: its stream entry stays pending (un-ACKed) until the job is final. */
export interface ClaimedJob {
  entryId: string;
  consumer: string;
  /** The attempt number this claim runs (job.attempts after the claim). */
  attempt: number;
  job: Job;
}

/**
 * The claim of a reply that claimed an entry; null when none waited, or (reported where
 * worth knowing) for an entry the script ACKed and skipped, or a record marked running that does not parse
 * (its entry stays pending, so the reaper drops it after the lease).
 */
export function claimOf(
  reply: ClaimReply,
  consumer: string,
  store: JobStore,
  onProblem: (message: string, detail: Record<string, unknown>) => void,
): ClaimedJob | null {
  if (reply.kind === 'empty' || reply.kind === 'nogroup') return null;
  if (reply.kind === 'error') {
    onProblem('could not claim the next job with the finish; claiming it anew', { error: reply.message });
    return null;
  }
  const { entryId, jobId } = reply;
  switch (reply.kind) {
    case 'claimed':
      try {
        const job = store.parse(jobId, reply.data);
        return { entryId, consumer, attempt: job.attempts, job };
      } catch (error) {
        if (!(error instanceof CorruptJobError)) throw error;
        onProblem('queue entry for a missing or corrupt job skipped', {
          entryId,
          jobId,
          error: error.message,
        });
        return null;
      }
    case 'not queued':
      return null; // cancelled (or otherwise finished) while it waited; ACKed
    case 'no job id':
      onProblem('queue entry without jobId skipped', { entryId });
      return null;
    default:
      onProblem('queue entry for a missing or corrupt job skipped', { entryId, jobId, error: reply.kind });
      return null;
  }
}

/** The claim reply in `reply` from index `at` (claimEntry's return value). */
function claimReply(reply: string[], at: number): ClaimReply {
  const [kind, entryId, jobId, data] = reply.slice(at);
  if (kind === 'claimed') return { kind, entryId: entryId!, jobId: jobId!, data: data! };
  if (kind === 'empty' || kind === 'nogroup') return { kind };
  if (kind === 'error') return { kind, message: entryId ?? 'unknown error' };
  return {
    kind: kind as 'no job id' | 'missing' | 'corrupt' | 'not queued',
    entryId: entryId!,
    jobId: jobId!,
  };
}

/**
 * The two writes of a job's hot path, each one script call: claiming an entry just
 * read (queued → running) and finishing a claim (running → final, ACK), optionally
 * claiming the next entry in the same call.
 */
export class ClaimScripts {
  constructor(
    private readonly redis: Redis,
    private readonly eventsMaxLen: number,
  ) {
    redis.defineCommand('raibidClaimEntry', { numberOfKeys: 4, lua: CLAIM_SCRIPT });
    redis.defineCommand('raibidFinishClaim', { numberOfKeys: 7, lua: FINISH_SCRIPT });
  }

  /** Claims the next entry of `pool`, or `entry` when a blocking read just delivered it. */
  async claim(pool: Pool, consumer: string, entry?: { id: string; jobId: string }): Promise<ClaimReply> {
    const reply = await (this.redis as unknown as ClaimCommands).raibidClaimEntry(
      jobsStream(pool),
      statusIndexKey('queued'),
      statusIndexKey('running'),
      EVENTS_STREAM,
      entry?.id ?? '',
      entry?.jobId ?? '',
      AGENTS_GROUP,
      consumer,
      new Date().toISOString(),
      String(MAX_ATTEMPTS),
      String(this.eventsMaxLen),
      jobKey(''),
    );
    return claimReply(reply, 0);
  }

  /** Finishes a claim; with `claimNext`, also claims the pool's next entry for `consumer`. */
  async finish(
    pool: Pool,
    entryId: string,
    jobId: string,
    consumer: string,
    attempt: number,
    fields: FinishFields,
    claimNext = false,
  ): Promise<FinishReply> {
    const { steps, ...outcome } = fields;
    const reply = await (this.redis as unknown as ClaimCommands).raibidFinishClaim(
      jobKey(jobId),
      statusIndexKey('running'),
      statusIndexKey(fields.status),
      EVENTS_STREAM,
      jobsStream(pool),
      cancelKey(jobId),
      statusIndexKey('queued'),
      entryId,
      AGENTS_GROUP,
      consumer,
      String(attempt),
      recordJson(outcome),
      steps === undefined ? '' : recordJson(steps),
      String(this.eventsMaxLen),
      jobId,
      claimNext ? '1' : '',
      new Date().toISOString(),
      String(MAX_ATTEMPTS),
      jobKey(''),
    );
    const [kind, data] = reply;
    if (kind !== 'finished') return { kind: kind as 'missing' | 'corrupt' | 'not ours' };
    return claimNext ? { kind, data: data!, next: claimReply(reply, 2) } : { kind, data: data! };
  }
}
