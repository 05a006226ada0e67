import { type ChildProcess, spawn } from 'node:child_process';
import type { StackOutput } from './output.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  /** Prefix of its lines in the stack's log. */
  name: string;
  command: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  output: StackOutput;
  color?: (text: string) => string;
}

/** How long output may trail the exit of a process before its exit is reported anyway. */
const OUTPUT_DRAIN_MS = 500;

function describe(info: ExitInfo): string {
  return info.signal ? `signal ${info.signal}` : `code ${info.code}`;
}

/**
 * A child process of the local stack. It runs in a process group of its own (`detached`), so a
 * Ctrl-C in the terminal reaches only `pnpm dev`, which then stops the children in order (agents,
 * server, Redis) and waits for each; `kill()` ends the whole group as a last resort.
 */
export class ManagedProcess {
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | null = null;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly pid: number,
    output: Promise<void>,
  ) {
    const exit = new Promise<ExitInfo>((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      }),
    );
    // Report the exit after the last lines were shown, unless a grandchild keeps the pipes open.
    this.exited = exit.then(async (info) => {
      await Promise.race([output, new Promise((resolve) => setTimeout(resolve, OUTPUT_DRAIN_MS).unref())]);
      return info;
    });
  }

  /** Spawns the process; rejects when it cannot be started (e.g. the command does not exist). */
  static start(options: StartOptions): Promise<ManagedProcess> {
    const child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => {
        child.off('error', reject);
        const color = options.color ?? options.output.colors.bold;
        const output = Promise.all([
          options.output.pipe(options.name, child.stdout!, color),
          options.output.pipe(options.name, child.stderr!, color),
        ]).then(() => undefined);
        resolve(new ManagedProcess(options.name, child, child.pid!, output));
      });
    });
  }

  get running(): boolean {
    return this.exitInfo === null;
  }

  /** How it ended, e.g. `code 0` or `signal SIGKILL`; null while it runs. */
  get exitDescription(): string | null {
    return this.exitInfo ? describe(this.exitInfo) : null;
  }

  /** Sends `signal` to the process itself (it stops its own children). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGKILL to the whole process group: synchronous, for when waiting is not an option. */
  kill(): void {
    if (!this.running) return;
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      this.child.kill('SIGKILL');
    }
  }

  /** SIGTERM, then SIGKILL to its group after `graceMs`; resolves when it has exited. */
  async stop(graceMs: number): Promise<ExitInfo> {
    if (!this.running) return this.exited;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.kill(), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
