import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** How long nvidia-smi may take to answer (it can be slow while the driver initialises). */
const NVIDIA_SMI_TIMEOUT_MS = 30_000;

/** One GPU as nvidia-smi describes it. */
export interface GpuInfo {
  name: string;
  driver: string;
  memory: string;
}

/** The GPU agent cannot see a GPU: it must not take GPU jobs. */
export class NoGpuError extends Error {
  override name = 'NoGpuError';
}

/**
 * The GPUs this process can see, from
 * `nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader`.
 * Throws NoGpuError saying what is wrong when nvidia-smi is missing, fails or lists none.
 */
export async function queryGpus(env: NodeJS.ProcessEnv = process.env): Promise<GpuInfo[]> {
  let stdout: string;
  try {
    ({ stdout } = await run(
      'nvidia-smi',
      ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'],
      { env, timeout: NVIDIA_SMI_TIMEOUT_MS },
    ));
  } catch (error) {
    const detail = error as NodeJS.ErrnoException & { stderr?: string };
    const why =
      detail.code === 'ENOENT'
        ? 'nvidia-smi is not on PATH (is the NVIDIA container runtime giving this container the GPU?)'
        : `nvidia-smi failed: ${(detail.stderr ?? '').trim() || detail.message}`;
    throw new NoGpuError(why);
  }
  const gpus = stdout
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [name = '', driver = '', memory = ''] = line.split(',').map((part) => part.trim());
      return { name, driver, memory };
    });
  if (gpus.length === 0) throw new NoGpuError('nvidia-smi lists no GPU');
  return gpus;
}

/** The job log's line for one GPU. */
export function gpuLine(gpu: GpuInfo, index: number): string {
  return `[raibid] GPU ${index}: ${gpu.name}, driver ${gpu.driver}, memory ${gpu.memory}`;
}
