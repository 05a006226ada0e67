import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { formatDuration } from './duration.js';
import { MAX_ATTEMPTS } from './job.js';
import type { LogStore } from './logs.js';
import type { JobQueue, ReapedEntry } from './queue.js';

export interface ReaperOptions {
  queue: JobQueue;
  logs: LogStore;
  logger: Logger;
  /** A job whose agent has not heart-beaten for this long is reclaimed. */
  leaseMs: number;
  /** How often to look; defaults to a quarter of the lease. */
  intervalMs?: number;
  /** Consumer name the reaper claims with. */
  name?: string;
}

function notice(entry: ReapedEntry): string | null {
  switch (entry.action) {
    case 'requeued':
      return `[raibid] agent ${entry.agent ?? '(not started)'} stopped heart-beating; job re-queued for attempt ${entry.nextAttempt} of ${MAX_ATTEMPTS}`;
    case 'errored':
      return `[raibid] ${entry.reason}`;
    case 'cancelled':
      return `[raibid] agent ${entry.agent ?? 'unknown'} was lost while the job was being cancelled; job cancelled`;
    case 'dropped':
      return null;
  }
}

/** One pass: reclaim lost jobs, tell their logs why, repair a nil lag, trim the stream. */
export async function reapOnce(options: ReaperOptions): Promise<ReapedEntry[]> {
  const reaped = await reclaimLost(options);
  await tidyQueue(options);
  return reaped;
}

/** Re-queues (or ends) jobs whose agents stopped heart-beating, and says so in their logs. */
async function reclaimLost(options: ReaperOptions): Promise<ReapedEntry[]> {
  const { queue, logs, logger } = options;
  const reaped = await queue.reap(options.name ?? 'raibid-reaper', options.leaseMs);
  for (const entry of reaped) {
    logger.warn(
      { entryId: entry.entryId, jobId: entry.jobId, action: entry.action, reason: entry.reason },
      'reaped job',
    );
    const line = notice(entry);
    if (line && entry.jobId) await logs.append(entry.jobId, [{ stream: 'system', step: null, line }]);
  }
  return reaped;
}

/** Repairs a nil lag and trims the stream. */
async function tidyQueue(options: ReaperOptions): Promise<void> {
  const { queue, logger } = options;
  if (await queue.repairLag()) {
    logger.warn(
      'the agents group had lost its read count (lag was nil or wrong, so autoscaling was blind or scaled for nothing); repaired it',
    );
  }
  await queue.trim();
}

export interface ReaperLoopOptions extends ReaperOptions {
  /** The queue's connection: each time it (re)connects, reclaiming waits `graceMs`. */
  connection: Redis;
  /** Defaults to the lease. */
  graceMs?: number;
}

/**
 * Runs reapOnce every interval until the returned stop function is called.
 *
 * After Redis comes back nothing is reclaimed for a grace period of one lease:
 * from when this connection (re)connects (also at start: Redis may have restarted
 * while the server was away) and until Redis itself has been up that long (a
 * restart the connection did not notice). Agents could not renew while Redis was
 * away, and a Redis restarted from its AOF counts the outage in its entries' idle
 * time; the grace gives live agents a lease to renew, so only the jobs of agents
 * that are really gone are re-queued.
 */
export function startReaper(options: ReaperLoopOptions): () => Promise<void> {
  const { connection, logger } = options;
  const interval = options.intervalMs ?? Math.max(250, Math.floor(options.leaseMs / 4));
  const graceMs = options.graceMs ?? options.leaseMs;
  let reclaimFrom = Date.now() + graceMs;
  const onReady = () => {
    reclaimFrom = Date.now() + graceMs;
    logger.info(
      { graceMs },
      `Redis connected; no job is reclaimed for ${formatDuration(graceMs)} so agents can renew their holds first`,
    );
  };
  connection.on('ready', onReady);
  let running: Promise<unknown> | null = null;
  const timer = setInterval(() => {
    if (running) return; // the previous pass is still going
    if (connection.status !== 'ready') return; // the outage is logged by logRedisOutages
    const pass = async () => {
      const settled = Date.now() >= reclaimFrom && (await options.queue.redisUptimeMs()) >= graceMs;
      await (settled ? reapOnce(options) : tidyQueue(options));
    };
    running = pass()
      .catch((error: unknown) => options.logger.error({ err: error }, 'reaper pass failed'))
      .finally(() => {
        running = null;
      });
  }, interval);
  timer.unref();
  return async () => {
    clearInterval(timer);
    connection.off('ready', onReady);
    if (running) await running;
  };
}
