import { execFile } from 'node:child_process';

/**
 * Pids of running (non-zombie) processes in process group `pgid`, as `ps` sees
 * them. Zombies are left out: without an init reaping orphans they linger.
 */
export function processesInGroup(pgid: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    execFile('ps', ['-e', '-o', 'pid=,pgid=,stat='], (error, stdout) => {
      if (error) return reject(error);
      const pids = stdout
        .split('\n')
        .map((line) => line.trim().split(/\s+/))
        .filter(([, group, stat]) => Number(group) === pgid && !stat?.startsWith('Z'))
        .map(([pid]) => Number(pid));
      resolve(pids);
    });
  });
}

/** SIGKILLs a process group if it still exists (cleanup of steps an agent killed with -9 left behind). */
export function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}
