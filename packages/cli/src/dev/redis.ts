import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { createRedis } from '@raibid/common';
import { StackError } from './errors.js';
import type { StackOutput } from './output.js';
import { ManagedProcess } from './processes.js';

const MIN_REDIS_MAJOR = 7;
const INSTALL_HINT =
  'install Redis 7 or later (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis), ' +
  'or set REDIS_URL to a running Redis 7+';

export interface StackRedis {
  url: string;
  /** The redis-server the stack started, or null when REDIS_URL was given. */
  process: ManagedProcess | null;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject()));
    });
  });
}

function majorVersion(text: string): number | null {
  const match = /v=(\d+)\.|redis_version:(\d+)\./.exec(text);
  return match ? Number(match[1] ?? match[2]) : null;
}

/** Waits until Redis at `url` answers PING, then checks it is new enough for consumer-group lag. */
async function waitForRedis(url: string, timeoutMs: number, exited?: Promise<unknown>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void exited?.then(() => {
    gone = true;
  });
  let lastError = '';
  while (!gone && Date.now() < deadline) {
    const client = createRedis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => {}); // connect() rejects with the same error; retried below
    try {
      await client.connect();
      const info = await client.info('server');
      const major = majorVersion(info);
      if (major !== null && major < MIN_REDIS_MAJOR) {
        throw new StackError(
          `Redis at ${url} is version ${major}; raibid needs ${MIN_REDIS_MAJOR}+ (${INSTALL_HINT})`,
        );
      }
      return;
    } catch (error) {
      if (error instanceof StackError) throw error;
      lastError = error instanceof Error ? error.message : String(error);
    } finally {
      client.disconnect();
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (gone) throw new StackError('redis-server exited while starting; see its output above');
  throw new StackError(`cannot connect to Redis at ${url} (${lastError}); is it running?`);
}

/**
 * Redis for the stack: REDIS_URL when set; otherwise a redis-server child (just spawned, see
 * redisReady) on a free port of 127.0.0.1, persisting to an append-only file in `<dataDir>/redis`
 * so jobs survive restarts.
 */
export async function startStackRedis(options: {
  env: NodeJS.ProcessEnv;
  dataDir: string;
  output: StackOutput;
}): Promise<StackRedis> {
  const given = options.env.REDIS_URL?.trim();
  if (given) return { url: given, process: null };

  let version: string;
  try {
    ({ stdout: version } = await promisify(execFile)('redis-server', ['--version'], { encoding: 'utf8' }));
  } catch (error) {
    if (error && typeof error === 'object' && 'code' in error && error.code === 'ENOENT') {
      throw new StackError(`redis-server was not found on PATH; ${INSTALL_HINT}`);
    }
    throw error;
  }
  const major = majorVersion(version);
  if (major !== null && major < MIN_REDIS_MAJOR) {
    throw new StackError(
      `redis-server is version ${major}; raibid needs ${MIN_REDIS_MAJOR}+: ${INSTALL_HINT}`,
    );
  }

  const dir = path.join(options.dataDir, 'redis');
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const child = await ManagedProcess.start({
    name: 'redis',
    command: 'redis-server',
    args: [
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--save',
      '',
      '--loglevel',
      'warning',
    ],
    env: options.env,
    cwd: dir,
    output: options.output,
    color: options.output.colors.red,
  });
  return { url: `redis://127.0.0.1:${port}`, process: child };
}

/**
 * Resolves when the stack's Redis answers and is 7+; fails with one line otherwise (and at once when
 * the redis-server child exits). The caller stops the child.
 */
export function redisReady(redis: StackRedis): Promise<void> {
  return redis.process
    ? waitForRedis(redis.url, 10_000, redis.process.exited)
    : waitForRedis(redis.url, 5_000);
}
