import type { Command } from 'commander';
import { ApiClient } from '../api/client.js';
import { CliError, EXIT } from '../errors.js';
import { type CliIo, type Colors, colorsFor } from './io.js';
import { Progress } from './progress.js';

/** Options every command accepts (program level). */
export interface GlobalOptions {
  url?: string;
  json?: boolean;
}

/** What a command runs with: the API client, output streams and how to render for them. */
export interface CommandContext {
  io: CliIo;
  client: ApiClient;
  json: boolean;
  /** Colors for stdout and stderr (each on only when that stream is a terminal). */
  out: Colors;
  err: Colors;
  /** Terminal width of stdout, undefined when it is not a terminal. */
  width: number | undefined;
  progress: Progress;
  print(line: string): void;
  note(line: string): void;
}

export function createContext(command: Command, io: CliIo): CommandContext {
  const options = command.optsWithGlobals<GlobalOptions>();
  const client = new ApiClient({
    baseUrl: options.url ?? (io.env.RAIBID_URL || 'http://localhost:8080'),
    token: io.env.RAIBID_API_TOKEN,
  });
  const progress = new Progress(io.stderr);
  const err = colorsFor(io.stderr, io.env);
  const json = Boolean(options.json);
  return {
    io,
    client,
    json,
    out: colorsFor(io.stdout, io.env),
    err,
    width: io.stdout.isTTY ? io.stdout.columns : undefined,
    progress,
    print: (line) => progress.print(() => io.stdout.write(`${line}\n`)),
    // Notes are for people; with --json, stderr carries only the JSON error, if any.
    note: (line) => {
      if (!json) progress.print(() => io.stderr.write(`${err.dim(line)}\n`));
    },
  };
}

/** Prints a value as one JSON document (`--json`). */
export function printJson(ctx: CommandContext, value: unknown): void {
  ctx.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Runs `wait` with a signal that Ctrl-C aborts (instead of killing the process), so a command that
 * waits on a job can stop cleanly and say that the job keeps running. A second Ctrl-C exits as usual.
 */
export async function interruptible<T>(
  ctx: CommandContext,
  wait: (signal: AbortSignal) => Promise<T>,
  interruptedMessage: string,
): Promise<T> {
  const controller = new AbortController();
  const off = ctx.io.onInterrupt(() => controller.abort());
  try {
    return await wait(controller.signal);
  } catch (error) {
    if (controller.signal.aborted) throw new CliError(interruptedMessage, EXIT.interrupted, 'interrupted');
    throw error;
  } finally {
    off();
  }
}
