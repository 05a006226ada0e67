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
  /**
   * Stops the server process (an outage); clients keep trying to reconnect. SIGTERM
   * (default) shuts down cleanly; SIGKILL is a crash (with `aof`, what was fsynced survives).
   */
  down(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts the server again on the same socket after down(): empty, or from its AOF with `aof`. */
  up(): Promise<void>;
  /** The server process's pid (changes with every up()). */
  pid(): number;
  stop(): Promise<void>;
}

export interface TestRedisOptions {
  /**
   * Persist every write to an append-only file (fsync always), as a Redis restarted by
   * Kubernetes comes back: down() then up() keeps the data, the pending entries and their idle times.
   */
  aof?: boolean;
}

/** Starts redis-server on `socket` and resolves once it answers PING. */
async function launch(dir: string, socket: string, aof: boolean): Promise<ChildProcess> {
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
      aof ? 'yes' : 'no',
      '--appendfsync',
      'always',
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

async function terminate(child: ChildProcess, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

/**
 * Starts a private redis-server on a unix socket in a temp dir (no TCP port; no
 * persistence unless `aof`). Every test file gets its own server, so files run in parallel.
 */
export async function startRedis(options: TestRedisOptions = {}): Promise<TestRedis> {
  const aof = options.aof ?? false;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-redis-'));
  const socket = path.join(dir, 'redis.sock');
  let child = await launch(dir, socket, aof);
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
    down: (signal) => terminate(child, signal),
    async up() {
      child = await launch(dir, socket, aof);
    },
    pid: () => child.pid!,
    async stop() {
      for (const client of clients) client.disconnect();
      await terminate(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
