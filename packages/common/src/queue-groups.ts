import type { Redis } from 'ioredis';
import { AGENTS_GROUP, jobsStream } from './keys.js';
import { DEFAULT_POOL, POOLS, type Pool } from './pool.js';
import { compareStreamIds } from './redis.js';

export interface QueueStats {
  /** Entries not yet delivered to any agent (what KEDA scales on). */
  lag: number;
  /** Entries delivered and not yet ACKed (jobs held by agents). */
  pending: number;
}

/**
 * After an AOF replay (reads are replayed as XCLAIM) Redis may have lost count of
 * the entries the group read: `lag` is nil, or a number left stale. KEDA cannot
 * scale on a nil lag (queued jobs would wait forever) and scales for jobs that are
 * not there on a stale one. The true lag is the number of entries after the group's
 * last-delivered id (entries are never XDEL'ed); when `lag` differs, this gives the
 * group its count back — entries added minus that number — with XGROUP SETID …
 * ENTRIESREAD, atomically, so no read can slip in between. Counting reads every
 * undelivered entry, so a number is only checked when ARGV[2] is '1' (once per Redis run).
 * Returns 1 when it repaired the group, 0 when there was nothing to repair.
 */
const REPAIR_LAG_SCRIPT = `
local function field(reply, name)
  for i = 1, #reply, 2 do
    if reply[i] == name then return reply[i + 1] end
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  if field(group, 'name') == ARGV[1] then
    -- A number is trusted unless asked to count (ARGV[2]): counting reads every waiting entry.
    if ARGV[2] ~= '1' and field(group, 'lag') then return 0 end
    local lastId = field(group, 'last-delivered-id')
    local undelivered = #redis.call('XRANGE', KEYS[1], '(' .. lastId, '+')
    if field(group, 'lag') == undelivered then return 0 end
    local added = field(redis.call('XINFO', 'STREAM', KEYS[1]), 'entries-added')
    redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], lastId, 'ENTRIESREAD', added - undelivered)
    return 1
  end
end
return 0
`;

/**
 * The agents group of every pool's stream: creating it (again), and what the reaper
 * and readiness read or fix about it (lag, pending, trimming).
 */
