import path from 'node:path';
import type { ApiJob } from '@raibid/common';
import { isValidRefName, shaSchema } from '@raibid/common';
import type { Command } from 'commander';
import { ApiError, type SubmitRequest } from '../../api/client.js';
import { EXIT, type ExitCode, usageError } from '../../errors.js';
import { type CommandContext, printJson } from '../context.js';
import { followToEnd, summaryLine } from '../follow.js';
import { repoName, shortSha } from '../format.js';
import { type Checkout, readCheckout, repoFromRemote } from '../git.js';
import type { Runtime } from '../program.js';

export interface SubmitOptions {
  ref?: string;
  sha?: string;
  env?: string[];
  remote?: boolean;
  wait?: boolean;
}

/** What to POST, plus a second request to try when the server refuses a local path (not the local stack). */
export interface Submission {
  request: SubmitRequest;
  fallback: SubmitRequest | null;
  notes: string[];
}

/** `KEY=VALUE` pairs of `--env` into an object; a malformed pair is a usage error. */
export function parseEnvPairs(pairs: readonly string[]): Record<string, string> | undefined {
  if (pairs.length === 0) return undefined;
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq === -1 ? '' : pair.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      throw usageError(`--env "${pair}" must be KEY=VALUE with KEY made of letters, digits and "_"`);
    }
    env[key] = pair.slice(eq + 1);
  }
  return env;
}

/** A `repo` argument that names a directory rather than `owner/name` or a URL. */
function isPathArgument(repo: string): boolean {
  return repo === '.' || repo === '..' || /^(\/|\.\.?\/)/.test(repo);
}

function fromCheckoutRemote(checkout: Checkout, options: SubmitOptions, notes: string[]): SubmitRequest {
  if (!checkout.remote) {
    throw usageError(`the checkout at ${checkout.root} has no remote to submit; give the repo explicitly`);
  }
  const { repo, note } = repoFromRemote(checkout.remote.url);
  if (note) notes.push(`note: ${note}`);
  if (!options.sha && !options.ref && !checkout.pushed) {
    notes.push(
      `note: HEAD ${shortSha(checkout.sha)} is on no remote branch; push it, or the agent cannot fetch it`,
    );
  }
  return withRevision(repo, checkout.remote.branch ?? checkout.branch, checkout, options);
}

/** `--ref`/`--sha` win; otherwise the checkout's branch and HEAD (only when no other ref was asked for). */
function withRevision(
  repo: string,
  branch: string | null,
  checkout: Checkout,
  options: SubmitOptions,
): SubmitRequest {
  const sha = options.sha ?? (options.ref ? undefined : checkout.sha);
  return {
    repo,
    ref: options.ref ?? branch ?? 'HEAD',
    ...(sha ? { sha } : {}),
  };
}

/**
 * Decides what `raibid submit [repo]` sends:
 * - `owner/name` or a URL: as given, with `--ref`/`--sha`;
 * - a path (`.`, `./x`, `/abs`): that checkout's absolute path, branch and HEAD (the local stack);
 * - nothing: the current checkout, as a local path first, its remote as the fallback;
 * - `--remote`: the checkout's remote (the cluster).
 */
