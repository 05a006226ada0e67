import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  isFinalStatus,
  isTransition,
  JOB_STATUSES,
  type JobEvent,
  type JobQueue,
  type JobStore,
} from '@raibid/common';
import type { Logger } from 'pino';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { HttpDurationHistogram } from './http-metrics.js';

export interface ServerMetrics {
  registry: Registry;
  /** Counts one answered HTTP request (the app's onResponse hook). */
  observeHttp(method: string, route: string, statusCode: number, seconds: number): void;
  /** Counts a job write read from `raibid:events` (transitions and durations). */
  observeJobEvent(event: JobEvent): void;
}

export interface MetricsSources {
  queue: JobQueue;
  store: JobStore;
  logger: Logger;
}

/**
 * The server's Prometheus registry: Node's default metrics plus the contract's
 * `raibid_*` series. Queue lag and running jobs are read from Redis when scraped
 * (lag from XINFO GROUPS, the number KEDA scales on); transitions and durations
 * are counted from the events stream as they happen.
 */
export function createMetrics({ queue, store, logger }: MetricsSources): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const jobsTotal = new Counter({
    name: 'raibid_jobs_total',
    help: 'Job transitions into each status seen by this server since it started (creation counts as queued)',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  for (const status of JOB_STATUSES) jobsTotal.inc({ status }, 0);

  new Gauge({
    name: 'raibid_queue_lag',
    help: 'Entries of raibid:jobs not yet delivered to the raibid-agents group (XINFO GROUPS lag)',
    registers: [registry],
    async collect() {
      try {
        this.set((await queue.stats()).lag);
      } catch (error) {
        logger.warn({ err: error }, 'metrics: cannot read queue lag');
      }
    },
  });

  new Gauge({
    name: 'raibid_jobs_running',
    help: 'Jobs currently in status running',
    registers: [registry],
    async collect() {
      try {
        this.set(await store.countByStatus('running'));
      } catch (error) {
        logger.warn({ err: error }, 'metrics: cannot count running jobs');
      }
    },
  });

  const jobDuration = new Histogram({
    name: 'raibid_job_duration_seconds',
    help: 'Run time of finished jobs (startedAt to finishedAt of the last attempt), by final status',
    labelNames: ['status'] as const,
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200],
    registers: [registry],
  });

  const httpDuration = new HttpDurationHistogram(
    registry,
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );

  return {
    registry,
    observeHttp: (method, route, statusCode, seconds) =>
      httpDuration.observe(method, route, statusCode, seconds),
    observeJobEvent(event) {
      if (!isTransition(event)) return;
      const { job } = event;
      jobsTotal.inc({ status: job.status });
      if (isFinalStatus(job.status) && job.startedAt && job.finishedAt) {
        const seconds = (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000;
        if (seconds >= 0) jobDuration.observe({ status: job.status }, seconds);
      }
    },
  };
}

export interface MetricsListener {
  port: number;
  close(): Promise<void>;
}

/** Serves `GET /metrics` on its own port (METRICS_PORT), apart from the API. */
export async function startMetricsServer(
  metrics: ServerMetrics,
  options: { host: string; port: number; logger: Logger },
): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'not_found', message: 'metrics are at GET /metrics' } }));
      return;
    }
    metrics.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
      },
      (error: unknown) => {
        options.logger.error({ err: error }, 'metrics: collection failed');
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'internal', message: 'metrics collection failed' } }));
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeIdleConnections();
      }),
  };
}
