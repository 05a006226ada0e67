// One test file's world for agent process tests: a private redis-server, a git
// HTTP server over repositories made by the test, temp work/cache dirs, and the
// common stores to enqueue jobs and read their results.
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  createLogger,
  type Job,
  JobQueue,
  type JobStatus,
  JobStore,
  type LogEvent,
  LogStore,
  startReaper,
} from '@raibid/common';
import {
  type GitHttpServer,
  startGitHttpServer,
  startRedis,
  type TestRedis,
  type TestRepo,
  waitFor,
} from '@raibid/common/testing';
import type { Redis } from 'ioredis';
import { type AgentProcess, removeAgentBundle, spawnAgent, stopAgent } from './agent-process.js';

export interface Harness {
  redis: TestRedis;
  client: Redis;
  store: JobStore;
  queue: JobQueue;
  logs: LogStore;
  /** Bare repositories served by `git`. */
  reposDir: string;
  workDir: string;
  cacheDir: string;
  git: GitHttpServer;
  /** The agent's environment for this world, plus `extra`. */
  env(extra?: Record<string, string>): Record<string, string>;
  /** Starts an agent (stopped by close() if still running). */
  agent(extra?: Record<string, string>, args?: string[]): Promise<AgentProcess>;
  enqueue(
    repo: TestRepo,
    options?: { ref?: string; sha?: string; env?: Record<string, string> },
  ): Promise<Job>;
  /** Starts the server's reaper on this world's Redis, quiet; returns its stop function. */
  reaper(leaseMs: number, intervalMs: number): () => Promise<void>;
  /** Waits until the job is in one of `statuses`. */
  waitForStatus(jobId: string, statuses: JobStatus[], timeoutMs?: number): Promise<Job>;
  events(jobId: string): Promise<LogEvent[]>;
  /** Workspaces of a job still on disk. */
  workspaces(jobId: string): Promise<string[]>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  gitToken?: string;
  /** Redis persists to an AOF, so `redis.down()` / `redis.up()` is a restart, not data loss. */
  aof?: boolean;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-agent-test-'));
  const reposDir = path.join(dir, 'repos');
  const workDir = path.join(dir, 'work');
  const cacheDir = path.join(dir, 'cache');
  await Promise.all([reposDir, workDir, cacheDir].map((d) => mkdir(d, { recursive: true })));
  const redis = await startRedis({ aof: options.aof ?? false });
  const client = redis.client();
  const store = new JobStore(client);
  const queue = new JobQueue(client, store);
  await queue.ensureGroup();
  const logs = new LogStore(client);
  const git = await startGitHttpServer({
    root: reposDir,
    ...(options.gitToken ? { token: options.gitToken } : {}),
  });
  const agents: AgentProcess[] = [];
  let counter = 0;

  const env = (extra: Record<string, string> = {}) => ({
    REDIS_URL: redis.url,
    LOG_LEVEL: 'info',
    RAIBID_HEARTBEAT_MS: '200',
    RAIBID_KILL_GRACE_MS: '1000',
    AGENT_IDLE_TIMEOUT: '10s',
    RAIBID_WORK_DIR: workDir,
    RAIBID_CACHE_DIR: cacheDir,
    HOSTNAME: `agent-${++counter}`,
    ...extra,
  });

  return {
    redis,
    client,
    store,
    queue,
    logs,
    reposDir,
    workDir,
    cacheDir,
    git,
    env,
    async agent(extra, args) {
      const agent = await spawnAgent(env(extra), args);
      agents.push(agent);
      return agent;
    },
    enqueue(repo, opts = {}) {
      return queue.enqueue({
        repo: { owner: 'test', name: repo.name, cloneUrl: git.url(repo.name) },
        ref: opts.ref ?? repo.branch,
        sha: opts.sha ?? null,
        trigger: 'api',
        env: opts.env ?? {},
      });
    },
    reaper(leaseMs, intervalMs) {
      const logger = createLogger({ name: 'test-reaper', level: 'silent' });
      return startReaper({ queue, connection: client, logs, logger, leaseMs, intervalMs });
    },
    waitForStatus(jobId, statuses, timeoutMs = 15_000) {
      return waitFor(
        `job ${jobId} to be ${statuses.join(' or ')}`,
        async () => {
          const job = await store.get(jobId);
          return job && statuses.includes(job.status) ? job : null;
        },
        timeoutMs,
      );
    },
    async events(jobId) {
      return logs.read(jobId, 0, 100_000);
    },
    async workspaces(jobId) {
      return (await readdir(workDir)).filter((name) => name.startsWith(`raibid-${jobId}-`));
    },
    async close() {
      await Promise.all(agents.map(stopAgent));
      await removeAgentBundle();
      await git.stop();
      client.disconnect();
      await redis.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
