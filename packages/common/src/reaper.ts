import type { Logger } from 'pino';
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
  if (await queue.repairLag()) {
    logger.warn(
      'the agents group had lost its read count (lag was nil, so autoscaling was blind); repaired it',
    );
  }
  await queue.trim();
  return reaped;
}

/** Runs reapOnce every interval until the returned stop function is called. */
export function startReaper(options: ReaperOptions): () => Promise<void> {
  const interval = options.intervalMs ?? Math.max(250, Math.floor(options.leaseMs / 4));
  let running: Promise<unknown> | null = null;
  const timer = setInterval(() => {
    if (running) return; // the previous pass is still going
    running = reapOnce(options)
      .catch((error: unknown) => options.logger.error({ err: error }, 'reaper pass failed'))
      .finally(() => {
        running = null;
      });
  }, interval);
  timer.unref();
  return async () => {
    clearInterval(timer);
    if (running) await running;
  };
}
