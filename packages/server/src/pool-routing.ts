import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  DEFAULT_POOL,
  type NewJob,
  PIPELINE_FILE,
  PipelineError,
  type Pool,
  parsePipeline,
  type ServerConfig,
} from '@raibid/common';

const run = promisify(execFile);

/** How long the server waits for Gitea (or git) to hand over the pipeline file before routing without it. */
const READ_TIMEOUT_MS = 5_000;
/** A larger pipeline file is left for the agent to refuse. */
const MAX_PIPELINE_BYTES = 256 * 1024;

type RoutingConfig = Pick<ServerConfig, 'GITEA_URL' | 'GITEA_TOKEN' | 'RAIBID_ALLOW_FILE_REPOS'>;

/** The pipeline file at the job's commit, as far as the server could read it. */
type PipelineRead =
  | { kind: 'found'; text: string }
  | { kind: 'absent' }
  | { kind: 'unreadable'; reason: string };

/**
 * Where a job goes, decided before any agent starts (as Woodpecker does):
 * a pool, with the lines that explain it at the top of the job's log; or, for a
 * broken pipeline file, the error the job ends with at once.
 */
export type Route =
  | { kind: 'queue'; pool: Pool; lines: string[] }
  | { kind: 'invalid'; error: PipelineError }
  | { kind: 'conflict'; message: string };

export interface RouteRequest {
  job: NewJob;
  /** The pool the submission named (API `pool`); webhooks name none. */
  requested?: Pool | undefined;
  /** The job came from Gitea (a webhook): its repository is Gitea's whatever its clone URL. */
  fromGitea?: boolean;
}

/**
 * Reads `.raibid.yml` at the job's commit and routes on its `runs-on`:
 * through Gitea's API for a Gitea repository, with git for a local repository (local
 * stack). Where it cannot read the file (a plain clone URL, Gitea unreachable) the job
 * goes to the pool the submission named, else cpu; the agent checks the pipeline it
 * checks out and ends the job `error` if it asks for another pool.
 */
export async function routeJob(request: RouteRequest, config: RoutingConfig): Promise<Route> {
  const { job, requested } = request;
  const read = await readPipelineFile(request, config);
  if (read.kind === 'unreadable') {
    const pool = requested ?? DEFAULT_POOL;
    return {
      kind: 'queue',
      pool,
      lines: routedLines(
        pool,
        ` ${requested ? 'as submitted' : 'by default'}: the server could not read ${PIPELINE_FILE} (${read.reason}); the agent checks its runs-on`,
      ),
    };
  }
  let pool: Pool = DEFAULT_POOL;
  let source = `no ${PIPELINE_FILE} at ${job.sha ?? job.ref}`;
  if (read.kind === 'found') {
    try {
      pool = parsePipeline(read.text)['runs-on'];
    } catch (error) {
      if (error instanceof PipelineError) return { kind: 'invalid', error };
      throw error;
    }
    source = `${PIPELINE_FILE} at ${job.sha ?? job.ref} says runs-on: ${pool}`;
  }
  if (requested && requested !== pool) {
    return {
      kind: 'conflict',
      message: `pool "${requested}" was asked for, but ${source}; leave out pool or change the file`,
    };
  }
  return { kind: 'queue', pool, lines: routedLines(pool, `: ${source}`) };
}

/** Only a GPU job says how it was routed (`why` follows "pool"): cpu is what every job did before pools. */
function routedLines(pool: Pool, why: string): string[] {
  return pool === 'gpu' ? [`[raibid] routed to the gpu pool${why}`] : [];
}

async function readPipelineFile(request: RouteRequest, config: RoutingConfig): Promise<PipelineRead> {
  const { repo, sha, ref } = request.job;
  const rev = sha ?? ref;
  if (config.RAIBID_ALLOW_FILE_REPOS && path.isAbsolute(repo.cloneUrl)) {
    return readWithGit(repo.cloneUrl, rev);
  }
  const gitea = config.GITEA_URL?.replace(/\/+$/, '');
  if (gitea && (request.fromGitea || repo.cloneUrl.startsWith(`${gitea}/`))) {
    return readFromGitea(gitea, config.GITEA_TOKEN, repo.owner, repo.name, rev);
  }
  return { kind: 'unreadable', reason: 'not a repository of GITEA_URL, and no other API to ask' };
}

