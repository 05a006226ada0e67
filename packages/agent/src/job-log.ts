import type { LogLine, LogStore, LogStream } from '@raibid/common';

export interface JobLogOptions {
  logs: LogStore;
  jobId: string;
  /** Most lines in one write; more lines waiting go out in further writes, in order. */
  maxBatch?: number;
  /** Least time between the starts of two writes (a full batch does not wait for it). */
  minWriteIntervalMs?: number;
  /**
   * Most characters of output held while Redis is unreachable (writes wait for it);
   * output beyond is not stored, and a notice in the log says how many lines.
   */
  maxBufferedChars?: number;
  /**
   * A write that failed: the lines are lost, the job goes on, and the next write that
   * succeeds starts with a notice saying how many were lost.
   */
  onError: (error: unknown, lines: number) => void;
}

const DEFAULT_MAX_BUFFERED_CHARS = 4 * 1024 * 1024;
const DEFAULT_MIN_WRITE_INTERVAL_MS = 10;

/**
 * A job's log as the agent writes it. A line is written as soon as no write is in flight
 * (the lines of one turn of the event loop go together), and at most every
 * `minWriteIntervalMs`; lines added while a write is in flight wait for it and go out
 * together when it ends, up to `maxBatch` per write, in order. So a quiet log reaches
 * followers within one Redis round trip, and a busy one costs a Redis call per round trip
 * or per interval, whichever is longer, rather than one per line.
 * Masking and the size cap are applied by the LogStore; once it reports the cap reached,
 * further output lines are dropped here already. While Redis is unreachable the writes wait
 * for it and lines queue up behind them, up to `maxBufferedChars`.
 */
export class JobLog {
  private readonly maxBatch: number;
  private readonly maxBufferedChars: number;
  private readonly minWriteIntervalMs: number;
  /** Lines added and not yet handed to a write, oldest first. */
  private batch: LogLine[] = [];
  /** Characters of lines added and not yet written (or given up on). */
  private bufferedChars = 0;
  /** Output lines not kept because the buffer was full, not yet mentioned in the log. */
  private overflowed = 0;
  /** The write of the lines waiting, when it is due: after this callback, or after the interval. */
  private due: { cancel(): void } | null = null;
  /** When (performance.now()) the last write was handed over. */
  private lastWriteAt = Number.NEGATIVE_INFINITY;
  /** Writes handed over and not finished; they run one at a time, in order. */
  private writesPending = 0;
  private writing: Promise<void> = Promise.resolve();
  private capReached = false;
  /** Output lines not stored because of the cap. */
  dropped = 0;
  /** Lines whose write failed and that the log does not mention yet. */
  private lost = 0;

  constructor(private readonly options: JobLogOptions) {
    this.maxBatch = options.maxBatch ?? 500;
    this.maxBufferedChars = options.maxBufferedChars ?? DEFAULT_MAX_BUFFERED_CHARS;
    this.minWriteIntervalMs = options.minWriteIntervalMs ?? DEFAULT_MIN_WRITE_INTERVAL_MS;
  }

  get truncated(): boolean {
    return this.capReached;
  }

  /** One of raibid's own notices (never dropped by the cap). */
  system(line: string, step: string | null = null): void {
    this.add({ stream: 'system', step, line });
  }

  output(stream: Exclude<LogStream, 'system'>, step: string | null, line: string): void {
    if (this.capReached) {
      this.dropped++;
      return;
    }
    if (this.bufferedChars + line.length > this.maxBufferedChars) {
      this.overflowed++;
      return;
    }
    this.add({ stream, step, line });
  }

  /** Marks where output was not kept, with how many lines. */
  private noteOverflow(): void {
    if (this.overflowed === 0) return;
    const count = this.overflowed;
    this.overflowed = 0;
    this.add({
      stream: 'system',
      step: null,
      line: `[raibid] ${count} output line(s) here were not stored: Redis was unreachable and the agent's buffer was full`,
    });
  }

  private add(entry: LogLine): void {
    this.noteOverflow(); // before the first line kept after the buffer was full
    this.bufferedChars += entry.line.length;
    this.batch.push({ ...entry, ts: new Date().toISOString() });
    if (this.batch.length >= this.maxBatch) this.writeWaiting();
    else if (this.writesPending === 0) this.scheduleWrite();
    // Otherwise a write is in flight, and when it ends it writes these lines.
  }

  /**
   * Writes the lines waiting after this callback (a chunk of output arrives as many lines
   * in one callback), or, within `minWriteIntervalMs` of the last write, once that has passed:
   * a program printing line by line would otherwise cost a Redis call per line.
   */
  private scheduleWrite(): void {
    if (this.due) return;
    const wait = this.lastWriteAt + this.minWriteIntervalMs - performance.now();
    if (wait <= 0) {
      const immediate = setImmediate(() => this.writeWaiting());
      this.due = { cancel: () => clearImmediate(immediate) };
    } else {
      const timer = setTimeout(() => this.writeWaiting(), wait);
      this.due = { cancel: () => clearTimeout(timer) };
    }
  }

  /** Writes everything added so far; resolves when it is stored. */
  flush(): Promise<void> {
    this.writeWaiting();
    return this.writing;
  }

  /** Hands the lines waiting to a write, behind the one in flight. */
  private writeWaiting(): void {
    this.due?.cancel();
    this.due = null;
    this.noteOverflow();
    if (this.batch.length === 0) return;
    const lines = this.batch;
    const chars = lines.reduce((sum, entry) => sum + entry.line.length, 0);
    this.batch = [];
    this.lastWriteAt = performance.now();
    this.writesPending++;
    this.writing = this.writing.then(async () => {
      const notice: LogLine[] =
        this.lost === 0
          ? []
          : [
              {
                stream: 'system',
                step: null,
                line: `[raibid] ${this.lost} log line(s) before this one could not be stored: Redis was unreachable`,
                ts: new Date().toISOString(),
              },
            ];
      try {
        const { dropped } = await this.options.logs.append(this.options.jobId, [...notice, ...lines]);
        this.lost = 0;
        if (dropped > 0) {
          this.capReached = true;
          this.dropped += dropped;
        }
      } catch (error) {
        this.lost += lines.length;
        this.options.onError(error, lines.length);
      } finally {
        this.bufferedChars -= chars;
        this.writesPending--;
      }
      // The lines that waited for this write go out next, as one batch.
      if (this.writesPending === 0 && this.batch.length > 0) this.scheduleWrite();
    });
  }
}
