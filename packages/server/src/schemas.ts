// HTTP edge schemas: what the API accepts and returns. The OpenAPI document at
// /docs is generated from these same zod schemas.
import {
  agentInfoSchema,
  apiJobSchema as apiJobRecordSchema,
  JOB_ID_PATTERN,
  JOB_STATUSES,
  jobRequestSchema,
  logEventSchema,
  POOLS,
} from '@raibid/common';
import { z } from 'zod';

/** The API's job, named for the OpenAPI document. */
export const apiJobSchema = apiJobRecordSchema.meta({ id: 'Job' });

export const createJobBodySchema = jobRequestSchema.meta({ id: 'JobRequest' });

/** Job ids are lowercase ULIDs; an upper-case paste is accepted. */
export const jobIdSchema = z
  .string()
  .max(64)
  .transform((id) => id.toLowerCase())
  .pipe(z.string().regex(JOB_ID_PATTERN, 'is not a job id (26 characters, as returned by the API)'));

export const jobParamsSchema = z.strictObject({ id: jobIdSchema });

export const listJobsQuerySchema = z.strictObject({
  status: z.enum(JOB_STATUSES).optional(),
  repo: z
    .string()
    .regex(/^[A-Za-z0-9_.][A-Za-z0-9_.-]*\/[A-Za-z0-9_.][A-Za-z0-9_.-]*$/, 'must be "owner/name"')
    .max(201)
    .optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: jobIdSchema.optional(),
});

export const jobPageSchema = z.object({ jobs: z.array(apiJobSchema), nextCursor: z.string().nullable() });

const flagSchema = z.enum(['1', 'true', '0', 'false']).transform((v) => v === '1' || v === 'true');

export const logsQuerySchema = z.strictObject({
  follow: flagSchema.optional(),
});

/** SSE resume point: the `seq` of the last `log` event the client saw. */
export const logsHeadersSchema = z.object({
  'last-event-id': z
    .string()
    .regex(/^\d{1,15}$/, 'must be the id of a log event (a number)')
    .transform(Number)
    .optional(),
});

export const sseLogEventSchema = logEventSchema.meta({ id: 'LogEvent' });

export const queueStatsSchema = z.object({
  lag: z.number().int().describe('jobs in the stream not yet delivered to an agent (KEDA scales on this)'),
  pending: z.number().int().describe('entries delivered to an agent and not yet finished'),
  running: z.number().int().describe('jobs in status running'),
  agents: z.number().int().describe('agents that sent a heartbeat within the lease'),
  pools: z
    .record(
      z.enum(POOLS),
      z.object({
        lag: z.number().int().describe("jobs in the pool's stream not yet delivered to an agent"),
        pending: z.number().int().describe('entries delivered to an agent of the pool and not yet finished'),
        unavailable: z
          .string()
          .nullable()
          .describe(
            'why no agent of this pool can start here (e.g. "no GPU agent on this machine"), or null',
          ),
      }),
    )
    .describe("per pool (`lag` and `pending` above are the cpu pool's)"),
});

export const kubeAgentsSchema = z.object({
  namespace: z.string(),
  jobs: z.array(
    z.object({
      name: z.string(),
      active: z.number().int(),
      succeeded: z.number().int(),
      failed: z.number().int(),
      startedAt: z.string().nullable(),
      completedAt: z.string().nullable(),
    }),
  ),
  pods: z.array(
    z.object({
      name: z.string(),
      job: z.string().nullable(),
      phase: z.string(),
      node: z.string().nullable(),
      startedAt: z.string().nullable(),
    }),
  ),
});
export type KubeAgentsView = z.infer<typeof kubeAgentsSchema>;

export const agentsSchema = z.object({
  agents: z.array(agentInfoSchema.meta({ id: 'Agent' })),
  kubernetes: kubeAgentsSchema
    .optional()
    .describe('agent Jobs and pods in the server namespace; absent outside a cluster'),
});
