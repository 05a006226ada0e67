import type { NewJob } from '@raibid/common';
import { waitFor } from '@raibid/common/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type MetricsListener, startMetricsServer } from '../src/metrics.js';
import { AUTH, useRedis, useTestServer } from './support/server.js';

const redis = useRedis();
const server = useTestServer(redis);
let metrics: MetricsListener;

beforeEach(async () => {
  metrics = await startMetricsServer(server.deps.metrics, {
    host: '127.0.0.1',
    port: 0,
    logger: server.deps.logger,
  });
});
afterEach(async () => {
  await metrics.close();
});

const newJob: NewJob = {
  repo: { owner: 'alice', name: 'hello', cloneUrl: 'http://gitea-http:3000/alice/hello.git' },
  ref: 'main',
  sha: null,
  trigger: 'api',
};

async function scrape(): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${metrics.port}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
}

/** The value of one sample line, e.g. `raibid_jobs_total{status="queued"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('GET :METRICS_PORT/metrics', () => {
  it('has the default Node metrics and every raibid_* series of the contract', async () => {
    const text = await scrape();
    for (const name of [
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
      'raibid_jobs_total',
      'raibid_queue_lag',
      'raibid_jobs_running',
      'raibid_job_duration_seconds',
      'raibid_http_request_duration_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).toContain('# TYPE raibid_job_duration_seconds histogram');
    expect(text).toContain('# TYPE raibid_http_request_duration_seconds histogram');
    expect(sample(text, 'raibid_jobs_total{status="succeeded"}')).toBe(0);
  });

  it('reads queue lag from XINFO GROUPS and running jobs from Redis at scrape time', async () => {
    for (let i = 0; i < 3; i++) await server.deps.queue.enqueue(newJob);
    await server.deps.queue.claim('agent-1', 1_000);
    const text = await scrape();
    expect(sample(text, 'raibid_queue_lag')).toBe(2);
    expect(sample(text, 'raibid_jobs_running')).toBe(1);
  });

  it('counts transitions and observes the duration of finished jobs', async () => {
    await server.deps.queue.enqueue(newJob);
    const claimed = (await server.deps.queue.claim('agent-1', 1_000))!;
    await server.deps.queue.finish(claimed, { status: 'failed', exitCode: 1 });
    const cancelled = await server.deps.queue.enqueue(newJob);
    await server.deps.queue.requestCancel(cancelled.id);
    await waitFor('transitions counted', async () => {
      const text = await scrape();
      return (
        sample(text, 'raibid_jobs_total{status="queued"}') === 2 &&
        sample(text, 'raibid_jobs_total{status="running"}') === 1 &&
        sample(text, 'raibid_jobs_total{status="failed"}') === 1 &&
        sample(text, 'raibid_jobs_total{status="cancelled"}') === 1
      );
    });
    const text = await scrape();
    // Only the job that ran has a duration.
    expect(sample(text, 'raibid_job_duration_seconds_count{status="failed"}')).toBe(1);
    expect(sample(text, 'raibid_job_duration_seconds_count{status="cancelled"}')).toBeUndefined();
  });

  it('times API requests by route template and status code', async () => {
    await server.app.inject({ url: '/health' });
    await server.app.inject({
      method: 'POST',
      url: '/api/v1/jobs',
      headers: AUTH,
      payload: { repo: 'alice/hello' },
    });
    await server.app.inject({ url: '/api/v1/jobs/01hzzzzzzzzzzzzzzzzzzzzzzz' });
    await server.app.inject({ url: '/nowhere' });
    const text = await scrape();
    expect(
      sample(
        text,
        'raibid_http_request_duration_seconds_count{method="GET",route="/health",status_code="200"}',
      ),
    ).toBe(1);
    expect(
      sample(
        text,
        'raibid_http_request_duration_seconds_count{method="POST",route="/api/v1/jobs",status_code="201"}',
      ),
    ).toBe(1);
    expect(
      sample(
        text,
        'raibid_http_request_duration_seconds_count{method="GET",route="/api/v1/jobs/:id",status_code="404"}',
      ),
    ).toBe(1);
    expect(
      sample(
        text,
        'raibid_http_request_duration_seconds_count{method="GET",route="unmatched",status_code="404"}',
      ),
    ).toBe(1);
  });

  it('answers other paths with 404 in the error shape', async () => {
    const response = await fetch(`http://127.0.0.1:${metrics.port}/`);
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });
});
