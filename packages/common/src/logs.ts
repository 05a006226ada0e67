import type { Redis } from 'ioredis';
import { type LogEvent, type LogStream, logEventSchema } from './job.js';
import { logKey, logMetaKey } from './keys.js';
import { fieldsToObject } from './redis.js';

/** Longest stored line; a longer line is stored as several consecutive events. */
export const MAX_LINE_CHARS = 16 * 1024;
export const DEFAULT_LOG_CAP_BYTES = 10 * 1024 * 1024;

/**
 * Appends lines to a job's log stream with ids `<seq>-0`, counting bytes against
 * the cap. Past the cap, one truncation notice is written and further output lines
 * are dropped; `system` lines (raibid's own notices) are always written.
 */
const APPEND_SCRIPT = `
local cap = tonumber(ARGV[1])
local bytes = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')
local truncated = redis.call('HGET', KEYS[2], 'truncated') == '1'
local written, dropped = 0, 0
for i = 3, #ARGV, 4 do
  local stream, line = ARGV[i + 1], ARGV[i + 3]
  local keep = stream == 'system'
  if not keep and not truncated then
    if bytes + #line > cap then
      truncated = true
      redis.call('HSET', KEYS[2], 'truncated', '1')
      local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
      redis.call('XADD', KEYS[1], seq .. '-0', 'ts', ARGV[i], 'stream', 'system', 'step', ARGV[i + 2], 'line', ARGV[2])
    else
      keep = true
    end
  end
  if keep then
    bytes = bytes + #line
    local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
    redis.call('XADD', KEYS[1], seq .. '-0', 'ts', ARGV[i], 'stream', stream, 'step', ARGV[i + 2], 'line', line)
    written = written + 1
  else
    dropped = dropped + 1
  end
end
redis.call('HSET', KEYS[2], 'bytes', bytes)
return {written, dropped}
`;

export interface LogLine {
  stream: LogStream;
  step: string | null;
  line: string;
  /** Defaults to now. */
  ts?: string;
}

export interface LogStoreOptions {
  capBytes?: number;
  /** Applied to every line before it is stored (secret masking). */
  mask?: (line: string) => string;
  onCorrupt?: (jobId: string, entryId: string, reason: string) => void;
}

/** Splits a line longer than MAX_LINE_CHARS without cutting a surrogate pair. */
function chunks(line: string): string[] {
  if (line.length <= MAX_LINE_CHARS) return [line];
  const out: string[] = [];
  let start = 0;
  while (start < line.length) {
    let end = Math.min(start + MAX_LINE_CHARS, line.length);
    const code = line.charCodeAt(end - 1);
    if (end < line.length && code >= 0xd800 && code <= 0xdbff) end -= 1;
    out.push(line.slice(start, end));
    start = end;
  }
  return out;
}

export class LogStore {
  private readonly capBytes: number;
  private readonly mask: (line: string) => string;
  private readonly onCorrupt: NonNullable<LogStoreOptions['onCorrupt']>;

  constructor(
    private readonly redis: Redis,
    options: LogStoreOptions = {},
  ) {
    this.capBytes = options.capBytes ?? DEFAULT_LOG_CAP_BYTES;
    this.mask = options.mask ?? ((line) => line);
    this.onCorrupt = options.onCorrupt ?? (() => {});
    redis.defineCommand('raibidAppendLog', { numberOfKeys: 2, lua: APPEND_SCRIPT });
  }

  /** Appends lines in order, atomically. Returns how many were stored and dropped. */
  async append(jobId: string, lines: readonly LogLine[]): Promise<{ written: number; dropped: number }> {
    if (lines.length === 0) return { written: 0, dropped: 0 };
    const args: string[] = [];
    const now = new Date().toISOString();
    for (const entry of lines) {
      for (const part of chunks(this.mask(entry.line))) {
        args.push(entry.ts ?? now, entry.stream, entry.step ?? '', part);
      }
    }
    const notice = `[raibid] log truncated: this job's log reached its ${Math.round(this.capBytes / 1024)} KiB limit; further output is not stored`;
    const [written, dropped] = (await (this.redis as unknown as AppendCommand).raibidAppendLog(
      logKey(jobId),
      logMetaKey(jobId),
      String(this.capBytes),
      notice,
      ...args,
    )) as [number, number];
    return { written, dropped };
  }

  /** Parses one stream entry; null (and a report) for a malformed one. */
  parseEntry(jobId: string, entryId: string, fields: string[]): LogEvent | null {
    const raw = fieldsToObject(fields);
    const result = logEventSchema.safeParse({
      seq: Number(entryId.split('-')[0]),
      ts: raw.ts,
      stream: raw.stream,
      step: raw.step ? raw.step : null,
      line: raw.line,
    });
    if (result.success) return result.data;
    this.onCorrupt(jobId, entryId, result.error.issues[0]?.message ?? 'invalid');
    return null;
  }

  /** Up to `count` events with seq > afterSeq. */
  async read(jobId: string, afterSeq = 0, count = 1_000): Promise<LogEvent[]> {
    const entries = await this.redis.xrange(logKey(jobId), `(${afterSeq}-0`, '+', 'COUNT', count);
    const events: LogEvent[] = [];
    for (const [id, fields] of entries) {
      const event = this.parseEntry(jobId, id, fields);
      if (event) events.push(event);
    }
    return events;
  }

  /** The whole log as text, one line per event. */
  async text(jobId: string): Promise<string> {
    const out: string[] = [];
    let after = 0;
    for (;;) {
      const entries = await this.redis.xrange(logKey(jobId), `(${after}-0`, '+', 'COUNT', 2_000);
      if (entries.length === 0) break;
      for (const [id, fields] of entries) {
        const event = this.parseEntry(jobId, id, fields);
        if (event) out.push(event.line);
      }
      after = Number(entries[entries.length - 1]![0].split('-')[0]);
    }
    return out.length === 0 ? '' : `${out.join('\n')}\n`;
  }
}

interface AppendCommand {
  raibidAppendLog(...args: string[]): Promise<unknown>;
}
