import {
  type ClaimedJob,
  createMasker,
  DEFAULT_JOB_TIMEOUT_MS,
  formatDuration,
  type JobQueue,
  type Logger,
  LogStore,
  type Outcome,
  PIPELINE_FILE,
  PipelineError,
  type Pool,
  type StepResult,
  secretValuesFromEnv,
} from '@raibid/common';
import type { Redis } from 'ioredis';
import { authorizationHeader, CheckoutError, checkout } from './checkout.js';
import { displayUrl, formatElapsed } from './format.js';
import { gpuLine, NoGpuError, queryGpus } from './gpu.js';
import { JobLog } from './job-log.js';
import { watchJob } from './job-watch.js';
import { loadPipeline, NoPipelineError, type PipelinePlan } from './pipeline-source.js';
import { RedisUnreachableError, redisDeadline, unlessAborted } from './redis-wait.js';
import { cacheEnv, stepEnv } from './step-env.js';
import { runStepProcess } from './step-process.js';
import { createWorkspace, removeWorkspace } from './workspace.js';

/** Upper bound for each git command of a checkout. */
const CHECKOUT_TIMEOUT_MS = 15 * 60_000;
/**
 * Longest a cancelled step may ignore SIGTERM before SIGKILL, whatever RAIBID_KILL_GRACE_MS says:
 * with the cancel check every second this keeps the contract's "killed within 5 s".
 */
const CANCEL_KILL_GRACE_MS = 2_000;
/** Lines of a step's `run` echoed into the log before it starts. */
const ECHOED_COMMAND_LINES = 10;
/**
 * How long past the job's timeout the agent still waits for an unreachable Redis to
 * record how the job ended (the steps themselves are stopped at the timeout).
 */
const REDIS_WAIT_PAST_TIMEOUT_MS = 5 * 60_000;
/**
 * How long a shutting-down agent waits for an unreachable Redis to take its job back;
 * then it exits and leaves the job to the reaper (Kubernetes SIGKILLs after 30 s).
 */
const SHUTDOWN_REDIS_WAIT_MS = 5_000;

/** Why a job stopped before its pipeline ended. */
export type StopReason = 'cancel' | 'shutdown' | 'lost';

/** The checked-out pipeline asks for another pool than the one the job was routed to. */
class PoolMismatchError extends Error {
  override name = 'PoolMismatchError';
}

class StopError extends Error {
  override name = 'StopError';
  constructor(readonly reason: StopReason) {
    super(`job stopped: ${reason}`);
  }
}

export interface JobRunContext {
  /** Queue on the agent's non-blocking connection (claims block their own). */
  queue: JobQueue;
  redis: Redis;
  logger: Logger;
  agentName: string;
  /** The pool this agent serves. */
  pool: Pool;
  heartbeatMs: number;
  killGraceMs: number;
  cacheDir: string;
  workDir: string;
  logCapBytes: number;
  /** GIT_TOKEN or GITEA_TOKEN. */
  gitToken: string | undefined;
  /** Secret values of the agent's environment, masked in the log. */
  secrets: readonly string[];
  /** What steps inherit from the agent's environment. */
  inheritedEnv: Record<string, string>;
  /** What shut the agent down, for the log (SIGTERM, SIGINT). */
  shutdownSignal: () => string;
  /** Whether the agent takes another job after this one (then finishing claims it). */
  claimNext: () => boolean;
}

/**
 * How a run ended for the agent: the job finished here, was handed back, was taken
 * away, or its end could not be recorded because Redis stayed unreachable (the
 * reaper re-queues it).
 */
export type RunEnd =
  | { kind: 'finished'; status: Outcome['status']; next: ClaimedJob | null }
  | { kind: 'released' }
  | { kind: 'lost' }
  | { kind: 'unrecorded'; reason: string };

type Execution =
  | { kind: 'done'; outcome: Outcome }
  | { kind: 'stopped' }
  | { kind: 'unrecorded'; reason: string };

/**
 * Runs one claimed job: workspace, checkout, pipeline, steps, final state.
 * While it runs it renews the job's hold and watches for a cancellation; `stop()`
 * ends it early for a cancel, an agent shutdown (the job is handed back) or a
 * lost hold (someone else owns it now). The workspace is always removed.
 */
