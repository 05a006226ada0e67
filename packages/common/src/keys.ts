import type { Pool } from './pool.js';

// Every Redis name raibid-ci uses, in one place. The job streams and the group are
// part of the external contract (KEDA and scripts read them); the rest are internal.

/** The CPU pool's job stream, which KEDA watches for ScaledJob raibid-agent. */
export const JOBS_STREAM = 'raibid:jobs';
/** The GPU pool's job stream, which KEDA watches for ScaledJob raibid-agent-gpu. */
export const GPU_JOBS_STREAM = 'raibid:jobs:gpu';
/** The job stream of a pool. */
export const jobsStream = (pool: Pool): string => (pool === 'gpu' ? GPU_JOBS_STREAM : JOBS_STREAM);
/** The consumer group agents read with; KEDA's redis-streams trigger reads its `lag`. */
export const AGENTS_GROUP = 'raibid-agents';
/** Stream of job transitions (status reporting, SSE, UI). */
export const EVENTS_STREAM = 'raibid:events';
/** Consumer group the server's commit-status reporter reads `EVENTS_STREAM` with. */
export const REPORTER_GROUP = 'raibid-reporter';

/** Sorted set (all scores 0, members are time-sortable ids) of every job, for newest-first listing. */
export const JOBS_INDEX = 'raibid:index:jobs';
export const statusIndexKey = (status: string): string => `raibid:index:status:${status}`;
export const repoIndexKey = (owner: string, name: string): string => `raibid:index:repo:${owner}/${name}`;

/** Hash holding one job record: `data` (JSON) and `rev` (compare-and-set counter). */
export const jobKey = (id: string): string => `raibid:job:${id}`;
/** Stream of a job's log lines; entry ids are `<seq>-0`. (claims.ts's claim script builds this and logMetaKey from jobKey('').) */
export const logKey = (id: string): string => `raibid:job:${id}:log`;
/** Hash of a job's log bookkeeping: `seq`, `bytes`, `truncated`. */
export const logMetaKey = (id: string): string => `raibid:job:${id}:logmeta`;
/** Present while a cancellation of a running job is pending. */
export const cancelKey = (id: string): string => `raibid:job:${id}:cancel`;

/** Sorted set of agent names scored by their last heartbeat (ms). */
export const AGENTS_INDEX = 'raibid:agents';
export const agentKey = (name: string): string => `raibid:agent:${name}`;

/**
 * Why a pool has no agents here (set by the local stack when it cannot start any,
 * e.g. no GPU); expires unless renewed, so a stopped stack leaves no stale reason.
 */
export const poolUnavailableKey = (pool: Pool): string => `raibid:pool:${pool}:unavailable`;

/** Webhook delivery id → job id, so a redelivered webhook maps to the same job. */
export const deliveryKey = (deliveryId: string): string => `raibid:delivery:${deliveryId}`;
