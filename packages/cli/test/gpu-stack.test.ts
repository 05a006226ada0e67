// The GPU pool on the local stack, end to end (no GPU on these machines: a stand-in nvidia-smi
// plays one): `raibid dev` with nvidia-smi answering runs GPU agents for `runs-on: gpu` jobs;
// without it a GPU job waits and says why in the API, the CLI and the job's log; a broken
// pipeline file ends `error` before any agent starts.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { nvidiaSmiStandIn, STAND_IN_GPU, waitFor } from '@raibid/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/dev/redis.js';
import { runCli } from './support/cli.js';
import { makeRepo, type TestRepo } from './support/git.js';
import { isAlive } from './support/processes.js';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const STARTUP_MS = 90_000;

interface Stack {
  apiUrl: string;
  lines: string[];
  matching(pattern: RegExp): string[];
  stop(): Promise<void>;
}

/** `raibid dev` in its own process group with `path` first on PATH; resolves once it is ready. */
async function startStack(dataDir: string, pathFirst: string | null): Promise<Stack> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NO_COLOR: '1',
    AGENT_IDLE_TIMEOUT: '3s',
    CUDA_VISIBLE_DEVICES: '0',
    PATH: pathFirst ? `${pathFirst}:${process.env.PATH}` : process.env.PATH,
  };
  for (const name of ['REDIS_URL', 'RAIBID_API_TOKEN', 'PORT', 'METRICS_PORT', 'HOST', 'RAIBID_URL']) {
    delete env[name];
  }
  const args = ['--import', 'tsx', MAIN, 'dev', '--port', String(port), '--metrics-port'];
  args.push(String(await freePort()), '--polling-interval', '250ms', '--data-dir', dataDir);
  const child: ChildProcess = spawn(process.execPath, args, {
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const lines: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => lines.push(line.slice(9)));
  }
  const matching = (pattern: RegExp) => lines.filter((line) => pattern.test(line));
  await waitFor(
    // The banner's last line: its lines may arrive in more than one chunk.
    'the ready banner',
    () => {
      if (child.exitCode !== null) throw new Error(`raibid dev exited:\n${lines.join('\n')}`);
      return matching(/try: pnpm raibid submit/).length > 0;
    },
    STARTUP_MS,
    50,
  );
  return {
    apiUrl: `http://localhost:${port}`,
    lines,
    matching,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGINT');
      await exited;
      await waitFor('the process group to be empty', () => !isAlive(-child.pid!));
    },
  };
}

const pipeline = (runsOn: string, run: string) =>
  `version: 1\nruns-on: ${runsOn}\nsteps:\n  - name: run\n    run: ${run}\n`;

let tmp: string;
const repos: TestRepo[] = [];
async function checkout(files: Record<string, string>, name: string): Promise<TestRepo> {
  const repo = await makeRepo(files, name);
  repos.push(repo);
  return repo;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'raibid-gpu-stack-'));
});
afterAll(async () => {
  await Promise.all(repos.map((repo) => repo.remove()));
  await rm(tmp, { recursive: true, force: true });
});

describe('raibid dev where nvidia-smi answers (a stand-in)', { timeout: 120_000 }, () => {
  let stack: Stack;
  let standIn: string;
  beforeAll(async () => {
    standIn = await nvidiaSmiStandIn();
    stack = await startStack(path.join(tmp, 'with-gpu'), standIn);
  }, STARTUP_MS + 10_000);
  afterAll(async () => {
    await stack?.stop();
    await rm(standIn, { recursive: true, force: true });
  });

  it('routes a runs-on: gpu checkout to the GPU pool and runs it on a GPU agent that reports the GPU', async () => {
    expect(stack.matching(/^dev +│ {3}GPU {6}/), stack.lines.join('\n')).toEqual([
      `dev      │   GPU      up to 1 GPU agent on ${STAND_IN_GPU.name} (runs-on: gpu)`,
    ]);
    const repo = await checkout(
      { '.raibid.yml': pipeline('gpu', 'nvidia-smi -L && echo "devices=$CUDA_VISIBLE_DEVICES"') },
      'cuda-app',
    );
    const env = { RAIBID_URL: stack.apiUrl };
    const run = await runCli(['submit', '--wait'], { env, cwd: repo.dir });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(
      `[raibid] routed to the gpu pool: .raibid.yml at ${repo.sha} says runs-on: gpu`,
    );
    expect(run.stdout).toContain(
      `[raibid] GPU 0: ${STAND_IN_GPU.name}, driver ${STAND_IN_GPU.driver}, memory ${STAND_IN_GPU.memory}`,
    );
    expect(run.stdout).toContain(`GPU 0: ${STAND_IN_GPU.name} (UUID:`);
    expect(run.stdout).toContain('devices=0');
    const id = /queued job (\S+)/.exec(run.stderr)![1]!;
    const job = JSON.parse((await runCli(['show', id, '--json'], { env })).stdout);
    expect(job).toMatchObject({ status: 'succeeded', pool: 'gpu' });
    expect(job.agent).toMatch(/^raibid-agent-gpu-[0-9a-f]{6}-1$/);
    expect(stack.matching(/^scaler-gpu │ started gpu-agent-1 /)).toHaveLength(1);

    // A CPU job on the same stack goes to a CPU agent.
    const plain = await checkout({ '.raibid.yml': pipeline('cpu', 'echo plain') }, 'plain-app');
    const cpu = await runCli(['submit', '--wait', '--json'], { env, cwd: plain.dir });
    expect(cpu.code, cpu.stderr).toBe(0);
    const cpuJob = JSON.parse(cpu.stdout);
    expect(cpuJob).toMatchObject({ status: 'succeeded', pool: 'cpu' });
    expect(cpuJob.agent).toMatch(/^raibid-agent-[0-9a-f]{6}-\d+$/);
  });
});

