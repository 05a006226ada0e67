import { fileURLToPath } from 'node:url';
import { AGENTS_GROUP, JOBS_STREAM, JobQueue, JobStore } from '@raibid/common';
import { startRedis, type TestRedis, waitFor } from '@raibid/common/testing';
import type { Redis } from 'ioredis';
import pc from 'picocolors';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StackOutput } from '../src/dev/output.js';
import { ManagedProcess } from '../src/dev/processes.js';
import { LocalScaler } from '../src/dev/scaler.js';
import { resolveScaledJobSpec, type ScaledJobSpec } from '../src/dev/scaling.js';
import { isAlive } from './support/processes.js';

const FAKE_AGENT = fileURLToPath(new URL('./fixtures/fake-agent.mjs', import.meta.url));

let redis: TestRedis;
let client: Redis;
let queue: JobQueue;
const scalers: LocalScaler[] = [];
let started: ManagedProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  client = redis.client();
  queue = new JobQueue(client, new JobStore(client));
});
afterAll(() => redis.stop());
beforeEach(async () => {
  await redis.flush();
  await queue.ensureGroup();
});
afterEach(async () => {
  await Promise.all(scalers.splice(0).map((scaler) => scaler.stop()));
  for (const child of started) child.kill();
  started = [];
});

function enqueue(count: number) {
  return Promise.all(
    Array.from({ length: count }, () =>
      queue.enqueue({
        repo: { owner: 'o', name: 'r', cloneUrl: '/srv/r' },
        ref: 'main',
        sha: null,
        trigger: 'api',
      }),
    ),
  );
}

/** A scaler whose agents are fake-agent.mjs processes; its log lines are collected. */
function makeScaler(spec: Partial<ScaledJobSpec>, agentEnv: Record<string, string> = {}) {
  const log: string[] = [];
  let output = '';
  const stackOutput = new StackOutput({ write: (text: string) => (output += text) }, pc.createColors(false));
  const scaler = new LocalScaler({
    redis: client,
    spec: resolveScaledJobSpec({ pollingIntervalMs: 60_000, ...spec }),
    stopGraceMs: 5_000,
    log: (line) => log.push(line),
    startAgent: async (index) => {
      const consumer = `test-agent-${index}`;
      const child = await ManagedProcess.start({
        name: `agent-${index}`,
        command: process.execPath,
        args: [FAKE_AGENT],
        env: { ...process.env, REDIS_URL: redis.url, HOSTNAME: consumer, ...agentEnv },
        cwd: process.cwd(),
        output: stackOutput,
      });
      started.push(child);
      return { name: `agent-${index}`, consumer, process: child };
    },
  });
  scalers.push(scaler);
  return { scaler, log, output: () => output };
}

async function consumers(): Promise<Map<string, number>> {
  const reply = (await client.xinfo('CONSUMERS', JOBS_STREAM, AGENTS_GROUP)) as unknown[][];
  return new Map(reply.map((c) => [String(c[c.indexOf('name') + 1]), Number(c[c.indexOf('pending') + 1])]));
}

