// A local image registry for one test file: Debian's docker-registry (distribution 2.8) on a free
// loopback port with its own storage dir. On the k3s host the same registry runs on
// localhost:5000; any loopback port proves the same push and pull (Docker and containerd treat
// 127.0.0.0/8 as plain-HTTP registries).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../../packages/common/test/support/ports.js';

export interface TestRegistry {
  /** host:port, the prefix of image names pushed here (127.0.0.1:<port>). */
  address: string;
  output(): string;
  /** Stops the registry by PID and deletes its storage. */
  stop(): Promise<void>;
}

async function answers(address: string): Promise<boolean> {
  try {
    const response = await fetch(`http://${address}/v2/`);
    return response.status === 200;
  } catch {
    return false;
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startRegistry(binary = 'docker-registry'): Promise<TestRegistry> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-registry-'));
  const address = `127.0.0.1:${await freePort()}`;
  const config = path.join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${address}`,
      '',
    ].join('\n'),
  );
  const child = spawn(binary, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(
        new Error(`cannot start ${binary} (${error.message}); install it: apt-get install docker-registry`),
      ),
    );
    child.once('exit', (code) => reject(new Error(`${binary} exited with ${code}:\n${output}`)));
  });
  failed.catch(() => {});
  const stop = async () => {
    child.kill('SIGTERM');
    await exited(child);
    await rm(dir, { recursive: true, force: true });
  };
  const ready = (async () => {
    for (let i = 0; i < 200; i++) {
      if (await answers(address)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`${binary} did not answer on ${address}:\n${output}`);
  })();
  try {
    await Promise.race([ready, failed]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { address, output: () => output, stop };
}