export async function resolveSubmission(
  repoArg: string | undefined,
  options: SubmitOptions,
  cwd: string,
): Promise<Submission> {
  if (options.ref !== undefined && !isValidRefName(options.ref)) {
    throw usageError(`--ref "${options.ref}" is not a valid git ref name, e.g. main or refs/tags/v1.0`);
  }
  const sha = options.sha?.toLowerCase();
  if (sha !== undefined && !shaSchema.safeParse(sha).success) {
    throw usageError(`--sha "${options.sha}" must be a full 40-character commit sha`);
  }
  const opts = { ...options, ...(sha ? { sha } : {}) };
  const env = parseEnvPairs(options.env ?? []);
  const withEnv = (request: SubmitRequest): SubmitRequest => (env ? { ...request, env } : request);
  const notes: string[] = [];

  if (repoArg !== undefined && !isPathArgument(repoArg)) {
    if (options.remote) throw usageError('--remote applies to a checkout; drop it when giving a repo');
    return {
      request: withEnv({
        repo: repoArg,
        ...(opts.ref ? { ref: opts.ref } : {}),
        ...(opts.sha ? { sha: opts.sha } : {}),
      }),
      fallback: null,
      notes,
    };
  }

  const dir = repoArg === undefined ? cwd : path.resolve(cwd, repoArg);
  const checkout = await readCheckout(dir);
  if (!checkout) {
    throw usageError(
      repoArg === undefined
        ? 'not inside a git checkout; give a repo: raibid submit owner/name | https://host/owner/name.git | /path/to/repo'
        : `${dir} is not a git repository`,
    );
  }
  if (checkout.dirty && !opts.sha && !opts.ref) {
    notes.push(`note: uncommitted changes are not part of the job; it runs HEAD ${shortSha(checkout.sha)}`);
  }
  if (options.remote)
    return { request: withEnv(fromCheckoutRemote(checkout, opts, notes)), fallback: null, notes };

  const request = withEnv(withRevision(checkout.root, checkout.branch, checkout, opts));
  let fallback: SubmitRequest | null = null;
  if (repoArg === undefined && checkout.remote) {
    try {
      fallback = withEnv(fromCheckoutRemote(checkout, opts, []));
    } catch {
      fallback = null; // a remote the server cannot clone: nothing to fall back to
    }
  }
  return { request, fallback, notes };
}

/** Submits, falling back to the checkout's remote when the server refuses local paths. */
async function submitWithFallback(ctx: CommandContext, submission: Submission): Promise<ApiJob> {
  for (const note of submission.notes) ctx.note(note);
  try {
    return await ctx.client.submit(submission.request);
  } catch (error) {
    const { fallback } = submission;
    if (!(error instanceof ApiError) || error.status !== 400 || fallback === null) throw error;
    ctx.note(
      `note: the server refused the local path (${error.message}); submitting ${fallback.repo} instead`,
    );
    return ctx.client.submit(fallback);
  }
}

/** Output for a new job (submit, retry): its id and where to watch it; or follow it with `--wait`. */
export async function reportNewJob(ctx: CommandContext, job: ApiJob, wait: boolean): Promise<ExitCode> {
  const revision = `${job.ref}${job.sha ? `@${shortSha(job.sha)}` : ''}`;
  const headline = `queued job ${ctx.out.bold(job.id)} for ${repoName(job)} ${revision}`;
  if (!wait) {
    if (ctx.json) printJson(ctx, job);
    else {
      ctx.print(headline);
      ctx.print(ctx.out.dim(`  logs: raibid logs -f ${job.id}`));
      ctx.print(ctx.out.dim(`  web:  ${ctx.client.jobUrl(job.id)}`));
    }
    return EXIT.ok;
  }
  if (!ctx.json)
    ctx.note(`queued job ${job.id} for ${repoName(job)} ${revision}  ${ctx.client.jobUrl(job.id)}`);
  const result = await followToEnd(ctx, job);
  if (ctx.json) printJson(ctx, result.job);
  else ctx.io.stderr.write(`${summaryLine(result.job, ctx.err)}\n`);
  return result.exitCode;
}

export function registerSubmit(program: Command, runtime: Runtime): void {
  program
    .command('submit')
    .description(
      'queue a job: for owner/name, a clone URL, a local repo path, or (no argument) the current checkout',
    )
    .argument('[repo]', 'owner/name, http(s) clone URL, or path to a local git repo (local stack)')
    .option('--ref <ref>', "branch, tag or ref to build (default: the checkout's branch, or main)")
    .option('--sha <sha>', "exact commit to build (default: the checkout's HEAD)")
    .option('-e, --env <KEY=VALUE>', 'environment variable for the job (repeatable)', collect, [])
    .option('--remote', "submit the checkout's remote and branch instead of its local path (for the cluster)")
    .option('-w, --wait', "follow the log and exit with the job's result (0 succeeded, 1 otherwise)")
    .action(
      runtime.action(async (ctx, repo: string | undefined, options: SubmitOptions) => {
        const submission = await resolveSubmission(repo, options, ctx.io.cwd);
        const job = await submitWithFallback(ctx, submission);
        return reportNewJob(ctx, job, Boolean(options.wait));
      }),
    );
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
