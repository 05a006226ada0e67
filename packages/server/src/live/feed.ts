import {
  BadEventError,
  EVENTS_STREAM,
  type JobEvent,
  type LogEvent,
  type LogStore,
  logKey,
  parseJobEvent,
} from '@raibid/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** Receives what happens to one job while someone follows it. */
export interface JobWatcher {
  /** New log lines, in order (a batch may overlap or skip what the watcher already has). */
  onLog(events: LogEvent[]): void;
  /** Every write of the job record. */
  onEvent(event: JobEvent): void;
}

interface Channel {
  jobId: string;
  key: string;
  watchers: Set<JobWatcher>;
  /** Seq of the last log entry read for this job; null until known. */
  position: number | null;
}

export interface LiveFeedOptions {
  /** A connection of its own: the feed keeps it blocked in XREAD, and closes it on stop. */
  reader: Redis;
  /** A shared, non-blocking connection (position look-ups, waking the reader). */
  control: Redis;
  logs: LogStore;
  logger: Logger;
  /** Longest time one XREAD blocks. */
  blockMs?: number;
  /** Most entries read per stream per XREAD. */
  batch?: number;
}

type XReadReply = [string, [string, string[]][]][] | null;

/**
 * The one Redis reader behind everything live: a single blocking XREAD over
 * `raibid:events` and the log streams of every job someone follows. However many
 * SSE clients follow however many jobs, this is one connection; each followed
 * job is read once and fanned out to its watchers.
 */
export class LiveFeed {
  private readonly channels = new Map<string, Channel>();
  private readonly eventListeners = new Set<(event: JobEvent) => void>();
  private readonly blockMs: number;
  private readonly batch: number;
  private eventsPosition: string | null = null;
  private readerId: number | null = null;
  private loop: Promise<void> | null = null;
  private stopped = false;
  /** Settles on stop(): a read stuck on a connection that will never come back is abandoned. */
  private readonly stopping: Promise<null>;
  private signalStop: () => void = () => {};
  private wakeTimer: NodeJS.Timeout | null = null;
  private readonly onReaderReady = (): void => {
    this.refreshReaderId();
  };

  constructor(private readonly options: LiveFeedOptions) {
    this.blockMs = options.blockMs ?? 5_000;
    this.batch = options.batch ?? 500;
    this.stopping = new Promise((resolve) => {
      this.signalStop = () => resolve(null);
    });
  }

  /** Starts reading (in the background; Redis being down is retried, not thrown). */
  start(): void {
    if (this.loop) return;
    this.options.reader.on('ready', this.onReaderReady);
    this.refreshReaderId();
    this.loop = this.run();
  }

  /** Stops reading and closes the reader connection. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.signalStop();
    this.options.reader.off('ready', this.onReaderReady);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.options.reader.disconnect();
    await this.loop;
  }

  /** Calls `listener` for every job write from now on (metrics). */
  onJobEvent(listener: (event: JobEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** Starts delivering a job's log lines and record writes to `watcher`; returns the unsubscribe. */
  watch(jobId: string, watcher: JobWatcher): () => void {
    let channel = this.channels.get(jobId);
    if (!channel) {
      const created: Channel = { jobId, key: logKey(jobId), watchers: new Set(), position: null };
      channel = created;
      this.channels.set(jobId, created);
      void this.locate(created);
    }
    channel.watchers.add(watcher);
    const owner = channel;
    return () => {
      owner.watchers.delete(watcher);
      if (owner.watchers.size === 0 && this.channels.get(jobId) === owner) this.channels.delete(jobId);
    };
  }

  /** Number of jobs being read (tests and metrics). */
  get followedJobs(): number {
    return this.channels.size;
  }

  /** Finds where a new channel's log currently ends, then lets the reader include it. */
  private async locate(channel: Channel): Promise<void> {
    try {
      const last = await this.options.control.xrevrange(channel.key, '+', '-', 'COUNT', 1);
      channel.position = last[0] ? Number(last[0][0].split('-')[0]) : 0;
    } catch (error) {
      // Watchers catch up from the store anyway; reading from the start only costs a re-read.
      this.options.logger.warn({ err: error, jobId: channel.jobId }, 'live feed: cannot locate log end');
      channel.position = 0;
    }
    this.scheduleWake();
  }

  /** Wakes the reader soon, once for a burst of new channels. */
  private scheduleWake(): void {
    if (this.wakeTimer || this.stopped) return;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      void this.wake();
    }, 5);
  }

