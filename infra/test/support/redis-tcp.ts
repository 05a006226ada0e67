// A private redis-server on a free TCP port of 127.0.0.1, for containers on the host's network
// (a container's uid cannot use the unix socket that @raibid/common/testing's startRedis makes).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../../packages/common/test/support/ports.js';
import { runCommand } from './command.js';

export interface TcpRedis {
  /** redis://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Stops redis-server by PID and deletes its dir. */
  stop(): Promise<void>;
}

export async function startTcpRedis(): Promise<TcpRedis> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-redis-tcp-'));
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    const ping = await runCommand('redis-cli', ['-p', String(port), 'ping'], { allowFailure: true });
    if (ping.stdout.trim() === 'PONG') break;
    if (i === 100 || child.exitCode !== null) {
      await stop();
      throw new Error(`redis-server did not come up on 127.0.0.1:${port}: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url: `redis://127.0.0.1:${port}`, port, stop };
}
