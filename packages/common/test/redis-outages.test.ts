import { Writable } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createLogger, createRedis, logRedisOutages } from '../src/index.js';
import { startRedis, waitFor } from './support/index.js';

describe('logRedisOutages', () => {
  it('logs one warning per outage, not one per reconnect attempt, and one line when Redis is back', async () => {
    const records: { level: number; msg: string }[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        records.push(JSON.parse(chunk.toString()));
        done();
      },
    });
    const logger = createLogger({ name: 'outage-test', level: 'debug', destination });
    const redis = await startRedis();
    onTestFinished(() => redis.stop());
    const connection = createRedis(redis.url, { retryStrategy: () => 20 });
    onTestFinished(() => connection.disconnect());
    logRedisOutages(connection, logger, 'test');
    expect(await connection.ping()).toBe('PONG');

    await redis.down();
    await waitFor('several failed reconnects', () => records.filter((r) => r.level === 20).length >= 3);
    await redis.up();
    await waitFor('Redis back', () => records.some((r) => r.msg === 'redis reachable again'));
    expect(await connection.ping()).toBe('PONG');

    const shown = records.filter((r) => r.level >= 30).map((r) => r.msg);
    expect(shown).toEqual(['redis unreachable; retrying', 'redis reachable again']);
  });
});
