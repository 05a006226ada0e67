import { readFileSync } from 'node:fs';
import { deliveryKey, JOBS_STREAM } from '@raibid/common';
import { describe, expect, it } from 'vitest';
import { giteaSignature } from '../src/gitea/webhook.js';
import {
  startTestServer,
  type TestServer,
  useRedis,
  useTestServer,
  WEBHOOK_SECRET,
} from './support/server.js';

/** Fixture bytes exactly as committed: the signature covers the raw body. */
const fixture = (name: string): Buffer => readFileSync(new URL(`./fixtures/gitea/${name}`, import.meta.url));
const json = (name: string) => JSON.parse(fixture(name).toString('utf8'));

const redis = useRedis();
const server = useTestServer(redis);

let deliveries = 0;
function deliver(
  event: string,
  body: Buffer,
  options: { signature?: string | null; delivery?: string; eventType?: string; target?: TestServer } = {},
) {
  const signature =
    options.signature === undefined ? giteaSignature(WEBHOOK_SECRET, body) : options.signature;
  const delivery = options.delivery ?? `5f0c3b8e-6a1d-4c2e-9f47-${String(++deliveries).padStart(12, '0')}`;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-gitea-delivery': delivery,
    'x-gitea-event': event,
    'x-gitea-event-type': options.eventType ?? event,
    'x-gogs-event': event,
    'x-github-event': event,
    'x-hub-signature-256': `sha256=${signature ?? ''}`,
  };
  if (signature !== null) headers['x-gitea-signature'] = signature;
  return (options.target ?? server).app.inject({
    method: 'POST',
    url: '/webhooks/gitea',
    headers,
    payload: body,
  });
}

async function jobCount(): Promise<number> {
  return server.deps.redis.xlen(JOBS_STREAM);
}

describe('signature', () => {
  it('matches the README test vector (the fixture bytes are what Gitea signs)', () => {
    expect(giteaSignature(WEBHOOK_SECRET, fixture('push-branch.json'))).toBe(
      '80b554a5c0c0acd1304e02c63fd88733b84812f75e974ebf6a9c57ffca4b8b2b',
    );
  });

  it('accepts a good signature', async () => {
    expect((await deliver('push', fixture('push-branch.json'))).statusCode).toBe(202);
  });

  it.each([
    ['missing', null, /missing X-Gitea-Signature/],
    ['empty (hook without a secret)', '', /missing X-Gitea-Signature/],
    ['of another secret', giteaSignature('other-secret', fixture('push-branch.json')), /does not match/],
    ['truncated', giteaSignature(WEBHOOK_SECRET, fixture('push-branch.json')).slice(0, 63), /does not match/],
    [
      'with a sha256= prefix',
      `sha256=${giteaSignature(WEBHOOK_SECRET, fixture('push-branch.json'))}`,
      /does not match/,
    ],
    ['not hex at all', 'zz'.repeat(32), /does not match/],
  ])('401 when the signature is %s, and no job', async (_name, signature, message) => {
    const response = await deliver('push', fixture('push-branch.json'), { signature });
    expect(response.statusCode).toBe(401);
    expect(response.json().error).toMatchObject({
      code: 'unauthorized',
      message: expect.stringMatching(message),
    });
    expect(await jobCount()).toBe(0);
  });

  it('401 when the body was changed after signing (one byte)', async () => {
    const body = fixture('push-branch.json');
    const signature = giteaSignature(WEBHOOK_SECRET, body);
    const tampered = Buffer.from(body);
    tampered[tampered.indexOf('main')] = 'M'.charCodeAt(0);
    expect((await deliver('push', tampered, { signature })).statusCode).toBe(401);
    // Re-serialized JSON is different bytes too (indentation): also refused.
    const reserialized = Buffer.from(JSON.stringify(JSON.parse(body.toString())));
    expect((await deliver('push', reserialized, { signature })).statusCode).toBe(401);
    expect(await jobCount()).toBe(0);
  });

  it('401 for every delivery when GITEA_WEBHOOK_SECRET is unset', async () => {
    const noSecret = await startTestServer(redis, { env: { GITEA_WEBHOOK_SECRET: '' } });
    try {
      const response = await deliver('push', fixture('push-branch.json'), { target: noSecret });
      expect(response.statusCode).toBe(401);
      expect(response.json().error.message).toMatch(/GITEA_WEBHOOK_SECRET/);
    } finally {
      await noSecret.close();
    }
  });

  it('checks the signature before anything else: unsigned junk is 401, not 400', async () => {
    const response = await deliver('push', Buffer.from('{not json'), {
      signature: null,
      delivery: 'bad id!',
    });
    expect(response.statusCode).toBe(401);
  });
});

