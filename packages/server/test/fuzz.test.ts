import { readFileSync } from 'node:fs';
import { METHODS } from 'node:http';
import { isValidRefName, type Job } from '@raibid/common';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { giteaSignature } from '../src/gitea/webhook.js';
import {
  AUTH,
  closedLocalUrl,
  startRedis,
  startTestServer,
  type TestServer,
  WEBHOOK_SECRET,
} from './support/server.js';

let redis: Awaited<ReturnType<typeof startRedis>>;
let server: TestServer;

beforeAll(async () => {
  redis = await startRedis();
  // Every job request and webhook makes the server read .raibid.yml from GITEA_URL first.
  server = await startTestServer(redis, { env: { GITEA_URL: await closedLocalUrl() } });
});
afterAll(async () => {
  await server.close();
  await redis.stop();
});

/** 7 properties × 1,450 runs: over 10,000 requests per run of this file (the fault suite's figure). */
const RUNS = { numRuns: 1_450 };
const REQUESTS_AT_LEAST = 10_000;
let requests = 0;

interface Reply {
  statusCode: number;
  body: string;
  headers: Record<string, unknown>;
}

/** What every response must be: no 5xx, no stack, and errors in the contract's shape. */
function checkResponse(response: Reply): void {
  requests++;
  expect(response.statusCode).toBeLessThan(500);
  expect(response.body).not.toMatch(/\n\s+at |node_modules|\.ts:\d+|\.js:\d+/);
  if (response.statusCode >= 400) {
    const body = JSON.parse(response.body) as { error: { code: unknown; message: unknown } };
    expect(typeof body.error.code).toBe('string');
    expect(typeof body.error.message).toBe('string');
  }
}

/** A job that got through must be harmless to hand to git. */
function checkJobIsSafe(job: Job): void {
  expect(job.repo.cloneUrl).toMatch(/^https?:\/\//);
  expect(job.repo.cloneUrl).not.toMatch(/[\s\0]/);
  expect(job.repo.owner.startsWith('-')).toBe(false);
  expect(job.repo.name.startsWith('-')).toBe(false);
  expect(isValidRefName(job.ref)).toBe(true);
  expect(job.ref.startsWith('-')).toBe(false);
  if (job.sha !== null) expect(job.sha).toMatch(/^[0-9a-f]{40}$/);
}

/** Strings that have broken parsers and git invocations before. */
const nasty = fc.constantFrom(
  '',
  '-',
  '--upload-pack=touch /tmp/x',
  'ext::sh -c touch% /tmp/pwned',
  'file:///etc/passwd',
  'ssh://git@host/a/b.git',
  'https://user:pass@host/a/b.git',
  'https://host/a/b.git?x=1',
  'http://host/-a/b',
  '../../etc',
  'a/../../b',
  'alice/hello',
  'https://example.com/a/b.git',
  'refs/heads/main',
  'main',
  '@',
  'a..b',
  'a b',
  'x\u0000y',
  '\u202e',
  '__proto__',
  'constructor',
  '0'.repeat(40),
  'f'.repeat(40),
  'A'.repeat(40),
  '%00',
  '😀'.repeat(20),
  'a'.repeat(5_000),
);
const text = fc.oneof(nasty, fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 100 }));
const value = fc.oneof(
  text,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(text, { maxLength: 3 }),
);

const validRepo = fc.oneof(
  fc.constantFrom('alice/hello', 'https://example.com/a/b.git', 'http://gitea-http:3000/x/y'),
  fc
    .tuple(
      fc.stringMatching(/^[a-z0-9_][a-z0-9_.-]{0,10}$/),
      fc.stringMatching(/^[a-z0-9_][a-z0-9_.-]{0,10}$/),
    )
    .map(([owner, name]) => `${owner}/${name}`),
);
const validRef = fc.oneof(
  fc.constantFrom('main', 'refs/heads/dev', 'v1.0', 'refs/pull/3/head'),
  fc.stringMatching(/^[a-z][a-z0-9/_-]{0,20}$/),
);
const validSha = fc.stringMatching(/^[0-9a-f]{40}$/);
const validEnv = fc.dictionary(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,10}$/), fc.string({ maxLength: 20 }), {
  maxKeys: 3,
});
/** Valid values, strings that have broken git invocations before, and any junk: all three paths explored. */
const field = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: valid, weight: 3 }, { arbitrary: nasty, weight: 1 }, { arbitrary: value, weight: 1 });

