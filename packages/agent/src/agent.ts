import { randomBytes } from 'node:crypto';
import {
  AgentRegistry,
  type ClaimedJob,
  closeRedis,
  createRedis,
  JobQueue,
  JobStore,
  type Logger,
  logRedisOutages,
  type Pool,
  secretValuesFromEnv,
} from '@raibid/common';
import type { Redis } from 'ioredis';
import type { AgentSettings } from './config.js';
import { JobRun, type RunEnd } from './job-run.js';
import { Presence } from './presence.js';
import { RedisUnreachableError, redisDeadline, unlessAborted } from './redis-wait.js';
import { inheritedEnv } from './step-env.js';

/** Longest single blocking read, so a shutdown while idle is noticed quickly. */
const CLAIM_SLICE_MS = 1_000;
/** How long a starting agent waits for Redis before it reports it unreachable and exits 1. */
const STARTUP_REDIS_WAIT_MS = 30_000;
/** How long an exiting agent tries to remove its heartbeat record (it expires on its own). */
const PRESENCE_REMOVE_WAIT_MS = 2_000;

export interface AgentOptions {
  loop: boolean;
  /** The pool whose stream this agent reads; a `gpu` agent also reports its GPU in each job's log. */
  pool: Pool;
  logger: Logger;
}

/** Why the agent stopped; main turns it into an exit code (all are 0: none is the agent failing). */
export type AgentExit = 'idle' | 'done' | 'shutdown';

/** The agent's name in the consumer group: the pod name, or a generated id. */
export function agentName(hostname: string | undefined): string {
  return hostname ?? `agent-${randomBytes(4).toString('hex')}`;
}

/**
 * Claims jobs from the queue and runs them, one at a time: one job and exit by
 * default (a KEDA ScaledJob pod), or until shut down with `loop`. Claims block
 * their own Redis connection; everything else uses a second one.
 */
export class Agent {
  readonly name: string;
  private readonly redis: Redis;
  private readonly claimRedis: Redis;
  private readonly queue: JobQueue;
  private readonly claimQueue: JobQueue;
  private readonly presence: Presence;
  private current: JobRun | null = null;
  private shutdownSignal: string | null = null;
  /** Aborts on shutdown: ends a claim that waits for an unreachable Redis. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly config: AgentSettings,
    private readonly options: AgentOptions,
  ) {
    const { logger } = options;
    this.name = agentName(config.HOSTNAME);
    const onProblem = (message: string, detail: Record<string, unknown>) => logger.warn(detail, message);
    // Commands wait out a Redis outage of any length (JobRun bounds the waits by the
    // job's timeout): a job's true outcome is recorded once Redis is back.
    this.redis = createRedis(config.REDIS_URL, { maxRetriesPerRequest: null });
    this.claimRedis = createRedis(config.REDIS_URL, { maxRetriesPerRequest: null });
    logRedisOutages(this.redis, logger, 'redis');
    logRedisOutages(this.claimRedis, logger, 'claim');
    const { pool } = options;
    this.queue = new JobQueue(this.redis, new JobStore(this.redis), { pool, onProblem });
    this.claimQueue = new JobQueue(this.claimRedis, new JobStore(this.claimRedis), { pool, onProblem });
    this.presence = new Presence(
      new AgentRegistry(this.redis),
      this.name,
      config.RAIBID_HEARTBEAT_MS,
      (error) => logger.warn({ err: error }, 'agent heartbeat failed'),
    );
  }

  /** SIGTERM/SIGINT: stop the running step, hand its job back, and exit. */
  shutdown(signal: string): void {
    if (this.shutdownSignal) return;
    this.shutdownSignal = signal;
    this.options.logger.info({ signal, jobId: this.current?.jobId ?? null }, 'shutting down');
    this.current?.stop('shutdown');
    // A claim in flight returns within CLAIM_SLICE_MS when Redis answers (a job it got is
    // handed straight back); one waiting for an unreachable Redis is abandoned.
    setTimeout(
      () => this.stopping.abort(new RedisUnreachableError('Redis unreachable while shutting down')),
      CLAIM_SLICE_MS + 1_000,
    ).unref();
  }

