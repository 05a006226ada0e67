import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function git(dir: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', [
    '-C',
    dir,
    '-c',
    'user.name=raibid test',
    '-c',
    'user.email=test@raibid.invalid',
    ...args,
  ]);
  return stdout.trim();
}

export interface TestRepo {
  dir: string;
  sha: string;
  remove(): Promise<void>;
}

/** A git repository in a temp dir with one commit on `main` holding `files`. */
export async function makeRepo(files: Record<string, string>, name = 'repo'): Promise<TestRepo> {
  const parent = await mkdtemp(path.join(os.tmpdir(), 'raibid-cli-git-'));
  const dir = path.join(parent, name);
  await run('git', ['init', '--quiet', '--initial-branch', 'main', dir]);
  for (const [file, content] of Object.entries(files)) {
    await writeFile(path.join(dir, file), content);
  }
  await git(dir, 'add', '--all');
  await git(dir, 'commit', '--quiet', '-m', 'initial');
  const sha = await git(dir, 'rev-parse', 'HEAD');
  return { dir, sha, remove: () => rm(parent, { recursive: true, force: true }) };
}