/** `GET /api/v1/repos/{owner}/{repo}/raw/.raibid.yml?ref=<sha or ref>`: 200 the file, 404 none. */
async function readFromGitea(
  gitea: string,
  token: string | undefined,
  owner: string,
  name: string,
  rev: string,
): Promise<PipelineRead> {
  const url = `${gitea}/api/v1/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/raw/${PIPELINE_FILE}?ref=${encodeURIComponent(rev)}`;
  let response: Response;
  try {
    response = await fetch(url, {
      headers: token ? { authorization: `token ${token}` } : {},
      signal: AbortSignal.timeout(READ_TIMEOUT_MS),
      redirect: 'error',
    });
  } catch (error) {
    return { kind: 'unreadable', reason: `Gitea did not answer: ${(error as Error).message}` };
  }
  if (response.status === 404) {
    await response.body?.cancel();
    // Gitea answers 404 for a repository it does not show (private, no or a weak token) as
    // for a missing file: only a visible repository makes it "no pipeline file".
    return (await giteaShowsRepo(gitea, token, owner, name))
      ? { kind: 'absent' }
      : {
          kind: 'unreadable',
          reason: `Gitea does not show ${owner}/${name} (private, and GITEA_TOKEN cannot read it?)`,
        };
  }
  if (!response.ok) {
    await response.body?.cancel();
    const hint = response.status === 401 || response.status === 403 ? ' (is GITEA_TOKEN set?)' : '';
    return { kind: 'unreadable', reason: `Gitea answered ${response.status}${hint}` };
  }
  const text = await response.text();
  if (Buffer.byteLength(text) > MAX_PIPELINE_BYTES) {
    return { kind: 'unreadable', reason: `${PIPELINE_FILE} is larger than ${MAX_PIPELINE_BYTES / 1024} KiB` };
  }
  return { kind: 'found', text };
}

/** `GET /api/v1/repos/{owner}/{repo}` answers 200. */
async function giteaShowsRepo(
  gitea: string,
  token: string | undefined,
  owner: string,
  name: string,
): Promise<boolean> {
  try {
    const response = await fetch(
      `${gitea}/api/v1/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`,
      {
        headers: token ? { authorization: `token ${token}` } : {},
        signal: AbortSignal.timeout(READ_TIMEOUT_MS),
        redirect: 'error',
      },
    );
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

/** `git cat-file` in a local repository (the local stack); a missing file is `absent`. */
async function readWithGit(repoDir: string, rev: string): Promise<PipelineRead> {
  const git = (args: string[]) =>
    run('git', ['-C', repoDir, ...args], {
      timeout: READ_TIMEOUT_MS,
      maxBuffer: MAX_PIPELINE_BYTES * 2,
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
    });
  let commit: string;
  try {
    // `--end-of-options` keeps a ref from being read as an option.
    commit = (await git(['rev-parse', '--verify', '--end-of-options', `${rev}^{commit}`])).stdout.trim();
  } catch (error) {
    return { kind: 'unreadable', reason: `git cannot resolve ${rev}: ${firstLine(error)}` };
  }
  try {
    await git(['cat-file', '-e', `${commit}:${PIPELINE_FILE}`]);
  } catch {
    return { kind: 'absent' };
  }
  try {
    return { kind: 'found', text: (await git(['cat-file', 'blob', `${commit}:${PIPELINE_FILE}`])).stdout };
  } catch (error) {
    return { kind: 'unreadable', reason: `git cannot read ${PIPELINE_FILE}: ${firstLine(error)}` };
  }
}

function firstLine(error: unknown): string {
  const detail = error as { stderr?: string; message?: string };
  return (detail.stderr?.trim() || detail.message || String(error)).split('\n')[0] ?? '';
}

/** The job's `error` and the log lines for a pipeline file the server refused. */
export function rejection(error: PipelineError): { message: string; lines: string[] } {
  const [first, ...rest] = error.message.split('\n');
  const message = `invalid pipeline file: ${first}${rest.length ? ` (and ${rest.length} more problem${rest.length === 1 ? '' : 's'}, see the log)` : ''}`;
  const lines = error.message.split('\n').map((line) => `[raibid] ${line}`);
  lines.push(`[raibid] job error: ${message} (found before queueing; no agent was started)`);
  return { message, lines };
}