  async run(): Promise<AgentExit> {
    const { logger, loop } = this.options;
    try {
      await unlessAborted(
        this.queue.ensureGroup(),
        redisDeadline(STARTUP_REDIS_WAIT_MS, `no answer within ${STARTUP_REDIS_WAIT_MS / 1_000} s`),
      );
    } catch (error) {
      throw new Error(
        `cannot reach Redis at ${this.config.REDIS_URL.replace(/\/\/[^@/]*@/, '//***@')}: ${(error as Error).message}`,
      );
    }
    this.presence.start();
    logger.info(
      {
        agent: this.name,
        pool: this.options.pool,
        loop,
        idleTimeoutMs: loop ? null : this.config.AGENT_IDLE_TIMEOUT,
      },
      'agent started',
    );
    try {
      // A looping agent's finish claims its next job when one waits (finishAndClaimNext).
      let next: ClaimedJob | null = null;
      for (;;) {
        const claimed = next ?? (await this.claimNext());
        if (!claimed) return this.shutdownSignal ? 'shutdown' : 'idle';
        const end = await this.runJob(claimed);
        if (end.kind === 'finished') {
          next = end.next;
          logger.info(
            { jobId: claimed.job.id, kind: end.kind, status: end.status, nextJobId: next?.job.id },
            'job ended',
          );
        } else {
          next = null;
          logger.info({ jobId: claimed.job.id, ...end }, 'job ended');
        }
        if (this.shutdownSignal) {
          // Claimed with the finish just before the signal: runJob hands it straight back.
          if (next) logger.info({ jobId: next.job.id, ...(await this.runJob(next)) }, 'job ended');
          return 'shutdown';
        }
        if (end.kind === 'unrecorded') {
          throw new Error(`${end.reason}; job ${claimed.job.id} is left to the reaper, which re-queues it`);
        }
        if (!loop) return 'done';
      }
    } finally {
      await unlessAborted(
        this.presence.stop(),
        redisDeadline(PRESENCE_REMOVE_WAIT_MS, 'Redis unreachable; the record expires on its own'),
      ).catch((error: unknown) => logger.warn({ err: error }, 'could not remove the heartbeat record'));
    }
  }

  /** Closes the Redis connections (at once if Redis is unreachable). */
  async close(): Promise<void> {
    await Promise.allSettled([closeRedis(this.redis), closeRedis(this.claimRedis)]);
  }

  /** The next job, or null when idle past AGENT_IDLE_TIMEOUT (one-job mode) or shutting down. */
  private async claimNext(): Promise<ClaimedJob | null> {
    const deadline = Date.now() + this.config.AGENT_IDLE_TIMEOUT;
    while (!this.shutdownSignal) {
      const left = this.options.loop ? CLAIM_SLICE_MS : deadline - Date.now();
      if (left <= 0) {
        this.options.logger.info(
          { idleTimeoutMs: this.config.AGENT_IDLE_TIMEOUT },
          'no job arrived within AGENT_IDLE_TIMEOUT; exiting',
        );
        return null;
      }
      // While Redis is unreachable the claim waits for it (a shutdown ends the wait).
      let claimed: ClaimedJob | null;
      try {
        claimed = await unlessAborted(
          this.claimQueue.claim(this.name, Math.min(left, CLAIM_SLICE_MS)),
          this.stopping.signal,
        );
      } catch (error) {
        if (this.shutdownSignal && error instanceof RedisUnreachableError) return null;
        throw error;
      }
      if (claimed) return claimed;
    }
    return null;
  }

  private async runJob(claimed: ClaimedJob): Promise<RunEnd> {
    const { config } = this;
    const run = new JobRun(
      {
        queue: this.queue,
        redis: this.redis,
        logger: this.options.logger.child({ jobId: claimed.job.id }),
        agentName: this.name,
        pool: this.options.pool,
        heartbeatMs: config.RAIBID_HEARTBEAT_MS,
        killGraceMs: config.RAIBID_KILL_GRACE_MS,
        cacheDir: config.RAIBID_CACHE_DIR,
        workDir: config.RAIBID_WORK_DIR,
        logCapBytes: config.RAIBID_LOG_CAP_BYTES,
        gitToken: config.GIT_TOKEN ?? config.GITEA_TOKEN,
        secrets: secretValuesFromEnv(process.env),
        inheritedEnv: inheritedEnv(),
        shutdownSignal: () => this.shutdownSignal ?? 'shutdown',
        claimNext: () => this.options.loop && !this.shutdownSignal,
      },
      claimed,
    );
    this.current = run;
    // A shutdown that arrived while the claim was in flight: hand the job straight back.
    if (this.shutdownSignal) run.stop('shutdown');
    this.presence.setJob(claimed.job.id);
    try {
      return await run.run();
    } finally {
      this.current = null;
      this.presence.setJob(null);
    }
  }
}