describe('LocalScaler', () => {
  it('creates agents like KEDA accurate: up to maxReplicaCount, more as agents finish', async () => {
    const { scaler, log } = makeScaler({ maxReplicaCount: 2 }, { FAKE_GO: '1' });
    await enqueue(3);

    const first = await scaler.tick();
    expect(first).toMatchObject({ lag: 3, runningJobs: 0, pendingJobs: 0, started: ['agent-1', 'agent-2'] });
    await waitFor(
      'both agents to claim',
      async () => (await consumers()).size === 2 && [...(await consumers()).values()].every((n) => n === 1),
    );

    // Both hold a job: 1 left in lag, 2 running, 0 pending; accurate: maxScale 1 + 2 running > max 2 → 0.
    const atCap = await scaler.tick();
    expect(atCap).toMatchObject({ lag: 1, runningJobs: 2, pendingJobs: 0, started: [] });
    expect(log).toContain('lag 1, 2 running (0 not started): waiting (at maxReplicaCount 2)');

    // Finished agents are reaped: forgotten, and their consumer removed from the group.
    const pids = scaler.alive.map((agent) => agent.process.pid);
    await client.set('fake:release', '1');
    await waitFor('agents to be reaped', () => scaler.alive.length === 0);
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expect(log.filter((line) => line.startsWith('reaped '))).toHaveLength(2);
    await waitFor('consumers to be removed', async () => (await consumers()).size === 0);

    const next = await scaler.tick();
    expect(next).toMatchObject({ lag: 1, runningJobs: 0, started: ['agent-3'] });
    await waitFor('the last agent to finish', () => scaler.alive.length === 0);
    expect((await scaler.tick()).decision.jobs).toBe(0);
    expect(await scaler.readLag()).toBe(0);
  });

  it('counts a started agent that has not claimed yet as pending, so one entry gets one agent', async () => {
    const { scaler } = makeScaler({ maxReplicaCount: 4 });
    await enqueue(1);
    expect((await scaler.tick()).started).toEqual(['agent-1']);
    // The agent is still starting (it waits for fake:go): lag 1, running 1, pending 1 → 1 - 1 = 0.
    expect(await scaler.tick()).toMatchObject({ lag: 1, runningJobs: 1, pendingJobs: 1, started: [] });
    await client.set('fake:go', '1');
    await waitFor('the agent to claim', async () => (await consumers()).get('test-agent-1') === 1);
    expect(await scaler.tick()).toMatchObject({ lag: 0, runningJobs: 1, pendingJobs: 0, started: [] });
    expect(scaler.alive[0]!.claimed).toBe(true);
  });

  it('minReplicaCount 1 keeps one agent waiting on an empty queue, and replaces it only once it has exited', async () => {
    const { scaler, log } = makeScaler({ minReplicaCount: 1 }, { FAKE_GO: '1' });
    // Nothing queued: KEDA's executor tops up to minReplicaCount before any strategy.
    const warm = await scaler.tick();
    expect(warm).toMatchObject({ lag: 0, runningJobs: 0, started: ['agent-1'] });
    expect(warm.decision).toMatchObject({ active: true, minReplicaCount: 1, jobs: 1 });
    expect(log).toContain(
      'lag 0, 0 running (0 not started) → starting 1 agent (accurate, max 4, min 1 kept waiting)',
    );
    expect((await scaler.tick()).started).toEqual([]);

    // The job goes to the agent that was already waiting: no new agent for it.
    await enqueue(1);
    await waitFor('the warm agent to claim', async () => (await consumers()).get('test-agent-1') === 1);
    expect(await scaler.tick()).toMatchObject({ lag: 0, runningJobs: 1, pendingJobs: 0, started: [] });

    // KEDA counts Jobs, not idle agents: a busy warm agent is replaced after it exits, on the next poll.
    await client.set('fake:release', '1');
    await waitFor('the warm agent to be reaped', () => scaler.alive.length === 0);
    await client.del('fake:release');
    expect(await scaler.tick()).toMatchObject({ lag: 0, runningJobs: 0, started: ['agent-2'] });
  });

  it('keeps at most maxReplicaCount warm agents when minReplicaCount is above it, and says the number it keeps', async () => {
    const { scaler, log } = makeScaler({ minReplicaCount: 6, maxReplicaCount: 2 }, { FAKE_GO: '1' });
    expect((await scaler.tick()).started).toEqual(['agent-1', 'agent-2']);
    expect(log).toContain(
      'lag 0, 0 running (0 not started) → starting 2 agents (accurate, max 2, min 2 kept waiting)',
    );
  });

  it('reads lag 0 without a stream and XLEN when the group is missing, as KEDA does', async () => {
    const { scaler } = makeScaler({});
    await client.del(JOBS_STREAM);
    expect(await scaler.readLag()).toBe(0);
    await client.xadd(JOBS_STREAM, '*', 'jobId', 'x');
    await client.xadd(JOBS_STREAM, '*', 'jobId', 'y');
    expect(await scaler.readLag()).toBe(2);
  });

  it('polls on its own and stop() ends every agent it started', async () => {
    const { scaler, log } = makeScaler({ pollingIntervalMs: 50, maxReplicaCount: 3 });
    await enqueue(3);
    scaler.start();
    await waitFor('three agents', () => scaler.alive.length === 3);
    const pids = scaler.alive.map((agent) => agent.process.pid);
    await scaler.stop();
    expect(scaler.alive).toHaveLength(0);
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expect(log.filter((line) => line.startsWith('started agent-'))).toHaveLength(3);
    // Agents stopped before they claimed anything: the jobs are still queued for the next run.
    expect(await scaler.readLag()).toBe(3);
  });

  it('logs an agent that cannot be started and keeps going', async () => {
    const log: string[] = [];
    const scaler = new LocalScaler({
      redis: client,
      spec: resolveScaledJobSpec({ pollingIntervalMs: 60_000 }),
      log: (line) => log.push(line),
      startAgent: () => Promise.reject(new Error('spawn node ENOENT')),
    });
    scalers.push(scaler);
    await enqueue(1);
    expect((await scaler.tick()).started).toEqual([]);
    expect(log).toContain('could not start an agent: spawn node ENOENT');
  });
});
