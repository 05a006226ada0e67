import type { Redis } from 'ioredis';
import { type Job, MAX_ATTEMPTS } from './job.js';
import { AGENTS_GROUP, cancelKey, EVENTS_STREAM, jobKey, jobsStream, statusIndexKey } from './keys.js';
import type { Pool } from './pool.js';
import { recordJson } from './record-json.js';
import type { JobStatus } from './status.js';

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
 * Reads the next entry of the pool for a consumer (XREADGROUP COUNT 1 >, not blocking)
 * and marks its job running, in one atomic call: checks the job is still queued, bumps
 * attempts and rev, moves the status index, writes the "picked up" lines (an agent
 * killed right after claiming still leaves its attempt in the log) and the event.
 * With an entry id (one a blocking XREADGROUP just delivered) it claims that entry
 * instead of reading. An entry without a job id, or whose job is gone, corrupt or no
 * longer queued, is ACKed and reported, so the caller can ask again.
 * The job's keys depend on the entry read, so they are built here from ARGV[8]
 * (jobKey('')); the suffixes are those of keys.ts.
 * KEYS: pool stream, queued index, running index, events.
 * ARGV: entry id or '', job id or '', group, consumer, now, max attempts, events max
 * length, job key prefix.
 * Returns {'claimed', entry id, job id, data}, {'empty'}, {'nogroup'} or {reason, entry id, job id}.
 */
const CLAIM_SCRIPT = `${JOB_JSON_LUA}
local entryId, jobId = ARGV[1], ARGV[2]
if entryId == '' then
  local ok, reply = pcall(redis.call, 'XREADGROUP', 'GROUP', ARGV[3], ARGV[4], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
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
    redis.call('XACK', KEYS[1], ARGV[3], entryId)
    return {'no job id', entryId, ''}
  end
end
local jobKey = ARGV[8] .. jobId
local raw = redis.call('HGET', jobKey, 'data')
local job = raw and decodeJob(raw)
if not job or job.status ~= 'queued' then
  redis.call('XACK', KEYS[1], ARGV[3], entryId)
  if not raw then return {'missing', entryId, jobId} end
  if not job then return {'corrupt', entryId, jobId} end
  return {'not queued', entryId, jobId}
end
job.status = 'running'
job.attempts = job.attempts + 1
job.agent = ARGV[4]
job.startedAt = ARGV[5]
local data = encodeJob(job, '[]')
redis.call('HINCRBY', jobKey, 'rev', 1)
redis.call('HSET', jobKey, 'data', data)
redis.call('ZREM', KEYS[2], jobId)
redis.call('ZADD', KEYS[3], 0, jobId)
local lines = {'[raibid] agent ' .. ARGV[4] .. ' picked up job ' .. jobId .. ' (attempt ' .. job.attempts .. ' of ' .. ARGV[6] .. ')'}
if job.attempts > 1 then
  table.insert(lines, '[raibid] this job is being retried: attempt ' .. job.attempts .. ' of ' .. ARGV[6] .. ', an earlier agent did not finish it')
end
for _, line in ipairs(lines) do
  local seq = redis.call('HINCRBY', jobKey .. ':logmeta', 'seq', 1)
  redis.call('HINCRBY', jobKey .. ':logmeta', 'bytes', #line)
  redis.call('XADD', jobKey .. ':log', seq .. '-0', 'ts', ARGV[5], 'stream', 'system', 'step', '', 'line', line)
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', 'jobId', jobId, 'from', 'queued', 'status', 'running', 'job', data)
return {'claimed', entryId, jobId, data}
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

export type ClaimReply =
  | { kind: 'claimed'; entryId: string; jobId: string; data: string }
  | { kind: 'empty' | 'nogroup' }
  | { kind: 'no job id' | 'missing' | 'corrupt' | 'not queued'; entryId: string; jobId: string };
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
  raibidClaimEntry(...args: string[]): Promise<[string, string?, string?, string?]>;
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
    redis.defineCommand('raibidClaimEntry', { numberOfKeys: 4, lua: CLAIM_SCRIPT });
    redis.defineCommand('raibidFinishClaim', { numberOfKeys: 6, lua: FINISH_SCRIPT });
  }

  /** Claims the next entry of `pool`, or `entry` when a blocking read just delivered it. */
  async claim(pool: Pool, consumer: string, entry?: { id: string; jobId: string }): Promise<ClaimReply> {
    const [kind, entryId, jobId, data] = await (this.redis as unknown as ClaimCommands).raibidClaimEntry(
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
    if (kind === 'claimed') return { kind, entryId: entryId!, jobId: jobId!, data: data! };
    if (kind === 'empty' || kind === 'nogroup') return { kind };
    return {
      kind: kind as 'no job id' | 'missing' | 'corrupt' | 'not queued',
      entryId: entryId!,
      jobId: jobId!,
    };
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
      recordJson(outcome),
      steps === undefined ? '' : recordJson(steps),
      String(this.eventsMaxLen),
      jobId,
    );
    return kind === 'finished' ? { kind, data: data! } : { kind: kind as 'missing' | 'corrupt' | 'not ours' };
  }
}
