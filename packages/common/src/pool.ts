import { z } from 'zod';

/**
 * Agent pools (CONTRACT.md, "Redis"): each has its own job stream and its own
 * agents. `cpu` is every job that does not ask for the GPU.
 */
export const POOLS = ['cpu', 'gpu'] as const;
export const poolSchema = z.enum(POOLS, 'must be "cpu" or "gpu"');
export type Pool = z.infer<typeof poolSchema>;
export const DEFAULT_POOL: Pool = 'cpu';
