import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pc from 'picocolors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPinoLine, StackOutput } from '../src/dev/output.js';
import { freePort } from '../src/dev/redis.js';
import { runCli } from './support/cli.js';

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
