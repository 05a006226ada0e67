import { readdir, readFile } from 'node:fs/promises';

/** Sends `signal` to every process in group `pgid`. False when the group no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/**
 * Pids of the group's processes that are still running. Zombies do not count:
 * in a container without an init, killed orphans stay zombies nobody reaps.
 */
export async function livingMembers(pgid: number): Promise<number[]> {
  if (!signalGroup(pgid, 0)) return [];
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return [pgid]; // no /proc: only kill(0) can tell, and it said the group exists
  }
  const living: number[] = [];
  await Promise.all(
    entries
      .filter((name) => /^\d+$/.test(name))
      .map(async (name) => {
        let stat: string;
        try {
          stat = await readFile(`/proc/${name}/stat`, 'utf8');
        } catch {
          return; // exited meanwhile
        }
        // "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses.
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const state = fields[0];
        if (Number(fields[2]) === pgid && state !== 'Z' && state !== 'X') living.push(Number(name));
      }),
  );
  return living;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if ((await livingMembers(pgid)).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(100, Math.max(10, deadline - Date.now())));
  }
}

/**
 * Stops a process group: SIGTERM to all of it, then SIGKILL to whatever is still
 * running after `graceMs`. Resolves when the group is gone (or, should a process
 * be stuck in the kernel, after a few more seconds of trying).
 */
export async function terminateGroup(
  pgid: number,
  graceMs: number,
): Promise<'gone' | 'terminated' | 'killed'> {
  if ((await livingMembers(pgid)).length === 0) return 'gone';
  signalGroup(pgid, 'SIGTERM');
  if (await waitGone(pgid, graceMs)) return 'terminated';
  signalGroup(pgid, 'SIGKILL');
  await waitGone(pgid, 5_000);
  return 'killed';
}
