import { AGENTS_GROUP, DEFAULT_POOL, jobsStream, type Pool } from '@raibid/common';
import type { Redis } from 'ioredis';
import type { ManagedProcess } from './processes.js';
import { lagFromXinfoGroups, planScale, type ScaleDecision, type ScaledJobSpec } from './scaling.js';

/** An agent process the scaler started: the local counterpart of one Job of the ScaledJob. */
export interface ScaledAgent {
  /** Short name for the log (`agent-3`). */
  name: string;
  /** Its consumer name in `raibid-agents` (the agent's HOSTNAME, like a pod name). */
  consumer: string;
  process: ManagedProcess;
  startedAt: number;
  /** Seen holding a queue entry: no longer "pending" in KEDA's sense (its pod is Running). */
  claimed: boolean;
}

export interface LocalScalerOptions {
  redis: Redis;
  spec: ScaledJobSpec;
  /** The pool whose stream this scaler watches (one ScaledJob per pool, as in the cluster); default cpu. */
  pool?: Pool;
  /** Starts one one-job agent; `index` counts agents started by this scaler from 1. */
  startAgent(index: number): Promise<Omit<ScaledAgent, 'startedAt' | 'claimed'>>;
  log(line: string, level?: 'info' | 'warn' | 'error'): void;
  /** How long agents get to hand back their job on stop before they are killed. */
  stopGraceMs?: number;
}

export interface ScalerTick {
  lag: number;
  runningJobs: number;
  pendingJobs: number;
  decision: ScaleDecision;
  started: string[];
}

function isMissingKey(error: unknown): boolean {
  return error instanceof Error && /no such key|NOGROUP/i.test(error.message);
}

/**
 * The local stand-in for KEDA's ScaledJob controller: on every polling interval it reads the
 * redis-streams metric (`lag` of `raibid-agents` on its pool's stream, `raibid:jobs` or
 * `raibid:jobs:gpu`), counts the agents it started that
 * are still alive (running) and those of them that have not taken a job yet (pending), asks
 * `planScale` how many Jobs KEDA would create, and starts that many one-job agents. Exited agents are
 * reaped (forgotten, and their idle consumer removed from the group). With `minReplicaCount` > 0 it
 * keeps that many agents alive on an empty queue (warm agents, waiting on the stream); like KEDA it
 * counts agents, not idle ones, so a warm agent that took a job is replaced on the first poll after
 * it exits.
 */
export class LocalScaler {
  private readonly agents = new Map<string, ScaledAgent>();
  private started = 0;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<unknown> | null = null;
  private stopped = false;
  private lastSituation = '';
  private readonly reaps = new Set<Promise<void>>();

  private readonly stream: string;

  constructor(private readonly options: LocalScalerOptions) {
    this.stream = jobsStream(options.pool ?? DEFAULT_POOL);
  }

  /** Agents alive right now. */
  get alive(): readonly ScaledAgent[] {
    return [...this.agents.values()];
  }

  /** Like KEDA: one check at once, then one `pollingInterval` after each check finishes. */
  start(): void {
    const loop = async () => {
      this.timer = null;
      const tick = this.tick().catch((error: unknown) => {
        this.report(`scaler check failed: ${error instanceof Error ? error.message : String(error)}`, 'warn');
      });
      this.inFlight = tick;
      await tick;
      this.inFlight = null;
      if (!this.stopped) this.timer = setTimeout(loop, this.options.spec.pollingIntervalMs);
    };
    void loop();
  }

  /** The metric KEDA's redis-streams scaler reads: the group's lag; XLEN if the group is missing. */
  async readLag(): Promise<number> {
    const { redis } = this.options;
    let reply: unknown;
    try {
      reply = await redis.xinfo('GROUPS', this.stream);
    } catch (error) {
      if (isMissingKey(error)) return 0;
      throw error;
    }
    return lagFromXinfoGroups(reply, AGENTS_GROUP) ?? (await redis.xlen(this.stream));
  }

