import http, { type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { healthFastPathServer } from '../src/health-fast-path.js';
import { startTestServer, type TestServer, useRedis } from './support/server.js';

const redis = useRedis();

interface Answer {
  status: number;
  /** Header names and values in the order they were sent. */
  rawHeaders: string[];
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request over a keep-alive connection, as a Kubernetes probe or a load balancer sends it. */
function request(
  base: string,
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const agent = new http.Agent({ keepAlive: true });
  return new Promise<Answer>((resolve, reject) => {
    const sent = http.request(`${base}${path}`, {
      agent,
      method: options.method ?? 'GET',
      headers: options.headers,
    });
    sent.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () =>
        resolve({
          status: response.statusCode!,
          rawHeaders: response.rawHeaders,
          headers: response.headers,
          body,
        }),
      );
    });
    sent.on('error', reject);
    sent.end();
  }).finally(() => agent.destroy());
}

/** The raw headers with the values that differ per request (id, date) replaced by their shape. */
function headerShape(rawHeaders: string[]): string[] {
  return rawHeaders.map((value, i) => {
    const name = rawHeaders[i - 1]?.toLowerCase();
    if (i % 2 === 1 && name === 'x-request-id') return /^[0-9a-f-]{36}$/.test(value) ? '<uuid>' : value;
    if (i % 2 === 1 && name === 'date') return '<date>';
    return value;
  });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('the /health fast path (serverFactory)', () => {
  let bare: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => bare?.close(resolve) ?? resolve(undefined));
    bare = undefined;
  });

  /** The factory's server around a stand-in for fastify that records what reaches it. */
  async function factoryServer(isClosing: () => boolean) {
    const reachedFastify: string[] = [];
    const observed: [string, number][] = [];
    const factory = healthFastPathServer({
      isClosing,
      requestId: () => 'id-1',
      observe: (method, status) => observed.push([method, status]),
    });
    bare = factory(
      (req, res) => {
        reachedFastify.push(`${req.method} ${req.url}`);
        res.end('fastify');
      },
      { keepAliveTimeout: 72_000, requestTimeout: 0, connectionTimeout: 0, maxRequestsPerSocket: 0 },
    );
    await new Promise<void>((resolve) => bare!.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(bare.address() as AddressInfo).port}`;
    return { base, reachedFastify, observed };
  }

  it('answers GET and HEAD /health before fastify, and hands every other request to fastify', async () => {
    const { base, reachedFastify, observed } = await factoryServer(() => false);
    expect((await request(base, '/health')).body).toBe('{"status":"ok"}');
    expect((await request(base, '/health', { method: 'HEAD' })).status).toBe(200);
    expect((await request(base, '/health?verbose=1')).body).toBe('{"status":"ok"}');
    for (const [method, path] of [
      ['GET', '/ready'],
      ['GET', '/health/'],
      ['GET', '/healthz'],
      ['POST', '/health'],
    ] as const) {
      expect((await request(base, path, { method })).body).toBe('fastify');
    }
    expect(reachedFastify).toEqual(['GET /ready', 'GET /health/', 'GET /healthz', 'POST /health']);
    expect(observed).toEqual([
      ['GET', 200],
      ['HEAD', 200],
      ['GET', 200],
    ]);
  });

  it('hands /health to fastify while the server shuts down (fastify refuses it like any request)', async () => {
    const { base, reachedFastify, observed } = await factoryServer(() => true);
    expect((await request(base, '/health')).body).toBe('fastify');
    expect(reachedFastify).toEqual(['GET /health']);
    expect(observed).toEqual([]);
  });
});

describe('GET /health over HTTP', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('answers what the route answers: status, headers in order, body; HEAD the same without a body', async () => {
    server = await startTestServer(redis, { listen: true });
    const get = await request(server.url, '/health');
    expect(get.status).toBe(200);
    expect(get.body).toBe('{"status":"ok"}');
    expect(headerShape(get.rawHeaders)).toEqual([
      'x-request-id',
      '<uuid>',
      'content-type',
      'application/json; charset=utf-8',
      'content-length',
      '15',
      'Date',
      '<date>',
      'Connection',
      'keep-alive',
      'Keep-Alive',
      'timeout=72',
    ]);
    const head = await request(server.url, '/health', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(headerShape(head.rawHeaders)).toEqual(headerShape(get.rawHeaders));

    // The route (what inject() and /docs see) gives the same answer.
    const routed = await server.app.inject({ url: '/health' });
    expect(routed.body).toBe(get.body);
    expect(routed.headers['content-type']).toBe(get.headers['content-type']);
    expect(routed.headers['content-length']).toBe(get.headers['content-length']);
    // Connection headers as on every other route of this server.
    const ready = await request(server.url, '/ready');
    expect(ready.headers['keep-alive']).toBe(get.headers['keep-alive']);
    expect(ready.headers.connection).toBe(get.headers.connection);
  });

  it('is answered before fastify routes it: no fastify hook runs for it, as for /ready', async () => {
    const reachedFastify: string[] = [];
    server = await startTestServer(redis, {
      listen: true,
      prepare: (app) =>
        app.addHook('onRequest', (request, _reply, done) => {
          reachedFastify.push(`${request.method} ${request.url}`);
          done();
        }),
    });
    expect((await request(server.url, '/health')).status).toBe(200);
    expect((await request(server.url, '/health', { method: 'HEAD' })).status).toBe(200);
    expect((await request(server.url, '/ready')).status).toBe(200);
    expect(reachedFastify).toEqual(['GET /ready']);
  });

  it('keeps a safe caller request id, replaces an unsafe one, and gives each request its own', async () => {
    server = await startTestServer(redis, { listen: true });
    const kept = await request(server.url, '/health', { headers: { 'x-request-id': 'probe-7.a:b' } });
    expect(kept.headers['x-request-id']).toBe('probe-7.a:b');
    const replaced = await request(server.url, '/health', { headers: { 'x-request-id': 'a b' } });
    expect(replaced.headers['x-request-id']).toMatch(UUID);
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++)
      ids.add(String((await request(server.url, '/health')).headers['x-request-id']));
    expect(ids.size).toBe(20);
    for (const id of ids) expect(id).toMatch(UUID);
  });

  it('is timed in raibid_http_request_duration_seconds under the route /health, once per request', async () => {
    server = await startTestServer(redis, { listen: true });
    await request(server.url, '/health');
    await request(server.url, '/health?from=kubelet');
    await request(server.url, '/health', { method: 'HEAD' });
    const text = await server.deps.metrics.registry.metrics();
    const count = (labels: string) =>
      text
        .split('\n')
        .find((line) => line.startsWith(`raibid_http_request_duration_seconds_count{${labels}} `))
        ?.split(' ')[1];
    expect(count('method="GET",route="/health",status_code="200"')).toBe('2');
    expect(count('method="HEAD",route="/health",status_code="200"')).toBe('1');
    expect(text).not.toContain('route="unmatched"');
  });
});