export class PoolGroups {
  /** The Redis run (INFO server run_id) whose lag numbers repairLag has counted. */
  private countedRun: string | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly onProblem: (message: string, detail: Record<string, unknown>) => void,
  ) {
    redis.defineCommand('raibidRepairLag', { numberOfKeys: 1, lua: REPAIR_LAG_SCRIPT });
  }

  /**
   * Creates every pool's group at id 0 with MKSTREAM, so entries added before it
   * still get delivered (and KEDA finds the GPU pool's group before its first job).
   */
  async ensureGroup(): Promise<void> {
    for (const pool of POOLS) {
      try {
        await this.redis.xgroup('CREATE', jobsStream(pool), AGENTS_GROUP, '0', 'MKSTREAM');
      } catch (error) {
        if (!(error instanceof Error && error.message.includes('BUSYGROUP'))) throw error;
      }
    }
  }

  /**
   * The group vanished (Redis came back empty, or someone deleted the stream): create
   * it again at 0, so jobs enqueued since are delivered and counted in lag.
   */
  async recreateGroup(pool: Pool): Promise<void> {
    this.onProblem('consumer group raibid-agents was missing (Redis lost its data?); created it again', {
      stream: jobsStream(pool),
      group: AGENTS_GROUP,
    });
    await this.ensureGroup();
  }

  /** Whether every pool's stream and group exist (readiness). */
  async groupExists(): Promise<boolean> {
    for (const pool of POOLS) if ((await this.agentsGroup(pool)) === null) return false;
    return true;
  }

  /** The agents group's fields from XINFO GROUPS (`lag` may be nil), or null when stream or group is missing. */
  async agentsGroup(pool: Pool): Promise<Record<string, unknown> | null> {
    let groups: unknown[][];
    try {
      groups = (await this.redis.xinfo('GROUPS', jobsStream(pool))) as unknown[][];
    } catch (error) {
      if (error instanceof Error && error.message.includes('no such key')) return null;
      throw error;
    }
    for (const group of groups) {
      const fields: Record<string, unknown> = {};
      for (let i = 0; i + 1 < group.length; i += 2) fields[String(group[i])] = group[i + 1];
      if (fields.name === AGENTS_GROUP) return fields;
    }
    return null;
  }

  /** How long the Redis server has been up (INFO server's uptime_in_seconds), in ms. */
  async redisUptimeMs(): Promise<number> {
    return Number(await this.serverInfo('uptime_in_seconds')) * 1_000;
  }

  private async serverInfo(field: 'uptime_in_seconds' | 'run_id'): Promise<string> {
    const info = await this.redis.info('server');
    const value = new RegExp(`^${field}:(\\w+)`, 'm').exec(info)?.[1];
    if (value === undefined) throw new Error(`INFO server has no ${field}; is this Redis 7+?`);
    return value;
  }

  /** Lag and pending of a pool's agents group, from XINFO GROUPS (what KEDA reads). */
  async stats(pool: Pool = DEFAULT_POOL): Promise<QueueStats> {
    const group = await this.agentsGroup(pool);
    if (!group) return { lag: 0, pending: 0 };
    const pending = Number(group.pending ?? 0);
    if (group.lag !== null && group.lag !== undefined) return { lag: Number(group.lag), pending };
    // Redis reports lag as nil when it cannot compute it; count undelivered entries instead.
    const after = String(group['last-delivered-id'] ?? '0-0');
    const undelivered = await this.redis.xrange(jobsStream(pool), `(${after}`, '+');
    return { lag: undelivered.length, pending };
  }

  /**
   * Makes every pool group's `lag` right again when Redis reports it as nil (every call)
   * or stale (see REPAIR_LAG_SCRIPT). Only a replay leaves a number stale, so numbers are
   * counted once per Redis run (a new run_id): counting every pass read the whole backlog
   * each time and stalled Redis for everyone while thousands of jobs waited.
   * True when it repaired any.
   */
  async repairLag(): Promise<boolean> {
    const run = await this.serverInfo('run_id');
    const count = run !== this.countedRun;
    let repaired = false;
    for (const pool of POOLS) {
      const reply = await (this.redis as unknown as GroupCommands).raibidRepairLag(
        jobsStream(pool),
        AGENTS_GROUP,
        count ? '1' : '',
      );
      if (reply === 1) repaired = true;
    }
    this.countedRun = run;
    return repaired;
  }

  /**
   * Trims every pool's stream below both its group's last-delivered id and the
   * oldest pending entry (MINID), keeping at least `keep` entries' worth of history
   * per stream. Returns how many entries went.
   */
  async trim(keep = 1_000): Promise<number> {
    let trimmed = 0;
    for (const pool of POOLS) trimmed += await this.trimPool(pool, keep);
    return trimmed;
  }

  private async trimPool(pool: Pool, keep: number): Promise<number> {
    const stream = jobsStream(pool);
    if ((await this.redis.xlen(stream)) <= keep) return 0;
    const group = await this.agentsGroup(pool);
    if (!group) return 0;
    let minId = String(group['last-delivered-id']);
    const summary = (await this.redis.xpending(stream, AGENTS_GROUP)) as [
      number,
      string | null,
      ...unknown[],
    ];
    if (summary[1] && compareStreamIds(summary[1], minId) < 0) minId = summary[1];
    const [keepFrom] = (await this.redis.xrevrange(stream, '+', '-', 'COUNT', keep)).slice(-1);
    if (keepFrom && compareStreamIds(keepFrom[0], minId) < 0) minId = keepFrom[0];
    return this.redis.xtrim(stream, 'MINID', minId);
  }
}

export function isNoGroupError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOGROUP');
}

interface GroupCommands {
  raibidRepairLag(...args: string[]): Promise<number>;
}
