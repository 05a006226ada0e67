import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { isValidRefName } from '@raibid/common';

/** A clone, fetch or checkout that failed: the job ends `error` with this message. */
export class CheckoutError extends Error {
  override name = 'CheckoutError';
  constructor(
    message: string,
    /** What git printed, for the job log. */
    readonly output: string[] = [],
  ) {
    super(message);
  }
}

export interface CheckoutOptions {
  /** An empty directory to check out into. */
  dir: string;
  /** http(s) URL, or (local stack only) an absolute path to a repository. */
  cloneUrl: string;
  ref: string;
  sha: string | null;
  /** Token for private repositories; sent as an HTTP header to the clone URL's origin only. */
  token?: string | undefined;
  signal: AbortSignal;
  /** Upper bound for each git command. */
  timeoutMs: number;
  /** Progress notices for the job log. */
  onProgress: (line: string) => void;
}

export interface CheckoutResult {
  sha: string;
  subject: string;
}

const SHA = /^[0-9a-f]{40}$/;

/** The `Authorization` header value git sends for `token` (Gitea takes a token as the Basic password). */
export function authorizationHeader(token: string): string {
  return `Basic ${Buffer.from(`raibid-ci:${token}`).toString('base64')}`;
}

type Source = { kind: 'http'; origin: string } | { kind: 'path' };

/** Accepts only what the contract allows to reach git: http(s) URLs and absolute paths, no leading "-". */
function checkSource(cloneUrl: string): Source {
  if (/^https?:\/\//i.test(cloneUrl)) {
    let url: URL;
    try {
      url = new URL(cloneUrl);
    } catch {
      throw new CheckoutError(`clone URL "${cloneUrl}" is not a valid URL`);
    }
    if (url.username || url.password) {
      throw new CheckoutError('clone URL must not contain credentials; the agent sends GIT_TOKEN itself');
    }
    return { kind: 'http', origin: url.origin };
  }
  if (cloneUrl.startsWith('/') && !cloneUrl.split('/').some((part) => part.startsWith('-'))) {
    return { kind: 'path' };
  }
  throw new CheckoutError(
    `clone URL "${cloneUrl}" is not supported: the agent clones http(s) URLs and (local stack) absolute paths`,
  );
}

/**
 * The environment of every git command: no prompts, no user or system config,
 * only the transports the source needs, and the token as an HTTP header scoped
 * to the repository's origin — given through GIT_CONFIG_* variables, so it is
 * never in a URL, in argv or in .git/config.
 */
function gitEnv(source: Source, token: string | undefined): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/',
    LANG: 'C',
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_ALLOW_PROTOCOL: source.kind === 'http' ? 'http:https' : 'file',
    GIT_CONFIG_COUNT: '2',
    GIT_CONFIG_KEY_0: 'advice.detachedHead',
    GIT_CONFIG_VALUE_0: 'false',
    GIT_CONFIG_KEY_1: 'credential.helper',
    GIT_CONFIG_VALUE_1: '',
  };
  for (const name of ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) {
    const value = process.env[name];
    if (value) env[name] = value;
  }
  if (source.kind === 'http' && token) {
    env.GIT_CONFIG_COUNT = '3';
    env.GIT_CONFIG_KEY_2 = `http.${source.origin}/.extraHeader`;
    env.GIT_CONFIG_VALUE_2 = `Authorization: ${authorizationHeader(token)}`;
  }
  return env;
}

/** A clearer message for what git says when the server wants credentials. */
function explain(output: string[], hasToken: boolean): string | null {
  if (!output.some((l) => /could not read Username|Authentication failed|HTTP 40[13]/i.test(l))) return null;
  return hasToken
    ? 'the git server refused the token in GIT_TOKEN/GITEA_TOKEN (wrong token, or no read access to this repository)'
    : 'the git server asks for credentials (a private repository?); give the agent a token in GIT_TOKEN or GITEA_TOKEN';
}

interface GitFailure extends Error {
  code?: number | string;
  killed?: boolean;
}

/**
 * Checks out `sha` (or the tip of `ref`) with depth 1 into `dir`, with the git CLI
 * run through execFile (never a shell), `--` before positional arguments and
 * every positional value checked not to start with "-". Submodules are checked
 * out too when the repository has them.
 */
export async function checkout(options: CheckoutOptions): Promise<CheckoutResult> {
  const source = checkSource(options.cloneUrl);
  if (!isValidRefName(options.ref)) throw new CheckoutError(`ref "${options.ref}" is not a valid git ref`);
  if (options.sha !== null && !SHA.test(options.sha)) {
    throw new CheckoutError(`sha "${options.sha}" is not a 40-character hex commit id`);
  }
  const env = gitEnv(source, options.token);

  const git = (args: string[], what: string): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(
        'git',
        args,
        {
          cwd: options.dir,
          env,
          signal: options.signal,
          timeout: options.timeoutMs,
          killSignal: 'SIGKILL',
          maxBuffer: 16 * 1024 * 1024,
        },
        (error, stdout, stderr) => {
          if (!error) return resolve(stdout);
          const failure = error as GitFailure;
          if (options.signal.aborted) return reject(options.signal.reason ?? failure);
          const output = stderr
            .split('\n')
            .map((l) => l.trimEnd())
            .filter((l) => l !== '' && !l.startsWith('hint:'));
          const reason = failure.killed
            ? `timed out after ${Math.round(options.timeoutMs / 1_000)}s`
            : (explain(output, Boolean(options.token)) ??
              output[output.length - 1] ??
              `git exited with ${failure.code}`);
          reject(new CheckoutError(`${what} failed: ${reason}`, output));
        },
      );
    });

  await git(['init', '--quiet'], 'git init');
  await git(['remote', 'add', '--', 'origin', options.cloneUrl], 'git remote add');
  const fetch = (target: string, depth: boolean) =>
    git(
      [
        'fetch',
        '--quiet',
        '--no-tags',
        '--no-recurse-submodules',
        ...(depth ? ['--depth=1'] : []),
        '--',
        'origin',
        target,
      ],
      `fetching ${target}`,
    );

  let commit: string;
  if (options.sha === null) {
    options.onProgress(`fetching ${options.ref}`);
    await fetch(options.ref, true);
    commit = (await git(['rev-parse', '--verify', 'FETCH_HEAD^{commit}'], 'git rev-parse')).trim();
  } else {
    options.onProgress(`fetching ${options.sha} (${options.ref})`);
    try {
      await fetch(options.sha, true);
    } catch (error) {
      const refused =
        error instanceof CheckoutError &&
        error.output.some((l) => /unadvertised object|not our ref|couldn't find remote ref/i.test(l));
      if (!refused) throw error;
      // A server that refuses to serve a commit by id: fetch the ref's history instead.
      options.onProgress(`the server would not send ${options.sha} by id; fetching ${options.ref} instead`);
      await fetch(options.ref, false);
    }
    commit = options.sha;
  }
  await git(['checkout', '--quiet', '--detach', commit, '--'], `checking out ${commit}`);

  if (await exists(path.join(options.dir, '.gitmodules'))) {
    options.onProgress('updating submodules');
    await git(
      ['submodule', 'update', '--init', '--recursive', '--depth=1', '--quiet'],
      'updating submodules',
    );
  }
  const [sha = commit, subject = ''] = (await git(['log', '-1', '--format=%H%x00%s'], 'git log'))
    .trim()
    .split('\0');
  return { sha, subject };
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
