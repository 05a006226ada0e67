// Runs the agent as a real process, as tests need it. The sources are bundled
// once per test file with esbuild, the way scripts/build.mjs builds dist/main.js
// (workspace code bundled, npm dependencies external): a bundle starts in a
// third of the time `node --import tsx src/main.ts` takes.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const agentRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Inside the agent package, so the bundle resolves its dependencies from packages/agent/node_modules. */
const bundleDir = path.join(agentRoot, 'node_modules', '.cache', 'raibid-agent-test');

let bundle: Promise<string> | null = null;

/** Path of this test process's agent bundle, built on first use. */
export function agentBundle(): Promise<string> {
  bundle ??= (async () => {
    await mkdir(bundleDir, { recursive: true });
    const outfile = path.join(bundleDir, `main-${process.pid}-${Date.now()}.mjs`);
    await build({
      entryPoints: [path.join(agentRoot, 'src/main.ts')],
      outfile,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      packages: 'external',
      // @raibid/common is TypeScript source: bundle it like the build does.
      alias: { '@raibid/common': path.join(agentRoot, '../common/src/index.ts') },
      logLevel: 'warning',
    });
    return outfile;
  })();
  return bundle;
}

/** Deletes the bundle (test file teardown). */
export async function removeAgentBundle(): Promise<void> {
  if (!bundle) return;
  const file = await bundle;
  bundle = null;
  await rm(file, { force: true });
}

export interface AgentProcess {
  child: ChildProcess;
  pid: number;
  /** Everything the agent printed so far (its pino JSON lines and any stderr). */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal) and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts the agent with `args`, with only PATH, HOME and `env` in its
 * environment (nothing leaks in from the test runner).
 */
export async function spawnAgent(env: Record<string, string>, args: string[] = []): Promise<AgentProcess> {
  const child = spawn(process.execPath, [await agentBundle(), ...args], {
    cwd: agentRoot,
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
