// The fault suite (docs/RELIABILITY.md): real processes on loopback — a redis-server
// persisting to an AOF, the server, --loop agents, a git HTTP server — while faults
// are injected: agents killed with -9 at random, Redis killed with -9 and restarted
// from its AOF (briefly, then for 30 s), the server killed with SIGKILL and stopped
// with SIGTERM and started again. Then every job must have exactly one final state.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isFinalStatus, JOBS_INDEX, type Job, type LogEvent } from '@raibid/common';
import { createRepo, freePort, type TestRepo, waitFor } from '@raibid/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { giteaSignature } from '../../server/src/gitea/webhook.js';
import { openSse } from '../../server/test/support/sse.js';
import type { AgentProcess } from './support/agent-process.js';
import { type Harness, startHarness } from './support/harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SERVER_MAIN = path.join(ROOT, 'packages/server/src/main.ts');
const TOKEN = 'fault-suite-token-5d1c0b';
const SECRET = 'fault-suite-webhook-secret-91aa';
const AUTH = { authorization: `Bearer ${TOKEN}` };

/** Jobs submitted through the API (plus the followed job and the webhook's). */
const JOBS = 100;
const AGENTS = 4;
const LEASE_MS = 3_000;
const LONG_OUTAGE_MS = 30_000;
/** Lines the followed job prints, 0.2 s apart: it runs across both server restarts. */
const TICKS = 75;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface ServerProcess {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let h: Harness;
let repo: TestRepo;
let port: number;
let server: ServerProcess | null = null;
const pool = new Set<AgentProcess & { name: string }>();
let agentCount = 0;
const killedAgents = new Set<string>();

async function startServer(): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER_MAIN], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      REDIS_URL: h.redis.url,
      HOST: '127.0.0.1',
      PORT: String(port),
      METRICS_PORT: '0',
      RAIBID_API_TOKEN: TOKEN,
      GITEA_WEBHOOK_SECRET: SECRET,
      GITEA_URL: h.git.origin,
      RAIBID_LEASE_MS: String(LEASE_MS),
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  await waitFor('the server to be ready', () => output.includes('"raibid server ready"'), 30_000);
  return { child, exited };
}

async function stopServer(signal: 'SIGKILL' | 'SIGTERM'): Promise<{ code: number | null }> {
  const current = server!;
  server = null;
  current.child.kill(signal);
  return current.exited;
}

async function addAgent(): Promise<void> {
  const name = `pool-${++agentCount}`;
  const agent = await h.agent({ HOSTNAME: name, RAIBID_HEARTBEAT_MS: '500' }, ['--loop']);
  pool.add({ ...agent, name });
}

/** Kills a random agent with -9 every 1.5–3 s and starts a new one, until stopped. */
function startChaos(): { stop: () => Promise<number> } {
  let running = true;
  let kills = 0;
  const done = (async () => {
    while (running) {
      await sleep(1_500 + Math.random() * 1_500);
      if (!running) break;
      const victims = [...pool];
      const victim = victims[Math.floor(Math.random() * victims.length)]!;
      pool.delete(victim);
      killedAgents.add(victim.name);
      victim.child.kill('SIGKILL');
      kills++;
      await victim.exited;
      await addAgent();
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return kills;
    },
  };
}

async function api(method: string, route: string, body?: unknown): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}${route}`, {
    method,
    headers: { ...AUTH, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function submit(env: Record<string, string> = {}): Promise<string> {
  const response = await api('POST', '/api/v1/jobs', { repo: h.git.url('suite/work'), ref: 'main', env });
  expect(response.status).toBe(201);
  return ((await response.json()) as { id: string }).id;
}

/** A push webhook for the suite's repo, delivered twice at once with one delivery id. */
async function deliverTwice(): Promise<string[]> {
  const fixture = JSON.parse(
    await readFile(path.join(ROOT, 'packages/server/test/fixtures/gitea/push-branch.json'), 'utf8'),
  );
  const sha = repo.commits.at(-1)!;
  fixture.after = sha;
  fixture.head_commit.id = sha;
  fixture.repository.owner.login = 'suite';
  fixture.repository.name = 'work';
  const body = Buffer.from(JSON.stringify(fixture));
  const deliver = () =>
    fetch(`http://127.0.0.1:${port}/webhooks/gitea`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-gitea-delivery': '0f0e0d0c-0b0a-4908-8706-050403020100',
        'x-gitea-event': 'push',
        'x-gitea-event-type': 'push',
        'x-gitea-signature': giteaSignature(SECRET, body),
      },
      body,
    });
  const responses = await Promise.all([deliver(), deliver()]);
  expect(responses.map((r) => r.status)).toEqual([202, 202]);
  return Promise.all(responses.map(async (r) => ((await r.json()) as { jobId: string }).jobId));
}

