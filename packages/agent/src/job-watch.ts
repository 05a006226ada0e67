import type { ClaimedJob, JobQueue } from '@raibid/common';

/** How often a running job's cancellation flag is read, at most (CONTRACT: cancel within 5 s). */
const CANCEL_POLL_MS = 1_000;

export interface JobWatchOptions {
  queue: JobQueue;
  claimed: ClaimedJob;
  heartbeatMs: number;
  /** A cancellation was requested. */
  onCancel: () => void;
  /** The reaper took the job away (our hold lapsed): stop working on it. */
  onLost: () => void;
  /** A heartbeat or cancel check failed (Redis unreachable); it is tried again next time. */
  onError: (error: unknown) => void;
}

/**
 * Keeps a claimed job ours while it runs: renews the hold every heartbeat (the
 * reaper reclaims jobs whose agent stopped renewing) and checks for a
 * cancellation at least once a second. Checks never overlap.
 */
export function watchJob(options: JobWatchOptions): { stop: () => Promise<void> } {
  const tickMs = Math.min(options.heartbeatMs, CANCEL_POLL_MS);
  // The first tick renews: a job a looping agent claimed with its previous job's finish has
  // waited through that job's clean-up (workspace removal) without a renewal.
  let lastRenew = Number.NEGATIVE_INFINITY;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let current: Promise<void> = Promise.resolve();

  const tick = async () => {
    try {
      if (await options.queue.isCancelRequested(options.claimed.job.id)) options.onCancel();
      if (Date.now() - lastRenew >= options.heartbeatMs) {
        lastRenew = Date.now();
        if (!(await options.queue.renew(options.claimed))) options.onLost();
      }
    } catch (error) {
      options.onError(error);
    }
  };
  const schedule = (ms: number) => {
    timer = setTimeout(() => {
      current = tick().finally(() => {
        if (!stopped) schedule(tickMs);
      });
    }, ms);
  };
  schedule(0);

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await current;
    },
  };
}
