// A warm agent on the local stack, end to end: `raibid dev --warm-agents 1` starts one agent with
// an empty queue and it waits on the stream. The scaler polls once an hour here, so after its first
// check it starts nothing more: a job can only run if the warm agent was already waiting for it.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@raibid/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/dev/redis.js';
import { runCli } from './support/cli.js';
import { makeRepo, type TestRepo } from './support/git.js';
import { isAlive } from './support/processes.js';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const STARTUP_MS = 90_000;

let tmp: string;
let repo: TestRepo;
let child: ChildProcess;
let exited: Promise<unknown>;
let apiUrl: string;
const lines: string[] = [];
const matching = (pattern: RegExp) => lines.filter((line) => pattern.test(line));

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'raibid-warm-stack-'));
  repo = await makeRepo(
    { '.raibid.yml': 'version: 1\nsteps:\n  - name: hi\n    run: echo warm hello\n' },
    'warm',
  );
  const port = await freePort();
  apiUrl = `http://localhost:${port}`;
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  for (const name of ['REDIS_URL', 'RAIBID_API_TOKEN', 'PORT', 'METRICS_PORT', 'HOST', 'RAIBID_URL']) {
    delete env[name];
  }
  delete env.AGENT_IDLE_TIMEOUT;
  const args = ['--import', 'tsx', MAIN, 'dev', '--port', String(port), '--metrics-port'];
  args.push(String(await freePort()), '--polling-interval', '1h', '--warm-agents', '1');
  args.push('--data-dir', path.join(tmp, 'data'));
  child = spawn(process.execPath, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  exited = new Promise((resolve) => child.once('exit', resolve));
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => lines.push(line.slice(9)));
  }
  await waitFor(
    'the warm agent to wait on the stream',
    () => {
      if (child.exitCode !== null) throw new Error(`raibid dev exited:\n${lines.join('\n')}`);
      return matching(/^agent-1 +│ agent started /).length > 0;
    },
    STARTUP_MS,
    50,
  );
}, STARTUP_MS + 10_000);

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    process.kill(-child.pid!, 'SIGINT');
    await exited;
    await waitFor('the process group to be empty', () => !isAlive(-child.pid!));
  }
  await repo?.remove();
  await rm(tmp, { recursive: true, force: true });
});

describe('raibid dev --warm-agents 1', { timeout: 60_000 }, () => {
  it('keeps one agent waiting with an empty queue, with the warm idle timeout', () => {
    expect(matching(/^dev +│ {3}warm /)).toEqual([
      'dev      │   warm     1 agent kept waiting for a job (minReplicaCount; a busy one is replaced once it exits)',
    ]);
    expect(matching(/^scaler +│ /)).toEqual([
      expect.stringMatching(
        /^scaler +│ lag 0, 0 running \(0 not started\) → starting 1 agent \(accurate, max 4, min 1 kept waiting\)$/,
      ),
      expect.stringMatching(/^scaler +│ started agent-1 \(pid \d+, consumer raibid-agent-[0-9a-f]{6}-1\)$/),
    ]);
    expect(matching(/^agent-1 +│ agent started /)[0]).toContain('idleTimeoutMs=3600000');
  });

  it('runs a job submitted later on the agent that was already waiting', async () => {
    const run = await runCli(['submit', '--wait', '--json'], { env: { RAIBID_URL: apiUrl }, cwd: repo.dir });
    expect(run.code, run.stderr).toBe(0);
    const job = JSON.parse(run.stdout);
    expect(job.status).toBe('succeeded');
    expect(job.agent).toMatch(/^raibid-agent-[0-9a-f]{6}-1$/);
    expect(matching(/^scaler +│ started /)).toHaveLength(1);
  });
});
