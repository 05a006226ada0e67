import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, createRedis, logRedisOutages } from '../src/index.js';
import { waitFor } from './support/index.js';

let dir: string;
let socket: string;
const servers: ChildProcess[] = [];

function startServer(): ChildProcess {
  const child = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--save', '', '--dir', dir], {
    stdio: 'ignore',
  });
  servers.push(child);
  return child;
}

async function stopServer(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-outage-'));
  socket = path.join(dir, 'redis.sock');
});
afterAll(async () => {
  for (const child of servers)
    if (child.exitCode === null && child.signalCode === null) await stopServer(child);
  await rm(dir, { recursive: true, force: true });
});

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
    let server = startServer();
    await waitFor('the socket', () => existsSync(socket));
    const connection = createRedis(`unix://${socket}`, { retryStrategy: () => 20 });
    logRedisOutages(connection, logger, 'test');
    await waitFor('the connection', async () => (await connection.ping().catch(() => null)) === 'PONG');

    await stopServer(server);
    await waitFor('several failed reconnects', () => records.filter((r) => r.level === 20).length >= 3);
    server = startServer();
    await waitFor('Redis back', () => records.some((r) => r.msg === 'redis reachable again'));
    expect(await connection.ping()).toBe('PONG');

    const shown = records.filter((r) => r.level >= 30).map((r) => r.msg);
    expect(shown).toEqual(['redis unreachable; retrying', 'redis reachable again']);
    connection.disconnect();
  });
});