  /** Pending entries per consumer of the group (XINFO CONSUMERS). */
  private async consumerPending(): Promise<Map<string, number>> {
    let reply: unknown[];
    try {
      reply = (await this.options.redis.xinfo('CONSUMERS', this.stream, AGENTS_GROUP)) as unknown[];
    } catch (error) {
      if (isMissingKey(error)) return new Map();
      throw error;
    }
    const pending = new Map<string, number>();
    for (const entry of reply) {
      if (!Array.isArray(entry)) continue;
      const fields = new Map<string, unknown>();
      for (let i = 0; i + 1 < entry.length; i += 2) fields.set(String(entry[i]), entry[i + 1]);
      pending.set(String(fields.get('name')), Number(fields.get('pending') ?? 0));
    }
    return pending;
  }

  /** One poll: observe, decide, start agents. */
  async tick(): Promise<ScalerTick> {
    const lag = await this.readLag();
    const pendingByConsumer = await this.consumerPending();
    for (const agent of this.agents.values()) {
      if (!agent.claimed && (pendingByConsumer.get(agent.consumer) ?? 0) > 0) agent.claimed = true;
    }
    const runningJobs = this.agents.size;
    const pendingJobs = [...this.agents.values()].filter((agent) => !agent.claimed).length;
    const decision = planScale(this.options.spec, { lag, runningJobs, pendingJobs });
    const started: string[] = [];
    if (this.stopped) return { lag, runningJobs, pendingJobs, decision, started };

    const { spec } = this.options;
    const situation = `lag ${lag}, ${runningJobs} running (${pendingJobs} not started)`;
    if (decision.jobs > 0) {
      this.report(
        `${situation} → starting ${decision.jobs} agent${decision.jobs === 1 ? '' : 's'} (${spec.strategy}, max ${spec.maxReplicaCount}${decision.minReplicaCount > 0 ? `, min ${decision.minReplicaCount} kept waiting` : ''})`,
      );
    } else if (lag > 0 && situation !== this.lastSituation) {
      const why =
        runningJobs >= decision.maxReplicaCount
          ? `at maxReplicaCount ${spec.maxReplicaCount}`
          : 'agents starting';
      this.report(`${situation}: waiting (${why})`);
    }
    this.lastSituation = situation;

    for (let i = 0; i < decision.jobs && !this.stopped; i++) {
      this.started += 1;
      try {
        const agent = await this.options.startAgent(this.started);
        this.track({ ...agent, startedAt: Date.now(), claimed: false });
        started.push(agent.name);
      } catch (error) {
        this.report(
          `could not start an agent: ${error instanceof Error ? error.message : String(error)}`,
          'error',
        );
        break;
      }
    }
    return { lag, runningJobs, pendingJobs, decision, started };
  }

  private track(agent: ScaledAgent): void {
    this.agents.set(agent.consumer, agent);
    this.report(`started ${agent.name} (pid ${agent.process.pid}, consumer ${agent.consumer})`);
    const reap = agent.process.exited.then(async (info) => {
      this.agents.delete(agent.consumer);
      const seconds = Math.round((Date.now() - agent.startedAt) / 1000);
      const failed = info.code !== 0;
      this.report(
        `reaped ${agent.name} (pid ${agent.process.pid}): exited with ${agent.process.exitDescription} after ${seconds}s`,
        failed && !this.stopped ? 'warn' : 'info',
      );
      await this.forgetConsumer(agent.consumer);
    });
    this.reaps.add(reap);
    void reap.finally(() => this.reaps.delete(reap));
  }

  /**
   * Removes the consumer of an exited agent from the group, but only when it holds no entries: an entry
   * it still holds (it died mid-job) must stay pending for the server's reaper to reclaim.
   */
  private async forgetConsumer(consumer: string): Promise<void> {
    try {
      if (((await this.consumerPending()).get(consumer) ?? 1) === 0) {
        await this.options.redis.xgroup('DELCONSUMER', this.stream, AGENTS_GROUP, consumer);
      }
    } catch (error) {
      if (!this.stopped) {
        this.report(
          `could not remove consumer ${consumer}: ${error instanceof Error ? error.message : String(error)}`,
          'warn',
        );
      }
    }
  }

  private report(line: string, level: 'info' | 'warn' | 'error' = 'info'): void {
    this.options.log(line, level);
  }

  /** Stops polling, then stops every agent (they hand back running jobs) and waits for all of them. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.inFlight;
    const grace = this.options.stopGraceMs ?? 15_000;
    await Promise.all([...this.agents.values()].map((agent) => agent.process.stop(grace)));
    await Promise.all([...this.reaps]);
  }
}
