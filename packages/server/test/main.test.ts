import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startRedis, type TestRedis, waitFor } from '@raibid/common/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { giteaSignature } from '../src/gitea/webhook.js';
import { openSse } from './support/sse.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const TOKEN = 'main-test-token-4f1e9a';
const SECRET = 'main-test-webhook-secret-77c2';

interface Running {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exit: Promise<number | null>;
  url: string;
  metricsUrl: string;
}

let redis: TestRedis;
const children: ChildProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});
afterAll(async () => {
  await redis.stop();
});

function spawnServer(env: Record<string, string>): Omit<Running, 'url' | 'metricsUrl'> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const stdout: string[] = [];
  const stderr: string[] = [];
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    stdout.push(...lines);
  });
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout, stderr, exit };
}

async function startServer(): Promise<Running> {
  const started = spawnServer({
    REDIS_URL: redis.url,
    HOST: '127.0.0.1',
    PORT: '0',
    METRICS_PORT: '0',
    RAIBID_API_TOKEN: TOKEN,
    GITEA_WEBHOOK_SECRET: SECRET,
    GITEA_URL: 'http://127.0.0.1:9',
    GITEA_TOKEN: 'gitea-token-never-logged',
    LOG_LEVEL: 'info',
  });
  const ready = await waitFor(
    'the ready log line',
    () => started.stdout.map((l) => JSON.parse(l)).find((l) => l.msg === 'raibid server ready'),
    20_000,
  );
  return {
    ...started,
    url: `http://127.0.0.1:${ready.port}`,
    metricsUrl: `http://127.0.0.1:${ready.metricsPort}/metrics`,
  };
}

describe('the server process', () => {
  it('serves /health, /ready, /metrics and the API; logs with request ids, never a secret; exits 0 on SIGTERM, ending open log streams', async () => {
    const server = await startServer();
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    await waitFor(
      'ready (group created at start)',
      async () => (await fetch(`${server.url}/ready`)).status === 200,
    );
    expect(await (await fetch(server.metricsUrl)).text()).toContain('raibid_queue_lag 0');

    const created = await fetch(`${server.url}/api/v1/jobs`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TOKEN}`,
        'content-type': 'application/json',
        'x-request-id': 'req-42',
      },
      body: JSON.stringify({ repo: 'https://example.com/a/b.git', env: { A: '1' } }),
    });
    expect(created.status).toBe(201);
    const refused = await fetch(`${server.url}/api/v1/jobs`, {
      method: 'POST',
      headers: { authorization: 'Bearer wrong-token-value', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(refused.status).toBe(401);
    const ping = '{"zen":"hi"}';
    const signature = giteaSignature(SECRET, Buffer.from(ping));
    const pong = await fetch(`${server.url}/webhooks/gitea`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-gitea-event': 'ping',
        'x-gitea-signature': signature,
      },
      body: ping,
    });
    expect(pong.status).toBe(200);

    const job = (await created.json()) as { id: string };
    const sse = await openSse(`${server.url}/api/v1/jobs/${job.id}/logs`);
    await waitFor('status event', () => sse.events.length >= 1);

    server.child.kill('SIGTERM');
    expect(await server.exit).toBe(0);
    await sse.ended; // closed by the server, not left hanging
    const records = server.stdout.map((l) => JSON.parse(l));
    const shuttingDown = records.findIndex((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM');
    expect(shuttingDown).toBeGreaterThan(-1);
    expect(records.findIndex((l) => l.msg === 'stopped')).toBeGreaterThan(shuttingDown);
    expect(records.filter((r) => r.reqId === 'req-42').map((r) => r.msg)).toContain('request completed');
    // Probes are not logged: Kubernetes asks every few seconds.
    expect(records.filter((r) => r.url === '/health')).toEqual([]);
    const output = server.stdout.join('\n') + server.stderr.join('');
    for (const secret of [TOKEN, SECRET, 'gitea-token-never-logged', 'wrong-token-value', signature]) {
      expect(output).not.toContain(secret);
    }
  });

  it('exits 0 on SIGINT too', async () => {
    const server = await startServer();
    server.child.kill('SIGINT');
    expect(await server.exit).toBe(0);
  });

  it('refuses bad configuration with one line naming the variable, exit 2', async () => {
    const started = spawnServer({ REDIS_URL: redis.url, PORT: 'abc' });
    expect(await started.exit).toBe(2);
    const stderr = started.stderr.join('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/PORT/);
    expect(started.stdout.join('')).toBe('');
  });
});