describe('raibid dev without a GPU', { timeout: 120_000 }, () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(path.join(tmp, 'no-gpu'), null);
  }, STARTUP_MS + 10_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('keeps a GPU job queued and says why: in the API, raibid queue, raibid show and the job log', async () => {
    const reason = 'no GPU agent on this machine (nvidia-smi not found)';
    expect(stack.matching(/^dev +│ {3}GPU {6}/)).toEqual([
      `dev      │   GPU      none: ${reason}; runs-on: gpu jobs stay queued`,
    ]);
    const repo = await checkout({ '.raibid.yml': pipeline('gpu', 'echo never') }, 'cuda-app');
    const env = { RAIBID_URL: stack.apiUrl };
    const submitted = await runCli(['submit', '--json'], { env, cwd: repo.dir });
    expect(submitted.code, submitted.stderr).toBe(0);
    const id = JSON.parse(submitted.stdout).id as string;

    const log = await waitFor('the waiting line in the job log', async () => {
      const logs = await runCli(['logs', id], { env });
      return logs.stdout.includes('[raibid] waiting:') ? logs.stdout : null;
    });
    expect(log).toContain(`[raibid] waiting: ${reason}. It stays queued until a GPU agent runs`);
    expect(stack.matching(/^scaler-gpu │ job \S+ waits: no GPU agent on this machine/)).toHaveLength(1);

    const queue = (await (await fetch(`${stack.apiUrl}/api/v1/queue`)).json()) as { pools: unknown };
    expect((queue.pools as Record<string, unknown>).gpu).toEqual({ lag: 1, pending: 0, unavailable: reason });
    const printed = await runCli(['queue'], { env });
    expect(printed.stdout).toContain(`waiting: ${reason}`);
    const show = await runCli(['show', id], { env });
    expect(show.stdout).toMatch(/^pool {5}gpu$/m);
    expect(show.stdout).toContain(`waiting  ${reason}`);
    // Still queued after many scaler polls, and no agent was ever started for it.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(JSON.parse((await runCli(['show', id, '--json'], { env })).stdout).status).toBe('queued');
    expect(stack.matching(/started (gpu-)?agent-/)).toEqual([]);
    expect((await runCli(['cancel', id], { env })).code).toBe(0);
  });

  it('ends a broken pipeline file error before queueing: no agent starts', async () => {
    const repo = await checkout(
      { '.raibid.yml': 'version: 1\nruns-on: gpus\nsteps:\n  - name: a\n    run: "true"\n' },
      'broken-app',
    );
    const env = { RAIBID_URL: stack.apiUrl };
    const run = await runCli(['submit', '--wait'], { env, cwd: repo.dir });
    expect(run.code).not.toBe(0);
    expect(run.stdout).toContain('[raibid] .raibid.yml:2: runs-on: must be "cpu" or "gpu"');
    const id = /queued job (\S+)|job (\S+)/.exec(run.stderr)?.slice(1).find(Boolean);
    const job = JSON.parse((await runCli(['show', id!, '--json'], { env })).stdout);
    expect(job).toMatchObject({ status: 'error', agent: null, attempts: 0 });
    expect(job.error).toMatch(/^invalid pipeline file: \.raibid\.yml:2: runs-on: must be "cpu" or "gpu"/);
    expect(stack.matching(/started (gpu-)?agent-/)).toEqual([]);
  });
});
