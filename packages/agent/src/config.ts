import { agentEnvSchema, DEFAULT_POOL, type Pool, poolSchema } from '@raibid/common';
import { z } from 'zod';

/** The agent's environment: the common agent settings plus how long a stopped step may take to exit. */
export const agentConfigSchema = agentEnvSchema.extend({
  /** After SIGTERM to a step's process group, SIGKILL follows this much later. */
  RAIBID_KILL_GRACE_MS: z.coerce.number().int().positive().default(10_000),
  /** The pool whose jobs this agent takes (`--pool` wins); ScaledJob raibid-agent-gpu sets `gpu`. */
  RAIBID_POOL: poolSchema.default(DEFAULT_POOL),
});
export type AgentSettings = z.infer<typeof agentConfigSchema>;

export interface AgentArgs {
  /** Keep claiming jobs instead of exiting after one. */
  loop: boolean;
  /** `--pool`: overrides RAIBID_POOL. */
  pool: Pool | null;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

export const USAGE = 'usage: raibid-agent [--loop] [--pool cpu|gpu]';

/** Command-line arguments: `--loop`, `--pool cpu|gpu` (or `--pool=gpu`) and `--help`. */
export function parseArgs(argv: readonly string[]): AgentArgs | 'help' {
  let loop = false;
  let pool: Pool | null = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--loop') loop = true;
    else if (arg === '--help' || arg === '-h') return 'help';
    else if (arg === '--pool' || arg.startsWith('--pool=')) {
      const value = arg === '--pool' ? argv[++i] : arg.slice('--pool='.length);
      const parsed = poolSchema.safeParse(value);
      if (!parsed.success) throw new UsageError(`--pool must be cpu or gpu (got "${value ?? ''}"); ${USAGE}`);
      pool = parsed.data;
    } else throw new UsageError(`unknown argument "${arg}"; ${USAGE}`);
  }
  return { loop, pool };
}
