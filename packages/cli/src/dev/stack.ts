import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRedis } from '@raibid/common';
import type { Redis } from 'ioredis';
import type { OutputStream } from '../cli/io.js';
import { agentBaseEnv, agentIdleTimeout } from './agent-env.js';
import { StackError } from './errors.js';
import { detectGpus, NoGpuNotice } from './gpu.js';
import { StackOutput } from './output.js';
import { ManagedProcess } from './processes.js';
import { redisReady, startStackRedis } from './redis.js';
import { LocalScaler } from './scaler.js';
import { effectiveReplicaBounds, type ScaledJobSpec } from './scaling.js';

export interface DevStackOptions {
  /** The raibid-ci source checkout (has packages/server and packages/agent). */
  root: string;
  /** Redis data (AOF), agent caches and checkouts. */
  dataDir: string;
  port: number;
  metricsPort: number;
  host: string;
  spec: ScaledJobSpec;
  /** The GPU pool's ScaledJob (its own maxReplicaCount), used when nvidia-smi answers. */
  gpuSpec: ScaledJobSpec;
  env: NodeJS.ProcessEnv;
  stdout: OutputStream;
  colors: StackOutput['colors'];
}

/** Grace periods on stop: agents hand back their job, the server drains, Redis writes its AOF. */
const AGENT_STOP_MS = 15_000;
const SERVER_STOP_MS = 10_000;
const REDIS_STOP_MS = 10_000;
const SERVER_READY_MS = 60_000;
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** The raibid-ci checkout this module runs from: the directory with pnpm-workspace.yaml above it. */
export function findSourceRoot(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'pnpm-workspace.yaml')) && existsSync(path.join(dir, 'packages/server'))) {
      return dir;
    }
    if (path.dirname(dir) === dir) {
      throw new StackError(
        'raibid dev runs from a raibid-ci source checkout; clone it and run "pnpm dev" there',
      );
    }
  }
}

/** `node --import tsx <entry>`: the stack runs the TypeScript sources, no build step needed. */
function tsxCommand(root: string, entry: string): { command: string; args: string[] } {
  const file = path.join(root, entry);
  if (!existsSync(file)) throw new StackError(`${entry} is missing from ${root}; is the checkout complete?`);
  try {
    createRequire(path.join(root, 'package.json')).resolve('tsx');
  } catch {
    throw new StackError(`tsx is not installed in ${root}; run "pnpm install" first`);
  }
  return { command: process.execPath, args: ['--import', 'tsx', file] };
}

function assertPortFree(port: number, host: string, variable: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new StackError(
          error.code === 'EADDRINUSE'
            ? `port ${port} is in use (another raibid dev?); stop that process or choose another with ${variable}=...`
            : `cannot listen on ${host}:${port}: ${error.message}`,
        ),
      ),
    );
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

