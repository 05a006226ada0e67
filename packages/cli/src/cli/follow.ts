import type { ApiJob as Job } from '@raibid/common';
import { isFinalStatus, type LogEvent } from '@raibid/common';
import { followJobLog } from '../api/sse.js';
import { CliError, EXIT, type ExitCode } from '../errors.js';
import { type CommandContext, interruptible } from './context.js';
import { jobDuration, statusText } from './format.js';
import type { Colors } from './io.js';

/** A log line as the terminal shows it: raibid's own notices dimmed, job output as it was. */
export function formatLogLine(event: LogEvent, c: Colors): string {
  return event.stream === 'system' ? c.dim(event.line) : event.line;
}

function elapsed(since: number): string {
  return `${Math.floor((Date.now() - since) / 1000)}s`;
}

/** Why a job did not succeed, in a few words. */
export function failureReason(job: Job): string {
  if (job.error) return job.error;
  const step = job.steps.find((s) => s.status === 'failed');
  if (step) return `step "${step.name}" exited ${step.exitCode ?? 'abnormally'}`;
  return job.exitCode !== null ? `exit code ${job.exitCode}` : job.status;
}

/** The one line printed when a followed job ends. */
export function summaryLine(job: Job, c: Colors): string {
  const took = jobDuration(job);
  const duration = took ? ` in ${took}` : '';
  if (job.status === 'succeeded')
    return `${c.green('✔')} job ${job.id} ${statusText(job.status, c)}${duration}`;
  return `${c.red('✘')} job ${job.id} ${statusText(job.status, c)}${duration}: ${failureReason(job)}`;
}

export interface FollowResult {
  job: Job;
  exitCode: ExitCode;
}

/**
 * Streams a job's log to stdout (unless `--json`) until it ends, with a spinner on stderr while it
 * waits, then prints a summary. Exit code: 0 when the job succeeded, 1 otherwise.
 */
export async function followToEnd(
  ctx: CommandContext,
  job: Job,
  printLines = !ctx.json,
): Promise<FollowResult> {
  let current = job;
  const since = Date.now();
  // The job id was printed already; keep the line short enough for any terminal.
  const spinnerText = () => {
    if (current.status === 'queued') return `queued, waiting for an agent  ${elapsed(since)}`;
    const step = current.steps.find((s) => s.status === 'running');
    return `${current.status}${step ? `: ${step.name}` : ''}  ${elapsed(since)}`;
  };
  ctx.progress.set(spinnerText);
  try {
    await interruptible(
      ctx,
      (signal) =>
        followJobLog(
          ctx.client,
          job.id,
          {
            onLog: (event) => {
              if (printLines) ctx.print(formatLogLine(event, ctx.out));
            },
            onStatus: (update) => {
              current = update;
            },
            onReconnect: (attempt, reason) =>
              ctx.note(`raibid: ${reason}; reconnecting (attempt ${attempt})`),
          },
          { signal },
        ),
      `stopped following job ${job.id}; it keeps running (stop it with: raibid cancel ${job.id})`,
    );
  } finally {
    ctx.progress.stop();
  }
  const final = await ctx.client.get(job.id);
  if (!isFinalStatus(final.status)) {
    throw new CliError(
      `the log stream of job ${job.id} ended while the job is still ${final.status}`,
      EXIT.unavailable,
      'bad_response',
    );
  }
  return { job: final, exitCode: final.status === 'succeeded' ? EXIT.ok : EXIT.jobNotSucceeded };
}