export class JobRun {
  private readonly controller = new AbortController();
  private reason: StopReason | null = null;
  private steps: StepResult[] = [];
  /** The commit checked out, recorded on the job with the steps. */
  private sha: string | undefined;
  private readonly log: JobLog;
  private readonly started = Date.now();
  /** Aborts when the agent stops waiting for Redis: the job's timeout plus REDIS_WAIT_PAST_TIMEOUT_MS. */
  private redisGiveUp: AbortSignal;
  /** Set by the first Redis wait after a shutdown: SHUTDOWN_REDIS_WAIT_MS from then. */
  private shutdownGiveUp: AbortSignal | null = null;

  constructor(
    private readonly ctx: JobRunContext,
    private readonly claimed: ClaimedJob,
  ) {
    const { job } = claimed;
    const secrets = [...ctx.secrets, ...secretValuesFromEnv(job.env)];
    if (ctx.gitToken) secrets.push(authorizationHeader(ctx.gitToken).slice('Basic '.length));
    this.log = new JobLog({
      logs: new LogStore(ctx.redis, { capBytes: ctx.logCapBytes, mask: createMasker(secrets) }),
      jobId: job.id,
      onError: (error, lines) =>
        ctx.logger.error({ err: error, jobId: job.id, lines }, 'could not store log lines'),
    });
    this.redisGiveUp = this.redisDeadlineAfter(DEFAULT_JOB_TIMEOUT_MS);
  }

  private redisDeadlineAfter(jobTimeoutMs: number): AbortSignal {
    const waitMs = jobTimeoutMs + REDIS_WAIT_PAST_TIMEOUT_MS;
    return redisDeadline(
      this.started + waitMs - Date.now(),
      `Redis stayed unreachable past the job's timeout (${formatDuration(jobTimeoutMs)}) and ${formatDuration(REDIS_WAIT_PAST_TIMEOUT_MS)} more`,
    );
  }

  /**
   * Awaits a Redis operation. The agent's connections wait out an outage of any
   * length; this bounds the wait by the job's timeout, or SHUTDOWN_REDIS_WAIT_MS
   * once the agent is shutting down (RedisUnreachableError).
   */
  private redis<T>(operation: Promise<T>): Promise<T> {
    const bounded = unlessAborted(operation, this.redisGiveUp);
    if (this.reason !== 'shutdown') return bounded;
    this.shutdownGiveUp ??= redisDeadline(
      SHUTDOWN_REDIS_WAIT_MS,
      `Redis unreachable while shutting down (waited ${formatDuration(SHUTDOWN_REDIS_WAIT_MS)})`,
    );
    return unlessAborted(bounded, this.shutdownGiveUp);
  }

  /** Writes the log's buffered lines if Redis answers in time; else says so in the agent's own log. */
  private async flushLog(): Promise<void> {
    try {
      await this.redis(this.log.flush());
    } catch (error) {
      if (!(error instanceof RedisUnreachableError)) throw error;
      this.ctx.logger.error({ jobId: this.jobId, reason: error.message }, 'log lines not stored');
    }
  }

  get jobId(): string {
    return this.claimed.job.id;
  }

  /** Ends the job early; the first reason wins. */
  stop(reason: StopReason): void {
    if (this.reason) return;
    this.reason = reason;
    this.controller.abort(new StopError(reason));
  }

