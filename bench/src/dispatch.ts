import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRepo, startGitHttpServer } from '@raibid/common/testing';
import { z } from 'zod';
import { type DevStack, type DevStackSettings, startDevStack } from './dev-stack.js';
import { followLog } from './sse.js';

/** One way of running the local stack: its ScaledJob's pollingInterval and minReplicaCount. */
export type DispatchTarget = Omit<DevStackSettings, 'maxAgents'>;

export interface DispatchLoad {
  /** Jobs per target. */
  jobs: number;
  /** Seconds between two jobs of one target: in [min, max], the sum of one uniform third per target. */
  spacing: { min: number; max: number };
  /** The ScaledJob's maxReplicaCount, high enough never to hold a job back. */
  maxAgents: number;
}

export interface DispatchResult {
  /** Submit → first log line, per job that got one, in ms. */
  latenciesMs: number[];
  /** Jobs claimed by an agent that was started before the job was submitted (it was waiting). */
  waitingAgentStarts: number;
  /** Jobs that did not succeed, or showed no first line, with why. */
  failures: string[];
}

/** A tiny pipeline: the measurement ends at its first line, but every job runs to the end. */
const PIPELINE = 'version: 1\nsteps:\n  - name: hello\n    run: echo "hello from raibid"\n';
/** A job with no first line after this is counted as failed (the 30 s poll plus a slow agent start is far less). */
const FIRST_LINE_LIMIT_MS = 180_000;
const FINISH_LIMIT_MS = 180_000;

const createdJob = z.object({ id: z.string() });
const jobState = z.object({ status: z.string() });
const FINAL = new Set(['succeeded', 'failed', 'error', 'cancelled']);

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function withLimit<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} after ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, limit]).finally(() => clearTimeout(timer));
}

async function finalStatus(stack: DevStack, id: string): Promise<string> {
  const deadline = Date.now() + FINISH_LIMIT_MS;
  while (Date.now() < deadline) {
    const response = await fetch(`http://127.0.0.1:${stack.port}/api/v1/jobs/${id}`);
    const { status } = jobState.parse(await response.json());
    if (FINAL.has(status)) return status;
    await sleep(500);
  }
  return 'not finished';
}

/** Submits one job as `raibid submit` does and times it until its first log line reaches an SSE follower. */
async function dispatchOne(stack: DevStack, cloneUrl: string, result: DispatchResult): Promise<void> {
  const submittedAt = now();
  const response = await fetch(`http://127.0.0.1:${stack.port}/api/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ repo: cloneUrl, ref: 'main' }),
  });
  if (response.status !== 201) {
    result.failures.push(`POST /api/v1/jobs: HTTP ${response.status} ${await response.text()}`);
    return;
  }
  const { id } = createdJob.parse(await response.json());
  let first: { line: string; at: number } | undefined;
  const follow = await followLog(stack.port, id, (line, at) => {
    first ??= { line, at };
  });
  try {
    await withLimit(follow.until(1), FIRST_LINE_LIMIT_MS, 'no first log line');
  } catch (error) {
    result.failures.push(`job ${id}: ${(error as Error).message}`);
    return;
  } finally {
    follow.close();
  }
  result.latenciesMs.push(first!.at - submittedAt);
  // The first line is the claim's "[raibid] agent <consumer> picked up job <id> ...".
  const consumer = /agent (\S+) picked up job/.exec(first!.line)?.[1];
  const agentStartedAt = consumer === undefined ? undefined : stack.agentStartedAt(consumer);
  if (agentStartedAt !== undefined && agentStartedAt < submittedAt) result.waitingAgentStarts += 1;
  const status = await finalStatus(stack, id);
  if (status !== 'succeeded') result.failures.push(`job ${id}: ${status}`);
}

/**
 * Runs one `raibid dev` per target, all at once, and submits `jobs` jobs to each, interleaved:
 * the targets take turns in an order that rotates every round, and the pause before each
 * submission is a third (one share per target) of a random spacing, so each target's jobs
 * arrive `spacing` apart at moments unrelated to its scaler's polls.
 */
export async function dispatchComparison(
  targets: readonly DispatchTarget[],
  load: DispatchLoad,
  progress: (message: string) => void,
): Promise<Map<string, DispatchResult>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'raibid-bench-dispatch-'));
  const stops: (() => Promise<void>)[] = [() => rm(dir, { recursive: true, force: true })];
  try {
    await createRepo(dir, 'bench/hello', { '.raibid.yml': PIPELINE });
    const git = await startGitHttpServer({ root: dir });
    stops.push(() => git.stop());
    const cloneUrl = git.url('bench/hello');
    const stacks = await Promise.all(
      targets.map(async (target) => {
        const stack = await startDevStack({ ...target, maxAgents: load.maxAgents });
        stops.push(() => stack.stop());
        return stack;
      }),
    );
    await Promise.all(
      stacks.filter((_, i) => targets[i]!.warmAgents > 0).map((stack) => stack.agentWaiting()),
    );

    const results = new Map(
      stacks.map((stack) => [
        stack.name,
        { latenciesMs: [], waitingAgentStarts: 0, failures: [] } as DispatchResult,
      ]),
    );
    const inFlight: Promise<void>[] = [];
    for (let round = 0; round < load.jobs; round++) {
      if (round % 10 === 0) progress(`dispatch: round ${round + 1} of ${load.jobs}`);
      for (let i = 0; i < stacks.length; i++) {
        const stack = stacks[(i + round) % stacks.length]!;
        const spacing = load.spacing.min + Math.random() * (load.spacing.max - load.spacing.min);
        await sleep((spacing * 1_000) / stacks.length);
        inFlight.push(dispatchOne(stack, cloneUrl, results.get(stack.name)!));
      }
    }
    progress('dispatch: waiting for the last jobs');
    await Promise.all(inFlight);
    return results;
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}
