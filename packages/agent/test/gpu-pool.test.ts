import { rm } from 'node:fs/promises';
import { createRepo, nvidiaSmiStandIn, STAND_IN_GPU, waitFor } from '@raibid/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './support/harness.js';

// Pools with real agent processes and a real Redis: a GPU job is taken only by an agent
// started for the GPU pool, which reports its GPU (a stand-in nvidia-smi here: no GPU on
// these machines) and passes the device variables to steps; an agent never runs a
// pipeline that asks for another pool than the one the job was routed to.
let h: Harness;
let standIn: string;

const FINAL = ['succeeded', 'failed', 'cancelled', 'error'] as const;
const pipeline = (runsOn: string, run: string) =>
  `version: 1\nruns-on: ${runsOn}\nsteps:\n  - name: run\n    run: ${run}\n`;

async function enqueue(name: string, file: string, pool: 'cpu' | 'gpu') {
  await createRepo(h.reposDir, name, { '.raibid.yml': file });
  return h.queue.enqueue({
    repo: { owner: 'test', name, cloneUrl: h.git.url(name) },
    ref: 'main',
    sha: null,
    trigger: 'api',
    pool,
  });
}

async function lines(jobId: string): Promise<string[]> {
  return (await h.events(jobId)).map((e) => e.line);
}

beforeAll(async () => {
  h = await startHarness();
  standIn = await nvidiaSmiStandIn();
  await h.agent({ HOSTNAME: 'cpu-agent' }, ['--loop']);
});
afterAll(async () => {
  await h?.close();
  await rm(standIn, { recursive: true, force: true });
});

describe('agent pools', () => {
  it('leaves a GPU job to a GPU agent: a CPU agent never takes it', async () => {
    const gpuJob = await enqueue(
      'cuda',
      pipeline('gpu', 'nvidia-smi -L; echo "devices=$NVIDIA_VISIBLE_DEVICES/$CUDA_VISIBLE_DEVICES"'),
      'gpu',
    );
    const cpuJob = await enqueue('plain', pipeline('cpu', 'echo plain'), 'cpu');
    expect(await h.waitForStatus(cpuJob.id, [...FINAL])).toMatchObject({
      status: 'succeeded',
      agent: 'cpu-agent',
    });
    // The CPU agent has taken a later job and is idle again; the GPU job still waits.
    expect(await h.store.get(gpuJob.id)).toMatchObject({ status: 'queued', agent: null });
    expect(await h.queue.stats('gpu')).toEqual({ lag: 1, pending: 0 });

    await h.agent(
      {
        HOSTNAME: 'gpu-agent',
        PATH: `${standIn}:${process.env.PATH}`,
        NVIDIA_VISIBLE_DEVICES: 'all',
        CUDA_VISIBLE_DEVICES: '0',
      },
      ['--pool', 'gpu'],
    );
    const done = await h.waitForStatus(gpuJob.id, [...FINAL]);
    expect(done).toMatchObject({ status: 'succeeded', agent: 'gpu-agent', pool: 'gpu' });
    const log = await lines(gpuJob.id);
    // The GPU comes right after the claim, before the checkout.
    expect(log[0]).toMatch(/^\[raibid\] agent gpu-agent picked up job/);
    expect(log[1]).toBe(
      `[raibid] GPU 0: ${STAND_IN_GPU.name}, driver ${STAND_IN_GPU.driver}, memory ${STAND_IN_GPU.memory}`,
    );
    expect(log[2]).toMatch(/^\[raibid\] cloning /);
    expect(log).toContain(`GPU 0: ${STAND_IN_GPU.name} (UUID: GPU-00000000-0000-0000-0000-000000000000)`);
    expect(log).toContain('devices=all/0');
  });

  it('ends a job error rather than run it on the wrong hardware', async () => {
    // Routed to gpu (the server could not read the file), but the pipeline says cpu.
    const job = await enqueue('says-cpu', pipeline('cpu', 'echo never'), 'gpu');
    const gpu = await h.agent({ HOSTNAME: 'gpu-agent-2', PATH: `${standIn}:${process.env.PATH}` }, [
      '--pool=gpu',
    ]);
    const done = await h.waitForStatus(job.id, [...FINAL]);
    expect(done.status).toBe('error');
    expect(done.error).toMatch(
      /^\.raibid\.yml at [0-9a-f]{12} runs on cpu, but the job was routed to the gpu pool .*not run on the wrong hardware/,
    );
    expect(await lines(job.id)).not.toContain('never');
    expect((await gpu.exited).code).toBe(0);

    // And the other way: a runs-on: gpu pipeline that reached the CPU pool.
    const other = await enqueue('says-gpu', pipeline('gpu', 'echo never'), 'cpu');
    const ended = await h.waitForStatus(other.id, [...FINAL]);
    expect(ended).toMatchObject({ status: 'error', agent: 'cpu-agent' });
    expect(ended.error).toMatch(/runs on gpu, but the job was routed to the cpu pool/);
  });

  it('a GPU agent that cannot see a GPU ends the job error saying so', async () => {
    const job = await enqueue('no-gpu', pipeline('gpu', 'echo never'), 'gpu');
    // RAIBID_POOL instead of --pool; PATH without nvidia-smi.
    await h.agent({ HOSTNAME: 'blind-gpu-agent', RAIBID_POOL: 'gpu' });
    const done = await h.waitForStatus(job.id, [...FINAL]);
    expect(done).toMatchObject({ status: 'error', agent: 'blind-gpu-agent' });
    expect(done.error).toBe(
      'this agent serves the gpu pool but cannot use a GPU: nvidia-smi is not on PATH (is the NVIDIA container runtime giving this container the GPU?)',
    );
  });

  it('refuses a pool it does not know, with exit 2', async () => {
    const bad = await h.agent({}, ['--pool', 'tpu']);
    expect((await bad.exited).code).toBe(2);
    await waitFor('the usage line', async () =>
      bad.output().includes('--pool must be cpu or gpu (got "tpu")') ? true : null,
    );
  });
});
