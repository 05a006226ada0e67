import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** What the stand-in reports, as `nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader` would. */
export const STAND_IN_GPU = { name: 'NVIDIA GB10', driver: '580.95.05', memory: '122502 MiB' };

/**
 * A directory holding a stand-in `nvidia-smi` (these machines have no GPU): a shell
 * script that answers the query raibid makes and `-L`, and fails like the real one
 * for anything else. Put the directory first on PATH.
 */
export async function nvidiaSmiStandIn(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-nvidia-smi-'));
  const { name, driver, memory } = STAND_IN_GPU;
  await writeFile(
    path.join(dir, 'nvidia-smi'),
    `#!/bin/sh
# Stand-in for nvidia-smi (raibid-ci tests): one ${name}.
case "$*" in
  "--query-gpu=name,driver_version,memory.total --format=csv,noheader") echo "${name}, ${driver}, ${memory}" ;;
  "-L") echo "GPU 0: ${name} (UUID: GPU-00000000-0000-0000-0000-000000000000)" ;;
  "") echo "stand-in nvidia-smi: ${name}" ;;
  *) echo "stand-in nvidia-smi: unsupported arguments: $*" >&2; exit 2 ;;
esac
`,
  );
  await chmod(path.join(dir, 'nvidia-smi'), 0o755);
  return dir;
}
