import { type ChildProcess, spawn } from 'node:child_process';

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  /** Resolve with a non-zero exit instead of rejecting (the caller looks at `code`). */
  allowFailure?: boolean;
}

/** Runs a command to completion; rejects with its output when it exits non-zero. */
export function runCommand(
  command: string,
  args: string[],
  options: CommandOptions = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', (error) => reject(new Error(`cannot run ${command}: ${error.message}`)));
    child.once('close', (code) => {
      if (code === 0 || options.allowFailure) resolve({ code, stdout, stderr });
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${stdout}\n${stderr}`));
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** A long-running process started by a test, with the tail of what it printed. */
export interface Started {
  child: ChildProcess;
  output(): string;
  /** Resolves when the process has exited (or could not be started). */
  exited: Promise<void>;
}

/** Starts a server process; a failure to start shows in output() and ends it at once. */
export function startProcess(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Started {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
    cwd: options.cwd,
  });
  let output = '';
  const collect = (chunk: Buffer | string) => {
    // Keep the tail: it holds the reason a process did not come up.
    output = (output + chunk.toString()).slice(-8_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (error) => {
      collect(`cannot start ${command}: ${error.message}\n`);
      resolve();
    });
  });
  return { child, output: () => output, exited };
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null && child.pid !== undefined;
}

/** SIGTERM (by PID), SIGKILL after 10 s, and waits for the exit. */
export async function stopProcess(started: Started): Promise<void> {
  const { child } = started;
  if (!running(child)) return;
  process.kill(child.pid!, 'SIGTERM');
  const killed = setTimeout(() => {
    if (running(child)) process.kill(child.pid!, 'SIGKILL');
  }, 10_000);
  await started.exited;
  clearTimeout(killed);
}

/** Polls `ready` until it is true (120 s at most); fails early, with its output, when the process ends. */
export async function waitUntilReady(
  what: string,
  proc: Started,
  ready: () => Promise<boolean>,
): Promise<void> {
  let ended = false;
  void proc.exited.then(() => {
    ended = true;
  });
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (ended) throw new Error(`${what} exited before it was ready:\n${proc.output()}`);
    if (await ready().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${what} was not ready after 120 s:\n${proc.output()}`);
}
