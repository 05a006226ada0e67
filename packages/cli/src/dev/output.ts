import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Colors, OutputStream } from '../cli/io.js';

const PINO_LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
/** Fields every pino record has; the rest are shown as key=value. */
const PINO_BASE_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'v']);
const MAX_VALUE_CHARS = 300;

function scalar(value: unknown): string {
  // Durations such as fastify's responseTime: 2519.127065999999 → 2519.1
  if (typeof value === 'number' && !Number.isInteger(value)) return String(Math.round(value * 10) / 10);
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const quoted = typeof value === 'string' && /[\s"=]/.test(value) ? JSON.stringify(value) : text;
  return quoted.length > MAX_VALUE_CHARS ? `${quoted.slice(0, MAX_VALUE_CHARS)}…` : quoted;
}

/** `key=value` pairs of a record, objects flattened one level (`req.url=/x`), errors as their message. */
function fields(record: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (PINO_BASE_FIELDS.has(key) || value === undefined) continue;
    if (key === 'err' && value && typeof value === 'object' && 'message' in value) {
      out.push(`err=${scalar(String(value.message))}`);
    } else if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [inner, innerValue] of Object.entries(value)) {
        if (innerValue !== undefined) out.push(`${key}.${inner}=${scalar(innerValue)}`);
      }
    } else {
      out.push(`${key}=${scalar(value)}`);
    }
  }
  return out;
}

/**
 * A pino JSON line as one readable line (`WARN message key=value`; INFO unlabelled), or null when
 * the line is not a pino record (then it is shown as it is).
 */
export function formatPinoLine(line: string, c: Colors): { time: Date | null; text: string } | null {
  if (!line.startsWith('{')) return null;
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return null;
  }
  if (!record || typeof record !== 'object' || typeof (record as { level?: unknown }).level !== 'number') {
    return null;
  }
  const rec = record as Record<string, unknown> & { level: number };
  const level = PINO_LEVELS[rec.level] ?? String(rec.level);
  const label =
    rec.level >= 50 ? c.red(level) : rec.level >= 40 ? c.yellow(level) : rec.level <= 20 ? c.dim(level) : '';
  const message = typeof rec.msg === 'string' ? rec.msg : '';
  const extra = fields(rec);
  const text = [label, message, extra.length ? c.dim(extra.join(' ')) : ''].filter(Boolean).join(' ');
  const time = typeof rec.time === 'number' ? new Date(rec.time) : null;
  return { time, text };
}

function clock(date: Date): string {
  return date.toTimeString().slice(0, 8);
}

const SOURCE_COLORS = ['cyan', 'green', 'yellow', 'blue', 'magenta'] as const;

/**
 * The local stack's single log: every line of every process, prefixed with the time and the
 * process's name in its color (`12:00:01 server  │ listening ...`).
 */
export class StackOutput {
  /** Wide enough for `agent-10`, so the columns rarely shift. */
  private width = 8;
  private nextColor = 0;

  constructor(
    private readonly stream: OutputStream,
    readonly colors: Colors,
  ) {}

  /** A color for a new source (agents get one each, in turn). */
  pickColor(): (text: string) => string {
    const name = SOURCE_COLORS[this.nextColor % SOURCE_COLORS.length]!;
    this.nextColor += 1;
    return this.colors[name];
  }

  line(
    source: string,
    text: string,
    color: (text: string) => string = this.colors.bold,
    time = new Date(),
  ): void {
    this.width = Math.max(this.width, source.length);
    const prefix = `${this.colors.dim(clock(time))} ${color(source.padEnd(this.width))} ${this.colors.dim('│')}`;
    this.stream.write(`${prefix} ${text}\n`);
  }

  /** Shows every line of `readable` under `source`, pino records made readable. */
  pipe(source: string, readable: Readable, color: (text: string) => string): Promise<void> {
    const lines = createInterface({ input: readable, crlfDelay: Number.POSITIVE_INFINITY });
    lines.on('line', (raw) => {
      const pretty = formatPinoLine(raw, this.colors);
      if (pretty) this.line(source, pretty.text, color, pretty.time ?? new Date());
      else this.line(source, raw, color);
    });
    return new Promise((resolve) => lines.once('close', resolve));
  }
}
