import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A port nothing listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function untilListening(port: number, child: ChildProcess, log: string): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) throw new Error(`target exited with ${child.exitCode}; see ${log}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`target did not listen on ${port} within 30 s; see ${log}`);
}

export interface Target {
  name: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts a TypeScript entry (through tsx, from `cwd`) that listens on PORT, with its
 * output in a file under the OS temp dir; resolves once the port accepts connections.
 */
export async function startTarget(
  name: string,
  entry: string,
  cwd: string,
  env: Record<string, string>,
): Promise<Target> {
  const port = await freePort();
  const log = path.join(os.tmpdir(), `raibid-bench-${name.replace(/[^a-z0-9]+/gi, '-')}.log`);
  const out = openSync(log, 'w');
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', out, out],
  });
  await untilListening(port, child, log);
  return {
    name,
    port,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * A copy of the repository at `rev` (git archive) with its own dependencies installed
 * offline from the pnpm store, so "ours before" runs its own code, not the working tree's.
 * Kept under the OS temp dir and reused by later runs.
 */
export function baselineTree(rev: string): string {
  const commit = execFileSync('git', ['rev-parse', '--short', `${rev}^{commit}`], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  }).trim();
  const dir = path.join(os.tmpdir(), `raibid-bench-baseline-${commit}`);
  if (existsSync(path.join(dir, '.installed'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync('sh', ['-c', `git archive ${commit} | tar -x -C "${dir}"`], { cwd: REPO_ROOT });
  execFileSync('pnpm', ['install', '--offline', '--frozen-lockfile', '--ignore-scripts'], {
    cwd: dir,
    stdio: 'inherit',
  });
  execFileSync('touch', [path.join(dir, '.installed')]);
  return dir;
}
