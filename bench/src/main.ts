// pnpm bench [health] [jobs] [logs] [queue] [dispatch] [--baseline <rev>] [--slices N] [--seconds S]
//            [--jobs N] [--spacing MIN-MAX]
// Side-by-side comparisons against peers measured in the same run (see README.md here).
// `dispatch` takes about jobs × spacing (25 min by default), so it runs only when named.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startRedis } from '@raibid/common/testing';
import { type DispatchTarget, dispatchComparison } from './dispatch.js';
import { loadTargets } from './http.js';
import { logFlood, logLatency } from './logs.js';
import { baselineTree, freePort, REPO_ROOT, startTarget, type Target } from './processes.js';
import { queueComparison } from './queue.js';
import { compare, type DispatchRow, type Row, renderDispatchTable, renderTable } from './table.js';

/** "Ours before": the commit the performance work of issue 12 started from. */
const DEFAULT_BASELINE = 'c57b28d';
const COMPARISONS = ['health', 'jobs', 'logs', 'queue', 'dispatch'] as const;
type Comparison = (typeof COMPARISONS)[number];
/** What `pnpm bench` alone runs: all but dispatch, which takes far longer. */
const DEFAULT_COMPARISONS: readonly Comparison[] = ['health', 'jobs', 'logs', 'queue'];
/**
 * KEDA's default poll, ours, and ours with one warm agent (the ScaledJob's minReplicaCount).
 * The first is the reference of the ratios.
 */
const DISPATCH_TARGETS: readonly DispatchTarget[] = [
  { name: 'poll 30 s (KEDA default)', pollingInterval: '30s', warmAgents: 0 },
  { name: 'poll 5 s (raibid)', pollingInterval: '5s', warmAgents: 0 },
  { name: 'poll 5 s + 1 warm agent', pollingInterval: '5s', warmAgents: 1 },
];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    baseline: { type: 'string', default: DEFAULT_BASELINE },
    slices: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '3' },
    jobs: { type: 'string', default: '100' },
    spacing: { type: 'string', default: '10-20' },
  },
});
for (const name of positionals) {
  if (!COMPARISONS.includes(name as Comparison)) {
    throw new Error(`unknown comparison "${name}"; pick from ${COMPARISONS.join(', ')}`);
  }
}
const selected = new Set<Comparison>(
  positionals.length ? (positionals as Comparison[]) : DEFAULT_COMPARISONS,
);
const slices = Number(values.slices);
const seconds = Number(values.seconds);
const dispatchJobs = Number(values.jobs);
const spacingMatch = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(values.spacing);
if (!Number.isInteger(dispatchJobs) || dispatchJobs < 1)
  throw new Error(`--jobs must be a count, not "${values.jobs}"`);
if (!spacingMatch || Number(spacingMatch[1]) > Number(spacingMatch[2])) {
  throw new Error(`--spacing must be MIN-MAX in seconds, such as 10-20, not "${values.spacing}"`);
}
const spacing = { min: Number(spacingMatch[1]), max: Number(spacingMatch[2]) };
const dispatchRows: DispatchRow[] = [];
const token = 'bench-token';

const rows: Row[] = [];
const notes: string[] = [];
const redis = await startRedis();
const stops: (() => Promise<void>)[] = [() => redis.stop()];
const progress = (message: string) => process.stderr.write(`bench: ${message}\n`);

async function server(name: string, root: string): Promise<Target> {
  const target = await startTarget(name, path.join(root, 'packages/server/src/main.ts'), root, {
    REDIS_URL: redis.url,
    RAIBID_API_TOKEN: token,
    METRICS_PORT: String(await freePort()),
    LOG_LEVEL: 'info',
  });
  stops.push(() => target.stop());
  return target;
}

