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
  /** Stops the server process (an outage); clients keep trying to reconnect. */
  down(): Promise<void>;
  /** Starts a new, empty server on the same socket after down(). */
  up(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts redis-server on `socket` and resolves once it answers PING. */
async function launch(dir: string, socket: string): Promise<ChildProcess> {
  const child = spawn(
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
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
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
  try {
    await Promise.race([ready, spawnError]);
  } finally {
    probe.disconnect();
  }
  spawnError.catch(() => {}); // exits on down()/stop() are expected from here on
  return child;
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/**
 * Starts a private redis-server on a unix socket in a temp dir (no TCP port, no
 * persistence). Every test file gets its own server, so files run in parallel.
 */
export async function startRedis(): Promise<TestRedis> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-redis-'));
  const socket = path.join(dir, 'redis.sock');
  let child = await launch(dir, socket);
  const clients: Redis[] = [];
  return {
    url: `unix://${socket}`,
    socket,
    client() {
      const client = new Redis({ path: socket, maxRetriesPerRequest: 3 });
      // While the server is down() every reconnect attempt emits an error; commands still reject.
      client.on('error', () => {});
      clients.push(client);
      return client;
    },
    async flush() {
      const admin = new Redis({ path: socket });
      await admin.flushall();
      admin.disconnect();
    },
    down: () => terminate(child),
    async up() {
      child = await launch(dir, socket);
    },
    async stop() {
      for (const client of clients) client.disconnect();
      await terminate(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
