import {
  AgentRegistry,
  closeRedis,
  createRedis,
  JobQueue,
  JobStore,
  type Logger,
  LogStore,
  logRedisOutages,
  type ServerConfig,
} from '@raibid/common';
import type { Redis } from 'ioredis';
import type { KubeAgents } from './kube.js';
import { LiveFeed } from './live/feed.js';
import { createMetrics, type ServerMetrics } from './metrics.js';

/** Everything the HTTP app uses, built outside it so tests can hand in their own. */
export interface ServerDeps {
  logger: Logger;
  /** Shared command connection; never used for blocking reads. */
  redis: Redis;
  store: JobStore;
  queue: JobQueue;
  logs: LogStore;
  agents: AgentRegistry;
  /** The single live reader of job events and followed logs. */
  feed: LiveFeed;
  metrics: ServerMetrics;
  /** Agent Jobs and pods from the Kubernetes API; null outside a cluster. */
  kube: KubeAgents | null;
  /** Milliseconds since the epoch (agents' recency). */
  now: () => number;
}

export interface CreateDepsOptions {
  kube?: KubeAgents | null;
  now?: () => number;
  /** Longest XREAD block of the live feed. */
  feedBlockMs?: number;
}

/** Opens the connections and builds the stores; `close` undoes all of it. */
export function createServerDeps(
  config: Pick<ServerConfig, 'REDIS_URL' | 'RAIBID_LOG_CAP_BYTES'>,
  logger: Logger,
  options: CreateDepsOptions = {},
): { deps: ServerDeps; close(): Promise<void> } {
  // API requests fail fast (503) while Redis is away instead of hanging on the offline queue.
  // Commands of concurrent requests issued in the same tick go out in one write (and one
  // read of the replies): under load the socket writes were a sixth of a job submission's CPU.
  const redis = createRedis(config.REDIS_URL, { maxRetriesPerRequest: 3, enableAutoPipelining: true });
  const reader = createRedis(config.REDIS_URL, { maxRetriesPerRequest: null });
  logRedisOutages(redis, logger, 'redis');
  logRedisOutages(reader, logger, 'live-reader');
  const store = new JobStore(redis, {
    onCorrupt: (error) => logger.error({ err: error }, 'corrupt job record skipped'),
  });
  const queue = new JobQueue(redis, store, {
    onProblem: (message, detail) => logger.warn(detail, message),
  });
  const logs = new LogStore(redis, {
    capBytes: config.RAIBID_LOG_CAP_BYTES,
    onCorrupt: (jobId, entryId, reason) =>
      logger.warn({ jobId, entryId, reason }, 'corrupt log entry skipped'),
  });
  const agents = new AgentRegistry(redis, (name, reason) =>
    logger.warn({ agent: name, reason }, 'corrupt agent heartbeat skipped'),
  );
  const feed = new LiveFeed({
    reader,
    control: redis,
    logs,
    logger,
    ...(options.feedBlockMs === undefined ? {} : { blockMs: options.feedBlockMs }),
  });
  const metrics = createMetrics({ queue, store, logger });
  feed.onJobEvent((event) => metrics.observeJobEvent(event));
  feed.start();
  const deps: ServerDeps = {
    logger,
    redis,
    store,
    queue,
    logs,
    agents,
    feed,
    metrics,
    kube: options.kube ?? null,
    now: options.now ?? Date.now,
  };
  return {
    deps,
    async close() {
      await feed.stop();
      await closeRedis(redis);
    },
  };
}