try {
  const needsServers = selected.has('health') || selected.has('jobs') || selected.has('logs');
  const baselineRev = execFileSync('git', ['rev-parse', '--short', values.baseline], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  }).trim();
  const ours = needsServers ? await server('raibid', REPO_ROOT) : null;
  const before = needsServers ? await server(`raibid@${baselineRev}`, baselineTree(baselineRev)) : null;

  if (selected.has('health')) {
    progress('GET /health');
    const peers = await Promise.all([
      startTarget('node:http', path.join(REPO_ROOT, 'bench/src/peers/bare-node.ts'), REPO_ROOT, {}),
      startTarget('fastify', path.join(REPO_ROOT, 'bench/src/peers/bare-fastify.ts'), REPO_ROOT, {}),
    ]);
    for (const peer of peers) stops.push(() => peer.stop());
    const results = await loadTargets([ours!, before!, ...peers], {
      path: '/health',
      connections: 16,
      seconds,
      slices,
    });
    rows.push(...compare('GET /health', 'req', 'server', results, 'node:http'));
  }

  if (selected.has('jobs')) {
    progress('POST /api/v1/jobs');
    const results = await loadTargets([ours!, before!], {
      path: '/api/v1/jobs',
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      // A plain clone URL: the server routes it without asking Gitea for its pipeline file.
      body: JSON.stringify({ repo: 'http://127.0.0.1:9/bench/app.git', ref: 'main', env: { CI: 'true' } }),
      connections: 16,
      seconds,
      slices,
      alsoCpuOf: [redis.pid()],
    });
    rows.push(...compare('POST /api/v1/jobs', 'req', 'server+redis', results, before!.name));
  }

  if (selected.has('logs')) {
    // The POSTs left ~100k queued jobs: "ours before" still counts that whole backlog on every
    // reaper pass (fixed since), which stalls the shared Redis for both servers' followers.
    if (selected.has('jobs')) await redis.flush();
    const client = redis.client();
    const load = { floodLines: 100_000, steadyRate: 2_000, steadySeconds: seconds, slices, token };
    progress('log flood');
    const flood = await logFlood([ours!, before!], client, load);
    rows.push(...compare('SSE follower, flood', 'line', 'server', flood.results, before!.name));
    for (const [name, calls] of flood.rereads) {
      notes.push(`SSE follower, flood: ${name} read from Redis again with XRANGE ${calls} times`);
    }
    progress('log latency at 2k lines/s');
    const steady = await logLatency([ours!, before!], client, load);
    rows.push(...compare('SSE follower, 2k lines/s', 'line', 'server', steady.results, before!.name));
    const { calls, lines, seconds: writing } = steady.writes;
    notes.push(
      `SSE follower, 2k lines/s: the agent's JobLog wrote to Redis ${Math.round(calls / writing)} times/s, ${(lines / calls).toFixed(1)} lines per write`,
      `SSE follower, 2k lines/s: the bench process's own event loop (it prints and receives the lines) was late by up to ${steady.benchStallMs.max.toFixed(0)} ms, p99 ${steady.benchStallMs.p99.toFixed(0)} ms`,
    );
  }

  if (selected.has('queue')) {
    const queueRedis = await startRedis();
    stops.push(() => queueRedis.stop());
    for (const consumers of [1, 8, 32]) {
      progress(`queue, ${consumers} consumers`);
      const results = await queueComparison(queueRedis.socket, queueRedis.pid(), () => queueRedis.flush(), {
        jobs: 2_000,
        consumers,
        slices,
      });
      rows.push(...compare(`queue C=${consumers}`, 'job', 'bench+redis', results, 'BullMQ'));
    }
  }

  if (selected.has('dispatch')) {
    progress(`dispatch: ${dispatchJobs} jobs per target, ${values.spacing} s apart`);
    const results = await dispatchComparison(
      DISPATCH_TARGETS,
      // maxReplicaCount 8: at 30 s polls and 10 s spacing about 3 jobs wait at once, so the cap never holds one back.
      { jobs: dispatchJobs, spacing, maxAgents: 8 },
      progress,
    );
    for (const [target, result] of results) {
      dispatchRows.push({ target, ...result, failed: result.failures.length });
      for (const failure of result.failures) notes.push(`dispatch, ${target}: ${failure}`);
    }
  }
} finally {
  for (const stop of stops.reverse()) await stop();
}

const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
  cwd: REPO_ROOT,
  encoding: 'utf8',
}).trim();
const dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages'], {
  cwd: REPO_ROOT,
  encoding: 'utf8',
});
console.log(
  `raibid-ci bench at ${commit}${dirty ? ' (+ uncommitted changes)' : ''}, ${new Date().toISOString()}\n` +
    `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'} (${os.arch()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
    `Node ${process.version}, load average before the table ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n` +
    (rows.length > 0
      ? `${slices} slices × ${seconds} s per target, alternated; p50/p99 are medians over slices\n`
      : '') +
    (dispatchRows.length > 0
      ? `dispatch: one raibid dev per target, all at once; ${dispatchJobs} jobs per target, ${values.spacing} s apart, targets interleaved\n`
      : ''),
);
if (rows.length > 0) console.log(renderTable(rows));
if (dispatchRows.length > 0) {
  if (rows.length > 0) console.log('');
  console.log(renderDispatchTable(dispatchRows, DISPATCH_TARGETS[0]!.name));
}
if (notes.length > 0) console.log(`\n${notes.join('\n')}`);
