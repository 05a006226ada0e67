import type { ApiJob } from '@raibid/common';
import { JOB_STATUSES, type JobStatus, type StepResult } from '@raibid/common';
import type { Command } from 'commander';
import { EXIT, usageError } from '../../errors.js';
import { type CommandContext, printJson } from '../context.js';
import { failureReason } from '../follow.js';
import {
  ago,
  type Column,
  jobDuration,
  repoName,
  shortSha,
  statusColor,
  statusText,
  table,
} from '../format.js';
import type { Runtime } from '../program.js';
import { reportNewJob } from './submit.js';

interface ListOptions {
  status?: string;
  repo?: string;
  limit?: string;
  cursor?: string;
}

function parseStatus(value: string | undefined): JobStatus | undefined {
  if (value === undefined) return undefined;
  if (!(JOB_STATUSES as readonly string[]).includes(value)) {
    throw usageError(`--status must be one of ${JOB_STATUSES.join(', ')}`);
  }
  return value as JobStatus;
}

function parseLimit(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw usageError('--limit must be 1..200');
  return limit;
}

export function jobColumns(ctx: CommandContext): Column<ApiJob>[] {
  const now = Date.now();
  return [
    { header: 'ID', value: (job) => job.id },
    {
      header: 'STATUS',
      value: (job) => job.status,
      color: (text, job) => statusColor(job.status, ctx.out)(text),
    },
    { header: 'REPO', value: repoName, shrink: true, minWidth: 10 },
    { header: 'REF', value: (job) => job.ref, shrink: true, minWidth: 6, dropPriority: 2 },
    { header: 'SHA', value: (job) => shortSha(job.sha), dropPriority: 4 },
    { header: 'TRIGGER', value: (job) => job.trigger, dropPriority: 5 },
    { header: 'CREATED', value: (job) => ago(job.createdAt, now), dropPriority: 3 },
    { header: 'DURATION', value: (job) => jobDuration(job, now), dropPriority: 1 },
  ];
}

function stepColumns(ctx: CommandContext): Column<StepResult>[] {
  return [
    { header: 'STEP', value: (step) => step.name, shrink: true, minWidth: 8 },
    {
      header: 'STATUS',
      value: (step) => step.status,
      color: (text, step) => statusColor(step.status, ctx.out)(text),
    },
    {
      header: 'EXIT',
      value: (step) => (step.exitCode === null ? '' : String(step.exitCode)),
      align: 'right',
    },
    { header: 'DURATION', value: (step) => jobDuration(step) },
  ];
}

/** `raibid show`: the fields of a job, one per line, then its steps; `waiting` says why a queued job waits. */
function printJob(ctx: CommandContext, job: ApiJob, waiting: string | null = null): void {
  const c = ctx.out;
  const rows: [string, string][] = [
    ['job', job.id],
    ['status', `${statusText(job.status, c)}${job.exitCode !== null ? ` (exit ${job.exitCode})` : ''}`],
    ['repo', `${repoName(job)}  ${c.dim(job.repo.cloneUrl)}`],
    ['ref', `${job.ref}${job.sha ? ` @ ${job.sha}` : ''}`],
    ['trigger', `${job.trigger}${job.retryOf ? ` (retry of ${job.retryOf})` : ''}`],
    ['pool', job.pool],
    ['created', `${job.createdAt}  ${c.dim(ago(job.createdAt))}`],
  ];
  if (job.startedAt) rows.push(['started', job.startedAt]);
  if (job.finishedAt) rows.push(['finished', `${job.finishedAt}  ${c.dim(`took ${jobDuration(job)}`)}`]);
  if (job.agent) rows.push(['agent', `${job.agent} (attempt ${job.attempts})`]);
  if (waiting) rows.push(['waiting', c.yellow(waiting)]);
  if (job.status !== 'succeeded' && job.status !== 'queued' && job.status !== 'running') {
    rows.push(['reason', failureReason(job)]);
  }
  for (const [key, value] of rows) ctx.print(`${c.bold(key.padEnd(9))}${value}`);
  if (job.steps.length > 0) {
    ctx.print('');
    for (const line of table(job.steps, stepColumns(ctx), { maxWidth: ctx.width, headerColor: c.dim })) {
      ctx.print(line);
    }
  }
}

export function registerJobs(program: Command, runtime: Runtime): void {
  program
    .command('ls')
    .alias('list')
    .description('list jobs, newest first')
    .option('-s, --status <status>', `only jobs in this status (${JOB_STATUSES.join(', ')})`)
    .option('-r, --repo <owner/name>', 'only jobs of this repository')
    .option('-n, --limit <n>', 'at most n jobs (1..200, default 50)')
    .option('--cursor <id>', 'continue after this job id (printed when there are more)')
    .action(
      runtime.action(async (ctx, options: ListOptions) => {
        const page = await ctx.client.list({
          status: parseStatus(options.status),
          repo: options.repo,
          limit: parseLimit(options.limit),
          cursor: options.cursor,
        });
        if (ctx.json) {
          printJson(ctx, page);
          return EXIT.ok;
        }
        if (page.jobs.length === 0) {
          ctx.note('no jobs');
          return EXIT.ok;
        }
        for (const line of table(page.jobs, jobColumns(ctx), {
          maxWidth: ctx.width,
          headerColor: ctx.out.dim,
        })) {
          ctx.print(line);
        }
        if (page.nextCursor) ctx.note(`more: raibid ls --cursor ${page.nextCursor}`);
        return EXIT.ok;
      }),
    );

  program
    .command('show')
    .description('show a job: status, revision, timing, steps')
    .argument('<id>', 'job id')
    .action(
      runtime.action(async (ctx, id: string) => {
        const job = await ctx.client.get(id);
        if (ctx.json) {
          printJson(ctx, job);
          return EXIT.ok;
        }
        // A queued job whose pool has no agents here (no GPU) says so instead of waiting silently.
        const waiting =
          job.status === 'queued'
            ? ((await ctx.client.queue()).pools?.[job.pool]?.unavailable ?? null)
            : null;
        printJob(ctx, job, waiting);
        return EXIT.ok;
      }),
    );

  program
    .command('cancel')
    .description('cancel a job: a queued job ends at once, a running step is stopped within 5 s')
    .argument('<id>', 'job id')
    .action(
      runtime.action(async (ctx, id: string) => {
        const job = await ctx.client.cancel(id);
        if (ctx.json) printJson(ctx, job);
        else if (job.status === 'running')
          ctx.print(`cancelling job ${job.id}: its agent stops it within 5 s`);
        else ctx.print(`job ${job.id} is ${statusText(job.status, ctx.out)}`);
        return EXIT.ok;
      }),
    );

  program
    .command('retry')
    .description('queue a new job for the same repo and revision as an earlier one')
    .argument('<id>', 'job id to retry')
    .option('-w, --wait', "follow the new job's log and exit with its result")
    .action(
      runtime.action(async (ctx, id: string, options: { wait?: boolean }) => {
        const job = await ctx.client.retry(id);
        return reportNewJob(ctx, job, Boolean(options.wait));
      }),
    );
}
