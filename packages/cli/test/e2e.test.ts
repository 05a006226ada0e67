// The local stack end to end, the way a newcomer uses it: `pnpm dev` (real redis-server child, real
// server, local scaler, real one-job agents), a real git server over smart HTTP and a local checkout,
// jobs submitted and followed with `pnpm raibid`, then Ctrl-C, after which nothing may be left running.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type Job, JobStore } from '@raibid/common';
import { createRepo, type GitHttpServer, startGitHttpServer, waitFor } from '@raibid/common/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/dev/redis.js';
import { makeRepo, type TestRepo } from './support/git.js';
import { isAlive } from './support/processes.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const STARTUP_MS = 90_000;

let tmp: string;
let gate: string;
let stepPidFile: string;
let dataDir: string;
let gitServer: GitHttpServer;
let checkout: TestRepo;
let dev: ChildProcess;
let devExit: Promise<number | null>;
let apiUrl: string;
const lines: string[] = [];

/** The environment of a user's shell, minus anything that would point the stack elsewhere. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...extra };
  for (const name of ['REDIS_URL', 'RAIBID_API_TOKEN', 'PORT', 'METRICS_PORT', 'HOST', 'RAIBID_URL']) {
    if (!(name in extra)) delete env[name];
  }
  return env;
}

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `pnpm raibid <args>` as a user types it, from `cwd` (pnpm -C finds the workspace from anywhere). */
function raibid(args: string[], cwd = ROOT): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      'pnpm',
      ['--silent', '--dir', ROOT, 'raibid', ...args],
      { cwd, env: userEnv({ RAIBID_URL: apiUrl }) },
      (error, stdout, stderr) => {
        const code = error ? Number((error as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function api<T>(urlPath: string): Promise<T> {
  const response = await fetch(`${apiUrl}${urlPath}`);
  if (!response.ok) throw new Error(`GET ${urlPath}: ${response.status}`);
  return (await response.json()) as T;
}

/** Every pid the stack reported starting: redis-server, the server and each agent. */
function reportedPids(): number[] {
  return lines.flatMap((line) => [...line.matchAll(/\(pid (\d+)/g)].map((m) => Number(m[1])));
}

const matching = (pattern: RegExp) => lines.filter((line) => pattern.test(line));

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'raibid-e2e-'));
  gate = path.join(tmp, 'gate');
  stepPidFile = path.join(tmp, 'step.pid');
  dataDir = path.join(tmp, 'data');
  const gitRoot = path.join(tmp, 'git');
  await createRepo(gitRoot, 'acme/widgets', {
    'README.md': 'widgets\n',
    '.raibid.yml':
      'version: 1\nsteps:\n  - name: greet\n    run: echo "hello from widgets" && test -f README.md\n',
  });
  await createRepo(gitRoot, 'acme/forever', {
    '.raibid.yml': `version: 1\nsteps:\n  - name: forever\n    run: echo $$ > ${stepPidFile}; while true; do sleep 0.1; done\n`,
  });
  await createRepo(gitRoot, 'acme/held', {
    '.raibid.yml': `version: 1\nsteps:\n  - name: wait\n    run: while [ ! -e ${gate} ]; do sleep 0.1; done; echo released\n`,
  });
  gitServer = await startGitHttpServer({ root: gitRoot });
  checkout = await makeRepo(
    { '.raibid.yml': 'version: 1\nsteps:\n  - name: fails\n    run: echo "about to fail"; exit 3\n' },
    'my-project',
  );

  const port = await freePort();
  apiUrl = `http://localhost:${port}`;
  dev = spawn(
    'pnpm',
    [
      'dev',
      '--port',
      String(port),
      '--metrics-port',
      String(await freePort()),
      '--max-agents',
      '2',
      '--polling-interval',
      '250ms',
      '--data-dir',
      dataDir,
    ],
    // Its own process group, like a shell job: Ctrl-C is a SIGINT to the whole group.
    {
      cwd: ROOT,
      env: userEnv({ AGENT_IDLE_TIMEOUT: '3s' }),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  devExit = new Promise((resolve) => dev.once('exit', (code) => resolve(code)));
  for (const stream of [dev.stdout!, dev.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => lines.push(line));
  }
  await waitFor(
    // The banner's last line: its lines may arrive in more than one chunk.
    'the ready banner',
    () => {
      if (dev.exitCode !== null) throw new Error(`pnpm dev exited:\n${lines.join('\n')}`);
      return matching(/try: pnpm raibid submit/).length > 0;
    },
    STARTUP_MS,
    50,
  );
}, STARTUP_MS + 10_000);

afterAll(async () => {
  if (dev && dev.exitCode === null && dev.signalCode === null) {
    process.kill(-dev.pid!, 'SIGKILL');
    for (const pid of reportedPids()) if (isAlive(pid)) process.kill(-pid, 'SIGKILL');
  }
  await gitServer?.stop();
  await checkout?.remove();
  await rm(tmp, { recursive: true, force: true });
});

describe('pnpm dev, end to end', { timeout: 120_000 }, () => {
  it('prints the UI and API URLs when ready', () => {
    const banner = lines.slice(lines.findIndex((line) => line.includes('raibid is ready')));
    expect(banner.join('\n')).toContain(`UI       ${apiUrl}`);
    expect(banner.join('\n')).toContain(`API      ${apiUrl}/api/v1`);
    expect(matching(/dev\s+│ started redis-server on redis:\/\/127\.0\.0\.1:\d+ \(pid \d+\)/)).toHaveLength(
      1,
    );
    expect(matching(/dev\s+│ started server \(pid \d+\)/)).toHaveLength(1);
  });

  it('submit --wait runs a repo from the git server and exits 0 with its log', async () => {
    const url = gitServer.url('acme/widgets');
    const run = await raibid(['submit', url, '--wait']);
    expect(run.stdout).toContain('hello from widgets\n');
    expect(run.code, run.stderr).toBe(0);
    const id = /queued job (\S+)/.exec(run.stderr)?.[1];
    expect(run.stderr).toMatch(new RegExp(`✔ job ${id} succeeded in \\S+\\n$`));

    const show = await raibid(['show', id!, '--json']);
    expect(show.code).toBe(0);
    const job = JSON.parse(show.stdout);
    expect(job).toMatchObject({ status: 'succeeded', trigger: 'api', ref: 'main', repo: { cloneUrl: url } });
    expect(job.steps).toEqual([expect.objectContaining({ name: 'greet', status: 'succeeded', exitCode: 0 })]);
    expect(gitServer.requests.length).toBeGreaterThan(0);
  });

  it('submit with no repo builds the local checkout it runs in, and exits 1 when a step fails', async () => {
    const run = await raibid(['submit', '--wait'], checkout.dir);
    expect(run.stdout).toContain('about to fail\n');
    expect(run.code, run.stderr).toBe(1);
    const id = /queued job (\S+)/.exec(run.stderr)?.[1];
    expect(run.stderr).toMatch(new RegExp(`✘ job ${id} failed in \\S+: step fails exited with 3\\n$`));

    const job = JSON.parse((await raibid(['show', id!, '--json'])).stdout);
    expect(job).toMatchObject({
      status: 'failed',
      sha: checkout.sha,
      repo: { owner: 'local', name: 'my-project', cloneUrl: checkout.dir },
    });
    const logs = await raibid(['logs', id!]);
    expect(logs.stdout).toContain('about to fail\n');
  });

  it('the scaler starts agents up to --max-agents like KEDA, then more as agents finish, and reaps them', async () => {
    const url = gitServer.url('acme/held');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const run = await raibid(['submit', url, '--json']);
      expect(run.code, run.stderr).toBe(0);
      ids.push(JSON.parse(run.stdout).id);
    }
    // Two agents hold a job each; the third job waits in the lag: accurate at maxReplicaCount 2.
    await waitFor(
      'two running jobs and one in the lag',
      async () => {
        const queue = await api<{ lag: number; running: number }>('/api/v1/queue');
        return queue.running === 2 && queue.lag === 1;
      },
      60_000,
    );
    await waitFor(
      'the scaler to wait at the cap',
      () => matching(/waiting \(at maxReplicaCount 2\)/).length > 0,
    );
    const queue = await raibid(['queue', '--json']);
    expect(JSON.parse(queue.stdout)).toMatchObject({ lag: 1, running: 2 });

    await writeFile(gate, '');
    await waitFor(
      'the three jobs to succeed',
      async () => {
        const jobs = await Promise.all(ids.map((id) => api<{ status: string }>(`/api/v1/jobs/${id}`)));
        return jobs.every((job) => job.status === 'succeeded');
      },
      60_000,
    );
    const list = JSON.parse((await raibid(['ls', '--json', '--limit', '3'])).stdout);
    expect(list.jobs.map((job: { id: string }) => job.id).sort()).toEqual([...ids].sort());

    // Every agent the scaler started exits after its one job (or its idle timeout) and is reaped.
    await waitFor(
      'every started agent to be reaped',
      () => {
        const started = matching(/scaler\s+│ started agent-\d+/).length;
        return started >= 5 && matching(/scaler\s+│ reaped agent-\d+/).length === started;
      },
      60_000,
    );
    const agentPids = matching(/scaler\s+│ started agent-/).map((line) =>
      Number(/\(pid (\d+)/.exec(line)![1]),
    );
    for (const pid of agentPids) expect(isAlive(pid), `agent pid ${pid}`).toBe(false);
    expect(matching(/scaler\s+│ .*→ starting \d agents?/).length).toBeGreaterThanOrEqual(3);
  });

  it('Ctrl-C mid-job stops everything cleanly, hands the job back, and leaves nothing running', async () => {
    // A job whose step runs until it is killed, and records its pid to prove it was.
    const submitted = await raibid(['submit', gitServer.url('acme/forever'), '--json']);
    const id = JSON.parse(submitted.stdout).id as string;
    const stepPid = await waitFor('the step to start', async () =>
      Number((await readFile(stepPidFile, 'utf8').catch(() => '')) || 0),
    );
    expect(isAlive(stepPid)).toBe(true);

    const pids = reportedPids();
    expect(pids.length).toBeGreaterThanOrEqual(3); // redis, server, the agent running the job (and earlier ones)
    process.kill(-dev.pid!, 'SIGINT');
    // pnpm waits for the stack, then re-raises the SIGINT on itself (pnpm/pnpm#9938): no exit code to check.
    await devExit;
    expect(matching(/dev\s+│ SIGINT: stopping agents, server and Redis/)).toHaveLength(1);
    expect(matching(/agent-\d+\s+│ shutting down signal=SIGTERM/)).toHaveLength(1);
    expect(matching(/dev\s+│ server stopped \(exit code 0\)/)).toHaveLength(1);
    expect(matching(/dev\s+│ redis stopped \(exit code 0\)/)).toHaveLength(1);
    expect(matching(/dev\s+│ stopped; \d+ processes started, none left running$/)).toHaveLength(1);
    for (const pid of [...pids, stepPid]) expect(isAlive(pid), `pid ${pid}`).toBe(false);
    // Nothing stays in the stack's process group either (pnpm and the stack itself exit right after).
    await waitFor('the process group to be empty', () => !isAlive(-dev.pid!));

    // Redis kept everything in its append-only file: the interrupted job is queued again for the next start.
    const job = await readJobFromAof(id);
    expect(job).toMatchObject({ status: 'queued', attempts: 0, agent: null });
  });
});

/** Loads the stack's AOF into a private redis-server and reads one job record from it. */
async function readJobFromAof(id: string): Promise<Job | null> {
  const socket = path.join(tmp, 'aof.sock');
  const redis = spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--unixsocket',
      socket,
      '--dir',
      path.join(dataDir, 'redis'),
      '--appendonly',
      'yes',
      '--save',
      '',
    ],
    { stdio: 'ignore' },
  );
  const client = new Redis({ path: socket, lazyConnect: true, retryStrategy: () => 50 });
  client.on('error', () => {}); // refused until redis-server listens; waited for below
  try {
    await waitFor('the AOF to load', async () => {
      await client.connect().catch(() => {});
      return (await client.ping()) === 'PONG';
    });
    return await new JobStore(client).get(id);
  } finally {
    client.disconnect();
    await new Promise((resolve) => {
      redis.once('exit', resolve);
      redis.kill('SIGTERM');
    });
  }
}