describe('events', () => {
  it('push to a branch: job on `after`, trigger push, full ref, clone URL from GITEA_URL', async () => {
    const response = await deliver('push', fixture('push-branch.json'));
    expect(response.statusCode).toBe(202);
    const { jobId } = response.json();
    const job = await server.deps.store.get(jobId);
    expect(job).toMatchObject({
      repo: { owner: 'alice', name: 'hello', cloneUrl: 'http://gitea-http:3000/alice/hello.git' },
      ref: 'refs/heads/main',
      sha: json('push-branch.json').after,
      trigger: 'push',
      status: 'queued',
    });
  });

  it('push of an annotated tag: job on the commit (head_commit.id), not the tag object', async () => {
    const payload = json('push-tag.json');
    expect(payload.after).not.toBe(payload.head_commit.id);
    const { jobId } = (await deliver('push', fixture('push-tag.json'))).json();
    expect(await server.deps.store.get(jobId)).toMatchObject({
      ref: 'refs/tags/v1.0.0',
      sha: payload.head_commit.id,
      trigger: 'tag',
    });
  });

  it.each([
    ['pull_request-opened.json', 'pull_request'],
    ['pull_request-synchronized.json', 'pull_request_sync'],
    ['pull_request-reopened.json', 'pull_request'],
  ])('%s: job on the PR head sha, in the base repo, ref refs/pull/N/head', async (file, eventType) => {
    const payload = json(file);
    const response = await deliver('pull_request', fixture(file), { eventType });
    expect(response.statusCode).toBe(202);
    const job = await server.deps.store.get(response.json().jobId);
    expect(job).toMatchObject({
      repo: { owner: 'alice', name: 'hello', cloneUrl: 'http://gitea-http:3000/alice/hello.git' },
      ref: `refs/pull/${payload.number}/head`,
      sha: payload.pull_request.head.sha,
      trigger: 'pull_request',
    });
    // The head repo is bob's fork; nothing of it is used.
    expect(payload.pull_request.head.repo.full_name).toBe('bob/hello');
  });

  it('without GITEA_URL, clones from the payload clone_url', async () => {
    const plain = await startTestServer(redis, { env: { GITEA_URL: '' } });
    try {
      const { jobId } = (await deliver('push', fixture('push-branch.json'), { target: plain })).json();
      expect((await plain.deps.store.get(jobId))?.repo).toEqual({
        owner: 'alice',
        name: 'hello',
        cloneUrl: json('push-branch.json').repository.clone_url,
      });
    } finally {
      await plain.close();
    }
  });

  it.each([
    ['push', 'push-branch-delete.json', /deleted/],
    ['pull_request', 'pull_request-closed.json', /action "closed"/],
    ['issues', 'issues-opened.json', /event "issues"/],
    ['create', 'create-branch.json', /event "create"/],
  ])('%s %s: 200 ignored with a reason, no job', async (event, file, reason) => {
    const response = await deliver(event, fixture(file));
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ ignored: expect.stringMatching(reason) });
    expect(await jobCount()).toBe(0);
  });

  it('ping: 200, no job', async () => {
    const response = await deliver('ping', fixture('ping.json'));
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ pong: true });
    expect(await jobCount()).toBe(0);
  });

  it("Gitea's test delivery (push with before == after == zeros) is ignored", async () => {
    const payload = json('push-branch.json');
    payload.before = '0'.repeat(40);
    payload.after = '0'.repeat(40);
    const response = await deliver('push', Buffer.from(JSON.stringify(payload, null, 2)));
    expect(response.json()).toEqual({ ignored: expect.stringMatching(/deleted/) });
  });

  it('a push to a ref that is neither a branch nor a tag is ignored', async () => {
    const payload = { ...json('push-branch.json'), ref: 'refs/notes/commits' };
    const response = await deliver('push', Buffer.from(JSON.stringify(payload)));
    expect(response.statusCode).toBe(200);
    expect(response.json().ignored).toMatch(/neither a branch nor a tag/);
  });

  it.each([
    ['a sha that is not 40 hex', { after: 'HEAD' }, 'body.after'],
    ['a ref git would take as an option', { ref: 'refs/heads/--upload-pack=x' }, 'body.ref'],
    [
      'a repository name starting with -',
      { repository: { ...json('push-branch.json').repository, name: '-x' } },
      'body.repository',
    ],
    ['no repository', { repository: undefined }, 'body.repository'],
  ])('400 for a signed push with %s', async (_name, change, path) => {
    const payload = { ...json('push-branch.json'), ...change };
    const response = await deliver('push', Buffer.from(JSON.stringify(payload)));
    expect(response.statusCode).toBe(400);
    expect(response.json().error.details.map((d: { path: string }) => d.path)).toContain(path);
    expect(await jobCount()).toBe(0);
  });

  it('400 for signed non-JSON and for a missing event header; 415 for a form-encoded hook', async () => {
    expect((await deliver('push', Buffer.from('{nope'))).json().error.code).toBe('invalid_json');
    const noEvent = await server.app.inject({
      method: 'POST',
      url: '/webhooks/gitea',
      headers: {
        'content-type': 'application/json',
        'x-gitea-signature': giteaSignature(WEBHOOK_SECRET, fixture('ping.json')),
      },
      payload: fixture('ping.json'),
    });
    expect(noEvent.statusCode).toBe(400);
    expect(noEvent.json().error.details[0].path).toBe('headers.x-gitea-event');
    const form = Buffer.from(`payload=${encodeURIComponent(fixture('push-branch.json').toString())}`);
    const formResponse = await server.app.inject({
      method: 'POST',
      url: '/webhooks/gitea',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-gitea-event': 'push',
        'x-gitea-signature': giteaSignature(WEBHOOK_SECRET, form),
      },
      payload: form,
    });
    expect(formResponse.statusCode).toBe(415);
    expect(formResponse.json().error.code).toBe('unsupported_media_type');
  });

  it('413 for a body over 1 MiB, before any parsing', async () => {
    const big = Buffer.from(
      JSON.stringify({ ...json('push-branch.json'), padding: 'x'.repeat(1024 * 1024) }),
    );
    const response = await deliver('push', big);
    expect(response.statusCode).toBe(413);
    expect(response.json().error.code).toBe('payload_too_large');
    expect(await jobCount()).toBe(0);
  });
});

