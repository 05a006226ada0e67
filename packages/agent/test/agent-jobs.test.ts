import { commitFiles, createRepo, waitFor } from '@raibid/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentProcess } from './support/agent-process.js';
import { type Harness, startHarness } from './support/harness.js';
import { processesInGroup } from './support/processes.js';

// What a job does, run by one `--loop` agent serving the whole file (as in the local stack).
let h: Harness;
let agent: AgentProcess;

beforeAll(async () => {
  h = await startHarness();
  agent = await h.agent({}, ['--loop']);
});
afterAll(async () => {
  agent?.child.kill('SIGTERM');
  await agent?.exited;
  await h?.close();
});

const FINAL = ['succeeded', 'failed', 'cancelled', 'error'] as const;

/** Enqueues a job for a new repo of `files` and waits for its final state. */
async function runOne(files: Parameters<typeof createRepo>[2], jobEnv: Record<string, string> = {}) {
  const repo = await createRepo(h.reposDir, `repo-${Math.random().toString(36).slice(2, 8)}`, files);
  const queued = await h.enqueue(repo, { env: jobEnv });
  const job = await h.waitForStatus(queued.id, [...FINAL]);
  const events = await h.events(queued.id);
  const text = events.map((e) => e.line).join('\n');
  return { repo, job, events, text };
}

const pipeline = (body: string) => `version: 1\n${body}`;