  async run(): Promise<RunEnd> {
    const { job } = this.claimed;
    const { logger } = this.ctx;
    // The "picked up" lines were written with the claim (JobQueue.claim).
    const watch = watchJob({
      queue: this.ctx.queue,
      claimed: this.claimed,
      heartbeatMs: this.ctx.heartbeatMs,
      onCancel: () => this.stop('cancel'),
      onLost: () => this.stop('lost'),
      onError: (error) => logger.warn({ err: error, jobId: job.id }, 'heartbeat failed; retrying'),
    });
    let workspace: string | null = null;
    try {
      let execution: Execution;
      try {
        workspace = await createWorkspace(this.ctx.workDir, job.id);
        execution = await this.execute(workspace);
      } catch (error) {
        execution = this.failure(error);
      } finally {
        // A check in flight waits for Redis; once we give up on Redis, so do we on it.
        await this.redis(watch.stop()).catch((error: unknown) => {
          if (!(error instanceof RedisUnreachableError)) throw error;
        });
      }
      if (execution.kind !== 'unrecorded') {
        try {
          return await this.conclude(execution);
        } catch (error) {
          if (!(error instanceof RedisUnreachableError)) throw error;
          execution = { kind: 'unrecorded', reason: error.message };
        }
      }
      logger.error(
        { jobId: job.id, reason: execution.reason },
        'could not record how the job ended; the reaper re-queues it',
      );
      return execution;
    } finally {
      await this.flushLog();
      if (workspace) {
        await removeWorkspace(workspace).catch((error: unknown) =>
          logger.error({ err: error, workspace }, 'could not remove the workspace'),
        );
      }
    }
  }

  private throwIfStopped(): void {
    if (this.reason) throw new StopError(this.reason);
  }

