import { type ApiJob, apiJobSchema, type LogEvent, logEventSchema } from '@raibid/common';
import type { z } from 'zod';
import { CliError, EXIT } from '../errors.js';
import { type ApiClient, ApiError } from './client.js';

/** One dispatched server-sent event. */
export interface SseEvent {
  event: string;
  data: string;
  /** The stream's last event id after this event (the `id:` of this or an earlier event). */
  lastEventId: string | null;
}

/**
 * Incremental parser for `text/event-stream` (WHATWG HTML "Server-sent events", the parsing rules only:
 * fields `event`, `data`, `id`; comments; CR, LF or CRLF line ends split anywhere across chunks).
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private lastEventId: string | null;

  constructor(lastEventId: string | null = null) {
    this.lastEventId = lastEventId;
  }

  feed(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const events: SseEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A CR at the very end may be the first half of a CRLF split across chunks: wait for more.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  private line(line: string): SseEvent | null {
    if (line === '') {
      const data = this.data;
      const event = this.event || 'message';
      this.data = [];
      this.event = '';
      return data.length === 0 ? null : { event, data: data.join('\n'), lastEventId: this.lastEventId };
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
    return null;
  }
}

export interface FollowHandlers {
  onLog(event: LogEvent): void;
  onStatus?(job: ApiJob): void;
  /** Called before each reconnect, with why the stream was lost. */
  onReconnect?(attempt: number, reason: string): void;
}

export interface FollowOptions {
  signal?: AbortSignal;
  /** Waits before consecutive reconnects; the last one repeats. Giving up after `maxReconnects`. */
  retryDelaysMs?: readonly number[];
  maxReconnects?: number;
}

const DEFAULT_RETRY_DELAYS_MS = [250, 500, 1_000, 2_000, 4_000, 5_000];

function parseData<S extends z.ZodType>(schema: S, event: SseEvent): z.infer<S> {
  let value: unknown;
  try {
    value = JSON.parse(event.data);
  } catch {
    throw new CliError(`log stream sent a "${event.event}" event that is not JSON`, EXIT.unavailable);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CliError(
      `log stream sent an invalid "${event.event}" event: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim(),
      EXIT.unavailable,
      'bad_response',
    );
  }
  return parsed.data;
}

/** Whether an error opening the stream may go away by itself (server restarting, proxy hiccup). */
function isTransient(error: unknown): boolean {
  if (error instanceof ApiError) return [502, 503, 504].includes(error.status);
  return error instanceof CliError && error.code === 'unreachable';
}

/**
 * Follows a job's log over SSE until the server sends `end` (the job reached its final state).
 * A dropped connection is resumed with `Last-Event-ID`, so no line is shown twice or lost; log events
 * at or below the last shown `seq` are skipped in case a server replays them.
 */
export async function followJobLog(
  client: ApiClient,
  jobId: string,
  handlers: FollowHandlers,
  options: FollowOptions = {},
): Promise<void> {
  const delays = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  const maxReconnects = options.maxReconnects ?? 12;
  let lastEventId: string | null = null;
  let lastSeq = 0;
  let failures = 0;
  for (;;) {
    let reason: string;
    try {
      const response = await client.openLogStream(jobId, lastEventId, options.signal);
      const parser: SseParser = new SseParser(lastEventId);
      const body = response.body;
      if (!body) throw new CliError('log stream has no body', EXIT.unavailable);
      const decoder = new TextDecoder();
      let ended = false;
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        const events: SseEvent[] = parser.feed(decoder.decode(chunk, { stream: true }));
        for (const event of events) {
          failures = 0;
          lastEventId = event.lastEventId;
          if (event.event === 'log') {
            const log = parseData(logEventSchema, event);
            if (log.seq > lastSeq) {
              lastSeq = log.seq;
              handlers.onLog(log);
            }
          } else if (event.event === 'status') {
            handlers.onStatus?.(parseData(apiJobSchema, event));
          } else if (event.event === 'end') {
            ended = true;
            break;
          }
        }
        if (ended) break;
      }
      if (ended) {
        await body.cancel().catch(() => {});
        return;
      }
      reason = 'the server closed the log stream';
    } catch (error) {
      if (options.signal?.aborted) throw error;
      if (error instanceof CliError && !isTransient(error)) throw error;
      reason = error instanceof Error ? error.message : String(error);
      if (!(error instanceof CliError)) reason = `connection lost (${reason})`;
    }
    failures += 1;
    if (failures > maxReconnects) {
      throw new CliError(
        `lost the log stream of job ${jobId} and could not resume it: ${reason}`,
        EXIT.unavailable,
        'unreachable',
      );
    }
    handlers.onReconnect?.(failures, reason);
    const delay = delays[Math.min(failures - 1, delays.length - 1)] ?? 1_000;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