const jobBody = fc.oneof(
  {
    arbitrary: fc.record(
      {
        repo: field(validRepo),
        ref: field(validRef),
        sha: field(validSha),
        env: field(validEnv),
      },
      { requiredKeys: ['repo'] },
    ),
    weight: 3,
  },
  fc.dictionary(text, value, { maxKeys: 5 }),
  fc.jsonValue(),
);

const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'application/JSON',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  ';;;',
  'application/json; boundary',
);

const headerValue = fc.string({ maxLength: 100 }).map((s) => s.replace(/[^\t\x20-\x7e]/g, ''));

describe('fuzzing: never a 5xx, never a stack trace', () => {
  it('POST /api/v1/jobs with arbitrary JSON bodies', async () => {
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(jobBody, async (body) => {
        const response = await server.app.inject({
          method: 'POST',
          url: '/api/v1/jobs',
          headers: { ...AUTH, 'content-type': 'application/json' },
          payload: JSON.stringify(body),
        });
        checkResponse(response);
        statuses.add(response.statusCode);
        if (response.statusCode === 201) checkJobIsSafe(response.json());
      }),
      RUNS,
    );
    // The fuzzer reaches both the refusal and the success path.
    expect(statuses).toContain(400);
    expect(statuses).toContain(201);
  });

  it('POST /api/v1/jobs with arbitrary bytes, content types and auth headers', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
        ),
        contentType,
        fc.oneof(fc.constant(AUTH.authorization), headerValue, fc.constant(undefined)),
        async (payload, type, authorization) => {
          const headers: Record<string, string> = {};
          if (type !== undefined) headers['content-type'] = type;
          if (authorization !== undefined) headers.authorization = authorization;
          const response = await server.app.inject({ method: 'POST', url: '/api/v1/jobs', headers, payload });
          checkResponse(response);
          if (response.statusCode === 201) checkJobIsSafe(response.json());
        },
      ),
      RUNS,
    );
  });

  it('GET routes with arbitrary paths, query strings and headers', async () => {
    const segment = fc.oneof(nasty, fc.string({ maxLength: 40 })).map(encodeURIComponent);
    const query = fc.dictionary(
      fc.constantFrom('status', 'repo', 'limit', 'cursor', 'follow', 'x', '__proto__'),
      fc.oneof(text, fc.integer().map(String)),
      { maxKeys: 4 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          '/api/v1/jobs',
          '/api/v1/jobs/ID',
          '/api/v1/jobs/ID/logs',
          '/api/v1/queue',
          '/health',
        ),
        segment,
        query,
        headerValue,
        headerValue,
        async (route, id, params, lastEventId, accept) => {
          const qs = new URLSearchParams(params as Record<string, string>).toString();
          const url = `${route.replace('ID', id)}${qs ? `?${qs}` : ''}`;
          // A follow that matched would stream until the job ends: ask only for text.
          const headers = { 'last-event-id': lastEventId, accept: accept.replace(/event-stream/g, '') };
          const response = await server.app.inject({
            method: 'GET',
            url: url.replace(/follow=[^&]*/g, 'follow=0'),
            headers,
          });
          checkResponse(response);
        },
      ),
      RUNS,
    );
  });

  it('POST cancel and retry with arbitrary ids', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('cancel', 'retry'),
        fc.oneof(nasty, fc.string({ maxLength: 60 })),
        async (action, id) => {
          const response = await server.app.inject({
            method: 'POST',
            url: `/api/v1/jobs/${encodeURIComponent(id)}/${action}`,
            headers: AUTH,
          });
          checkResponse(response);
        },
      ),
      RUNS,
    );
  });

  it('any method on any route', async () => {
    await fc.assert(
      fc.asyncProperty(
        // Every method Node's HTTP parser accepts (CONNECT opens a tunnel, not a request).
        fc.constantFrom(...METHODS.filter((method) => method !== 'CONNECT')),
        fc.constantFrom(
          '/api/v1/jobs',
          '/api/v1/jobs/01jb0c0000000000000000000a',
          '/api/v1/jobs/01jb0c0000000000000000000a/logs',
          '/api/v1/jobs/01jb0c0000000000000000000a/cancel',
          '/api/v1/jobs/01jb0c0000000000000000000a/retry',
          '/api/v1/queue',
          '/api/v1/agents',
          '/webhooks/gitea',
          '/health',
          '/ready',
          '/nowhere',
        ),
        fc.oneof(fc.constant(undefined), fc.string({ maxLength: 200 })),
        async (method, url, payload) => {
          const response = await server.app.inject({
            method: method as 'GET',
            url,
            headers: AUTH,
            ...(payload === undefined ? {} : { payload }),
          });
          if (method !== 'HEAD') checkResponse(response);
          else {
            // A HEAD answer has no body, so no error shape to check.
            requests++;
            expect(response.statusCode).toBeLessThan(500);
            expect(response.body).toBe('');
          }
        },
      ),
      RUNS,
    );
  });

  const base = JSON.parse(
    readFileSync(new URL('./fixtures/gitea/push-branch.json', import.meta.url), 'utf8'),
  ) as Record<string, unknown>;

  async function deliver(body: unknown, event: string, delivery: string | undefined, secret: string) {
    const raw = Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-gitea-event': event,
      'x-gitea-signature': giteaSignature(secret, raw),
    };
    if (delivery !== undefined) headers['x-gitea-delivery'] = delivery;
    const response = await server.app.inject({
      method: 'POST',
      url: '/webhooks/gitea',
      headers,
      payload: raw,
    });
    checkResponse(response);
    if (response.statusCode === 202) checkJobIsSafe((await server.deps.store.get(response.json().jobId))!);
    return response.statusCode;
  }

  it('POST /webhooks/gitea: signed real pushes with fields replaced by junk', async () => {
    const statuses = new Set<number>();
    const keys = fc.constantFrom(
      'ref',
      'after',
      'head_commit',
      'repository',
      'number',
      'action',
      'pull_request',
    );
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(keys, value, { maxKeys: 2 }).map((change) => ({ ...base, ...change })),
        fc.constantFrom('push', 'pull_request'),
        fc.uuid(),
        async (body, event, delivery) => {
          statuses.add(await deliver(body, event, delivery, WEBHOOK_SECRET));
        },
      ),
      RUNS,
    );
    // Both the refusal and the job path were explored.
    expect([...statuses]).toEqual(expect.arrayContaining([202, 400]));
  });

  it('POST /webhooks/gitea: arbitrary payloads, events and delivery ids, signed or not', async () => {
    const payload = fc.oneof(
      fc.jsonValue(),
      fc.record({
        repository: fc.record({ name: text, owner: fc.record({ login: text }), clone_url: text }),
        ref: text,
        after: text,
      }),
    );
    await fc.assert(
      fc.asyncProperty(
        payload,
        fc.oneof(fc.constantFrom('push', 'pull_request', 'ping', 'issues'), headerValue),
        fc.oneof(fc.uuid(), fc.constant(undefined), headerValue),
        fc.boolean(),
        async (body, event, delivery, signed) => {
          const status = await deliver(body, event, delivery, signed ? WEBHOOK_SECRET : 'another secret');
          if (!signed) expect(status).toBe(401);
        },
      ),
      RUNS,
    );
  });

  it(`has sent at least ${REQUESTS_AT_LEAST} requests, and the server still answers /ready`, async () => {
    expect(requests).toBeGreaterThanOrEqual(REQUESTS_AT_LEAST);
    const ready = await server.app.inject({ method: 'GET', url: '/ready' });
    expect(ready.statusCode).toBe(200);
  });
});
