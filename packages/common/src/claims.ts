import type { Redis } from 'ioredis';
import { type Job, MAX_ATTEMPTS } from './job.js';
import {
  AGENTS_GROUP,
  cancelKey,
  EVENTS_STREAM,
  jobKey,
  jobsStream,
  logKey,
  logMetaKey,
  statusIndexKey,
} from './keys.js';
import type { Pool } from './pool.js';
import type { JobStatus } from './status.js';

/**
 * Lua shared by the claim and finish scripts. `steps` is the record's only array and
 * cjson writes an empty table as `{}`, so the record is encoded without it and the
 * steps' JSON is put back in.
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
 * Marks the job of an entry just read running, in one atomic write: checks it is still
 * queued, bumps attempts and rev, moves the status index, writes the "picked up" lines
 * (an agent killed right after claiming still leaves its attempt in the log) and the
 * event. An entry whose job is gone, corrupt or no longer queued is ACKed and skipped.
 * KEYS: job, queued index, running index, events, pool stream, log, log meta.
 * ARGV: entry id, group, consumer, now, max attempts, events max length, job id.
 * Returns {'claimed', data} or {reason}.
 */
const CLAIM_SCRIPT = `${JOB_JSON_LUA}
local raw = redis.call('HGET', KEYS[1], 'data')
local job = raw and decodeJob(raw)
if not job or job.status ~= 'queued' then
  redis.call('XACK', KEYS[5], ARGV[2], ARGV[1])
  if not raw then return {'missing'} end
  if not job then return {'corrupt'} end
  return {'not queued'}
end
job.status = 'running'
job.attempts = job.attempts + 1
job.agent = ARGV[3]
job.startedAt = ARGV[4]
local data = encodeJob(job, '[]')
redis.call('HINCRBY', KEYS[1], 'rev', 1)
redis.call('HSET', KEYS[1], 'data', data)
redis.call('ZREM', KEYS[2], ARGV[7])
redis.call('ZADD', KEYS[3], 0, ARGV[7])
local lines = {'[raibid] agent ' .. ARGV[3] .. ' picked up job ' .. ARGV[7] .. ' (attempt ' .. job.attempts .. ' of ' .. ARGV[5] .. ')'}
if job.attempts > 1 then
  table.insert(lines, '[raibid] this job is being retried: attempt ' .. job.attempts .. ' of ' .. ARGV[5] .. ', an earlier agent did not finish it')
end
for _, line in ipairs(lines) do
  local seq = redis.call('HINCRBY', KEYS[7], 'seq', 1)
  redis.call('HINCRBY', KEYS[7], 'bytes', #line)
  redis.call('XADD', KEYS[6], seq .. '-0', 'ts', ARGV[4], 'stream', 'system', 'step', '', 'line', line)
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'jobId', ARGV[7], 'from', 'queued', 'status', 'running', 'job', data)
return {'claimed', data}
`;

/**
 * Ends a claimed job and ACKs its entry, in one atomic write, if the claim still owns
 * it (running, same agent, same attempt): writes the outcome, moves the status index,
 * clears a cancellation request and appends the event.
 * KEYS: job, running index, final-status index, events, pool stream, cancel flag.
 * ARGV: entry id, group, consumer, attempt, outcome JSON, steps JSON ('' keeps them),
 * events max length, job id.
 * Returns {'finished', data} or {reason}.
 */
const FINISH_SCRIPT = `${JOB_JSON_LUA}
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
return {'finished', data}
`;

export type ClaimReply = { kind: 'claimed'; data: string } | { kind: 'missing' | 'corrupt' | 'not queued' };
export type FinishReply = { kind: 'finished'; data: string } | { kind: 'missing' | 'corrupt' | 'not ours' };

export interface FinishFields {
  status: JobStatus;
  exitCode: number | null;
  error: string | null;
  finishedAt: string;
  /** The job's steps at the end; undefined keeps the stored ones. */
  steps?: Job['steps'];
}

interface ClaimCommands {
  raibidClaimEntry(...args: string[]): Promise<[string, string?]>;
  raibidFinishClaim(...args: string[]): Promise<[string, string?]>;
}

/**
 * The two writes of a job's hot path, each one script call: claiming an entry just
 * read (queued → running) and finishing a claim (running → final, ACK).
 */
export class ClaimScripts {
  constructor(
    private readonly redis: Redis,
    private readonly eventsMaxLen: number,
  ) {
    redis.defineCommand('raibidClaimEntry', { numberOfKeys: 7, lua: CLAIM_SCRIPT });
    redis.defineCommand('raibidFinishClaim', { numberOfKeys: 6, lua: FINISH_SCRIPT });
  }

  async claim(pool: Pool, entryId: string, jobId: string, consumer: string): Promise<ClaimReply> {
    const [kind, data] = await (this.redis as unknown as ClaimCommands).raibidClaimEntry(
      jobKey(jobId),
      statusIndexKey('queued'),
      statusIndexKey('running'),
      EVENTS_STREAM,
      jobsStream(pool),
      logKey(jobId),
      logMetaKey(jobId),
      entryId,
      AGENTS_GROUP,
      consumer,
      new Date().toISOString(),
      String(MAX_ATTEMPTS),
      String(this.eventsMaxLen),
      jobId,
    );
    return kind === 'claimed'
      ? { kind, data: data! }
      : { kind: kind as 'missing' | 'corrupt' | 'not queued' };
  }

  async finish(
    pool: Pool,
    entryId: string,
    jobId: string,
    consumer: string,
    attempt: number,
    fields: FinishFields,
  ): Promise<FinishReply> {
    const { steps, ...outcome } = fields;
    const [kind, data] = await (this.redis as unknown as ClaimCommands).raibidFinishClaim(
      jobKey(jobId),
      statusIndexKey('running'),
      statusIndexKey(fields.status),
      EVENTS_STREAM,
      jobsStream(pool),
      cancelKey(jobId),
      entryId,
      AGENTS_GROUP,
      consumer,
      String(attempt),
      JSON.stringify(outcome),
      steps === undefined ? '' : JSON.stringify(steps),
      String(this.eventsMaxLen),
      jobId,
    );
    return kind === 'finished' ? { kind, data: data! } : { kind: kind as 'missing' | 'corrupt' | 'not ours' };
  }
}
