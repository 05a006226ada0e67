import { Redis, type RedisOptions } from 'ioredis';

/**
 * Opens a Redis connection from REDIS_URL (`redis://`, `rediss://`, `unix:///path`
 * or a bare socket path). Commands issued while disconnected wait for the
 * reconnect instead of failing at once, up to `maxRetriesPerRequest` times.
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