/** Polls GET /ready until it answers 200; fails early when the server process exits. */
async function waitForServer(url: string, server: ManagedProcess): Promise<void> {
  const deadline = Date.now() + SERVER_READY_MS;
  while (Date.now() < deadline) {
    if (!server.running) {
      throw new StackError(
        `the server exited (${server.exitDescription}) before it was ready; see its log above`,
      );
    }
    try {
      const response = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new StackError(
    `the server did not become ready within ${SERVER_READY_MS / 1000} s; see its log above`,
  );
}

type Stop = { reason: string; exitCode: number };

/**
 * `pnpm dev`: Redis, the server and the local scaler (which starts one-job agents), as child processes
 * with one prefixed log. SIGINT/SIGTERM stop everything in order and wait for it; a second signal
 * kills what is left. Resolves to the exit code: 0 after a requested stop, 1 when a part failed.
 */
export async function runDevStack(options: DevStackOptions): Promise<number> {
  const output = new StackOutput(options.stdout, options.colors);
  const c = options.colors;
  const colorFor = (level: 'info' | 'warn' | 'error', line: string) =>
    level === 'error' ? c.red(line) : level === 'warn' ? c.yellow(line) : line;
  const say = (line: string, level: 'info' | 'warn' | 'error' = 'info') =>
    output.line('dev', colorFor(level, line), c.bold);

  const children: ManagedProcess[] = [];
  const parts: {
    redisProcess: ManagedProcess | null;
    server: ManagedProcess | null;
    scaler: LocalScaler | null;
    gpuScaler: LocalScaler | null;
    noGpu: { notice: NoGpuNotice; stop(): Promise<void> } | null;
    scalerRedis: Redis | null;
  } = { redisProcess: null, server: null, scaler: null, gpuScaler: null, noGpu: null, scalerRedis: null };

  let requestStop: (stop: Stop) => void = () => {};
  const stopRequested = new Promise<Stop>((resolve) => {
    requestStop = resolve;
  });
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stopping) {
      stopping = true;
      say(`${signal}: stopping agents, server and Redis (${signal} again to kill them at once)`);
      requestStop({ reason: signal, exitCode: 0 });
      return;
    }
    say(`${signal} again: killing everything`, 'warn');
    for (const child of children) child.kill();
  };
  // Last resort when this process ends without a clean stop: leave nothing running.
  const killAll = () => {
    for (const child of children) child.kill();
  };
  // SIGHUP: the terminal went away; without a handler Node would die and leave the children running.
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  process.on('exit', killAll);

  const watch = (child: ManagedProcess, what: string) => {
    children.push(child);
    say(`started ${what} (pid ${child.pid})`);
    void child.exited.then(() => {
      if (!stopping) {
        stopping = true;
        requestStop({ reason: `${what} exited unexpectedly (${child.exitDescription})`, exitCode: 1 });
      }
    });
  };

  /** Waits for a start-up step; false when a stop arrives first (what was started is stopped in order). */
  const untilStopped = (work: Promise<void>): Promise<boolean> =>
    Promise.race([work.then(() => true), stopRequested.then(() => false)]);

  /** Starts Redis, the server and the scaler in order; returns early when a stop comes first. */
  const start = async (): Promise<void> => {
    const serverCommand = tsxCommand(options.root, 'packages/server/src/main.ts');
    const agentCommand = tsxCommand(options.root, 'packages/agent/src/main.ts');
    await assertPortFree(options.port, options.host, 'PORT');
    await assertPortFree(options.metricsPort, options.host, 'METRICS_PORT');
    const cacheDir = options.env.RAIBID_CACHE_DIR || path.join(options.dataDir, 'cache');
    const workDir = options.env.RAIBID_WORK_DIR || path.join(options.dataDir, 'work');
    await mkdir(cacheDir, { recursive: true });
    await mkdir(workDir, { recursive: true });

    const redis = await startStackRedis({ env: options.env, dataDir: options.dataDir, output });
    if (redis.process) {
      parts.redisProcess = redis.process;
      watch(redis.process, `redis-server on ${redis.url}`);
    }
    if (!(await untilStopped(redisReady(redis)))) return;
    const redisUrl = redis.url;
    if (!redis.process) say(`using Redis at ${redisUrl} (REDIS_URL)`);

    const token = options.env.RAIBID_API_TOKEN?.trim();
    const localHost = options.host === '0.0.0.0' || options.host === '127.0.0.1';
    const baseUrl = `http://${localHost ? 'localhost' : options.host}:${options.port}`;
    const server = await ManagedProcess.start({
      name: 'server',
      ...serverCommand,
      env: {
        ...options.env,
        REDIS_URL: redisUrl,
        PORT: String(options.port),
        METRICS_PORT: String(options.metricsPort),
        HOST: options.host,
        PUBLIC_URL: options.env.PUBLIC_URL || baseUrl,
        // The local stack, and only it, builds local repositories and may run without a token.
        RAIBID_ALLOW_FILE_REPOS: '1',
        RAIBID_INSECURE_NO_AUTH: token ? '0' : '1',
      },
      cwd: options.root,
      output,
      color: c.blue,
    });
    parts.server = server;
    watch(server, 'server');
    const probeUrl = `http://${options.host === '0.0.0.0' ? '127.0.0.1' : options.host}:${options.port}`;
    if (!(await untilStopped(waitForServer(probeUrl, server)))) return;

    const runId = randomBytes(3).toString('hex');
    parts.scalerRedis = createRedis(redisUrl);
    parts.scalerRedis.on('error', () => {}); // a lost connection shows up as a failed scaler check
    /** Starts one one-job agent of a pool, as a Job of that pool's ScaledJob would. */
    const agentStarter = (pool: 'cpu' | 'gpu') => async (index: number) => {
      const prefix = pool === 'gpu' ? 'gpu-agent' : 'agent';
      // Like a pod name: unique, so a consumer left in the group by an earlier run is never reused.
      const consumer = `raibid-${pool === 'gpu' ? 'agent-gpu' : 'agent'}-${runId}-${index}`;
      const child = await ManagedProcess.start({
        name: `${prefix}-${index}`,
        command: agentCommand.command,
        args: pool === 'gpu' ? [...agentCommand.args, '--pool', 'gpu'] : agentCommand.args,
        env: {
          ...agentBaseEnv(options.env),
          REDIS_URL: redisUrl,
          HOSTNAME: consumer,
          AGENT_IDLE_TIMEOUT: agentIdleTimeout(
            options.env,
            (pool === 'gpu' ? options.gpuSpec : options.spec).minReplicaCount,
          ),
          RAIBID_CACHE_DIR: cacheDir,
          RAIBID_WORK_DIR: workDir,
        },
        cwd: options.root,
        output,
        color: output.pickColor(),
      });
      children.push(child);
      return { name: `${prefix}-${index}`, consumer, process: child };
    };
    const scaler = new LocalScaler({
      redis: parts.scalerRedis,
      spec: options.spec,
      stopGraceMs: AGENT_STOP_MS,
      log: (line, level = 'info') => output.line('scaler', colorFor(level, line), c.magenta),
      startAgent: agentStarter('cpu'),
    });
    parts.scaler = scaler;
    scaler.start();

    // GPU jobs (runs-on: gpu) get their own scaler, like ScaledJob raibid-agent-gpu, when this
    // machine has a GPU; else they wait, and say why.
    const gpu = await detectGpus(agentBaseEnv(options.env));
    let gpuLine: string;
    if (gpu.gpus) {
      const gpuScaler = new LocalScaler({
        redis: parts.scalerRedis,
        spec: options.gpuSpec,
        pool: 'gpu',
        stopGraceMs: AGENT_STOP_MS,
        log: (line, level = 'info') => output.line('scaler-gpu', colorFor(level, line), c.magenta),
        startAgent: agentStarter('gpu'),
      });
      parts.gpuScaler = gpuScaler;
      gpuScaler.start();
      gpuLine = `up to ${options.gpuSpec.maxReplicaCount} GPU agent${options.gpuSpec.maxReplicaCount === 1 ? '' : 's'} on ${gpu.gpus.join(', ')} (runs-on: gpu)`;
    } else {
      const notice = new NoGpuNotice(parts.scalerRedis, gpu.reason, 3 * options.spec.pollingIntervalMs);
      const redisForNotice = parts.scalerRedis;
      let running: Promise<unknown> = Promise.resolve();
      const timer = setInterval(() => {
        running = notice
          .tick()
          .then((told) => {
            for (const jobId of told)
              output.line('scaler-gpu', colorFor('warn', `job ${jobId} waits: ${notice.reason}`), c.magenta);
          })
          .catch((error: unknown) =>
            output.line(
              'scaler-gpu',
              colorFor(
                'warn',
                `GPU notice failed: ${error instanceof Error ? error.message : String(error)}`,
              ),
              c.magenta,
            ),
          );
      }, options.spec.pollingIntervalMs);
      parts.noGpu = {
        notice,
        async stop() {
          clearInterval(timer);
          await running;
          if (redisForNotice.status === 'ready') await notice.clear().catch(() => {});
        },
      };
      gpuLine = `none: ${notice.reason}; runs-on: gpu jobs stay queued`;
    }

    const { spec } = options;
    say(c.green(c.bold('raibid is ready')));
    say(`  UI       ${c.cyan(baseUrl)}`);
    say(`  API      ${c.cyan(`${baseUrl}/api/v1`)}  (RAIBID_URL=${baseUrl})`);
    say(`  metrics  ${c.cyan(`http://localhost:${options.metricsPort}/metrics`)}`);
    say(`  Redis    ${redisUrl}${redis.process ? `  (data in ${options.dataDir})` : ''}`);
    say(
      `  agents   up to ${spec.maxReplicaCount}, one job each; the scaler polls every ${spec.pollingIntervalMs / 1000}s (KEDA ScaledJob, ${spec.strategy})`,
    );
    // What the scaler keeps: KEDA lowers a minReplicaCount above maxReplicaCount to it.
    const warm = effectiveReplicaBounds(spec).minReplicaCount;
    if (warm > 0) {
      say(
        `  warm     ${warm} agent${warm === 1 ? '' : 's'} kept waiting for a job (minReplicaCount; a busy one is replaced once it exits)`,
      );
    }
    say(`  GPU      ${gpuLine}`);
    say(
      `  auth     ${token ? 'RAIBID_API_TOKEN required for writes' : 'none (local stack: RAIBID_INSECURE_NO_AUTH=1)'}`,
    );
    say('try: pnpm raibid submit /path/to/a/git/repo --wait    stop: Ctrl-C');
  };

  let exitCode = 0;
  try {
    await start();
    const stop = await stopRequested;
    if (stop.exitCode !== 0) say(stop.reason, 'error');
    exitCode = stop.exitCode;
  } catch (error) {
    if (!(error instanceof StackError)) throw error;
    say(error.message, 'error');
    exitCode = 1;
  } finally {
    stopping = true;
    await Promise.all([parts.scaler?.stop(), parts.gpuScaler?.stop(), parts.noGpu?.stop()]);
    parts.scalerRedis?.disconnect();
    for (const [child, graceMs] of [
      [parts.server, SERVER_STOP_MS],
      [parts.redisProcess, REDIS_STOP_MS],
    ] as const) {
      if (!child) continue;
      const info = await child.stop(graceMs);
      say(`${child.name} stopped (${info.signal ? `signal ${info.signal}` : `exit code ${info.code}`})`);
    }
    const left = children.filter((child) => child.running);
    for (const child of left) child.kill();
    await Promise.all(left.map((child) => child.exited));
    say(`stopped; ${children.length} process${children.length === 1 ? '' : 'es'} started, none left running`);
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
    process.off('exit', killAll);
  }
  return exitCode;
}
