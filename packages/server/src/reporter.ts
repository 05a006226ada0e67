import {
  BadEventError,
  EVENTS_STREAM,
  ensureEventsGroup,
  isTransition,
  type JobEvent,
  parseJobEvent,
  REPORTER_GROUP,
} from '@raibid/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { type CommitStatusClient, commitStatusFor } from './gitea/commit-status.js';

export interface StatusReporterOptions {
  /** A connection of its own (XREADGROUP blocks it); closed on stop. */
  redis: Redis;
  client: CommitStatusClient;
  publicUrl: string;
  logger: Logger;
  /** Consumer name in the `raibid-reporter` group (default: the host name). */
  consumer: string;
  /** Entries per read (default 50). */
  batch?: number;
  blockMs?: number;
  /** Entries another consumer left pending this long are taken over (default 60 s). */
  claimIdleMs?: number;
}

export interface StatusReporter {
  /** Stops reading; unfinished posts are left pending and redone on the next start. */
  stop(): Promise<void>;
}

type Entry = [string, string[] | null];
type GroupReply = [string, Entry[]][] | null;

/**
 * Posts a Gitea commit status for every job transition. It reads `raibid:events`
 * with its own consumer group and ACKs an entry only after its status was posted
 * (or given up on), so a restart or crash loses nothing. Statuses of one job are
 * posted in order; different jobs in parallel. Jobs never wait on any of this.
 */
export function startStatusReporter(options: StatusReporterOptions): StatusReporter {
  const { redis, logger, consumer } = options;
  const batch = options.batch ?? 50;
  const blockMs = options.blockMs ?? 5_000;
  const claimIdleMs = options.claimIdleMs ?? 60_000;
  const abort = new AbortController();
  const stopped = new Promise<null>((resolve) => abort.signal.addEventListener('abort', () => resolve(null)));

  /**
   * The command's result, or null once stopped: ioredis leaves a command queued for a
   * connection that is disconnected while reconnecting, and it would never settle.
   */
  function untilStopped<T>(work: Promise<T>): Promise<T | null> {
    work.catch(() => {}); // after stop nobody waits for it; before, the race rethrows
    return Promise.race([work, stopped]);
  }

  async function report(event: JobEvent): Promise<void> {
    const { job } = event;
    if (!isTransition(event) || job.sha === null) return;
    await options.client.post(job, job.sha, commitStatusFor(job, options.publicUrl), abort.signal);
  }

  /** Posts a batch (per job in order), then ACKs what was handled. */
  async function handle(entries: Entry[]): Promise<void> {
    const byJob = new Map<string, JobEvent[]>();
    const done: string[] = [];
    for (const [id, fields] of entries) {
      if (fields === null) {
        done.push(id); // trimmed away before we got to it
        continue;
      }
      try {
        const event = parseJobEvent(id, fields);
        const list = byJob.get(event.job.id) ?? [];
        list.push(event);
        byJob.set(event.job.id, list);
      } catch (error) {
        if (!(error instanceof BadEventError)) throw error;
        logger.warn({ err: error }, 'status reporter: malformed event skipped');
        done.push(id);
      }
    }
    await Promise.all(
      [...byJob.values()].map(async (events) => {
        for (const event of events) {
          await report(event);
          if (abort.signal.aborted) return; // leave it pending for the next start
          done.push(event.id);
        }
      }),
    );
    if (done.length > 0) await untilStopped(redis.xack(EVENTS_STREAM, REPORTER_GROUP, ...done));
  }

  async function read(id: '0' | '>'): Promise<Entry[]> {
    // Our own pending entries come back at once; new ones are waited for.
    const command =
      id === '0'
        ? redis.xreadgroup('GROUP', REPORTER_GROUP, consumer, 'COUNT', batch, 'STREAMS', EVENTS_STREAM, id)
        : redis.xreadgroup(
            'GROUP',
            REPORTER_GROUP,
            consumer,
            'COUNT',
            batch,
            'BLOCK',
            blockMs,
            'STREAMS',
            EVENTS_STREAM,
            id,
          );
    const reply = (await untilStopped(command)) as GroupReply;
    return reply?.[0]?.[1] ?? [];
  }

  /** Takes over entries a previous consumer (an earlier pod) never finished. */
  async function adoptOrphans(): Promise<void> {
    let cursor = '0-0';
    do {
      if (abort.signal.aborted) return;
      const [next] = (await redis.xautoclaim(
        EVENTS_STREAM,
        REPORTER_GROUP,
        consumer,
        claimIdleMs,
        cursor,
        'COUNT',
        100,
        'JUSTID',
      )) as [string, string[]];
      cursor = next;
    } while (cursor !== '0-0');
  }

  async function run(): Promise<void> {
    let setUp = false;
    while (!abort.signal.aborted) {
      try {
        if (!setUp) {
          await untilStopped(ensureEventsGroup(redis, REPORTER_GROUP));
          await untilStopped(adoptOrphans());
          if (abort.signal.aborted) return;
          // Our own unfinished entries first (from before a restart), then new ones.
          for (let pending = await read('0'); pending.length > 0; pending = await read('0')) {
            await handle(pending);
            if (abort.signal.aborted) return;
          }
          setUp = true;
        }
        const entries = await read('>');
        if (abort.signal.aborted) return;
        if (entries.length > 0) await handle(entries);
      } catch (error) {
        if (abort.signal.aborted) return;
        // The group is gone (Redis came back empty): set up again, which creates it.
        if (isGroupGone(error)) setUp = false;
        logger.error({ err: error }, 'status reporter: read failed; retrying in 1 s');
        await untilStopped(new Promise((resolve) => setTimeout(resolve, 1_000)));
      }
    }
  }

  const loop = run();
  return {
    async stop() {
      abort.abort();
      redis.disconnect();
      await loop;
    },
  };
}

/** NOGROUP, or UNBLOCKED when the stream was deleted under a blocked read. */
function isGroupGone(error: unknown): boolean {
  return error instanceof Error && /^(NOGROUP|UNBLOCKED)/.test(error.message);
}