/**
 * Follows a job's log over SSE until its `end` event, reconnecting with Last-Event-ID
 * whenever the stream breaks (server killed or stopped) or cannot be opened.
 */
async function follow(jobId: string): Promise<{ events: LogEvent[]; reconnects: number }> {
  const events: LogEvent[] = [];
  let reconnects = -1;
  for (;;) {
    reconnects++;
    const lastId = events.at(-1)?.seq;
    let sse: Awaited<ReturnType<typeof openSse>>;
    try {
      sse = await openSse(`http://127.0.0.1:${port}/api/v1/jobs/${jobId}/logs?follow=1`, {
        ...AUTH,
        ...(lastId === undefined ? {} : { 'last-event-id': String(lastId) }),
      });
    } catch {
      await sleep(200); // the server is down
      continue;
    }
    if (sse.status !== 200) {
      sse.abort();
      await sleep(200);
      continue;
    }
    await sse.ended.catch(() => {}); // a killed server resets the connection
    for (const event of sse.events) {
      if (event.event === 'log') events.push(JSON.parse(event.data) as LogEvent);
    }
    if (sse.events.some((e) => e.event === 'end')) return { events, reconnects };
  }
}

function pickedUpBy(log: LogEvent[]): string[] {
  return log.flatMap((e) => /^\[raibid\] agent (\S+) picked up job /.exec(e.line)?.[1] ?? []);
}

beforeAll(async () => {
  h = await startHarness({ aof: true });
  const marks = path.join(h.workDir, '..', 'succeeded-steps');
  repo = await createRepo(h.reposDir, 'suite/work', {
    '.raibid.yml': `version: 1
steps:
  - name: work
    run: |
      if [ -n "\${TICKS:-}" ]; then for i in $(seq 1 "$TICKS"); do echo "tick $i"; sleep 0.2; done; fi
      sleep "0.$((RANDOM % 5))"
      echo "$RAIBID_JOB_ID $RAIBID_ATTEMPT" >> ${marks}
`,
  });
  port = await freePort();
  server = await startServer();
}, 60_000);

afterAll(async () => {
  if (server) await stopServer('SIGKILL');
  await h?.close();
});

