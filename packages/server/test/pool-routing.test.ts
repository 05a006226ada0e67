import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GPU_JOBS_STREAM, JOBS_STREAM, type Job, poolUnavailableKey } from '@raibid/common';
import { commitFiles, createRepo, type TestRepo } from '@raibid/common/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AUTH, closedLocalUrl, startTestServer, type TestServer, useRedis } from './support/server.js';

// Routing before any agent starts: the server reads .raibid.yml at the commit (here with
// git, as the local stack does) and queues the job in its pool's stream, or ends it
// `error` at once when the file is broken. Real git repositories, real Redis.

const redis = useRedis();
let server: TestServer;
let reposDir: string;
let repo: TestRepo;

const PIPELINE = (runsOn: string) =>
  `version: 1\n${runsOn ? `runs-on: ${runsOn}\n` : ''}steps:\n  - name: test\n    run: nvidia-smi\n`;

async function submit(body: Record<string, unknown>) {
  return server.app.inject({ method: 'POST', url: '/api/v1/jobs', headers: AUTH, payload: body });
}

async function logLines(id: string): Promise<string[]> {
  return (await server.app.inject({ url: `/api/v1/jobs/${id}/logs` })).body.split('\n').filter(Boolean);
}

beforeAll(async () => {
  reposDir = await mkdtemp(path.join(os.tmpdir(), 'raibid-routing-'));
  repo = await createRepo(reposDir, 'cuda', { '.raibid.yml': PIPELINE('gpu') });
});
afterAll(async () => {
  await rm(reposDir, { recursive: true, force: true });
});
beforeEach(async () => {
  server = await startTestServer(redis, {
    env: { RAIBID_ALLOW_FILE_REPOS: '1', GITEA_URL: await closedLocalUrl() },
  });
});
afterEach(async () => {
  await server.close();
});

describe('routing on runs-on before queueing', () => {
  it('queues a runs-on: gpu job in raibid:jobs:gpu, says why in its log, and shows the pool', async () => {
    const response = await submit({ repo: repo.path, ref: 'main' });
    expect(response.statusCode).toBe(201);
    const job = response.json() as Job;
    expect(job).toMatchObject({ status: 'queued', pool: 'gpu' });
    expect(await server.deps.redis.xlen(GPU_JOBS_STREAM)).toBe(1);
    expect(await server.deps.redis.xlen(JOBS_STREAM)).toBe(0);
    expect(await logLines(job.id)).toEqual([
      '[raibid] routed to the gpu pool: .raibid.yml at main says runs-on: gpu',
    ]);
    const queue = (await server.app.inject({ url: '/api/v1/queue' })).json();
    expect(queue).toMatchObject({ lag: 0, pools: { gpu: { lag: 1, pending: 0, unavailable: null } } });

    // A retry runs on the same pool, without reading the file again.
    await server.deps.queue.requestCancel(job.id);
    const retry = await server.app.inject({
      method: 'POST',
      url: `/api/v1/jobs/${job.id}/retry`,
      headers: AUTH,
    });
    expect(retry.json()).toMatchObject({ pool: 'gpu', retryOf: job.id });
  });

  it('routes on the file at the given sha, not at the branch head', async () => {
    const cpu = await createRepo(reposDir, 'moved', { '.raibid.yml': PIPELINE('gpu') });
    await commitFiles(cpu, { '.raibid.yml': PIPELINE('') });
    expect((await submit({ repo: cpu.path })).json()).toMatchObject({ pool: 'cpu' });
    expect((await submit({ repo: cpu.path, sha: cpu.commits[0]! })).json()).toMatchObject({ pool: 'gpu' });
  });

  it('ends a broken pipeline file error at once, naming line and field, with no stream entry', async () => {
    const broken = await createRepo(reposDir, 'broken', {
      '.raibid.yml': 'version: 1\nruns-on: tpu\nsteps:\n  - name: test\n',
    });
    const response = await submit({ repo: broken.path });
    expect(response.statusCode).toBe(201);
    const job = response.json() as Job;
    expect(job.status).toBe('error');
    expect(job.error).toBe(
      'invalid pipeline file: .raibid.yml:2: runs-on: must be "cpu" or "gpu" (and 1 more problem, see the log)',
    );
    expect(job.finishedAt).not.toBeNull();
    expect(await server.deps.redis.xlen(JOBS_STREAM)).toBe(0);
    expect(await server.deps.redis.xlen(GPU_JOBS_STREAM)).toBe(0);
    expect(await logLines(job.id)).toEqual([
      '[raibid] .raibid.yml:2: runs-on: must be "cpu" or "gpu"',
      '[raibid] .raibid.yml:4: steps[0].run: is required (string)',
      `[raibid] job error: ${job.error} (found before queueing; no agent was started)`,
    ]);
  });

  it('refuses a pool the file contradicts, and takes one the file agrees with', async () => {
    const conflict = await submit({ repo: repo.path, pool: 'cpu' });
    expect(conflict.statusCode).toBe(400);
    expect(conflict.json().error.message).toBe(
      'pool "cpu" was asked for, but .raibid.yml at main says runs-on: gpu; leave out pool or change the file',
    );
    expect((await submit({ repo: repo.path, pool: 'gpu' })).json()).toMatchObject({ pool: 'gpu' });
    const plain = await createRepo(reposDir, 'plain', { Makefile: 'all:\n\ttrue\n' });
    const noFile = await submit({ repo: plain.path, pool: 'gpu' });
    expect(noFile.statusCode).toBe(400);
    expect(noFile.json().error.message).toMatch(/but no \.raibid\.yml at main; leave out pool/);
    expect((await submit({ repo: plain.path })).json()).toMatchObject({ pool: 'cpu', status: 'queued' });
  });

  it('where it cannot read the file, routes to the pool the submission names, else cpu', async () => {
    const url = 'https://example.invalid/acme/cuda.git';
    const named = (await submit({ repo: url, pool: 'gpu' })).json() as Job;
    expect(named.pool).toBe('gpu');
    expect(await logLines(named.id)).toEqual([
      '[raibid] routed to the gpu pool as submitted: the server could not read .raibid.yml (not a repository of GITEA_URL, and no other API to ask); the agent checks its runs-on',
    ]);
    expect((await submit({ repo: url })).json()).toMatchObject({ pool: 'cpu' });

    // A Gitea repository while Gitea does not answer.
    const fromGitea = (await submit({ repo: 'acme/cuda', pool: 'gpu' })).json() as Job;
    expect(fromGitea.pool).toBe('gpu');
    expect((await logLines(fromGitea.id))[0]).toMatch(
      /^\[raibid\] routed to the gpu pool as submitted: the server could not read \.raibid\.yml \(Gitea did not answer: .+\); the agent checks its runs-on$/,
    );
  });

  it('shows why a pool has no agent here, as the local stack records it', async () => {
    await server.deps.redis.set(poolUnavailableKey('gpu'), 'no GPU agent on this machine', 'PX', 10_000);
    const queue = (await server.app.inject({ url: '/api/v1/queue' })).json();
    expect(queue.pools.gpu.unavailable).toBe('no GPU agent on this machine');
    expect(queue.pools.cpu.unavailable).toBeNull();
  });
});
