import { Readable } from 'node:stream';
import {
  isFinalStatus,
  isTransition,
  type Job,
  type JobEvent,
  type JobStore,
  type LogEvent,
  type LogStore,
  toApiJob,
} from '@raibid/common';
import type { FastifyBaseLogger } from 'fastify';
import type { JobWatcher, LiveFeed } from './feed.js';

export interface LogFollowerOptions {
  jobId: string;
  /** The job as it was when the request came in. */
  job: Job;
  /** Send log events with seq greater than this (`Last-Event-ID`). */
  afterSeq: number;
  feed: LiveFeed;
  logs: LogStore;
  store: JobStore;
  logger: FastifyBaseLogger;
  /** Comment line sent this often so proxies keep the connection open. */
  keepAliveMs?: number;
  /**
   * After the final status, keep following this long before `end`: notices
   * written right after a job ends (the reaper's "agent lost") still reach the client.
   */
  lingerMs?: number;
  /** Lines read from Redis per catch-up round. */
  pageSize?: number;
}

/** The `data` of the SSE `end` event. */
export interface EndEventData {
  status: Job['status'];
}

/** One SSE event in wire format. `id` only on log events, so `Last-Event-ID` is always a log seq. */
export function formatSseEvent(event: string, data: unknown, id?: number): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * One SSE client following one job's log, as a byte stream fastify pipes to the socket.
 *
 * Redis is the buffer: this never holds more than one batch. Live lines come from the
 * shared LiveFeed; whenever something is missing (the client resumed from an old id,
 * the feed's batch starts past what was sent, the client was too slow and the socket
 * buffer filled) the follower reads the gap from the log stream itself and continues
 * from the last seq it sent. So nothing is lost and nothing is sent twice.
 */
export class LogFollower extends Readable implements JobWatcher {
  private readonly options: Required<Omit<LogFollowerOptions, 'job'>>;
  private sentSeq: number;
  private lastStatus: Job['status'];
  /** Status events waiting until the lines written before them have been sent. */
  private readonly pendingStatuses: Job[] = [];
  private finalJob: Job | null = null;
  /** live → (final status sent) lingering → (linger over) ending → end sent. */
  private phase: 'live' | 'lingering' | 'ending' = 'live';
  private catchingUp = false;
  private catchUpAgain = false;
  /** The socket buffer is full: stop sending until it drains (`_read`). */
  private paused = false;
  private finished = false;
  private unwatch: (() => void) | null = null;
  private keepAlive: NodeJS.Timeout | null = null;
  private linger: NodeJS.Timeout | null = null;

  constructor(options: LogFollowerOptions) {
    super({ highWaterMark: 64 * 1024 });
    this.options = { keepAliveMs: 15_000, lingerMs: 300, pageSize: 500, ...options };
    this.sentSeq = options.afterSeq;
    this.lastStatus = options.job.status;
    // Start with the client's reconnect delay and the job's current state.
    this.push(`retry: 2000\n\n`);
    this.push(formatSseEvent('status', toApiJob(options.job)));
    if (isFinalStatus(options.job.status)) {
      this.finalJob = options.job;
      this.phase = 'ending';
    } else {
      this.unwatch = options.feed.watch(options.jobId, this);
      void this.recheck();
    }
    this.keepAlive = setInterval(() => {
      if (!this.paused && !this.finished) this.push(': keep-alive\n\n');
    }, this.options.keepAliveMs);
    this.keepAlive.unref();
    void this.catchUp();
  }

  /** Ends the stream cleanly (server shutdown): the client reconnects with its Last-Event-ID. */
  close(): void {
    this.finish(null);
  }

  onLog(events: LogEvent[]): void {
    if (this.finished) return;
    if (this.catchingUp) {
      this.catchUpAgain = true;
      return;
    }
    if (this.paused) return; // read from Redis once the client drains
    if (events[0]!.seq > this.sentSeq + 1) {
      void this.catchUp();
      return;
    }
    for (const event of events) {
      if (event.seq <= this.sentSeq) continue;
      if (!this.sendLog(event)) return;
    }
  }

  onEvent(event: JobEvent): void {
    if (this.finished || this.phase !== 'live' || !isTransition(event) || this.finalPending()) return;
    const queued = this.pendingStatuses[this.pendingStatuses.length - 1]?.status ?? this.lastStatus;
    if (event.job.status === queued) return;
    this.pendingStatuses.push(event.job);
    // Send every line written before this transition first.
    void this.catchUp();
  }

  private finalPending(): boolean {
    return this.pendingStatuses.some((job) => isFinalStatus(job.status));
  }

  /**
   * The job was read before this follower was watching: if it ended in between, the feed
   * will not say so, and the stream would never end. Read it again now that we watch.
   */
  private async recheck(): Promise<void> {
    let job: Job | null;
    try {
      job = await this.options.store.get(this.options.jobId);
    } catch (error) {
      this.options.logger.error({ err: error, jobId: this.options.jobId }, 'log follow: cannot re-read job');
      return;
    }
    if (!job || !isFinalStatus(job.status) || this.phase !== 'live' || this.finalPending()) return;
    this.pendingStatuses.push(job);
    void this.catchUp();
  }

  override _read(): void {
    if (!this.paused) return;
    this.paused = false;
    void this.catchUp();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.finished = true;
    this.stopWatching();
    callback(error);
  }

  private sendLog(event: LogEvent): boolean {
    this.sentSeq = event.seq;
    const fits = this.push(formatSseEvent('log', event, event.seq));
    if (!fits) this.paused = true;
    return fits;
  }

  /** Reads from Redis until it has sent everything written so far, then the waiting statuses. */
  private async catchUp(): Promise<void> {
    if (this.finished) return;
    if (this.catchingUp) {
      this.catchUpAgain = true;
      return;
    }
    this.catchingUp = true;
    try {
      for (;;) {
        this.catchUpAgain = false;
        const page = await this.options.logs.read(this.options.jobId, this.sentSeq, this.options.pageSize);
        if (this.finished) return;
        for (const event of page) {
          if (event.seq <= this.sentSeq) continue;
          if (!this.sendLog(event)) return; // resumed by _read
        }
        if (page.length < this.options.pageSize && !this.catchUpAgain) break;
      }
    } catch (error) {
      this.options.logger.error({ err: error, jobId: this.options.jobId }, 'log follow: read failed');
      this.destroy(error instanceof Error ? error : new Error(String(error)));
      return;
    } finally {
      this.catchingUp = false;
    }
    this.flushStatuses();
  }

  private flushStatuses(): void {
    while (this.pendingStatuses.length > 0 && this.phase === 'live') {
      const job = this.pendingStatuses.shift()!;
      this.lastStatus = job.status;
      this.push(formatSseEvent('status', toApiJob(job)));
      if (isFinalStatus(job.status)) {
        this.finalJob = job;
        this.phase = 'lingering';
        this.linger = setTimeout(() => {
          this.phase = 'ending';
          void this.catchUp();
        }, this.options.lingerMs);
      }
    }
    if (this.phase === 'ending' && this.finalJob) this.finish(this.finalJob);
  }

  private finish(job: Job | null): void {
    if (this.finished) return;
    this.finished = true;
    this.stopWatching();
    if (job) {
      const end: EndEventData = { status: job.status };
      this.push(formatSseEvent('end', end));
    }
    this.push(null);
  }

  private stopWatching(): void {
    this.unwatch?.();
    this.unwatch = null;
    if (this.keepAlive) clearInterval(this.keepAlive);
    if (this.linger) clearTimeout(this.linger);
  }
}
