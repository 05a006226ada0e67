/**
 * Exit codes of `raibid` (docs/cli.md): scripts branch on them, so they are part of the CLI's surface.
 * - 0: done; with `--wait`, the job succeeded
 * - 1: with `--wait`, the job ended failed, cancelled or error
 * - 2: usage: bad arguments, or the server refused the input (400, 404, 409, 413, 422)
 * - 3: the server could not be reached, refused the credentials, failed, or answered something unexpected
 * - 4: a bug in raibid (an unexpected error; please report it)
 * - 130: interrupted (Ctrl-C) while waiting; the job keeps running
 */
export const EXIT = {
  ok: 0,
  jobNotSucceeded: 1,
  usage: 2,
  unavailable: 3,
  internal: 4,
  interrupted: 130,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI reports as one line (`raibid: <message>`) and turns into an exit code. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    /** Machine-readable reason, printed with `--json`. */
    readonly code: string = exitCode === EXIT.usage ? 'usage' : 'unavailable',
  ) {
    super(message);
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, EXIT.usage, 'usage');
}
