import { agentEnvSchema } from '@raibid/common';
import { z } from 'zod';

/** The agent's environment: the common agent settings plus how long a stopped step may take to exit. */
export const agentConfigSchema = agentEnvSchema.extend({
  /** After SIGTERM to a step's process group, SIGKILL follows this much later. */
  RAIBID_KILL_GRACE_MS: z.coerce.number().int().positive().default(10_000),
});
export type AgentSettings = z.infer<typeof agentConfigSchema>;

export interface AgentArgs {
  /** Keep claiming jobs instead of exiting after one. */
  loop: boolean;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

export const USAGE = 'usage: raibid-agent [--loop]';

/** Command-line arguments: only `--loop` (and `--help`). */
export function parseArgs(argv: readonly string[]): AgentArgs | 'help' {
  let loop = false;
  for (const arg of argv) {
    if (arg === '--loop') loop = true;
    else if (arg === '--help' || arg === '-h') return 'help';
    else throw new UsageError(`unknown argument "${arg}"; ${USAGE}`);
  }
  return { loop };
}