  /** Interrupts the blocking XREAD so the next one includes new channels (or sees `stopped`). */
  private async wake(): Promise<void> {
    if (this.readerId === null) return;
    try {
      await this.options.control.client('UNBLOCK', this.readerId);
    } catch (error) {
      // Only latency is lost: the XREAD times out on its own after blockMs.
      this.options.logger.debug({ err: error }, 'live feed: cannot unblock reader');
    }
  }

  private refreshReaderId(): void {
    this.options.reader
      .client('ID')
      .then((id) => {
        this.readerId = Number(id);
      })
      .catch((error: unknown) => {
        if (!this.stopped) this.options.logger.debug({ err: error }, 'live feed: cannot read client id');
      });
  }

  private async run(): Promise<void> {
    const { reader, logger } = this.options;
    while (!this.stopped) {
      try {
        if (this.eventsPosition === null) {
          const last = await this.untilStopped(
            this.options.control.xrevrange(EVENTS_STREAM, '+', '-', 'COUNT', 1),
          );
          if (last === null) break;
          this.eventsPosition = last[0]?.[0] ?? '0-0';
        }
        const channels = [...this.channels.values()].filter((c) => c.position !== null);
        const keys = [EVENTS_STREAM, ...channels.map((c) => c.key)];
        const ids = [this.eventsPosition, ...channels.map((c) => `${c.position}-0`)];
        const jobOfKey = new Map(channels.map((c) => [c.key, c.jobId]));
        const reply = (await this.untilStopped(
          reader.xread('COUNT', this.batch, 'BLOCK', this.blockMs, 'STREAMS', ...keys, ...ids),
        )) as XReadReply;
        if (this.stopped) break;
        if (reply) this.dispatch(reply, jobOfKey);
      } catch (error) {
        if (this.stopped) break;
        logger.error({ err: error }, 'live feed: read failed; retrying in 1 s');
        await this.untilStopped(new Promise((resolve) => setTimeout(resolve, 1_000)));
      }
    }
  }

  /**
   * The command's result, or null once stop() is called. ioredis leaves a command queued
   * for a connection that is disconnected while reconnecting: it would never settle.
   */
  private untilStopped<T>(work: Promise<T>): Promise<T | null> {
    work.catch(() => {}); // after stop nobody waits for it; before, the race below rethrows
    return Promise.race([work, this.stopping]);
  }

  /** Log lines first, then job writes: a final status must never overtake its last lines. */
  private dispatch(reply: NonNullable<XReadReply>, jobOfKey: Map<string, string>): void {
    let events: [string, string[]][] = [];
    for (const [key, entries] of reply) {
      if (key === EVENTS_STREAM) {
        events = entries;
        continue;
      }
      const jobId = jobOfKey.get(key);
      // The current channel: it may have been dropped, or replaced, while XREAD waited.
      const channel = jobId === undefined ? undefined : this.channels.get(jobId);
      if (!channel || entries.length === 0) continue;
      const lines: LogEvent[] = [];
      for (const [id, fields] of entries) {
        const line = this.options.logs.parseEntry(channel.jobId, id, fields);
        if (line) lines.push(line);
      }
      const last = Number(entries[entries.length - 1]![0].split('-')[0]);
      channel.position = Math.max(channel.position ?? 0, last);
      if (lines.length > 0)
        for (const watcher of [...channel.watchers]) this.deliver(() => watcher.onLog(lines));
    }
    for (const [id, fields] of events) {
      this.eventsPosition = id;
      let event: JobEvent;
      try {
        event = parseJobEvent(id, fields);
      } catch (error) {
        if (!(error instanceof BadEventError)) throw error;
        this.options.logger.warn({ err: error }, 'live feed: malformed job event skipped');
        continue;
      }
      for (const listener of [...this.eventListeners]) this.deliver(() => listener(event));
      const channel = this.channels.get(event.job.id);
      if (channel) for (const watcher of [...channel.watchers]) this.deliver(() => watcher.onEvent(event));
    }
  }

  /** One failing subscriber must not stop the feed for everyone else. */
  private deliver(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.options.logger.error({ err: error }, 'live feed: subscriber failed');
    }
  }
}
