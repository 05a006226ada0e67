import { z } from 'zod';
import { DEFAULT_POOL, type Pool, poolSchema } from './pool.js';
import { refNameSchema, repoRefSchema, shaSchema } from './repo.js';
import { jobStatusSchema, stepStatusSchema } from './status.js';

export const TRIGGERS = ['api', 'push', 'tag', 'pull_request', 'retry'] as const;
export const triggerSchema = z.enum(TRIGGERS);
export type Trigger = z.infer<typeof triggerSchema>;

/** Attempts an agent may make before a job whose agents keep vanishing ends `error`. */
export const MAX_ATTEMPTS = 3;

const isoTime = z.iso.datetime();
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Environment variables a user adds to a job (API `env`, pipeline `env`). */
export const jobEnvSchema = z
  .record(
    z
      .string()
      .regex(ENV_NAME, 'environment variable names are letters, digits and "_", not starting with a digit'),
    z.string().max(32_768),
  )
  .refine((env) => Object.keys(env).length <= 100, 'at most 100 environment variables');

export const stepResultSchema = z.object({
  name: z.string(),
  status: stepStatusSchema,
  exitCode: z.number().int().nullable(),
  startedAt: isoTime.nullable(),
  finishedAt: isoTime.nullable(),
});
export type StepResult = z.infer<typeof stepResultSchema>;

/** A job as stored in Redis and returned by the API (CONTRACT.md, "Job"). */
export const jobSchema = z.object({
  id: z.string(),
  repo: repoRefSchema,
  ref: z.string(),
  sha: z.string().nullable(),
  trigger: triggerSchema,
  status: jobStatusSchema,
  attempts: z.number().int().nonnegative(),
  createdAt: isoTime,
  startedAt: isoTime.nullable(),
  finishedAt: isoTime.nullable(),
  exitCode: z.number().int().nullable(),
  error: z.string().nullable(),
  agent: z.string().nullable(),
  steps: z.array(stepResultSchema),
  retryOf: z.string().nullable(),
  /** The agent pool the job was routed to; records stored before pools existed are `cpu`. */
  pool: poolSchema.default(DEFAULT_POOL),
  env: z.record(z.string(), z.string()),
});
export type Job = z.infer<typeof jobSchema>;

/**
 * A job as the HTTP API shows it (CONTRACT.md, "Job"): the stored record without
 * `env`, whose values may be secrets while the read endpoints need no token.
 */
export const apiJobSchema = jobSchema.omit({ env: true });
export type ApiJob = z.infer<typeof apiJobSchema>;

export function toApiJob(job: Job): ApiJob {
  const { env: _env, ...shown } = job;
  return shown;
}

/** Body of `POST /api/v1/jobs`. Unknown fields are refused. */
export const jobRequestSchema = z.strictObject({
  repo: z.string().min(1).max(2_048),
  ref: refNameSchema.default('main'),
  sha: shaSchema.optional(),
  env: jobEnvSchema.optional(),
  /** Used when the server cannot read the pipeline file; a file that says otherwise is refused. */
  pool: poolSchema.optional(),
});
export type JobRequest = z.infer<typeof jobRequestSchema>;

/** What a new job needs besides the generated fields. */
export interface NewJob {
  repo: z.infer<typeof repoRefSchema>;
  ref: string;
  sha: string | null;
  trigger: Trigger;
  env?: Record<string, string>;
  retryOf?: string | null;
  pool?: Pool;
}

export const LOG_STREAMS = ['stdout', 'stderr', 'system'] as const;
export const logStreamSchema = z.enum(LOG_STREAMS);
export type LogStream = z.infer<typeof logStreamSchema>;

/** One log line (SSE event `log`). `seq` increases by one per line within a job. */
export const logEventSchema = z.object({
  seq: z.number().int().positive(),
  ts: isoTime,
  stream: logStreamSchema,
  step: z.string().nullable(),
  line: z.string(),
});
export type LogEvent = z.infer<typeof logEventSchema>;

/** Latest heartbeat of an agent. */
export const agentInfoSchema = z.object({
  name: z.string(),
  jobId: z.string().nullable(),
  lastSeen: isoTime,
  startedAt: isoTime,
  pid: z.number().int().nullable(),
  host: z.string().nullable(),
});
export type AgentInfo = z.infer<typeof agentInfoSchema>;
