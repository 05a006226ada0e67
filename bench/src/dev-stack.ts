import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { freePort, REPO_ROOT } from './processes.js';

/** What one `raibid dev` runs with: the ScaledJob's pollingInterval, maxReplicaCount and minReplicaCount. */
export interface DevStackSettings {
  name: string;
  pollingInterval: string;
  maxAgents: number;
  warmAgents: number;
}

export interface DevStack {
  name: string;
  port: number;
  /** When (performance clock, ms) the scaler started the agent with this consumer name. */
  agentStartedAt(consumer: string): number | undefined;
  /** Resolves once an agent of this stack has started and waits on the stream. */
  agentWaiting(): Promise<void>;
  stop(): Promise<void>;
}

const READY_MS = 120_000;
const now = () => performance.timeOrigin + performance.now();

/**
 * `raibid dev` exactly as a user runs it (its own redis-server, the server, the local scaler
 * and its one-job agents, all real processes), on free ports, with a data dir under the OS temp
 * dir and its log in a file there. Its output tells when each agent was started.
 */
export async function startDevStack(settings: DevStackSettings): Promise<DevStack> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'raibid-bench-dev-'));
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  // Nothing of the caller's environment may point the stack elsewhere or change the agents.
  for (const name of [
    'REDIS_URL',
    'RAIBID_API_TOKEN',
    'PORT',
    'METRICS_PORT',
    'HOST',
    'AGENT_IDLE_TIMEOUT',
  ]) {
    delete env[name];
  }
  const args = ['--import', 'tsx', path.join(REPO_ROOT, 'packages/cli/src/main.ts'), 'dev'];
  args.push('--port', String(port), '--metrics-port', String(await freePort()));
  args.push('--polling-interval', settings.pollingInterval, '--max-agents', String(settings.maxAgents));
  args.push('--warm-agents', String(settings.warmAgents), '--data-dir', dataDir);
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const logFile = path.join(
    os.tmpdir(),
    `raibid-bench-dispatch-${settings.name.replace(/[^a-z0-9]+/gi, '-')}.log`,
  );
  const log = createWriteStream(logFile);

  const started = new Map<string, number>();
  let ready = false;
  let waitingAgents = 0;
  const onLine = (line: string) => {
    log.write(`${line}\n`);
    const start = / started (agent-\d+) \(pid \d+, consumer (\S+)\)$/.exec(line);
    if (start) started.set(start[2]!, now());
    if (/│ agent started /.test(line)) waitingAgents += 1;
    if (line.includes('try: pnpm raibid submit')) ready = true;
  };
  for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', onLine);

  const until = async (what: string, condition: () => boolean) => {
    const deadline = Date.now() + READY_MS;
    while (!condition()) {
      if (child.exitCode !== null) throw new Error(`raibid dev (${settings.name}) exited; see ${logFile}`);
      if (Date.now() > deadline) throw new Error(`raibid dev (${settings.name}): no ${what}; see ${logFile}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  await until('ready banner', () => ready);

  return {
    name: settings.name,
    port,
    agentStartedAt: (consumer) => started.get(consumer),
    agentWaiting: () => until('agent waiting', () => waitingAgents > 0),
    async stop() {
      // SIGINT to the stack's own pid: it stops its agents, server and Redis in order.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      await exited;
      await new Promise((resolve) => log.end(resolve));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
