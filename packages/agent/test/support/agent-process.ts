// Runs the agent as a real process from its TypeScript sources, as tests need it.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const mainTs = path.join(repoRoot, 'packages/agent/src/main.ts');

export interface AgentProcess {
  child: ChildProcess;
  pid: number;
  /** Everything the agent printed so far (its pino JSON lines and any stderr). */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal) and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `node --import tsx packages/agent/src/main.ts ...args` with only PATH,
 * HOME and `env` in its environment (nothing leaks in from the test runner).
 */
export function spawnAgent(env: Record<string, string>, args: string[] = []): AgentProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', mainTs, ...args], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  if (child.pid === undefined) throw new Error('could not start the agent process');
  return { child, pid: child.pid, output: () => output, exited };
}

/** Kills an agent that is still running (test cleanup) and waits for it. */
export async function stopAgent(agent: AgentProcess): Promise<void> {
  if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
  await agent.exited;
}
