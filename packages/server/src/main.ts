// The server process: config → deps → API on HOST:PORT, /metrics on METRICS_PORT,
// the reaper and the commit-status reporter; clean exit on SIGTERM/SIGINT.
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { createLogger, createRedis, loadConfigOrExit, serverEnvSchema, startReaper } from '@raibid/common';
import { buildServer } from './app.js';
import { createServerDeps } from './deps.js';
import { CommitStatusClient } from './gitea/commit-status.js';
import { kubeAgentsInCluster } from './kube.js';
import { startMetricsServer } from './metrics.js';
import { type StatusReporter, startStatusReporter } from './reporter.js';

/** Past this, shutdown gives up waiting and exits anyway (the contract allows 10 s). */
const SHUTDOWN_DEADLINE_MS = 9_000;

const config = loadConfigOrExit(serverEnvSchema);
let stopping = false;
const logger = createLogger({ name: 'raibid-server', level: config.LOG_LEVEL });

const kube = (() => {
  try {
    return kubeAgentsInCluster();
  } catch (error) {
    logger.warn({ err: error }, 'in a cluster, but cannot load the Kubernetes config; agent pods not listed');
    return null;
  }
})();
const { deps, close: closeDeps } = createServerDeps(config, logger, { kube });
const app = buildServer(config, deps);

/** Creates the agents' group (id 0, MKSTREAM) as soon as Redis answers. */
async function ensureGroupWhenReachable(): Promise<void> {
  for (let delay = 500; !stopping; delay = Math.min(delay * 2, 10_000)) {
    try {
      await deps.queue.ensureGroup();
      return;
    } catch (error) {
      logger.warn({ err: error, retryInMs: delay }, 'cannot create the raibid-agents group yet');
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
    }
  }
}

const stopReaper = startReaper({
  queue: deps.queue,
  connection: deps.redis,
  logs: deps.logs,
  logger,
  leaseMs: config.RAIBID_LEASE_MS,
});

let reporter: StatusReporter | null = null;
if (config.GITEA_URL && config.GITEA_TOKEN) {
  reporter = startStatusReporter({
    redis: createRedis(config.REDIS_URL, { maxRetriesPerRequest: null }),
    client: new CommitStatusClient({ giteaUrl: config.GITEA_URL, token: config.GITEA_TOKEN, logger }),
    publicUrl: config.PUBLIC_URL,
    logger,
    consumer: os.hostname(),
  });
} else if (config.GITEA_URL) {
  logger.warn('GITEA_URL is set but GITEA_TOKEN is not: commit statuses are not reported');
}

void ensureGroupWhenReachable();

try {
  await app.listen({ host: config.HOST, port: config.PORT });
} catch (error) {
  logger.fatal({ err: error }, `cannot listen on ${config.HOST}:${config.PORT}`);
  process.exit(1);
}
const metricsListener = await startMetricsServer(deps.metrics, {
  host: config.HOST,
  port: config.METRICS_PORT,
  logger,
}).catch((error: unknown) => {
  logger.fatal({ err: error }, `cannot listen on ${config.HOST}:${config.METRICS_PORT} for metrics`);
  process.exit(1);
});
logger.info(
  {
    port: (app.server.address() as AddressInfo).port,
    metricsPort: metricsListener.port,
    statusReporting: reporter !== null,
    kubernetes: kube !== null,
  },
  'raibid server ready',
);

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  const deadline = setTimeout(() => {
    logger.error('shutdown took too long; exiting anyway');
    process.exit(1);
  }, SHUTDOWN_DEADLINE_MS);
  deadline.unref();
  try {
    // Stop accepting, end log streams, finish in-flight requests.
    await Promise.all([app.close(), metricsListener.close()]);
    await Promise.all([stopReaper(), reporter?.stop()]);
    await closeDeps();
    logger.info('stopped');
    process.exit(0);
  } catch (error) {
    logger.error({ err: error }, 'shutdown failed');
    process.exit(1);
  }
}

process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
