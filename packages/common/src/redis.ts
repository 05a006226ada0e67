import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

/**
 * Opens a Redis connection from REDIS_URL (`redis://`, `rediss://`, `unix:///path`
 * or a bare socket path). Commands issued while disconnected wait for the
 * reconnect instead of failing at once, up to `maxRetriesPerRequest` reconnect
 * attempts (20 ≈ 10 s); `null` waits for as long as the outage lasts.
 */
export function createRedis(url: string, options: RedisOptions = {}): Redis {
  const base: RedisOptions = { maxRetriesPerRequest: 20, enableAutoPipelining: false, ...options };
  if (url.startsWith('unix://')) return new Redis({ ...base, path: url.slice('unix://'.length) });
  if (url.startsWith('/')) return new Redis({ ...base, path: url });
  return new Redis(url, base);
}

/** Compares two stream ids (`ms-seq`). */
export function compareStreamIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map(BigInt);
  const [bm = 0n, bs = 0n] = b.split('-').map(BigInt);
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}

/** Flat `[k1, v1, k2, v2]` stream fields → object. */
export function fieldsToObject(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
  return out;
}

/**
 * Logs a connection's outages, not its every reconnect attempt: one warning when it
 * is lost (or cannot connect at start), debug lines while ioredis retries, and one
 * line when it is back. Without this ioredis emits an error per attempt.
 */
export function logRedisOutages(connection: Redis, logger: Logger, name: string): void {
  let down = false;
  connection.on('error', (error: Error) => {
    if (down) {
      logger.debug({ connection: name, error: error.message }, 'redis still unreachable');
      return;
    }
    down = true;
    logger.warn({ connection: name, error: error.message }, 'redis unreachable; retrying');
  });
  connection.on('ready', () => {
    if (!down) return;
    down = false;
    logger.info({ connection: name }, 'redis reachable again');
  });
}

/**
 * Closes a connection: QUIT when connected (replies to earlier commands still
 * arrive), else just drop it (QUIT would wait for a reconnect that may never come).
 */
export async function closeRedis(connection: Redis): Promise<void> {
  if (connection.status === 'ready') {
    try {
      await connection.quit();
      return;
    } catch {
      // Lost while quitting: nothing left to close gracefully.
    }
  }
  connection.disconnect();
}
