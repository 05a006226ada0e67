import { cancelKey, JOBS_STREAM, type Job } from '@raibid/common';
import { describe, expect, it } from 'vitest';
import { API_TOKEN, AUTH, startRedis, startTestServer, useRedis, useTestServer } from './support/server.js';

const redis = useRedis();
const server = useTestServer(redis);

const SHA = 'a'.repeat(40);

async function createJob(body: Record<string, unknown> = { repo: 'alice/hello' }): Promise<Job> {
  const response = await server.app.inject({
    method: 'POST',
    url: '/api/v1/jobs',
    headers: AUTH,
    payload: body,
  });
  expect(response.statusCode).toBe(201);
  return response.json();
}

function expectError(
  response: { statusCode: number; json(): unknown; body: string },
  status: number,
  code: string,
) {
  expect(response.statusCode).toBe(status);
  const body = response.json() as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(response.body).not.toMatch(/\bat .+:\d+:\d+/); // no stack frames
  return body.error;
}

describe('health and readiness', () => {
  it('GET /health answers ok', async () => {
    const response = await server.app.inject({ url: '/health' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
    expect(response.headers['x-request-id']).toBeTruthy();
  });

  it('GET /ready is 200 with Redis and the group, 503 naming the check when the group is gone', async () => {
    const ok = await server.app.inject({ url: '/ready' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ status: 'ready', checks: { redis: 'ok', group: 'ok' } });

    await server.deps.redis.del(JOBS_STREAM);
    const missing = await server.app.inject({ url: '/ready' });
    expect(missing.statusCode).toBe(503);
    const body = missing.json();
    expect(body.checks.redis).toBe('ok');
    expect(body.checks.group).toMatch(/raibid-agents/);
    expect(body.error.code).toBe('not_ready');
  });

  it('GET /ready is 503 when Redis does not answer, while /health stays 200', async () => {
    const other = await startRedis();
    const lonely = await startTestServer(other);
    await other.stop();
    try {
      const ready = await lonely.app.inject({ url: '/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().checks.redis).toMatch(/no answer/);
      expect((await lonely.app.inject({ url: '/health' })).statusCode).toBe(200);
    } finally {
      await lonely.close();
    }
  });

  it('keeps a safe caller request id and replaces an unsafe one', async () => {
    const kept = await server.app.inject({ url: '/health', headers: { 'x-request-id': 'abc-123' } });
    expect(kept.headers['x-request-id']).toBe('abc-123');
    const replaced = await server.app.inject({ url: '/health', headers: { 'x-request-id': 'a b\u0007c' } });
    expect(replaced.headers['x-request-id']).not.toBe('a b\u0007c');
  });
});

describe('POST /api/v1/jobs', () => {
  it('queues a job: 201 with the contract fields, no env, and a stream entry', async () => {
    const job = await createJob({
      repo: 'alice/hello',
      ref: 'feature/x',
      sha: SHA,
      env: { RAIBID_SECRET_X: 'hush' },
    });
    expect(job).toMatchObject({
      repo: { owner: 'alice', name: 'hello', cloneUrl: 'http://gitea-http:3000/alice/hello.git' },
      ref: 'feature/x',
      sha: SHA,
      trigger: 'api',
      status: 'queued',
      attempts: 0,
      startedAt: null,
      finishedAt: null,
      exitCode: null,
      error: null,
      agent: null,
      steps: [],
      retryOf: null,
    });
    expect(Object.keys(job)).not.toContain('env');
    expect(new Date(job.createdAt).toISOString()).toBe(job.createdAt);
    // Stored with its env (the agent needs it); only the API hides it.
    expect((await server.deps.store.get(job.id))?.env).toEqual({ RAIBID_SECRET_X: 'hush' });
    expect(await server.deps.redis.xlen(JOBS_STREAM)).toBe(1);
  });

  it('defaults ref to main and accepts an http(s) clone URL', async () => {
    const job = await createJob({ repo: 'https://example.com/group/proj.git' });
    expect(job.ref).toBe('main');
    expect(job.repo).toEqual({
      owner: 'group',
      name: 'proj',
      cloneUrl: 'https://example.com/group/proj.git',
    });
  });

  it.each([
    ['no token', {}, /Authorization: Bearer <RAIBID_API_TOKEN>/],
    ['a wrong token', { authorization: 'Bearer nope' }, /wrong bearer token/],
    ['a token of another scheme', { authorization: `token ${API_TOKEN}` }, /missing bearer token/],
    ['a longer token', { authorization: `Bearer ${API_TOKEN}x` }, /wrong bearer token/],
  ])('401 with %s, saying how to authenticate', async (_name, headers, message) => {
    const response = await server.app.inject({
      method: 'POST',
      url: '/api/v1/jobs',
      headers,
      payload: { repo: 'alice/hello' },
    });
    const error = expectError(response, 401, 'unauthorized');
    expect(error.message).toMatch(message);
    expect(error.message).toContain('Authorization: Bearer <RAIBID_API_TOKEN>');
    expect(await server.deps.redis.exists(JOBS_STREAM)).toBe(1); // group only, no entry
    expect(await server.deps.redis.xlen(JOBS_STREAM)).toBe(0);
  });

  it('401 for every write when the server has no token, unless insecure mode is on', async () => {
    const closed = await startTestServer(redis, { env: { RAIBID_API_TOKEN: '' } });
    const open = await startTestServer(redis, {
      env: { RAIBID_API_TOKEN: '', RAIBID_INSECURE_NO_AUTH: '1' },
    });
    try {
      const refused = await closed.app.inject({
        method: 'POST',
        url: '/api/v1/jobs',
        headers: AUTH,
        payload: { repo: 'alice/hello' },
      });
      expect(expectError(refused, 401, 'unauthorized').message).toMatch(/no RAIBID_API_TOKEN set/);
      const accepted = await open.app.inject({
        method: 'POST',
        url: '/api/v1/jobs',
        payload: { repo: 'alice/hello' },
      });
      expect(accepted.statusCode).toBe(201);
    } finally {
      await closed.close();
      await open.close();
    }
  });

  it.each([
    ['an unknown field', { repo: 'alice/hello', branch: 'main' }, 'body'],
    ['no repo', { ref: 'main' }, 'body.repo'],
    ['a short sha', { repo: 'alice/hello', sha: 'abc123' }, 'body.sha'],
    ['an upper-case sha', { repo: 'alice/hello', sha: 'A'.repeat(40) }, 'body.sha'],
    ['a ref starting with -', { repo: 'alice/hello', ref: '--upload-pack=evil' }, 'body.ref'],
    ['a ref with a part starting with -', { repo: 'alice/hello', ref: 'refs/heads/-x' }, 'body.ref'],
    ['a ref with ..', { repo: 'alice/hello', ref: 'a..b' }, 'body.ref'],
    ['a ref with a space', { repo: 'alice/hello', ref: 'a b' }, 'body.ref'],
    ['an ext:: repo', { repo: 'ext::sh -c touch% /tmp/pwned' }, 'body.repo'],
    ['a file:// repo', { repo: 'file:///etc' }, 'body.repo'],
    ['an ssh:// repo', { repo: 'ssh://git@host/a/b.git' }, 'body.repo'],
    ['a repo starting with -', { repo: '-oProxyCommand=x/y' }, 'body.repo'],
    ['a local path (not allowed here)', { repo: '/srv/git/repo' }, 'body.repo'],
    ['credentials in the URL', { repo: 'https://u:p@example.com/a/b.git' }, 'body.repo'],
    ['a bad env name', { repo: 'alice/hello', env: { '1X': 'v' } }, 'body.env.1X'],
    ['a non-string env value', { repo: 'alice/hello', env: { X: 1 } }, 'body.env.X'],
  ])('400 for %s, naming the field', async (_name, payload, path) => {
    const response = await server.app.inject({ method: 'POST', url: '/api/v1/jobs', headers: AUTH, payload });
    const error = expectError(response, 400, 'invalid_request') as { details?: { path: string }[] };
    expect(error.details?.map((d) => d.path)).toContain(path);
    expect(await server.deps.redis.xlen(JOBS_STREAM)).toBe(0);
  });

  it('accepts a local path only with RAIBID_ALLOW_FILE_REPOS=1', async () => {
    const local = await startTestServer(redis, { env: { RAIBID_ALLOW_FILE_REPOS: '1' } });
    try {
      const response = await local.app.inject({
        method: 'POST',
        url: '/api/v1/jobs',
        headers: AUTH,
        payload: { repo: '/srv/git/hello.git' },
      });
      expect(response.statusCode).toBe(201);
      expect(response.json().repo).toEqual({ owner: 'local', name: 'hello', cloneUrl: '/srv/git/hello.git' });
    } finally {
      await local.close();
    }
  });

  it('400 for malformed JSON, 415 for other content types, 413 above 1 MiB', async () => {
    const post = (headers: Record<string, string>, payload: string) =>
      server.app.inject({ method: 'POST', url: '/api/v1/jobs', headers: { ...AUTH, ...headers }, payload });
    expectError(await post({ 'content-type': 'application/json' }, '{"repo":'), 400, 'invalid_json');
    expectError(await post({ 'content-type': 'application/json' }, ''), 400, 'invalid_json');
    expectError(await post({ 'content-type': 'application/xml' }, '<repo/>'), 415, 'unsupported_media_type');
    // JSON sent as text/plain is still not JSON to us: say which content type to use.
    const text = await post({ 'content-type': 'text/plain' }, '{"repo":"alice/hello"}');
    expect(expectError(text, 415, 'unsupported_media_type').message).toMatch(/application\/json/);
    const big = JSON.stringify({ repo: 'alice/hello', env: { A: 'x'.repeat(1024 * 1024) } });
    expectError(await post({ 'content-type': 'application/json' }, big), 413, 'payload_too_large');
  });
});

describe('GET /api/v1/jobs', () => {
  it('lists newest first with cursor pagination until nextCursor is null', async () => {
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await createJob()).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
      const response = await server.app.inject({ url: `/api/v1/jobs${query}` });
      expect(response.statusCode).toBe(200);
      const page = response.json() as { jobs: Job[]; nextCursor: string | null };
      expect(page.jobs.length).toBeLessThanOrEqual(2);
      seen.push(...page.jobs.map((j) => j.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...created].reverse());
  });

  it('filters by status and repo', async () => {
    const a = await createJob({ repo: 'alice/hello' });
    const b = await createJob({ repo: 'bob/other' });
    await server.app.inject({ method: 'POST', url: `/api/v1/jobs/${a.id}/cancel`, headers: AUTH });

    const cancelled = (await server.app.inject({ url: '/api/v1/jobs?status=cancelled' })).json();
    expect(cancelled.jobs.map((j: Job) => j.id)).toEqual([a.id]);
    const bob = (await server.app.inject({ url: '/api/v1/jobs?repo=bob/other' })).json();
    expect(bob.jobs.map((j: Job) => j.id)).toEqual([b.id]);
    const both = (await server.app.inject({ url: '/api/v1/jobs?repo=bob/other&status=cancelled' })).json();
    expect(both).toEqual({ jobs: [], nextCursor: null });
  });

  it.each([
    ['limit=0'],
    ['limit=201'],
    ['limit=abc'],
    ['status=done'],
    ['repo=nope'],
    ['cursor=xyz'],
    ['unknown=1'],
  ])('400 for ?%s', async (query) => {
    expectError(await server.app.inject({ url: `/api/v1/jobs?${query}` }), 400, 'invalid_request');
  });

  it('has a default limit of 50', async () => {
    for (let i = 0; i < 51; i++) await createJob();
    const page = (await server.app.inject({ url: '/api/v1/jobs' })).json();
    expect(page.jobs).toHaveLength(50);
    expect(page.nextCursor).toBe(page.jobs[49].id);
  });
});

describe('GET /api/v1/jobs/:id', () => {
  it('returns the job; an upper-case id works too', async () => {
    const job = await createJob();
    expect((await server.app.inject({ url: `/api/v1/jobs/${job.id}` })).json()).toEqual(job);
    expect((await server.app.inject({ url: `/api/v1/jobs/${job.id.toUpperCase()}` })).json().id).toBe(job.id);
  });

  it('404 for a well-formed unknown id, 400 for garbage', async () => {
    expectError(
      await server.app.inject({ url: '/api/v1/jobs/01hzzzzzzzzzzzzzzzzzzzzzzz' }),
      404,
      'not_found',
    );
    const garbage = await server.app.inject({ url: '/api/v1/jobs/nosuchjob' });
    expectError(garbage, 400, 'invalid_request');
    expect(garbage.json().error.message).toBe(
      'the id in the URL is not a job id (26 characters, as returned by the API)',
    );
    expect(garbage.json().error.details).toEqual([expect.objectContaining({ path: 'params.id' })]);
    expectError(await server.app.inject({ url: '/api/v1/jobs/..%2F..%2Fetc' }), 400, 'invalid_request');
    expectError(await server.app.inject({ url: `/api/v1/jobs/${'a'.repeat(500)}` }), 400, 'invalid_request');
    expectError(await server.app.inject({ url: '/api/v1/jobs/%E0%A4%A' }), 400, 'invalid_request');
  });
});

describe('cancel and retry', () => {
  it('cancels a queued job at once', async () => {
    const job = await createJob();
    const response = await server.app.inject({
      method: 'POST',
      url: `/api/v1/jobs/${job.id}/cancel`,
      headers: AUTH,
    });
    expect(response.statusCode).toBe(202);
    expect(response.json()).toMatchObject({ id: job.id, status: 'cancelled' });
    expect(response.json().finishedAt).not.toBeNull();
  });

  it('signals the agent of a running job (the job stays running until the agent acts)', async () => {
    const job = await createJob();
    const claimed = await server.deps.queue.claim('agent-1', 1_000);
    expect(claimed?.job.id).toBe(job.id);
    const response = await server.app.inject({
      method: 'POST',
      url: `/api/v1/jobs/${job.id}/cancel`,
      headers: AUTH,
    });
    expect(response.statusCode).toBe(202);
    expect(response.json().status).toBe('running');
    expect(await server.deps.redis.exists(cancelKey(job.id))).toBe(1);
    expect(await server.deps.queue.isCancelRequested(job.id)).toBe(true);
  });

  it('409 when cancelling a job that already ended otherwise, 202 again for a cancelled one', async () => {
    const job = await createJob();
    const claimed = (await server.deps.queue.claim('agent-1', 1_000))!;
    await server.deps.queue.finish(claimed, { status: 'succeeded', exitCode: 0 });
    const response = await server.app.inject({
      method: 'POST',
      url: `/api/v1/jobs/${job.id}/cancel`,
      headers: AUTH,
    });
    expect(expectError(response, 409, 'conflict').message).toMatch(/succeeded/);

    const other = await createJob();
    const cancel = () =>
      server.app.inject({ method: 'POST', url: `/api/v1/jobs/${other.id}/cancel`, headers: AUTH });
    expect((await cancel()).statusCode).toBe(202);
    expect((await cancel()).statusCode).toBe(202);
  });

  it('retries an ended job as a new job with retryOf, same repo/ref/sha/env', async () => {
    const job = await createJob({ repo: 'alice/hello', ref: 'dev', sha: SHA, env: { A: '1' } });
    await server.app.inject({ method: 'POST', url: `/api/v1/jobs/${job.id}/cancel`, headers: AUTH });
    const response = await server.app.inject({
      method: 'POST',
      url: `/api/v1/jobs/${job.id}/retry`,
      headers: AUTH,
    });
    expect(response.statusCode).toBe(201);
    const retry = response.json();
    expect(retry).toMatchObject({
      repo: job.repo,
      ref: 'dev',
      sha: SHA,
      trigger: 'retry',
      status: 'queued',
      retryOf: job.id,
    });
    expect(retry.id).not.toBe(job.id);
    expect((await server.deps.store.get(retry.id))?.env).toEqual({ A: '1' });
  });

  it('409 when retrying a job that has not ended', async () => {
    const job = await createJob();
    const response = await server.app.inject({
      method: 'POST',
      url: `/api/v1/jobs/${job.id}/retry`,
      headers: AUTH,
    });
    expect(expectError(response, 409, 'conflict').message).toMatch(/still queued/);
  });

  it('401 without a token, 404 for an unknown job, 400 for a bad id', async () => {
    const job = await createJob();
    for (const action of ['cancel', 'retry']) {
      expectError(
        await server.app.inject({ method: 'POST', url: `/api/v1/jobs/${job.id}/${action}` }),
        401,
        'unauthorized',
      );
      expectError(
        await server.app.inject({
          method: 'POST',
          url: `/api/v1/jobs/01hzzzzzzzzzzzzzzzzzzzzzzz/${action}`,
          headers: AUTH,
        }),
        404,
        'not_found',
      );
      expectError(
        await server.app.inject({ method: 'POST', url: `/api/v1/jobs/nope/${action}`, headers: AUTH }),
        400,
        'invalid_request',
      );
    }
  });
});

describe('queue and agents', () => {
  it('GET /api/v1/queue counts lag, pending, running and active agents', async () => {
    await createJob();
    await createJob();
    await createJob();
    await server.deps.queue.claim('agent-1', 1_000);
    const now = new Date().toISOString();
    await server.deps.agents.beat({
      name: 'agent-1',
      jobId: null,
      lastSeen: now,
      startedAt: now,
      pid: 1,
      host: 'h',
    });
    const response = await server.app.inject({ url: '/api/v1/queue' });
    expect(response.json()).toEqual({
      lag: 2,
      pending: 1,
      running: 1,
      agents: 1,
      pools: {
        cpu: { lag: 2, pending: 1, unavailable: null },
        gpu: { lag: 0, pending: 0, unavailable: null },
      },
    });
  });

  it('GET /api/v1/agents lists heartbeats and no kubernetes part outside a cluster', async () => {
    const now = new Date().toISOString();
    await server.deps.agents.beat({
      name: 'agent-9',
      jobId: null,
      lastSeen: now,
      startedAt: now,
      pid: 42,
      host: 'box',
    });
    const body = (await server.app.inject({ url: '/api/v1/agents' })).json();
    expect(body).toEqual({
      agents: [{ name: 'agent-9', jobId: null, lastSeen: now, startedAt: now, pid: 42, host: 'box' }],
    });
  });
});

describe('errors and docs', () => {
  it('404 for unknown routes and methods in the error shape', async () => {
    expectError(await server.app.inject({ url: '/api/v1/nothing' }), 404, 'not_found');
    expectError(await server.app.inject({ method: 'DELETE', url: '/api/v1/jobs' }), 404, 'not_found');
  });

  it('GET /docs is an OpenAPI document of every API route, with the zod schemas', async () => {
    const response = await server.app.inject({ url: '/docs' });
    expect(response.statusCode).toBe(200);
    const doc = response.json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/api/v1/agents',
        '/api/v1/jobs',
        '/api/v1/jobs/{id}',
        '/api/v1/jobs/{id}/cancel',
        '/api/v1/jobs/{id}/logs',
        '/api/v1/jobs/{id}/retry',
        '/api/v1/queue',
        '/health',
        '/ready',
        '/webhooks/gitea',
      ].sort(),
    );
    const post = doc.paths['/api/v1/jobs'].post;
    expect(post.requestBody.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/JobRequestInput',
    });
    const request = doc.components.schemas.JobRequestInput;
    expect(request.required).toEqual(['repo']);
    expect(request.additionalProperties).toBe(false);
    expect(request.properties.sha.pattern).toBe('^[0-9a-f]{40}$');
    expect(Object.keys(doc.components.schemas.Job.properties)).not.toContain('env');
    expect(post.security).toEqual([{ bearer: [] }]);
    const limit = doc.paths['/api/v1/jobs'].get.parameters.find((p: { name: string }) => p.name === 'limit');
    expect(limit.schema).toMatchObject({ minimum: 1, maximum: 200, default: 50 });
  });
});
