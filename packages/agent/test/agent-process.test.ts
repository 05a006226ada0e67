import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AgentRegistry, JOBS_STREAM } from '@raibid/common';
import { createRepo, waitFor } from '@raibid/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './support/harness.js';

// The agent as a process: one job then exit 0, idle exit, bad configuration, --loop and signals.
let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const pipeline = (body: string) => `version: 1\n${body}`;

describe('agent process', () => {
  it('checks out, runs the steps in order with their env, and records success', async () => {
    const repo = await createRepo(h.reposDir, 'hello', {
      '.raibid.yml': pipeline(`env: { LEVEL: pipeline, FROM_PIPELINE: p }
steps:
  - name: build
    run: |
      echo "building $(cat hello.txt)"
      echo "to stderr" >&2
  - name: show-env
    env: { LEVEL: step }
    run: echo "CI=$CI job=$RAIBID_JOB_ID step=$RAIBID_STEP level=$LEVEL p=$FROM_PIPELINE j=$FROM_JOB redis=\${REDIS_URL:-unset} pwd=$(basename "$PWD")"
`),
      'hello.txt': 'world',
    });
    const queued = await h.enqueue(repo, { env: { FROM_JOB: 'j', LEVEL: 'job' } });
    const agent = await h.agent();
    const exit = await agent.exited;
    const job = (await h.store.get(queued.id))!;
    const events = await h.events(queued.id);
    const text = events.map((e) => e.line).join('\n');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(job.status).toBe('succeeded');
    expect(job.exitCode).toBe(0);
    expect(job.error).toBeNull();
    expect(job.agent).toMatch(/^agent-\d+$/);
    expect(job.steps.map((s) => [s.name, s.status, s.exitCode])).toEqual([
      ['build', 'succeeded', 0],
      ['show-env', 'succeeded', 0],
    ]);
    for (const step of job.steps) {
      expect(Date.parse(step.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(step.startedAt!));
    }
    expect(events).toContainEqual(
      expect.objectContaining({ stream: 'stdout', step: 'build', line: 'building world' }),
    );
    expect(events).toContainEqual(
      expect.objectContaining({ stream: 'stderr', step: 'build', line: 'to stderr' }),
    );
    const envLine = events.find((e) => e.step === 'show-env' && e.stream === 'stdout')!.line;
    expect(envLine).toMatch(
      new RegExp(`^CI=true job=${job.id} step=show-env level=step p=p j=j redis=unset pwd=raibid-${job.id}-`),
    );
    expect(text).toMatch(/\[raibid\] cloning http:\/\/127\.0\.0\.1:\d+\/hello\.git at main/);
    expect(text).toContain('[raibid] pipeline .raibid.yml: 2 steps (build, show-env), job timeout 1h');
    expect(text).toMatch(/\[raibid\] step build: exit 0 after \d+\.\ds/);
    expect(text).toMatch(/\[raibid\] job succeeded in \d+\.\ds$/);
    expect(await h.workspaces(job.id)).toEqual([]);
    expect(await new AgentRegistry(h.client).list()).toEqual([]); // removed on a clean exit
    expect(agent.output()).toContain('"msg":"agent exiting"');
  });

  it('exits 0 when no job arrives within AGENT_IDLE_TIMEOUT', async () => {
    const agent = await h.agent({ AGENT_IDLE_TIMEOUT: '300ms' });
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    expect(agent.output()).toContain('no job arrived within AGENT_IDLE_TIMEOUT');
  });

  it('exits 2 with one line naming a bad variable or argument', async () => {
    const badEnv = await h.agent({ RAIBID_HEARTBEAT_MS: 'often' });
    expect((await badEnv.exited).code).toBe(2);
    expect(badEnv.output().trim()).toMatch(/^raibid: invalid configuration: RAIBID_HEARTBEAT_MS .*"often"/);
    expect(badEnv.output().trim().split('\n')).toHaveLength(1);
    const badArg = await h.agent({}, ['--forever']);
    expect((await badArg.exited).code).toBe(2);
    expect(badArg.output().trim()).toBe(
      'raibid-agent: unknown argument "--forever"; usage: raibid-agent [--loop] [--pool cpu|gpu]',
    );
  });

  it('--loop runs job after job, reusing the cache directory, and exits 0 on SIGTERM while idle', async () => {
    const repo = await createRepo(h.reposDir, 'cached', {
      '.raibid.yml': pipeline(`steps:
  - name: build
    run: |
      if [ -f "$CARGO_HOME/fetched" ]; then echo "cache hit"; else echo "cache miss"; touch "$CARGO_HOME/fetched"; fi
      echo "npm cache: $npm_config_cache"
      touch "$RAIBID_REPO_CACHE/kept"
`),
    });
    const agent = await h.agent({}, ['--loop']);
    const first = await h.enqueue(repo);
    await h.waitForStatus(first.id, ['succeeded']);
    const second = await h.enqueue(repo);
    await h.waitForStatus(second.id, ['succeeded']);
    const lines = async (id: string) => (await h.events(id)).map((e) => e.line);
    expect(await lines(first.id)).toContain('cache miss');
    expect(await lines(second.id)).toContain('cache hit');
    expect(await lines(second.id)).toContain(`npm cache: ${path.join(h.cacheDir, 'npm')}`);
    expect(await readFile(path.join(h.cacheDir, 'repos', 'test', 'cached', 'kept'), 'utf8')).toBe('');
    // Registered while alive, idle between jobs.
    const listed = await waitFor('the agent to show as idle', async () =>
      (await new AgentRegistry(h.client).list()).find((a) => a.pid === agent.pid && a.jobId === null),
    );
    expect(listed.name).toMatch(/^agent-\d+$/);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    expect(await h.client.xlen(JOBS_STREAM)).toBeGreaterThanOrEqual(2);
  });

  it('--loop claims the next waiting job with the finish of the one before', async () => {
    const repo = await createRepo(h.reposDir, 'queued-up', {
      '.raibid.yml': pipeline('steps:\n  - name: build\n    run: echo built\n'),
    });
    const jobs = [await h.enqueue(repo), await h.enqueue(repo), await h.enqueue(repo)];
    const agent = await h.agent({}, ['--loop']);
    for (const job of jobs) await h.waitForStatus(job.id, ['succeeded']);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    const ended = agent
      .output()
      .split('\n')
      .filter((line) => line.includes('"msg":"job ended"'))
      .map((line) => JSON.parse(line) as { jobId: string; nextJobId?: string });
    expect(ended.map((e) => [e.jobId, e.nextJobId])).toEqual([
      [jobs[0]!.id, jobs[1]!.id],
      [jobs[1]!.id, jobs[2]!.id],
      [jobs[2]!.id, undefined],
    ]);
  });
});
