import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const AGENT_MAIN = fileURLToPath(new URL('../../../agent/src/main.ts', import.meta.url));

export interface AgentProcess {
  name: string;
  /** What the agent wrote to stdout and stderr, for failure messages. */
  output(): string;
  /** SIGTERM (the agent hands back a running job), then waits for the exit. */
  stop(): Promise<void>;
}

/** A real agent (`raibid-agent --loop`) from the sources, as its own process. */
export function startAgent(options: {
  redisUrl: string;
  workDir: string;
  cacheDir: string;
  name: string;
}): AgentProcess {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', AGENT_MAIN, '--loop'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: options.workDir,
      REDIS_URL: options.redisUrl,
      LOG_LEVEL: 'warn',
      HOSTNAME: options.name,
      RAIBID_WORK_DIR: options.workDir,
      RAIBID_CACHE_DIR: options.cacheDir,
      RAIBID_HEARTBEAT_MS: '500',
      RAIBID_KILL_GRACE_MS: '2000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    name: options.name,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
