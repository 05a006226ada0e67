import { type ClaimedJob, JobQueue, JobStore, parseRepoSpec } from '@raibid/common';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { alternate, emptyTotals, processCpuMicros, quantile, type Totals } from './measure.js';

export interface QueueLoad {
  jobs: number;
  consumers: number;
  slices: number;
}

interface Run {
  /** Per consumer, the time from one finished job to its next (the first from the drain's start), ms. */
  cycles: number[];
  seconds: number;
}

const now = (): number => performance.timeOrigin + performance.now();
const repo = parseRepoSpec('bench/queue', { giteaUrl: 'http://127.0.0.1:3000' });
const PRODUCERS = 8;

/** `jobs` enqueues by PRODUCERS concurrent clients (webhooks and API calls arrive together). */
async function produce(jobs: number, enqueue: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: PRODUCERS }, async () => {
      while (next < jobs) await enqueue(next++);
    }),
  );
}

/**
 * Ours: the jobs are enqueued, then `consumers` agents (a connection each, as agent pods
 * have) claim a job (it becomes running), finish it succeeded and ACK it, until all are done.
 * A looping agent (`--loop`) claims the next job with the finish, as a BullMQ worker does;
 * a one-job agent (a KEDA pod) claims and finishes in two calls.
 */
async function runOurs(socket: string, load: QueueLoad, looping: boolean): Promise<Run> {
  const control = new Redis({ path: socket });
  const queue = new JobQueue(control, new JobStore(control));
  await queue.ensureGroup();
  const connections = Array.from({ length: load.consumers }, () => new Redis({ path: socket }));
  const agents = connections.map((connection) => new JobQueue(connection, new JobStore(connection)));
  const cycles: number[] = [];
  let finished = 0;
  let allFinished = 0;
  const started = now();
  await produce(load.jobs, (i) =>
    queue.enqueue({ repo, ref: 'main', sha: null, trigger: 'api', env: { N: String(i) } }),
  );
  const drainStarted = now();
  await Promise.all(
    agents.map(async (agent, i) => {
      let last = drainStarted;
      let next: ClaimedJob | null = null;
      while (finished < load.jobs) {
        const claimed: ClaimedJob | null = next ?? (await agent.claim(`bench-agent-${i}`, 200));
        if (!claimed) continue;
        const outcome = { status: 'succeeded', exitCode: 0 } as const;
        if (looping) next = (await agent.finishAndClaimNext(claimed, outcome)).next;
        else await agent.finish(claimed, outcome);
        if (++finished === load.jobs) allFinished = now();
        cycles.push(now() - last);
        last = now();
      }
    }),
  );
  // Timed to the last finish, as BullMQ's is: the other agents are then still blocked in
  // XREADGROUP until their 200 ms claim timeout, which is not work.
  const seconds = (allFinished - started) / 1000;
  await Promise.all([control, ...connections].map((connection) => connection.quit()));
  return { cycles, seconds };
}

/** BullMQ: the same flow with `consumers` workers of concurrency 1 (one per agent). */
async function runBullmq(socket: string, load: QueueLoad): Promise<Run> {
  const connection = { path: socket };
  const queue = new Queue('bench', { connection });
  const cycles: number[] = [];
  let finished = 0;
  let done: () => void = () => {};
  const allDone = new Promise<void>((resolve) => {
    done = resolve;
  });
  let drainStarted = 0;
  const workers = Array.from({ length: load.consumers }, () => {
    const worker = new Worker('bench', async () => ({ exitCode: 0 }), {
      connection,
      concurrency: 1,
      autorun: false,
    });
    let last: number | null = null;
    worker.on('completed', () => {
      cycles.push(now() - (last ?? drainStarted));
      last = now();
      if (++finished === load.jobs) done();
    });
    return worker;
  });
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));
  const started = now();
  await produce(load.jobs, (i) =>
    queue.add('job', { repo, ref: 'main', sha: null, trigger: 'api', env: { N: String(i) } }),
  );
  drainStarted = now();
  for (const worker of workers) void worker.run();
  await allDone;
  const seconds = (now() - started) / 1000;
  await Promise.all(workers.map((worker) => worker.close()));
  await queue.close();
  return { cycles, seconds };
}

/**
 * Ours against BullMQ on the same redis-server, emptied before every slice: throughput is
 * jobs over enqueue + drain; p50/p99 are a consumer's time per job while draining. CPU is
 * the bench process (producers and consumers) plus redis-server, per job.
 */
export async function queueComparison(
  socket: string,
  redisPid: number,
  flush: () => Promise<void>,
  load: QueueLoad,
): Promise<Map<string, Totals>> {
  const runs = {
    'raibid, looping agents': (socket: string, load: QueueLoad) => runOurs(socket, load, true),
    'raibid, one-job agents': (socket: string, load: QueueLoad) => runOurs(socket, load, false),
    BullMQ: runBullmq,
  } as const;
  const results = new Map<string, Totals>(Object.keys(runs).map((name) => [name, emptyTotals()]));
  await alternate(Object.keys(runs) as (keyof typeof runs)[], load.slices, async (name) => {
    await flush();
    const cpuBefore = process.cpuUsage();
    const redisBefore = processCpuMicros(redisPid);
    const run = await runs[name](socket, load);
    const cpu = process.cpuUsage(cpuBefore);
    const totals = results.get(name)!;
    totals.ops += load.jobs;
    totals.seconds += run.seconds;
    totals.cpuMicros += cpu.user + cpu.system + processCpuMicros(redisPid) - redisBefore;
    totals.p50.push(quantile(run.cycles, 0.5));
    totals.p99.push(quantile(run.cycles, 0.99));
  });
  return results;
}
