// Gitea's commit-status API: POST /api/v1/repos/{owner}/{repo}/statuses/{sha}
// (docs/gitea.md §4). Retried with backoff, bounded; never throws at the caller.
import type { Job } from '@raibid/common';
import type { Logger } from 'pino';

export type CommitState = 'pending' | 'success' | 'failure' | 'error';

/** The body Gitea's `CreateStatusOption` takes. */
export interface CommitStatusBody {
  state: CommitState;
  target_url: string;
  description: string;
  context: string;
}

export const STATUS_CONTEXT = 'raibid-ci';
const MAX_DESCRIPTION = 140;

function seconds(job: Job): string {
  if (!job.startedAt || !job.finishedAt) return '';
  const s = Math.max(0, Math.round((Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000));
  return ` in ${s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`}`;
}

function failedStep(job: Job): string {
  const step = job.steps.find((s) => s.status === 'failed');
  if (!step) return job.exitCode === null ? '' : ` (exit ${job.exitCode})`;
  return `: step "${step.name}"${step.exitCode === null ? ' timed out' : ` exited ${step.exitCode}`}`;
}

/**
 * The commit status for a job's current state. A cancelled job is `failure`,
 * as Gitea Actions shows a cancelled run.
 */
export function commitStatusFor(job: Job, publicUrl: string): CommitStatusBody {
  const [state, description] = ((): [CommitState, string] => {
    switch (job.status) {
      case 'queued':
        return [
          'pending',
          job.attempts > 0 ? `Re-queued (agent lost), attempt ${job.attempts + 1}` : 'Queued',
        ];
      case 'running':
        return ['pending', `Running${job.agent ? ` on ${job.agent}` : ''}`];
      case 'succeeded':
        return ['success', `Succeeded${seconds(job)}`];
      case 'failed':
        return ['failure', `Failed${seconds(job)}${failedStep(job)}`];
      case 'cancelled':
        return ['failure', 'Cancelled'];
      case 'error':
        return ['error', `Error: ${job.error ?? 'infrastructure problem'}`];
    }
  })();
  return {
    state,
    target_url: `${publicUrl.replace(/\/+$/, '')}/jobs/${job.id}`,
    description:
      description.length > MAX_DESCRIPTION ? `${description.slice(0, MAX_DESCRIPTION - 1)}…` : description,
    context: STATUS_CONTEXT,
  };
}

export interface StatusClientOptions {
  giteaUrl: string;
  token: string;
  logger: Logger;
  /** Tries per status, including the first (default 6). */
  attempts?: number;
  /** First retry delay; doubles each time up to maxDelayMs (defaults 500 ms, 30 s). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
}

export type PostOutcome = 'posted' | 'rejected' | 'gave-up' | 'aborted';

/** Gitea answered something retrying cannot fix (401/403/404/422…), or it may be worth another try. */
const retryable = (status: number): boolean => status >= 500 || status === 429 || status === 408;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Posts commit statuses to Gitea. */
export class CommitStatusClient {
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: StatusClientOptions) {
    this.attempts = options.attempts ?? 6;
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  urlFor(job: Pick<Job, 'repo'>, sha: string): string {
    const { owner, name } = job.repo;
    return `${this.options.giteaUrl}/api/v1/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/statuses/${sha}`;
  }

  /**
   * Posts one status, retrying 5xx/429/network failures with exponential backoff.
   * Every outcome but `posted` is logged; nothing is thrown.
   */
  async post(job: Job, sha: string, body: CommitStatusBody, signal: AbortSignal): Promise<PostOutcome> {
    const url = this.urlFor(job, sha);
    const log = this.options.logger.child({ jobId: job.id, sha, state: body.state });
    let delay = this.baseDelayMs;
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) return 'aborted';
      let problem: string;
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: {
            authorization: `token ${this.options.token}`,
            'content-type': 'application/json',
            accept: 'application/json',
          },
          body: JSON.stringify(body),
          signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
        });
        const text = await response.text().catch(() => '');
        if (response.ok) {
          log.debug({ attempt }, 'commit status posted');
          return 'posted';
        }
        problem = `Gitea answered ${response.status}: ${text.slice(0, 200)}`;
        if (!retryable(response.status)) {
          log.warn({ status: response.status }, `commit status rejected, not retrying: ${problem}`);
          return 'rejected';
        }
      } catch (error) {
        if (signal.aborted) return 'aborted';
        problem = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      }
      if (attempt >= this.attempts) {
        log.error({ attempts: attempt }, `commit status not posted, giving up: ${problem}`);
        return 'gave-up';
      }
      log.warn({ attempt, retryInMs: delay }, `commit status post failed, will retry: ${problem}`);
      await sleep(delay, signal);
      delay = Math.min(delay * 2, this.maxDelayMs);
    }
  }
}
