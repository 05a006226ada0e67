import type { Redis } from 'ioredis';
import { z } from 'zod';
import { type Job, jobSchema } from './job.js';
import { EVENTS_STREAM } from './keys.js';
import { fieldsToObject } from './redis.js';
import { jobStatusSchema } from './status.js';

/** One write of a job record, as appended to `raibid:events` by JobStore. */
export interface JobEvent {
  /** Stream entry id; resume reading after it. */
  id: string;
  /** Status before the write; null when the job was created. */
  from: z.infer<typeof jobStatusSchema> | null;
  job: Job;
}

const eventFieldsSchema = z.object({
  jobId: z.string(),
  from: z.union([z.literal(''), jobStatusSchema]),
  status: jobStatusSchema,
  job: z.string(),
});

export class BadEventError extends Error {
  override name = 'BadEventError';
}

/** Parses an entry of `raibid:events`. Throws BadEventError for a malformed one. */
export function parseJobEvent(id: string, fields: string[]): JobEvent {
  const raw = eventFieldsSchema.safeParse(fieldsToObject(fields));
  if (!raw.success) throw new BadEventError(`event ${id}: ${raw.error.issues[0]?.message}`);
  let job: unknown;
  try {
    job = JSON.parse(raw.data.job);
  } catch {
    throw new BadEventError(`event ${id}: job is not JSON`);
  }
  const parsed = jobSchema.safeParse(job);
  if (!parsed.success) throw new BadEventError(`event ${id}: job ${parsed.error.issues[0]?.message}`);
  return { id, from: raw.data.from === '' ? null : raw.data.from, job: parsed.data };
}

/** Whether an event is a status change (creation counts: it is the first `queued`). */
export function isTransition(event: JobEvent): boolean {
  return event.from !== event.job.status;
}

/** Creates a consumer group on the events stream (from its start); no error if it exists. */
export async function ensureEventsGroup(redis: Redis, group: string): Promise<void> {
  try {
    await redis.xgroup('CREATE', EVENTS_STREAM, group, '0', 'MKSTREAM');
  } catch (error) {
    if (!(error instanceof Error && error.message.includes('BUSYGROUP'))) throw error;
  }
}
