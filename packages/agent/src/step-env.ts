import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Job } from '@raibid/common';

/** Variables of the agent's own environment that steps never see (configuration and credentials). */
const AGENT_ONLY =
  /^(REDIS_URL|LOG_LEVEL|AGENT_IDLE_TIMEOUT|GITEA_TOKEN|GIT_TOKEN|GITEA_URL|GITEA_WEBHOOK_SECRET|PUBLIC_URL|NODE_OPTIONS|RAIBID_(?!SECRET_).*)$/;

/** The agent's environment minus its own configuration; `RAIBID_SECRET_*` values are kept for the steps. */
export function inheritedEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && !AGENT_ONLY.test(key)) out[key] = value;
  }
  return out;
}

/**
 * Tool caches kept under the cache directory (a PVC in Kubernetes), so a second
 * build downloads nothing it already has. `RAIBID_REPO_CACHE` is a directory of
 * the repository's own for anything else a pipeline wants to keep.
 */
export async function cacheEnv(cacheDir: string, repo: Job['repo']): Promise<Record<string, string>> {
  const dirs = {
    CARGO_HOME: path.join(cacheDir, 'cargo'),
    npm_config_cache: path.join(cacheDir, 'npm'),
    npm_config_store_dir: path.join(cacheDir, 'pnpm-store'),
    YARN_CACHE_FOLDER: path.join(cacheDir, 'yarn'),
    BUN_INSTALL_CACHE_DIR: path.join(cacheDir, 'bun'),
    GOMODCACHE: path.join(cacheDir, 'go', 'mod'),
    GOCACHE: path.join(cacheDir, 'go', 'build'),
    PIP_CACHE_DIR: path.join(cacheDir, 'pip'),
    RAIBID_REPO_CACHE: path.join(cacheDir, 'repos', repo.owner, repo.name),
  };
  await Promise.all(Object.values(dirs).map((dir) => mkdir(dir, { recursive: true })));
  return dirs;
}

export interface StepEnvInput {
  inherited: Record<string, string>;
  caches: Record<string, string>;
  pipelineEnv: Record<string, string>;
  jobEnv: Record<string, string>;
  stepEnv: Record<string, string>;
  /** Set by raibid last; a pipeline cannot override them. */
  raibid: Record<string, string>;
}

/** A step's environment; later layers win: inherited, caches, pipeline `env`, job `env`, step `env`, raibid's. */
export function stepEnv(input: StepEnvInput): Record<string, string> {
  return {
    ...input.inherited,
    ...input.caches,
    ...input.pipelineEnv,
    ...input.jobEnv,
    ...input.stepEnv,
    ...input.raibid,
  };
}