describe('fault suite', () => {
  it(`${JOBS} jobs through agents killed with -9, Redis killed and restarted from its AOF (briefly and for ${LONG_OUTAGE_MS / 1_000} s) and the server killed and restarted: every job ends exactly once`, async () => {
    const started = Date.now();
    const followed = await submit({ TICKS: String(TICKS) });
    const following = follow(followed);
    const submitted = [followed];
    for (let i = 0; i < JOBS; i++) submitted.push(await submit());
    const delivered = await deliverTwice();
    expect(delivered[0]).toBe(delivered[1]);
    submitted.push(delivered[0]!);

    for (let i = 0; i < AGENTS; i++) await addAgent();
    const chaos = startChaos();
    const outages: string[] = [];

    await sleep(4_000);
    expect((await stopServer('SIGKILL')).code).toBe(null);
    server = await startServer();
    outages.push('server SIGKILL');

    await sleep(3_000);
    await h.redis.down('SIGKILL');
    await sleep(500);
    await h.redis.up();
    outages.push('redis -9, 0.5 s');

    await sleep(4_000);
    expect((await stopServer('SIGTERM')).code).toBe(0);
    server = await startServer();
    outages.push('server SIGTERM');

    await sleep(3_000);
    await h.redis.down('SIGKILL');
    await sleep(LONG_OUTAGE_MS);
    await h.redis.up();
    outages.push(`redis -9, ${LONG_OUTAGE_MS / 1_000} s`);

    await sleep(5_000);
    const kills = await chaos.stop();
    const drainStarted = Date.now();
    const jobs = await waitFor(
      'every job in a final state',
      async () => {
        const all = await Promise.all(submitted.map((id) => h.store.get(id)));
        return all.every((job) => job && isFinalStatus(job.status)) ? (all as Job[]) : null;
      },
      150_000,
      500,
    );
    const drainMs = Date.now() - drainStarted;

    // Exactly one job per submission, none lost, none left in the queue.
    expect(await h.client.zcard(JOBS_INDEX)).toBe(submitted.length);
    expect(new Set(submitted).size).toBe(submitted.length);
    // XINFO GROUPS: nothing pending, nothing undelivered (the reaper repairs a read count the AOF replay left stale).
    await waitFor('XINFO GROUPS lag 0 and pending 0', async () => {
      const stats = await h.queue.stats();
      return stats.lag === 0 && stats.pending === 0;
    });

    const marks = new Set(
      (await readFile(path.join(h.workDir, '..', 'succeeded-steps'), 'utf8')).trim().split('\n'),
    );
    const byStatus: Record<string, number> = {};
    for (const job of jobs) {
      byStatus[job.status] = (byStatus[job.status] ?? 0) + 1;
      const log = await h.events(job.id);
      const pickers = pickedUpBy(log);
      // Every attempt is in the log, once.
      expect(pickers, `attempts of ${job.id}`).toHaveLength(job.attempts);
      const stepSucceeded = marks.has(`${job.id} ${job.attempts}`);
      if (job.status === 'error') {
        // Only a job whose agent really was lost three times.
        expect(job.error).toMatch(/agent lost 3 times/);
        expect(pickers.every((agent) => killedAgents.has(agent))).toBe(true);
      } else {
        expect(job.status).toBe('succeeded');
        // A succeeded step is reported as succeeded, and only a succeeded one.
        expect(stepSucceeded, `step of ${job.id} attempt ${job.attempts}`).toBe(true);
        expect(job.steps.map((s) => s.status)).toEqual(['succeeded']);
      }
    }

    // The follower got every line of the followed job once, in order, across both server restarts.
    const { events, reconnects } = await following;
    const stored = await h.events(followed);
    expect(events.map((e) => e.seq)).toEqual(stored.map((e) => e.seq));
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1));
    expect(events.map((e) => e.line)).toEqual(stored.map((e) => e.line));
    expect(events.filter((e) => e.line === `tick ${TICKS}`).length).toBeGreaterThan(0);

    const exits = await Promise.all(
      [...pool].map((agent) => {
        agent.child.kill('SIGTERM');
        return agent.exited;
      }),
    );
    expect(exits.every((exit) => exit.code === 0)).toBe(true);

    console.log(
      `fault suite: ${jobs.length} jobs (${JSON.stringify(byStatus)}), ${kills} agents killed with -9, ` +
        `faults: ${outages.join('; ')}; lost 0, duplicated 0; follower reconnected ${reconnects} times; ` +
        `drained in ${(drainMs / 1_000).toFixed(1)} s after the last fault; ${((Date.now() - started) / 1_000).toFixed(0)} s in all`,
    );
  }, 300_000);
});
