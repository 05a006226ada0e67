import path from 'node:path';
import { parseDuration } from '@raibid/common';
import type { Command } from 'commander';
import { usageError } from '../../errors.js';
import { colorsFor } from '../io.js';
import type { Runtime } from '../program.js';

interface DevOptions {
  port?: string;
  metricsPort?: string;
  maxAgents?: string;
  warmAgents?: string;
  maxGpuAgents?: string;
  pollingInterval?: string;
  dataDir?: string;
}

function port(value: string, name: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1 || number > 65_535)
    throw usageError(`${name} must be a port number, got "${value}"`);
  return number;
}

export function registerDev(program: Command, runtime: Runtime): void {
  program
    .command('dev')
    .description(
      'run the whole CI on this machine: Redis, the server, and agents started by a local KEDA-like scaler',
    )
    .option('--port <port>', 'API and web UI port (default: $PORT or 8080)')
    .option('--metrics-port <port>', 'metrics port (default: $METRICS_PORT or 8081)')
    .option('--max-agents <n>', "most agents at once: the ScaledJob's maxReplicaCount (default 4)")
    .option(
      '--warm-agents <n>',
      "agents kept waiting for a job while the queue is empty: the ScaledJob's minReplicaCount (default 0)",
    )
    .option(
      '--max-gpu-agents <n>',
      "most GPU agents at once when nvidia-smi answers: raibid-agent-gpu's maxReplicaCount (default 1)",
    )
    .option(
      '--polling-interval <duration>',
      "how often the scaler checks the queue: the ScaledJob's pollingInterval (default 5s)",
    )
    .option(
      '--data-dir <dir>',
      'Redis data, agent caches and checkouts (default: .raibid in the source checkout)',
    )
    .action(async (options: DevOptions) => {
      // Loaded on demand: the job commands need none of it.
      const { resolveScaledJobSpec } = await import('../../dev/scaling.js');
      const { findSourceRoot, runDevStack } = await import('../../dev/stack.js');
      const { StackError } = await import('../../dev/errors.js');
      const { env, stdout } = runtime.io;

      const maxAgents = options.maxAgents === undefined ? undefined : Number(options.maxAgents);
      const warmAgents = options.warmAgents === undefined ? undefined : Number(options.warmAgents);
      let pollingIntervalMs: number | undefined;
      if (options.pollingInterval !== undefined) {
        pollingIntervalMs = parseDuration(options.pollingInterval) ?? Number.NaN;
        if (!(pollingIntervalMs > 0))
          throw usageError(
            `--polling-interval "${options.pollingInterval}" is not a duration such as 5s or 500ms`,
          );
      }
      const maxGpuAgents = options.maxGpuAgents === undefined ? 1 : Number(options.maxGpuAgents);
      let spec: ReturnType<typeof resolveScaledJobSpec>;
      let gpuSpec: ReturnType<typeof resolveScaledJobSpec>;
      let flag = '--max-agents';
      try {
        spec = resolveScaledJobSpec({
          maxReplicaCount: maxAgents,
          minReplicaCount: warmAgents,
          pollingIntervalMs,
        });
        flag = '--max-gpu-agents';
        gpuSpec = resolveScaledJobSpec({ maxReplicaCount: maxGpuAgents, pollingIntervalMs });
      } catch (error) {
        throw usageError(
          error instanceof Error
            ? error.message.replace('maxReplicaCount', flag).replace('minReplicaCount', '--warm-agents')
            : String(error),
        );
      }

      let root: string;
      try {
        root = findSourceRoot();
      } catch (error) {
        if (error instanceof StackError) throw usageError(error.message);
        throw error;
      }
      const code = await runDevStack({
        root,
        dataDir: path.resolve(runtime.io.cwd, options.dataDir ?? path.join(root, '.raibid')),
        port: port(options.port ?? env.PORT ?? '8080', options.port ? '--port' : 'PORT'),
        metricsPort: port(
          options.metricsPort ?? env.METRICS_PORT ?? '8081',
          options.metricsPort ? '--metrics-port' : 'METRICS_PORT',
        ),
        // Without a token the API accepts anonymous writes: listen on this machine only, unless told otherwise.
        host: env.HOST || '127.0.0.1',
        spec,
        gpuSpec,
        env,
        stdout,
        colors: colorsFor(stdout, env),
      });
      runtime.setExitCode(code);
    });
}