  /** Checkout, pipeline and steps; `stopped` when stop() cut it short. */
  private async execute(workspace: string): Promise<Execution> {
    const { job } = this.claimed;
    this.throwIfStopped();
    if (this.ctx.pool === 'gpu') {
      for (const [index, gpu] of (await queryGpus()).entries()) this.log.system(gpuLine(gpu, index));
    }
    this.log.system(
      `[raibid] cloning ${displayUrl(job.repo.cloneUrl)} at ${job.ref}${job.sha ? ` (${job.sha})` : ''}`,
    );
    const checkoutStarted = Date.now();
    const commit = await checkout({
      dir: workspace,
      cloneUrl: job.repo.cloneUrl,
      ref: job.ref,
      sha: job.sha,
      token: this.ctx.gitToken,
      signal: this.controller.signal,
      timeoutMs: CHECKOUT_TIMEOUT_MS,
      onProgress: (line) => this.log.system(`[raibid] ${line}`),
    });
    this.log.system(
      `[raibid] checked out ${commit.sha}${commit.subject ? ` "${commit.subject}"` : ''} in ${formatElapsed(Date.now() - checkoutStarted)}`,
    );
    this.sha = commit.sha;
    this.throwIfStopped();

    const plan = await loadPipeline(workspace);
    const wanted = plan.pipeline['runs-on'];
    if (wanted !== job.pool) {
      // Running it here would put a GPU job on plain hardware, or hold the GPU for a CPU job.
      throw new PoolMismatchError(
        `${plan.detected ? `the detected pipeline (${plan.source})` : PIPELINE_FILE} at ${commit.sha.slice(0, 12)} runs on ${wanted}, but the job was routed to the ${job.pool} pool (the server could not read the pipeline when it queued the job, or it changed); not run on the wrong hardware. ${wanted === 'gpu' ? 'Submit it with pool "gpu", or let the server read the file (a Gitea repository)' : `Add "runs-on: ${job.pool}" to ${PIPELINE_FILE}, or submit it without pool "${job.pool}"`}`,
      );
    }
    this.redisGiveUp = this.redisDeadlineAfter(plan.pipeline.timeout);
    this.announce(plan);
    this.steps = plan.pipeline.steps.map((step) => ({
      name: step.name,
      status: 'pending',
      exitCode: null,
      startedAt: null,
      finishedAt: null,
    }));
    await this.recordSteps();

    const deadline = this.started + plan.pipeline.timeout;
    const caches = await cacheEnv(this.ctx.cacheDir, job.repo);
    let failure: { step: string; exitCode: number; message: string } | null = null;

    for (const [index, step] of plan.pipeline.steps.entries()) {
      if (this.reason) break;
      const result = this.steps[index]!;
      const left = deadline - Date.now();
      if (left <= 0) {
        const message = `job timed out after ${formatDuration(plan.pipeline.timeout)} (pipeline timeout)`;
        this.log.system(`[raibid] ${message}`);
        failure = { step: step.name, exitCode: 124, message };
        break;
      }
      const byJobTimeout = step.timeout === undefined || left < step.timeout;
      const timeoutMs = byJobTimeout ? left : step.timeout!;

      result.status = 'running';
      result.startedAt = new Date().toISOString();
      await this.recordSteps();
      this.log.system(`[raibid] step ${step.name}: started`, step.name);
      const lines = step.run.trimEnd().split('\n');
      for (const line of lines.slice(0, ECHOED_COMMAND_LINES)) this.log.system(`$ ${line}`, step.name);
      if (lines.length > ECHOED_COMMAND_LINES) {
        this.log.system(`$ … (${lines.length - ECHOED_COMMAND_LINES} more lines)`, step.name);
      }

      const ran = await runStepProcess({
        command: step.run,
        cwd: workspace,
        env: stepEnv({
          inherited: this.ctx.inheritedEnv,
          caches,
          pipelineEnv: plan.pipeline.env,
          jobEnv: job.env,
          stepEnv: step.env,
          raibid: {
            CI: 'true',
            RAIBID: 'true',
            RAIBID_JOB_ID: job.id,
            RAIBID_ATTEMPT: String(this.claimed.attempt),
            RAIBID_REPO: `${job.repo.owner}/${job.repo.name}`,
            RAIBID_REF: job.ref,
            RAIBID_SHA: commit.sha,
            RAIBID_STEP: step.name,
            RAIBID_WORKSPACE: workspace,
          },
        }),
        timeoutMs,
        killGraceMs: this.ctx.killGraceMs,
        abortGraceMs: () =>
          this.reason === 'cancel'
            ? Math.min(this.ctx.killGraceMs, CANCEL_KILL_GRACE_MS)
            : this.ctx.killGraceMs,
        signal: this.controller.signal,
        // Unique to this run (the workspace is a fresh temp dir): finds daemons the step left behind.
        escapeMarker: `RAIBID_WORKSPACE=${workspace}`,
        onLine: (stream, line) => this.log.output(stream, step.name, line),
      });
      result.finishedAt = new Date().toISOString();
      const took = formatElapsed(ran.durationMs);

      if (ran.end === 'stopped') {
        result.status = 'cancelled';
        this.log.system(`[raibid] step ${step.name}: stopped after ${took}`, step.name);
        break;
      }
      result.exitCode = ran.exitCode;
      if (ran.end === 'timed-out') {
        result.status = 'failed';
        const message = byJobTimeout
          ? `job timed out after ${formatDuration(plan.pipeline.timeout)} (pipeline timeout) in step ${step.name}`
          : `step ${step.name} timed out after ${formatDuration(step.timeout!)}`;
        this.log.system(
          `[raibid] step ${step.name}: timed out, stopped after ${took} (exit ${ran.exitCode})`,
          step.name,
        );
        this.log.system(`[raibid] ${message}`, step.name);
        failure = { step: step.name, exitCode: ran.exitCode, message };
        break;
      }
      this.log.system(`[raibid] step ${step.name}: exit ${ran.exitCode} after ${took}`, step.name);
      if (ran.exitCode !== 0) {
        result.status = 'failed';
        failure = {
          step: step.name,
          exitCode: ran.exitCode,
          message: `step ${step.name} exited with ${ran.exitCode}`,
        };
        break;
      }
      result.status = 'succeeded';
      await this.recordSteps();
    }

    const cause = failure ? `step ${failure.step} failed` : 'the job was stopped';
    for (const result of this.steps) {
      if (result.status !== 'pending') continue;
      result.status = 'skipped';
      this.log.system(`[raibid] step ${result.name}: skipped (${cause})`, result.name);
    }
    if (this.reason) return { kind: 'stopped' };
    await this.recordSteps();
    if (failure) {
      return {
        kind: 'done',
        outcome: { status: 'failed', exitCode: failure.exitCode, error: failure.message, steps: this.steps },
      };
    }
    return { kind: 'done', outcome: { status: 'succeeded', exitCode: 0, steps: this.steps } };
  }

  private announce(plan: PipelinePlan): void {
    const names = plan.pipeline.steps.map((s) => s.name).join(', ');
    if (plan.detected) {
      this.log.system(
        `[raibid] no ${PIPELINE_FILE}; detected ${plan.source}, running steps: ${names} (add a ${PIPELINE_FILE} to choose the steps)`,
      );
    } else {
      const count = plan.pipeline.steps.length;
      this.log.system(
        `[raibid] pipeline ${plan.source}: ${count} step${count === 1 ? '' : 's'} (${names}), job timeout ${formatDuration(plan.pipeline.timeout)}`,
      );
    }
  }

