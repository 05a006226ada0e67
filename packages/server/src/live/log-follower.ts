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
  /** Most characters of live lines held for a client that is behind; past it, Redis is read instead. */
  maxBufferedChars?: number;
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
 * Live lines come from the shared LiveFeed, already parsed. While the socket is full, or
 * a read from Redis is under way, the feed's batches wait here, up to `maxBufferedChars`;
 * a client further behind than that is served from Redis, which is the buffer. Whenever
 * something is missing (the client resumed from an old id, a batch starts past what was
 * sent, batches were let go) the follower reads the gap from the log stream itself and
 * continues from the last seq it sent. So nothing is lost, nothing is sent twice, and a
 * client that keeps up never has a line read from Redis a second time.
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
  /**
   * Redis must be read until it runs out before the waiting statuses are sent: the feed
   * may hand over a transition before the last lines written ahead of it.
   */
  private readToEnd = false;
  /** Lines the feed handed over that were not sent yet, in seq order (the first may leave a gap). */
  private live: LogEvent[] = [];
  private liveChars = 0;
  /** Lines after sentSeq are in Redis only (a read cut short, or held lines let go). */
  private unread = false;
  /** The socket buffer is full: stop sending until it drains (`_read`). */
  private paused = false;
  private finished = false;
  private unwatch: (() => void) | null = null;
  private keepAlive: NodeJS.Timeout | null = null;
  private linger: NodeJS.Timeout | null = null;

  constructor(options: LogFollowerOptions) {
    super({ highWaterMark: 64 * 1024 });
    this.options = {
      keepAliveMs: 15_000,
      lingerMs: 300,
      pageSize: 500,
      maxBufferedChars: 1024 * 1024,
      ...options,
    };
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
    void this.catchUp(true);
  }

  /** Ends the stream cleanly (server shutdown): the client reconnects with its Last-Event-ID. */
  close(): void {
    this.finish(null);
  }

  onLog(events: LogEvent[]): void {
    if (this.finished) return;
    const last = this.live[this.live.length - 1]?.seq ?? this.sentSeq;
    for (const event of events) {
      if (event.seq <= last) continue;
      this.live.push(event);
      this.liveChars += event.line.length;
      this.unread = false; // what is missing before the held lines is a gap, read when reached
    }
    if (this.liveChars > this.options.maxBufferedChars) {
      // Too far behind to hold: let the lines go, and read them from Redis when the client drains.
      this.live = [];
      this.liveChars = 0;
      this.unread = true;
    }
    if (!this.catchingUp && !this.paused) this.sendLive();
  }

  /** Sends held lines while they follow on from what was sent; reads Redis for what is missing. */
  private sendLive(): void {
    while (!this.paused && !this.finished) {
      const event = this.live[0];
      if (event === undefined) break;
      if (event.seq > this.sentSeq + 1) {
        void this.catchUp(false);
        return;
      }
      this.live.shift();
      this.liveChars -= event.line.length;
      if (event.seq > this.sentSeq) this.sendLog(event);
    }
    if (!this.paused && (this.unread || this.readToEnd)) void this.catchUp(false);
  }

  onEvent(event: JobEvent): void {
    if (this.finished || this.phase !== 'live' || !isTransition(event) || this.finalPending()) return;
    const queued = this.pendingStatuses[this.pendingStatuses.length - 1]?.status ?? this.lastStatus;
    if (event.job.status === queued) return;
    this.pendingStatuses.push(event.job);
    // Send every line written before this transition first.
    void this.catchUp(true);
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
    void this.catchUp(true);
  }

  override _read(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.catchingUp) this.catchUpAgain = true;
    else this.sendLive();
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

  /**
   * Reads the lines after sentSeq from Redis: until it runs out when `toEnd` (then the waiting
   * statuses follow), else only until the held live lines follow on.
   */
  private async catchUp(toEnd: boolean): Promise<void> {
    if (this.finished) return;
    if (toEnd) this.readToEnd = true;
    if (this.catchingUp) {
      this.catchUpAgain = true;
      return;
    }
    this.catchingUp = true;
    try {
      for (;;) {
        this.catchUpAgain = false;
        if (this.paused) return; // resumed by _read
        const next = this.live[0]?.seq;
        if (!this.readToEnd && (next === undefined ? !this.unread : next <= this.sentSeq + 1)) break;
        const gap = next === undefined || this.readToEnd ? Number.POSITIVE_INFINITY : next - this.sentSeq - 1;
        const wanted = Math.min(gap, this.options.pageSize);
        const before = this.sentSeq;
        const page = await this.options.logs.read(this.options.jobId, this.sentSeq, wanted);
        if (this.finished) return;
        let cut = false;
        for (const event of page) {
          if (event.seq <= this.sentSeq) continue;
          if (!this.sendLog(event)) {
            cut = true;
            break;
          }
        }
        if (cut) {
          this.unread = true;
          continue; // paused now: the loop returns, _read resumes
        }
        if (page.length < wanted) {
          // Redis has nothing more right now (or only unreadable entries up to the held lines).
          this.unread = false;
          if (next !== undefined && this.sentSeq === before && gap !== Number.POSITIVE_INFINITY) {
            this.sentSeq = next - 1; // seqs missing from Redis: do not ask again
          }
          if (this.readToEnd && !this.catchUpAgain) {
            this.readToEnd = false;
            break;
          }
        }
      }
    } catch (error) {
      this.options.logger.error({ err: error, jobId: this.options.jobId }, 'log follow: read failed');
      this.destroy(error instanceof Error ? error : new Error(String(error)));
      return;
    } finally {
      this.catchingUp = false;
    }
    if (!this.readToEnd) this.flushStatuses();
    this.sendLive();
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
          void this.catchUp(true);
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