describe('agent: jobs', () => {
  it('checks out the exact sha of the job, not the branch tip', async () => {
    const repo = await createRepo(h.reposDir, 'pinned', {
      '.raibid.yml': pipeline('steps:\n  - name: show\n    run: cat v.txt; echo "sha=$RAIBID_SHA"\n'),
      'v.txt': 'first\n',
    });
    await commitFiles(repo, { 'v.txt': 'second\n' });
    const queued = await h.enqueue(repo, { sha: repo.commits[0]! });
    await h.waitForStatus(queued.id, [...FINAL]);
    const text = (await h.events(queued.id)).map((e) => e.line);
    expect(text).toContain('first');
    expect(text).toContain(`sha=${repo.commits[0]}`);
  });

  it('records the commit it checked out on a job submitted by ref', async () => {
    const { repo, job } = await runOne({
      '.raibid.yml': pipeline('steps:\n  - { name: ok, run: "true" }\n'),
    });
    expect(job.status).toBe('succeeded');
    expect(job.sha).toBe(repo.commits[repo.commits.length - 1]);
  });

  it('fails the job at a failing step, keeps its exit code and skips the rest', async () => {
    const { job, text } = await runOne({
      '.raibid.yml': pipeline(`steps:
  - { name: ok, run: "true" }
  - { name: test, run: "echo boom; exit 3" }
  - { name: deploy, run: "echo must not run" }
`),
    });
    expect(job.status).toBe('failed');
    expect(job.exitCode).toBe(3);
    expect(job.error).toBe('step test exited with 3');
    expect(job.steps.map((s) => [s.name, s.status, s.exitCode])).toEqual([
      ['ok', 'succeeded', 0],
      ['test', 'failed', 3],
      ['deploy', 'skipped', null],
    ]);
    expect(text).not.toContain('must not run');
    expect(text).toMatch(/\[raibid\] step test: exit 3 after \d+\.\ds/);
    expect(text).toContain('[raibid] step deploy: skipped (step test failed)');
    expect(text).toMatch(/\[raibid\] job failed in .*: step test exited with 3/);
  });

  it('stops a step at its timeout and fails the job', async () => {
    const { job, events, text } = await runOne({
      '.raibid.yml': pipeline(`steps:
  - name: slow
    timeout: 1s
    run: echo started; sleep 30; echo never
  - { name: after, run: "true" }
`),
    });
    expect(job.status).toBe('failed');
    expect(job.exitCode).toBe(124);
    expect(job.error).toBe('step slow timed out after 1s');
    expect(job.steps.map((s) => s.status)).toEqual(['failed', 'skipped']);
    const output = events.filter((e) => e.stream === 'stdout').map((e) => e.line);
    expect(output).toEqual(['started']);
    expect(text).toMatch(/\[raibid\] step slow: timed out, stopped after \d+\.\ds \(exit 124\)/);
  });

  it('applies the pipeline timeout to the whole job', async () => {
    const { job } = await runOne({
      '.raibid.yml': pipeline('timeout: 1s\nsteps:\n  - { name: forever, run: "sleep 30" }\n'),
    });
    expect(job.status).toBe('failed');
    expect(job.error).toBe('job timed out after 1s (pipeline timeout) in step forever');
  });

  it('ends `error` with instructions when there is no pipeline', async () => {
    const { job, text } = await runOne({ 'README.md': '# nothing to build' });
    expect(job.status).toBe('error');
    expect(job.exitCode).toBeNull();
    expect(job.error).toMatch(/no \.raibid\.yml .*add a \.raibid\.yml to the repository root/);
    expect(text).toContain('[raibid]   version: 1');
    expect(text).toContain(`[raibid] job error: ${job.error}`);
  });

  it('ends `error` naming the line and field of an invalid pipeline file', async () => {
    const { job, text } = await runOne({
      '.raibid.yml': 'version: 1\nsteps:\n  - name: build\n    run: make\n    timeout: soon\n',
    });
    expect(job.status).toBe('error');
    expect(job.error).toMatch(
      /^invalid pipeline file: \.raibid\.yml:5: steps\[0\]\.timeout: "soon" is not a duration/,
    );
    expect(job.steps).toEqual([]);
    expect(text).toContain('[raibid] .raibid.yml:5: steps[0].timeout:');
  });

  it('ends `error` for YAML that does not parse', async () => {
    const { job } = await runOne({ '.raibid.yml': 'version: 1\nsteps: [\n  - name: x\n' });
    expect(job.status).toBe('error');
    expect(job.error).toMatch(/^invalid pipeline file: \.raibid\.yml:\d+: /);
  });

  it('runs an auto-detected pipeline (Makefile) and says so', async () => {
    const { job, text } = await runOne({
      Makefile: 'all:\n\t@echo made all\ntest:\n\t@echo tested\n',
    });
    expect(job.status).toBe('succeeded');
    expect(job.steps.map((s) => s.name)).toEqual(['build', 'test']);
    expect(text).toContain('[raibid] no .raibid.yml; detected Makefile, running steps: build, test');
    expect(text).toContain('made all');
    expect(text).toContain('tested');
  });

  it('cancels a running job within 5 s and kills the step’s whole process group', async () => {
    const repo = await createRepo(h.reposDir, 'cancel-me', {
      '.raibid.yml': pipeline(`steps:
  - name: wait
    run: |
      echo "pgid $$"
      sleep 300 &
      sleep 300
  - { name: later, run: "true" }
`),
    });
    const queued = await h.enqueue(repo);
    const line = await waitFor('the step to print its pgid', async () =>
      (await h.events(queued.id)).find((e) => e.line.startsWith('pgid ')),
    );
    const pgid = Number(line.line.split(' ')[1]);
    expect((await processesInGroup(pgid)).length).toBeGreaterThanOrEqual(2);
    await h.queue.requestCancel(queued.id);
    const job = await h.waitForStatus(queued.id, ['cancelled', 'failed', 'succeeded', 'error'], 5_000);
    expect(job.status).toBe('cancelled');
    expect(job.exitCode).toBeNull();
    expect(job.steps.map((s) => s.status)).toEqual(['cancelled', 'skipped']);
    expect(await processesInGroup(pgid)).toEqual([]);
    const text = (await h.events(queued.id)).map((e) => e.line).join('\n');
    expect(text).toMatch(/\[raibid\] step wait: stopped after/);
    expect(text).toContain('[raibid] job cancelled');
    await waitFor('the workspace to be removed', async () => (await h.workspaces(queued.id)).length === 0);
  });

  it('clones from a local path (the local stack)', async () => {
    const repo = await createRepo(h.reposDir, 'local', {
      '.raibid.yml': pipeline('steps:\n  - { name: hi, run: "echo local" }\n'),
    });
    const queued = await h.queue.enqueue({
      repo: { owner: 'local', name: 'local', cloneUrl: repo.path },
      ref: 'main',
      sha: null,
      trigger: 'api',
    });
    expect((await h.waitForStatus(queued.id, [...FINAL])).status).toBe('succeeded');
  });
});
