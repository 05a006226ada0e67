import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError, EXIT } from '../errors.js';

/** The sample project's directory in a raibid-ci checkout. */
export const SAMPLE_DIR = path.join('examples', 'hello');

/** A fixed author and date, so the same files always make the same commit (a second seed is a no-op). */
const IDENTITY = {
  GIT_AUTHOR_NAME: 'raibid-ci',
  GIT_AUTHOR_EMAIL: 'raibid@localhost',
  GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z',
  GIT_COMMITTER_NAME: 'raibid-ci',
  GIT_COMMITTER_EMAIL: 'raibid@localhost',
  GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z',
};

/** examples/hello of the raibid-ci checkout this CLI runs from (source or bundle). */
export function findSampleDir(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, SAMPLE_DIR);
    if (existsSync(path.join(candidate, '.raibid.yml'))) return candidate;
    if (path.dirname(dir) === dir) {
      throw new CliError(
        `cannot find ${SAMPLE_DIR} next to this raibid CLI; run it from a raibid-ci checkout or pass --sample <dir>`,
        EXIT.usage,
      );
    }
  }
}

interface GitOptions {
  cwd: string;
  /** An HTTP header for git's requests (via GIT_CONFIG_*: never on the command line or in a URL). */
  header?: string;
}

function git(args: string[], options: GitOptions): Promise<string> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...IDENTITY,
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
  };
  if (options.header) {
    env.GIT_CONFIG_COUNT = '1';
    env.GIT_CONFIG_KEY_0 = 'http.extraHeader';
    env.GIT_CONFIG_VALUE_0 = options.header;
  }
  return new Promise((resolve, reject) => {
    execFile('git', args, { cwd: options.cwd, env, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (!error) {
        resolve(stdout.trim());
        return;
      }
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new CliError('git is not installed; install git (apt-get install git)', EXIT.usage));
        return;
      }
      const detail = stderr.trim().split('\n').slice(-3).join('; ');
      reject(new CliError(`git ${args[0]} failed: ${detail || error.message}`, EXIT.unavailable, 'git'));
    });
  });
}

/** The sample as a commit in a scratch repository: its tree and the commit with a fixed identity. */
export interface SampleCommit {
  dir: string;
  tree: string;
  /** Removes the scratch repository. */
  dispose(): Promise<void>;
}

/** Copies `sampleDir` into a scratch repository and stages it (honouring its .gitignore). */
export async function stageSample(sampleDir: string): Promise<SampleCommit> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-sample-'));
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    await cp(sampleDir, dir, { recursive: true, filter: (source) => path.basename(source) !== '.git' });
    await git(['init', '--quiet', '--initial-branch=main'], { cwd: dir });
    await git(['add', '--all'], { cwd: dir });
    const tree = await git(['write-tree'], { cwd: dir });
    return { dir, tree, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

export interface SyncResult {
  result: 'created' | 'updated' | 'already there';
  /** The branch's commit after the sync. */
  commit: string;
}

/**
 * Makes `branch` of `remoteUrl` hold the staged sample: the first commit of an empty repository, or a
 * new commit on top of the branch's tip when its files differ (a fast-forward: other history is
 * never overwritten). Git decides (ls-remote, fetch): Gitea's API may still call a repository empty
 * right after a push, and reports a commit's own id as its tree.
 */
export async function syncSample(
  sample: SampleCommit,
  remoteUrl: string,
  branch: string,
  authorization: string,
): Promise<SyncResult> {
  const run = (args: string[]) => git(args, { cwd: sample.dir, header: `Authorization: ${authorization}` });
  const ref = `refs/heads/${branch}`;
  const listed = await run(['ls-remote', remoteUrl, ref]);
  const head = listed.split('\n').find((line) => line.endsWith(`\t${ref}`));
  const parents: string[] = [];
  if (head) {
    await run(['fetch', '--quiet', '--depth=1', remoteUrl, ref]);
    const tip = await git(['rev-parse', 'FETCH_HEAD'], { cwd: sample.dir });
    if ((await git(['rev-parse', 'FETCH_HEAD^{tree}'], { cwd: sample.dir })) === sample.tree) {
      return { result: 'already there', commit: tip };
    }
    parents.push('-p', tip);
  }
  const message = 'hello: the raibid-ci sample project (examples/hello)';
  const commit = await git(['commit-tree', sample.tree, ...parents, '-m', message], { cwd: sample.dir });
  await run(['push', '--quiet', remoteUrl, `${commit}:${ref}`]);
  return { result: head ? 'updated' : 'created', commit };
}
