import type { ApiJob } from '@raibid/common';
import type { CliIo } from '../../src/cli/io.js';
import { run } from '../../src/cli/program.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Pretend stdout is a terminal this wide. */
  columns?: number;
  /** Called with the interrupt handler the CLI registers (simulates Ctrl-C when invoked). */
  onInterrupt?: (handler: () => void) => void;
}

/** Runs the CLI in this process with captured output, the way main.ts runs it. */
export async function runCli(args: string[], options: RunOptions = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: {
      write: (text: string) => {
        stdout += text;
      },
      ...(options.columns !== undefined ? { isTTY: true, columns: options.columns } : {}),
    },
    stderr: {
      write: (text: string) => {
        stderr += text;
      },
    },
    env: { NO_COLOR: '1', ...options.env },
    cwd: options.cwd ?? process.cwd(),
    onInterrupt: (handler) => {
      options.onInterrupt?.(handler);
      return () => {};
    },
  };
  const code = await run(args, io);
  return { code, stdout, stderr };
}

let counter = 0;

/** A job as the server returns it (CONTRACT.md "Job"). */
export function makeJob(overrides: Partial<ApiJob> = {}): ApiJob {
  counter += 1;
  return {
    id: `01jtestjob${String(counter).padStart(16, '0')}`,
    repo: { owner: 'acme', name: 'widgets', cloneUrl: 'http://gitea:3000/acme/widgets.git' },
    ref: 'main',
    sha: 'a'.repeat(40),
    trigger: 'api',
    status: 'queued',
    attempts: 0,
    createdAt: new Date(Date.now() - 60_000).toISOString(),
    startedAt: null,
    finishedAt: null,
    exitCode: null,
    error: null,
    agent: null,
    steps: [],
    retryOf: null,
    pool: 'cpu',
    ...overrides,
  };
}
