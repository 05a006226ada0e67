import autocannon from 'autocannon';
import { alternate, emptyTotals, processCpuMicros, type Totals } from './measure.js';
import type { Target } from './processes.js';

export interface HttpLoad {
  path: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  connections: number;
  seconds: number;
  slices: number;
  /** Processes whose CPU counts too (redis-server, for requests that write to it). */
  alsoCpuOf?: number[];
}

/**
 * autocannon on loopback against each target in turn, slice by slice. CPU is the target
 * process's own (autocannon's is not counted), plus `alsoCpuOf`'s. Returns the totals per target name.
 */
export async function loadTargets(targets: readonly Target[], load: HttpLoad): Promise<Map<string, Totals>> {
  const run = (target: Target, seconds: number) =>
    autocannon({
      url: `http://127.0.0.1:${target.port}${load.path}`,
      method: load.method ?? 'GET',
      ...(load.headers ? { headers: load.headers } : {}),
      ...(load.body ? { body: load.body } : {}),
      connections: load.connections,
      duration: seconds,
    });
  const results = new Map(targets.map((target) => [target.name, emptyTotals()]));
  const byName = new Map(targets.map((target) => [target.name, target]));
  // One uncounted second each first: the JIT warms up and connections open.
  for (const target of targets) await run(target, 1);
  await alternate([...byName.keys()], load.slices, async (name) => {
    const target = byName.get(name)!;
    const totals = results.get(name)!;
    const pids = [target.pid, ...(load.alsoCpuOf ?? [])];
    const cpuOf = () => pids.reduce((sum, pid) => sum + processCpuMicros(pid), 0);
    const cpuBefore = cpuOf();
    const result = await run(target, load.seconds);
    const cpu = cpuOf() - cpuBefore;
    if (result.errors + result.timeouts + result.non2xx > 0 || result.requests.total === 0) {
      throw new Error(
        `${name} ${load.method ?? 'GET'} ${load.path}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx of ${result.requests.total}`,
      );
    }
    totals.ops += result.requests.total;
    totals.seconds += result.duration;
    totals.cpuMicros += cpu;
    totals.p50.push(result.latency.p50);
    totals.p99.push(result.latency.p99);
  });
  return results;
}