  /** Maps what stopped `execute` to an outcome; infrastructure problems end the job `error`. */
  private failure(error: unknown): Execution {
    if (error instanceof RedisUnreachableError) return { kind: 'unrecorded', reason: error.message };
    if (error instanceof StopError || this.reason) return { kind: 'stopped' };
    let message: string;
    if (error instanceof CheckoutError) {
      for (const line of error.output) this.log.output('stderr', null, line);
      message = `could not check out the repository: ${error.message}`;
    } else if (error instanceof PipelineError) {
      for (const line of error.message.split('\n')) this.log.system(`[raibid] ${line}`);
      const [first, ...rest] = error.message.split('\n');
      message = `invalid pipeline file: ${first}${rest.length ? ` (and ${rest.length} more problem${rest.length === 1 ? '' : 's'}, see the log)` : ''}`;
    } else if (error instanceof PoolMismatchError) {
      message = error.message;
    } else if (error instanceof NoGpuError) {
      message = `this agent serves the gpu pool but cannot use a GPU: ${error.message}`;
    } else if (error instanceof NoPipelineError) {
      for (const line of error.example) this.log.system(`[raibid] ${line}`);
      message = error.message;
    } else {
      this.ctx.logger.error({ err: error, jobId: this.claimed.job.id }, 'job failed inside the agent');
      message = `agent error: ${error instanceof Error ? error.message : String(error)}`;
    }
    return { kind: 'done', outcome: { status: 'error', exitCode: null, error: message, steps: this.steps } };
  }

  /** Writes the final state (or hands the job back) after flushing the log, so followers see every line first. */
  private async conclude(execution: Exclude<Execution, { kind: 'unrecorded' }>): Promise<RunEnd> {
    const { queue, agentName } = this.ctx;
    const elapsed = formatElapsed(Date.now() - this.started);
    if (execution.kind === 'stopped') {
      switch (this.reason) {
        case 'lost':
          this.log.system(
            `[raibid] agent ${agentName} lost its hold on the job (its heartbeat lapsed and the job was given to another agent); stopping here`,
          );
          await this.redis(this.log.flush());
          return { kind: 'lost' };
        case 'shutdown': {
          this.log.system(
            `[raibid] agent ${agentName} is shutting down (${this.ctx.shutdownSignal()}); the job goes back to the queue for another agent`,
          );
          await this.redis(this.log.flush());
          const released = await this.redis(queue.release(this.claimed));
          return released ? { kind: 'released' } : { kind: 'lost' };
        }
        default:
          this.log.system('[raibid] job cancelled');
          execution = {
            kind: 'done',
            outcome: { status: 'cancelled', exitCode: null, error: null, steps: this.steps },
          };
      }
    }
    const { outcome } = execution;
    if (this.log.dropped > 0) {
      this.log.system(
        `[raibid] ${this.log.dropped} output lines were not stored: the job's log reached its limit`,
      );
    }
    if (outcome.status === 'succeeded') this.log.system(`[raibid] job succeeded in ${elapsed}`);
    else if (outcome.status === 'failed')
      this.log.system(`[raibid] job failed in ${elapsed}: ${outcome.error}`);
    else if (outcome.status === 'error') this.log.system(`[raibid] job error: ${outcome.error}`);
    await this.redis(this.log.flush());
    // An agent that goes on to another job claims it in the same call as this finish.
    const { job, next } = this.ctx.claimNext()
      ? await this.redis(queue.finishAndClaimNext(this.claimed, outcome))
      : { job: await this.redis(queue.finish(this.claimed, outcome)), next: null };
    return job ? { kind: 'finished', status: outcome.status, next } : { kind: 'lost' };
  }

  /** Records step progress; a refusal means the job is no longer ours. */
  private async recordSteps(): Promise<void> {
    if (!(await this.redis(this.ctx.queue.updateSteps(this.claimed, this.steps, this.sha))))
      this.stop('lost');
  }
}
