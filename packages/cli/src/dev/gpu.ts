import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AGENTS_GROUP, fieldsToObject, GPU_JOBS_STREAM, LogStore, poolUnavailableKey } from '@raibid/common';
import type { Redis } from 'ioredis';

const run = promisify(execFile);

/** The reason a GPU job waits on a machine without a GPU (API, CLI and UI show it). */
export const NO_GPU_AGENT = 'no GPU agent on this machine';

/**
 * The GPUs of this machine as `nvidia-smi` names them, or why there are none: the local stack
 * runs GPU agents only when nvidia-smi answers (as a GPU agent pod needs it to).
 */
export async function detectGpus(
  env: NodeJS.ProcessEnv,
): Promise<{ gpus: string[] } | { gpus: null; reason: string }> {
  try {
    // The query a GPU agent makes for its job log (packages/agent/src/gpu.ts); the name is first.
    const { stdout } = await run(
      'nvidia-smi',
      ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'],
      { env, timeout: 30_000 },
    );
    const gpus = stdout
      .split('\n')
      .map((line) => line.split(',')[0]!.trim())
      .filter(Boolean);
    return gpus.length > 0 ? { gpus } : { gpus: null, reason: 'nvidia-smi lists no GPU' };
  } catch (error) {
    const detail = error as NodeJS.ErrnoException & { stderr?: string };
    return {
      gpus: null,
      reason:
        detail.code === 'ENOENT'
          ? 'nvidia-smi not found'
          : `nvidia-smi failed: ${(detail.stderr ?? '').trim().split('\n')[0] || detail.message}`,
    };
  }
}

/**
 * On a machine without a GPU, GPU jobs wait with a reason instead of silently: on every poll
 * it records why the gpu pool has no agents (`/api/v1/queue` shows it; it expires when the
 * stack stops) and writes one line into the log of each GPU job still waiting.
 */
export class NoGpuNotice {
  private readonly told = new Set<string>();
  private readonly logs: LogStore;

  constructor(
    private readonly redis: Redis,
    private readonly why: string,
    private readonly ttlMs: number,
  ) {
    this.logs = new LogStore(redis);
  }

  get reason(): string {
    return `${NO_GPU_AGENT} (${this.why})`;
  }

  /** One poll; returns the ids of the jobs told now. */
  async tick(): Promise<string[]> {
    await this.redis.set(poolUnavailableKey('gpu'), this.reason, 'PX', this.ttlMs);
    const waiting = await this.undeliveredJobIds();
    const told: string[] = [];
    for (const jobId of waiting) {
      if (this.told.has(jobId)) continue;
      this.told.add(jobId);
      await this.logs.append(jobId, [
        {
          stream: 'system',
          step: null,
          line: `[raibid] waiting: ${this.reason}. It stays queued until a GPU agent runs: pnpm dev on a machine where nvidia-smi works, or raibid-ci on the DGX Spark (docs/gpu.md); cancel it with raibid cancel ${jobId}`,
        },
      ]);
      told.push(jobId);
    }
    return told;
  }

  /** Job ids of the gpu stream's entries no agent has read. */
  private async undeliveredJobIds(): Promise<string[]> {
    let groups: unknown[][];
    try {
      groups = (await this.redis.xinfo('GROUPS', GPU_JOBS_STREAM)) as unknown[][];
    } catch (error) {
      if (error instanceof Error && /no such key/i.test(error.message)) return [];
      throw error;
    }
    const group = groups.map((g) => fieldsToObject(g.map(String))).find((g) => g.name === AGENTS_GROUP);
    const after = group?.['last-delivered-id'] ?? '0-0';
    const entries = await this.redis.xrange(GPU_JOBS_STREAM, `(${after}`, '+');
    return entries.flatMap(([, fields]) => {
      const jobId = fieldsToObject(fields).jobId;
      return jobId ? [jobId] : [];
    });
  }

  /** The stack stops: the reason goes with it. */
  async clear(): Promise<void> {
    await this.redis.del(poolUnavailableKey('gpu'));
  }
}
