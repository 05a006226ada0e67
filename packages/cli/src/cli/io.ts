import pc from 'picocolors';

export type Colors = ReturnType<typeof pc.createColors>;

/** A stream the CLI writes to; `isTTY`/`columns` decide colors, spinners and table widths. */
export interface OutputStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Everything the CLI takes from its process, so tests can run it in-process. */
export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  env: Record<string, string | undefined>;
  /** Where `raibid submit` looks for a git checkout. */
  cwd: string;
  /** Calls `handler` on the next Ctrl-C instead of exiting; returns the function that undoes it. */
  onInterrupt(handler: () => void): () => void;
}

/** Colors for a stream, following the NO_COLOR / FORCE_COLOR conventions. */
export function colorsFor(stream: OutputStream, env: CliIo['env']): Colors {
  if (env.NO_COLOR) return pc.createColors(false);
  if (env.FORCE_COLOR && env.FORCE_COLOR !== '0') return pc.createColors(true);
  return pc.createColors(Boolean(stream.isTTY) && env.TERM !== 'dumb');
}

/** The process's own streams and environment. `pnpm raibid` runs in the workspace root: INIT_CWD is the user's directory. */
export function processIo(): CliIo {
  const viaPnpmScript = process.env.npm_lifecycle_event === 'raibid' && process.env.INIT_CWD;
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: viaPnpmScript ? process.env.INIT_CWD! : process.cwd(),
    onInterrupt(handler) {
      process.once('SIGINT', handler);
      return () => process.off('SIGINT', handler);
    },
  };
}
