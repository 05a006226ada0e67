// `raibid trigger-test-job` end to end with real parts: the real Gitea seeded by `raibid seed-gitea`,
// redis-server, the raibid server and an agent as processes. The job clones raibid/hello from Gitea,
// builds and tests examples/hello, and succeeds; Gitea's webhook, signed with the server's secret,
// starts a job for a push; the server reports the commit status back to Gitea.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../packages/common/test/support/ports.js';
import { startRedis, type TestRedis } from '../../packages/common/test/support/redis-server.js';
import { startGitea, type TestGitea } from './support/gitea.js';
import { runRaibid } from './support/raibid-cli.js';
import { needTools, REPO_ROOT } from './support/tools.js';

const tools = needTools('gitea', 'git', 'redis-server', 'make', 'cc');
const PASSWORD = 'admin-password-0123456789';
const WEBHOOK_SECRET = 'webhook-secret-abcdef0123456789';
const API_TOKEN = 'api-token-0123456789abcdef';

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function startProcess(
  entry: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, entry), ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return { child, output: () => output };
}

async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(child.pid, 'SIGTERM');
  await exited;
}

interface Job {
  id: string;
  status: string;
  trigger: string;
  sha: string | null;
  repo: { cloneUrl: string };
}

describe.skipIf(tools.skip)('raibid trigger-test-job against a real Gitea, server and agent', () => {
  let tmp: string;
  let gitea: TestGitea;
  let redis: TestRedis;
  let server: ReturnType<typeof startProcess>;
  let agent: ReturnType<typeof startProcess>;
  let apiUrl: string;
  let tokenFile: string;

  const trigger = (env: Record<string, string> = {}) =>
    runRaibid(['trigger-test-job'], {
      RAIBID_URL: apiUrl,
      GITEA_URL: gitea.url,
      RAIBID_API_TOKEN: API_TOKEN,
      ...env,
    });
  const jobs = async (): Promise<Job[]> =>
    ((await (await fetch(`${apiUrl}/api/v1/jobs`)).json()) as { jobs: Job[] }).jobs;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'raibid-trigger-'));
    tokenFile = path.join(tmp, 'gitea-token');
    [gitea, redis] = await Promise.all([startGitea(tools.path.gitea!), startRedis()]);
    await gitea.createAdmin(PASSWORD);
    const port = await freePort();
    apiUrl = `http://127.0.0.1:${port}`;
    // The token seed-gitea will make is not known yet: the server starts without one and is
    // restarted after seeding, as seed-gitea restarts the Deployment in the cluster.
    const base = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !/^(RAIBID_|GITEA_|REDIS_URL|PORT|HOST)/.test(key)),
    );
    const serverEnv = (giteaToken: string) => ({
      ...base,
      PORT: String(port),
      METRICS_PORT: '0',
      HOST: '127.0.0.1',
      REDIS_URL: redis.url,
      RAIBID_API_TOKEN: API_TOKEN,
      GITEA_URL: gitea.url,
      GITEA_TOKEN: giteaToken,
      GITEA_WEBHOOK_SECRET: WEBHOOK_SECRET,
      PUBLIC_URL: apiUrl,
    });
    server = startProcess('packages/server/src/main.ts', [], serverEnv(''));
    await until('the server', async () => ((await fetch(`${apiUrl}/health`)).ok ? true : undefined));

    const notSeeded = await trigger();
    expect(notSeeded.code, notSeeded.stderr).toBe(2);
    expect(notSeeded.stderr).toContain(
      `raibid/hello does not exist in Gitea at ${gitea.url}: run raibid seed-gitea first`,
    );

    const seeded = await runRaibid(
      ['seed-gitea', '--token-file', tokenFile, '--webhook-url', `${apiUrl}/webhooks/gitea`],
      { GITEA_URL: gitea.url, RAIBID_GITEA_ADMIN_PASSWORD: PASSWORD, GITEA_WEBHOOK_SECRET: WEBHOOK_SECRET },
    );
    expect(seeded.code, seeded.stderr).toBe(0);
    const giteaToken = (await readFile(tokenFile, 'utf8')).trim();
    await stopProcess(server.child);
    server = startProcess('packages/server/src/main.ts', [], serverEnv(giteaToken));
    await until('the server', async () => ((await fetch(`${apiUrl}/health`)).ok ? true : undefined));

    agent = startProcess('packages/agent/src/main.ts', ['--loop'], {
      ...base,
      REDIS_URL: redis.url,
      HOSTNAME: 'raibid-agent-trigger-test',
      RAIBID_WORK_DIR: path.join(tmp, 'work'),
      RAIBID_CACHE_DIR: path.join(tmp, 'cache'),
      AGENT_IDLE_TIMEOUT: '10m',
      GITEA_TOKEN: giteaToken,
    });
  });
  afterAll(async () => {
    await stopProcess(agent?.child);
    await stopProcess(server?.child);
    await redis?.stop();
    await gitea?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  it('runs raibid/hello from Gitea to success: log streamed, URL and result printed, exit 0', async () => {
    const result = await trigger();
    expect(result.code, `${result.stderr}\nserver:\n${server.output()}\nagent:\n${agent.output()}`).toBe(0);
    // Not simply the newest job: Gitea may deliver the seeding push to the webhook once it exists.
    const queued = /queued job (\S+) for raibid\/hello main@/.exec(result.stderr);
    expect(queued, result.stderr).not.toBeNull();
    const job = (await jobs()).find((j) => j.id === queued![1]);
    expect(job).toMatchObject({
      status: 'succeeded',
      trigger: 'api',
      repo: { cloneUrl: `${gitea.url}/raibid/hello.git` },
    });
    expect(result.stderr).toContain(`${apiUrl}/jobs/${job!.id}`);
    expect(result.stderr).toMatch(new RegExp(`✔ job ${job!.id} succeeded`));
    // The build, the test and the run, from the agent's log.
    expect(result.stdout).toContain('ok   greeting(raibid, 64) = "hello, raibid!"');
    expect(result.stdout).toContain('0 failure(s)');
    expect(result.stdout).toContain('hello, raibid-ci!');

    // The server reported the result to Gitea as a commit status.
    const status = await until('the commit status', async () => {
      const response = await fetch(`${gitea.url}/api/v1/repos/raibid/hello/commits/${job!.sha}/status`);
      const body = (await response.json()) as { state: string };
      return body.state === 'success' ? body : undefined;
    });
    expect(status.state).toBe('success');
  });

  it("a push to Gitea reaches the server through seed-gitea's webhook (the secrets match) and runs", async () => {
    const clone = path.join(tmp, 'clone');
    const token = (await readFile(tokenFile, 'utf8')).trim();
    const header = `Authorization: Basic ${Buffer.from(`raibid:${token}`).toString('base64')}`;
    const git = (args: string[], cwd = tmp) =>
      promisify(execFile)('git', args, {
        cwd,
        env: {
          ...process.env,
          GIT_CONFIG_COUNT: '1',
          GIT_CONFIG_KEY_0: 'http.extraHeader',
          GIT_CONFIG_VALUE_0: header,
          GIT_AUTHOR_NAME: 'test',
          GIT_AUTHOR_EMAIL: 'test@localhost',
          GIT_COMMITTER_NAME: 'test',
          GIT_COMMITTER_EMAIL: 'test@localhost',
        },
      });
    await git(['clone', '--quiet', `${gitea.url}/raibid/hello.git`, clone]);
    await git(['commit', '--quiet', '--allow-empty', '-m', 'a push for the webhook'], clone);
    await git(['push', '--quiet', 'origin', 'HEAD:main'], clone);
    const sha = (await git(['rev-parse', 'HEAD'], clone)).stdout.trim();
    const job = await until(
      'the push job to succeed',
      async () =>
        (await jobs()).find((j) => j.trigger === 'push' && j.sha === sha && j.status === 'succeeded'),
      120_000,
    );
    expect(job.repo.cloneUrl).toBe(`${gitea.url}/raibid/hello.git`);
  });

  it('says where the API token comes from when there is none (exit 2)', async () => {
    const result = await runRaibid(['trigger-test-job'], {
      RAIBID_URL: apiUrl,
      GITEA_URL: gitea.url,
      HOME: tmp,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no API token: set RAIBID_API_TOKEN');
  });
});
