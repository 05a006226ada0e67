import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CliError, EXIT, usageError } from '../errors.js';

const run = promisify(execFile);

/** What `raibid submit` needs from the git checkout it runs in. */
export interface Checkout {
  /** Absolute path of the work tree's top level (of the repository itself when bare). */
  root: string;
  /** HEAD commit. */
  sha: string;
  /** Current branch, null when HEAD is detached. */
  branch: string | null;
  /** The branch's remote (or `origin`), if there is one. */
  remote: { name: string; url: string; branch: string | null } | null;
  /** Tracked files differ from HEAD (the job runs HEAD, not the work tree). */
  dirty: boolean;
  /** HEAD is contained in some remote-tracking branch (a cluster agent can fetch it). */
  pushed: boolean;
}

async function git(dir: string, args: string[]): Promise<string | null> {
  try {
    const { stdout } = await run('git', ['-C', dir, ...args], { encoding: 'utf8' });
    return stdout.trim();
  } catch (error) {
    if (error && typeof error === 'object' && 'code' in error && error.code === 'ENOENT') {
      throw new CliError('git is not installed; install git or give the repo explicitly', EXIT.usage);
    }
    return null;
  }
}

/** The checkout containing `dir` (or the bare repository `dir`), or null when it is neither. */
export async function readCheckout(dir: string): Promise<Checkout | null> {
  let root = await git(dir, ['rev-parse', '--show-toplevel']);
  const bare = !root && (await git(dir, ['rev-parse', '--is-bare-repository'])) === 'true';
  if (bare) root = await git(dir, ['rev-parse', '--absolute-git-dir']);
  if (!root) return null;
  const sha = await git(root, ['rev-parse', '--verify', '--quiet', 'HEAD^{commit}']);
  if (!sha) throw usageError(`the git checkout at ${root} has no commits yet; commit something first`);
  const branch = (await git(root, ['symbolic-ref', '--quiet', '--short', 'HEAD'])) || null;
  const remoteName =
    (branch && (await git(root, ['config', '--get', `branch.${branch}.remote`]))) || 'origin';
  const remoteUrl = await git(root, ['remote', 'get-url', remoteName]);
  const merge = branch ? await git(root, ['config', '--get', `branch.${branch}.merge`]) : null;
  const status = bare ? '' : await git(root, ['status', '--porcelain', '--untracked-files=no']);
  const containing = await git(root, ['branch', '--remotes', '--contains', sha]);
  return {
    root,
    sha,
    branch,
    remote: remoteUrl
      ? { name: remoteName, url: remoteUrl, branch: merge ? merge.replace(/^refs\/heads\//, '') : null }
      : null,
    dirty: Boolean(status),
    pushed: Boolean(containing),
  };
}

/**
 * Turns a git remote URL into a `repo` the server accepts: an http(s) URL without credentials, or
 * `owner/name` for ssh remotes (the server resolves it through GITEA_URL). Returns a note for the user
 * when the remote was changed.
 */
export function repoFromRemote(url: string): { repo: string; note: string | null } {
  if (/^https?:\/\//i.test(url)) {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return { repo: url, note: null };
    parsed.username = '';
    parsed.password = '';
    return { repo: parsed.toString(), note: 'credentials in the remote URL are not sent to the server' };
  }
  const ssh = /^(?:ssh:\/\/)?(?:[^@/]+@)?[^:/]+(?::\d+)?[:/](.+)$/.exec(url);
  const parts =
    ssh?.[1]
      ?.replace(/\.git$/, '')
      .split('/')
      .filter(Boolean) ?? [];
  if (parts.length >= 2 && !url.startsWith('/') && !url.startsWith('file:')) {
    const repo = `${parts[parts.length - 2]}/${parts[parts.length - 1]}`;
    return {
      repo,
      note: `remote ${url} is not http(s); submitting "${repo}" (the server resolves it via GITEA_URL)`,
    };
  }
  throw usageError(`cannot submit remote "${url}": the server clones http(s) URLs or owner/name only`);
}
