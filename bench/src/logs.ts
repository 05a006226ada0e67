import { monitorEventLoopDelay } from 'node:perf_hooks';
import { JobLog } from '@raibid/agent/src/job-log.js';
import { LogStore } from '@raibid/common';
import type { Redis } from 'ioredis';
import { alternate, emptyTotals, processCpuMicros, quantile, type Totals } from './measure.js';
import type { Target } from './processes.js';
import { followLog } from './sse.js';

export interface LogLoad {
  /** Lines per flood slice. */
  floodLines: number;
  /** Lines per second and seconds per slice of the steady run. */
  steadyRate: number;
  steadySeconds: number;
  slices: number;
  token: string;
}

const now = (): number => performance.timeOrigin + performance.now();

async function createJob(target: Target, token: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${target.port}/api/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ repo: 'http://127.0.0.1:9/bench/logs.git' }),
  });
  if (response.status !== 201) throw new Error(`${target.name}: POST /api/v1/jobs gave ${response.status}`);
  return ((await response.json()) as { id: string }).id;
}

const xrangeCalls = async (redis: Redis): Promise<number> =>
  Number(/cmdstat_xrange:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);

/**
 * The log path in a flood: the writer appends `floodLines` lines in the agent's largest
 * batches (500) as fast as Redis takes them while one SSE client follows the job.
 * Throughput is lines the follower received per second, from the first append to the
 * last line's arrival; the writer's own rate is its own row. CPU is the server's.
 * `rereads` counts the server's XRANGE calls during the floods (lines read a second time).
 */
export async function logFlood(
  targets: readonly Target[],
  redis: Redis,
  load: LogLoad,
): Promise<{ results: Map<string, Totals>; rereads: Map<string, number> }> {
  const rereads = new Map<string, number>(targets.map((target) => [target.name, 0]));
  const logs = new LogStore(redis, { capBytes: 1024 * 1024 * 1024 });
  const results = new Map<string, Totals>(targets.map((target) => [target.name, emptyTotals()]));
  const writer = emptyTotals();
  const byName = new Map(targets.map((target) => [target.name, target]));
  await alternate([...byName.keys()], load.slices, async (name) => {
    const target = byName.get(name)!;
    const jobId = await createJob(target, load.token);
    const follow = await followLog(target.port, jobId);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the feed starts reading this job
    const cpuBefore = processCpuMicros(target.pid);
    const xrangeBefore = await xrangeCalls(redis);
    const started = now();
    const batch = Array.from({ length: 500 }, (_, i) => ({
      stream: 'stdout' as const,
      step: 'build',
      line: `line ${i} of a build step that prints a lot, as compilers and test runners do`,
    }));
    for (let written = 0; written < load.floodLines; written += batch.length) {
      await logs.append(jobId, batch);
    }
    const written = now();
    await follow.until(load.floodLines);
    const received = now();
    follow.close();
    rereads.set(name, rereads.get(name)! + (await xrangeCalls(redis)) - xrangeBefore);
    const totals = results.get(name)!;
    totals.ops += load.floodLines;
    totals.seconds += (received - started) / 1000;
    totals.cpuMicros += processCpuMicros(target.pid) - cpuBefore;
    writer.ops += load.floodLines;
    writer.seconds += (written - started) / 1000;
  });
  writer.cpuMicros = Number.NaN;
  results.set('writer (LogStore.append)', writer);
  return { results, rereads };
}

/**
 * Steady output: the agent's own JobLog (a write as soon as none is in flight, 10 ms apart at least) gets
 * `steadyRate` lines/s, each carrying the time it was printed; latency is printed → received
 * by the SSE client. `writes` counts JobLog's Redis writes and the seconds they took place in.
 */
export async function logLatency(
  targets: readonly Target[],
  redis: Redis,
  load: LogLoad,
): Promise<{
  results: Map<string, Totals>;
  writes: { calls: number; lines: number; seconds: number };
  /** The bench process's own event-loop delay while measuring. */
  benchStallMs: { p99: number; max: number };
}> {
  const logs = new LogStore(redis);
  const writes = { calls: 0, lines: 0, seconds: 0 };
  const append = logs.append.bind(logs);
  logs.append = (jobId, lines) => {
    writes.calls++;
    writes.lines += lines.length;
    return append(jobId, lines);
  };
  const results = new Map<string, Totals>(targets.map((target) => [target.name, emptyTotals()]));
  const byName = new Map(targets.map((target) => [target.name, target]));
  // The bench process prints and receives the lines: its own stalls show in every target's latency.
  const benchDelay = monitorEventLoopDelay({ resolution: 10 });
  benchDelay.enable();
  await alternate([...byName.keys()], load.slices, async (name) => {
    const target = byName.get(name)!;
    const jobId = await createJob(target, load.token);
    const latencies: number[] = [];
    const follow = await followLog(target.port, jobId, (line, receivedAt) => {
      latencies.push(receivedAt - Number(line));
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const log = new JobLog({
      logs,
      jobId,
      onError: (error) => {
        throw error;
      },
    });
    const cpuBefore = processCpuMicros(target.pid);
    const total = load.steadyRate * load.steadySeconds;
    const tickMs = 10;
    const perTick = (load.steadyRate * tickMs) / 1000;
    const started = now();
    let printed = 0;
    while (printed < total) {
      // Print what is due by now, so timer lateness does not lower the rate.
      const due = Math.min(total, Math.floor(((now() - started) / tickMs + 1) * perTick));
      for (; printed < due; printed++) log.output('stdout', 'build', String(now()));
      await new Promise((resolve) => setTimeout(resolve, tickMs));
    }
    await log.flush();
    await follow.until(total);
    const ended = now();
    follow.close();
    writes.seconds += (ended - started) / 1000;
    const totals = results.get(name)!;
    totals.ops += total;
    totals.seconds += (ended - started) / 1000;
    totals.cpuMicros += processCpuMicros(target.pid) - cpuBefore;
    totals.p50.push(quantile(latencies, 0.5));
    totals.p99.push(quantile(latencies, 0.99));
  });
  benchDelay.disable();
  return {
    results,
    writes,
    benchStallMs: { p99: benchDelay.percentile(99) / 1e6, max: benchDelay.max / 1e6 },
  };
}
