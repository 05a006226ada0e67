import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startRedis, waitFor } from '@raibid/common/testing';
import pc from 'picocolors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPinoLine, StackOutput } from '../src/dev/output.js';
import { freePort } from '../src/dev/redis.js';
import { runCli } from './support/cli.js';
import { isAlive } from './support/processes.js';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const plain = pc.createColors(false);

describe('the stack log', () => {
  it('turns pino records into one readable line', () => {
    const record = {
      level: 30,
      time: Date.parse('2025-01-01T12:00:00Z'),
      pid: 1,
      hostname: 'h',
      name: 'raibid-server',
      msg: 'request completed',
      res: { statusCode: 200 },
      responseTime: 12.00217500000008,
      note: 'two words',
    };
    expect(formatPinoLine(JSON.stringify(record), plain)).toEqual({
      time: new Date('2025-01-01T12:00:00Z'),
      text: 'request completed res.statusCode=200 responseTime=12 note="two words"',
    });
    const warn = {
      level: 50,
      time: 0,
      msg: 'agent failed',
      err: { type: 'Error', message: 'boom', stack: 'x' },
    };
    expect(formatPinoLine(JSON.stringify(warn), plain)?.text).toBe('ERROR agent failed err=boom');
  });

  it('leaves other lines as they are', () => {
    expect(formatPinoLine('12853:M 26 Nov Ready to accept connections', plain)).toBeNull();
    expect(formatPinoLine('{"not":"pino"}', plain)).toBeNull();
    expect(formatPinoLine('{broken', plain)).toBeNull();
  });

  it('prefixes every line with the time and its source, aligned', () => {
    let text = '';
    const output = new StackOutput({ write: (chunk: string) => (text += chunk) }, plain);
    output.line('dev', 'hello', plain.bold, new Date(2025, 0, 1, 9, 5, 7));
    output.line('agent-1', 'working', plain.cyan, new Date(2025, 0, 1, 9, 5, 8));
    expect(text).toBe('09:05:07 dev      │ hello\n09:05:08 agent-1  │ working\n');
  });
});

describe('raibid dev start-up errors', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-dev-test-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('says how to install Redis when redis-server is missing, and starts nothing', async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: dir, // no redis-server (node is started by its full path)
      NO_COLOR: '1',
      PORT: String(await freePort()),
      METRICS_PORT: String(await freePort()),
    };
    delete env.REDIS_URL;
    const failure = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', MAIN, 'dev', '--data-dir', dir],
      {
        env,
      },
    ).catch((error: { code: number; stdout: string }) => error);
    expect(failure).toMatchObject({ code: 1 });
    const lines = (failure as { stdout: string }).stdout.trimEnd().split('\n');
    expect(lines.map((line) => line.slice(9))).toEqual([
      'dev      │ redis-server was not found on PATH; install Redis 7 or later (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis), or set REDIS_URL to a running Redis 7+',
      'dev      │ stopped; 0 processes started, none left running',
    ]);
  });

  it('refuses bad options with exit 2 before starting anything', async () => {
    expect(await runCli(['dev', '--max-agents', '-1'])).toMatchObject({
      code: 2,
      stderr: 'raibid: --max-agents must be a non-negative integer, got -1\n',
    });
    expect(await runCli(['dev', '--max-gpu-agents', '1.5'])).toMatchObject({
      code: 2,
      stderr: 'raibid: --max-gpu-agents must be a non-negative integer, got 1.5\n',
    });
    expect(await runCli(['dev', '--warm-agents', '-2'])).toMatchObject({
      code: 2,
      stderr: 'raibid: --warm-agents must be a non-negative integer, got -2\n',
    });
    expect(await runCli(['dev', '--polling-interval', 'soon'])).toMatchObject({
      code: 2,
      stderr: 'raibid: --polling-interval "soon" is not a duration such as 5s or 500ms\n',
    });
    expect(await runCli(['dev', '--port', '99999'])).toMatchObject({
      code: 2,
      stderr: 'raibid: --port must be a port number, got "99999"\n',
    });
  });
});

/** Starts `raibid dev` in its own process group, sends SIGINT once `when` matches a line, returns what it said. */
async function interruptDuringStartup(when: RegExp, extraEnv: Record<string, string>, dataDir: string) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NO_COLOR: '1',
    PORT: String(await freePort()),
    METRICS_PORT: String(await freePort()),
    ...extraEnv,
  };
  if (!extraEnv.REDIS_URL) delete env.REDIS_URL;
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'dev', '--data-dir', dataDir], {
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let sent = false;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    if (!sent && when.test(line)) {
      sent = true;
      process.kill(-child.pid!, 'SIGINT');
    }
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const pids = lines.flatMap((line) => [...line.matchAll(/\(pid (\d+)/g)].map((m) => Number(m[1])));
  return { code, lines: lines.map((line) => line.slice(9)), pids, group: child.pid! };
}

describe('Ctrl-C while the stack starts', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-dev-stop-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('stops the redis-server it just started, and exits 0', async () => {
    const run = await interruptDuringStartup(/started redis-server/, {}, dir);
    expect(run.code).toBe(0);
    expect(run.lines).toContain(
      'dev      │ SIGINT: stopping agents, server and Redis (SIGINT again to kill them at once)',
    );
    expect(run.lines.at(-1)).toMatch(/^dev {6}│ stopped; [12] process(es)? started, none left running$/);
    expect(run.pids.length).toBeGreaterThanOrEqual(1);
    for (const pid of run.pids) expect(isAlive(pid)).toBe(false);
    await waitFor('the process group to be empty', () => !isAlive(-run.group));
  });

  it('with REDIS_URL, stops the server it started and leaves that Redis alone', async () => {
    const redis = await startRedis();
    try {
      const run = await interruptDuringStartup(/started server/, { REDIS_URL: redis.url }, dir);
      expect(run.code).toBe(0);
      expect(run.lines[0]).toBe(`dev      │ using Redis at ${redis.url} (REDIS_URL)`);
      expect(run.lines.at(-1)).toBe('dev      │ stopped; 1 process started, none left running');
      expect(run.pids).toHaveLength(1);
      expect(isAlive(run.pids[0]!)).toBe(false);
      expect(await redis.client().ping()).toBe('PONG');
    } finally {
      await redis.stop();
    }
  });
});