describe('duplicate deliveries', () => {
  it('the same X-Gitea-Delivery twice gives the same job, not a second one', async () => {
    const delivery = '5f0c3b8e-6a1d-4c2e-9f47-2b8d1e7a9c30';
    const first = await deliver('push', fixture('push-branch.json'), { delivery });
    const second = await deliver('push', fixture('push-branch.json'), { delivery });
    expect(first.statusCode).toBe(202);
    expect(second.statusCode).toBe(202);
    expect(second.json()).toEqual({ jobId: first.json().jobId, duplicate: true });
    expect(first.json().duplicate).toBe(false);
    expect(await jobCount()).toBe(1);
    expect(await server.deps.redis.get(deliveryKey(delivery))).toBe(first.json().jobId);
    expect(await server.deps.redis.ttl(deliveryKey(delivery))).toBeGreaterThan(0);
  });

  it('twenty concurrent identical deliveries create exactly one job', async () => {
    const delivery = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        deliver('pull_request', fixture('pull_request-opened.json'), { delivery }),
      ),
    );
    const ids = new Set(responses.map((r) => r.json().jobId));
    expect(responses.every((r) => r.statusCode === 202)).toBe(true);
    expect(ids.size).toBe(1);
    expect(await jobCount()).toBe(1);
    expect(await server.deps.store.get([...ids][0]!)).not.toBeNull();
  });

  it('a Gitea UI replay (same body, new delivery id) is a new job', async () => {
    const a = await deliver('push', fixture('push-branch.json'));
    const b = await deliver('push', fixture('push-branch.json'));
    expect(a.json().jobId).not.toBe(b.json().jobId);
    expect(await jobCount()).toBe(2);
  });
});
