import type { Redis } from 'ioredis';
import { type AgentInfo, agentInfoSchema } from './job.js';
import { AGENTS_INDEX, agentKey } from './keys.js';

/** How long an agent that stopped heart-beating stays listed. */
const AGENT_RETENTION_MS = 60 * 60_000;

/** Agents as seen through their heartbeats. */
export class AgentRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly onCorrupt: (name: string, reason: string) => void = () => {},
  ) {}

  async beat(info: AgentInfo): Promise<void> {
    const now = Date.parse(info.lastSeen);
    await this.redis
      .multi()
      .set(agentKey(info.name), JSON.stringify(info), 'PX', AGENT_RETENTION_MS)
      .zadd(AGENTS_INDEX, now, info.name)
      .zremrangebyscore(AGENTS_INDEX, '-inf', now - AGENT_RETENTION_MS)
      .exec();
  }

  /** Drops an agent that exits cleanly. */
  async remove(name: string): Promise<void> {
    await this.redis.multi().del(agentKey(name)).zrem(AGENTS_INDEX, name).exec();
  }

  /** Agents seen within `withinMs`, most recent first. */
  async list(withinMs = AGENT_RETENTION_MS, now = Date.now()): Promise<AgentInfo[]> {
    const names = await this.redis.zrevrangebyscore(AGENTS_INDEX, '+inf', now - withinMs);
    if (names.length === 0) return [];
    const raws = await this.redis.mget(names.map(agentKey));
    const agents: AgentInfo[] = [];
    names.forEach((name, i) => {
      const raw = raws[i];
      if (raw === null || raw === undefined) return;
      try {
        const parsed = agentInfoSchema.safeParse(JSON.parse(raw));
        if (parsed.success) agents.push(parsed.data);
        else this.onCorrupt(name, parsed.error.issues[0]?.message ?? 'invalid');
      } catch {
        this.onCorrupt(name, 'not JSON');
      }
    });
    return agents;
  }

  /** Number of agents that heart-beat within `withinMs`. */
  countActive(withinMs: number, now = Date.now()): Promise<number> {
    return this.redis.zcount(AGENTS_INDEX, now - withinMs, '+inf');
  }
}
