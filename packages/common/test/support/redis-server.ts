import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

export interface TestRedis {
  /** unix:// URL of the server's socket, for REDIS_URL. */
  url: string;
  socket: string;
  /** A fresh client (closed by stop()). */
  client(): Redis;
  /** Empties every key (between tests). */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a private redis-server on a unix socket in a temp dir (no TCP port, no
 * persistence). Every test file gets its own server, so files run in parallel.
 */
export async function startRedis(): Promise<TestRedis> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-redis-'));
  const socket = path.join(dir, 'redis.sock');
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--unixsocket',
      socket,
      '--unixsocketperm',
      '700',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(
        new Error(
          `cannot start redis-server (${error.message}); install it, e.g. apt-get install redis-server`,
        ),
      ),
    );
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
  });
  const probe = new Redis({
    path: socket,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // Connection refusals are expected until the socket exists: connect() rejects and we retry.
  probe.on('error', () => {});
  const ready = (async () => {
    for (let i = 0; i < 200; i++) {
      try {
        await probe.connect();
        await probe.ping();
        return;
      } catch {
        probe.disconnect();
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
    throw new Error(`redis-server did not come up: ${output}`);
  })();
  await Promise.race([ready, spawnError]);
  spawnError.catch(() => {}); // exits on stop() are expected from here on
  probe.disconnect();

  const clients: Redis[] = [];
  return {
    url: `unix://${socket}`,
    socket,
    client() {
      const client = new Redis({ path: socket, maxRetriesPerRequest: 3 });
      clients.push(client);
      return client;
    },
    async flush() {
      const admin = new Redis({ path: socket });
      await admin.flushall();
      admin.disconnect();
    },
    async stop() {
      for (const client of clients) client.disconnect();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
