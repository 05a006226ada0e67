import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  commitFiles,
  createRepo,
  type GitHttpServer,
  startGitHttpServer,
  type TestRepo,
  tag,
} from '@raibid/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationHeader, CheckoutError, checkout } from '../src/checkout.js';

const TOKEN = 'tok-3f9a2c7d1e';

let root: string;
let work: string;
let server: GitHttpServer;
let privateServer: GitHttpServer;
let repo: TestRepo;
/** Command lines of running processes that contained the token, seen while git waited for an answer. */
const tokenInArgv: string[] = [];

async function scanArgv(): Promise<void> {
  for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(TOKEN)) tokenInArgv.push(cmdline.replaceAll('\0', ' '));
  }
}

let counter = 0;
async function run(options: Partial<Parameters<typeof checkout>[0]> & { cloneUrl: string }) {
  const dir = await mkdtemp(path.join(work, `co-${counter++}-`));
  const progress: string[] = [];
  const result = await checkout({
    dir,
    ref: 'main',
    sha: null,
    signal: new AbortController().signal,
    timeoutMs: 20_000,
    onProgress: (line) => progress.push(line),
    ...options,
  });
  return { dir, result, progress };
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'raibid-checkout-repos-'));
  work = await mkdtemp(path.join(os.tmpdir(), 'raibid-checkout-work-'));
  repo = await createRepo(root, 'app', { 'version.txt': 'one\n' });
  await commitFiles(repo, { 'version.txt': 'two\n' });
  await tag(repo, 'v1.0', repo.commits[0]!);
  server = await startGitHttpServer({ root });
  privateServer = await startGitHttpServer({ root, token: TOKEN, onRequest: scanArgv });
});
afterAll(async () => {
  await server?.stop();
  await privateServer?.stop();
  await rm(root, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

describe('checkout', () => {
  it('checks out the tip of a branch over http with depth 1', async () => {
    const { dir, result } = await run({ cloneUrl: server.url('app') });
    expect(result.sha).toBe(repo.commits[1]);
    expect(result.subject).toBe('update');
    expect(await readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('two\n');
    expect(await readFile(path.join(dir, '.git', 'shallow'), 'utf8')).toContain(repo.commits[1]);
  });

  it('checks out an exact sha that is not the tip', async () => {
    const { dir, result } = await run({ cloneUrl: server.url('app'), sha: repo.commits[0]! });
    expect(result.sha).toBe(repo.commits[0]);
    expect(await readFile(path.join(dir, 'version.txt'), 'utf8')).toBe('one\n');
  });

  it('checks out a tag ref', async () => {
    const { result } = await run({ cloneUrl: server.url('app'), ref: 'refs/tags/v1.0' });
    expect(result.sha).toBe(repo.commits[0]);
  });

  it('checks out from a local path (local stack)', async () => {
    const { result } = await run({ cloneUrl: repo.path });
    expect(result.sha).toBe(repo.commits[1]);
  });

  it('checks out from a local path with spaces in it', async () => {
    const spaced = await createRepo(path.join(root, 'My Projects'), 'hello world', { 'a.txt': 'a\n' });
    const { result } = await run({ cloneUrl: spaced.path });
    expect(result.sha).toBe(spaced.commits[0]);
  });

  it('names the ref when it does not exist', async () => {
    const error = await run({ cloneUrl: server.url('app'), ref: 'no-such-branch' }).catch((e) => e);
    expect(error).toBeInstanceOf(CheckoutError);
    expect(error.message).toMatch(/fetching no-such-branch failed: .*no-such-branch/);
  });

  it('checks out submodules', async () => {
    const lib = await createRepo(root, 'lib', { 'lib.txt': 'library v1\n' });
    await commitFiles(lib, { 'lib.txt': 'library v2\n' });
    const superproject = await createRepo(root, 'super', {
      '.gitmodules': `[submodule "vendor/lib"]\n\tpath = vendor/lib\n\turl = ${server.url('lib')}\n`,
      'vendor/lib': { submodule: server.url('lib'), commit: lib.commits[0]! },
    });
    const { dir, progress } = await run({ cloneUrl: server.url(superproject.name) });
    expect(progress).toContain('updating submodules');
    expect(await readFile(path.join(dir, 'vendor/lib/lib.txt'), 'utf8')).toBe('library v1\n');
  });

  it('authenticates to a private repo with a header, never in the URL or argv', async () => {
    const before = privateServer.requests.length;
    const { result } = await run({ cloneUrl: privateServer.url('app'), token: TOKEN });
    expect(result.sha).toBe(repo.commits[1]);
    const seen = privateServer.requests.slice(before);
    expect(seen.length).toBeGreaterThan(0);
    for (const request of seen) {
      expect(request.authorization).toBe(authorizationHeader(TOKEN));
      expect(request.url).not.toContain(TOKEN);
    }
    expect(tokenInArgv).toEqual([]);
  });

  it('fails with git’s reason, without the token, when the token is wrong or missing', async () => {
    const wrong = await run({ cloneUrl: privateServer.url('app'), token: 'wrong-token' }).catch((e) => e);
    expect(wrong).toBeInstanceOf(CheckoutError);
    expect(wrong.message).toMatch(/fetching main failed: the git server refused the token/);
    const missing = await run({ cloneUrl: privateServer.url('app') }).catch((e) => e);
    expect(missing).toBeInstanceOf(CheckoutError);
    expect(missing.message).toMatch(/asks for credentials .*GIT_TOKEN or GITEA_TOKEN/);
    expect(`${wrong.message}${wrong.output.join()}`).not.toContain('wrong-token');
  });

  it('refuses clone URLs and refs that could be read as options or other transports', async () => {
    const cases: Array<[Partial<Parameters<typeof checkout>[0]> & { cloneUrl: string }, RegExp]> = [
      [{ cloneUrl: '-uhack' }, /not supported/],
      [{ cloneUrl: 'ext::sh -c touch% /tmp/pwned' }, /not supported/],
      [{ cloneUrl: 'file:///etc' }, /not supported/],
      [{ cloneUrl: 'ssh://example.invalid/x.git' }, /not supported/],
      [{ cloneUrl: '/tmp/-x/repo' }, /not supported/],
      [{ cloneUrl: 'http://user:pw@127.0.0.1/x.git' }, /credentials/],
      [{ cloneUrl: server.url('app'), ref: '--upload-pack=touch /tmp/pwned' }, /not a valid git ref/],
      [{ cloneUrl: server.url('app'), sha: '-1234' }, /not a 40-character/],
    ];
    for (const [options, message] of cases) {
      await expect(run(options)).rejects.toThrow(message);
    }
  });

  it('stops git when the job is stopped', async () => {
    const controller = new AbortController();
    const reason = new Error('stopped by test');
    controller.abort(reason);
    await expect(run({ cloneUrl: server.url('app'), signal: controller.signal })).rejects.toBe(reason);
  });
});
