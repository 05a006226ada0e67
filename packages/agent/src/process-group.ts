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

/**
 * Pids of running processes whose environment holds `entry` (`NAME=value`): what a step
 * started, even after it left the step's process group (setsid, a daemon forking away).
 * Empty without /proc.
 */
export async function processesWithEnv(entry: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return [];
  }
  const found: number[] = [];
  await Promise.all(
    names
      .filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid)
      .map(async (name) => {
        try {
          const environ = await readFile(`/proc/${name}/environ`, 'latin1');
          if (environ.split('\0').includes(entry)) found.push(Number(name));
        } catch {
          // exited meanwhile, or not ours to read
        }
      }),
  );
  return found;
}

function signalPids(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // exited meanwhile
    }
  }
}

async function waitNoneWithEnv(entry: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if ((await processesWithEnv(entry)).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(100, Math.max(10, deadline - Date.now())));
  }
}

/**
 * Stops every process whose environment holds `entry` the way terminateGroup stops a group:
 * SIGTERM, then SIGKILL after `graceMs`. For processes that escaped the step's group.
 */
export async function terminateWithEnv(entry: string, graceMs: number): Promise<void> {
  const pids = await processesWithEnv(entry);
  if (pids.length === 0) return;
  signalPids(pids, 'SIGTERM');
  if (await waitNoneWithEnv(entry, graceMs)) return;
  signalPids(await processesWithEnv(entry), 'SIGKILL');
  await waitNoneWithEnv(entry, 5_000);
}
