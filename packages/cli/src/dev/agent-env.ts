import path from 'node:path';

/** The server's listener settings: given to `pnpm dev` for the server, never a step's business. */
const SERVER_ONLY = ['PORT', 'METRICS_PORT', 'HOST'];
/** What npm/pnpm add to the environment of a package script such as `pnpm dev`. */
const SCRIPT_RUNNER = /^(npm_|pnpm_)|^(INIT_CWD|PNPM_SCRIPT_SRC_DIR|NODE)$/;

/**
 * The environment the local stack gives its agents (and so their steps): the user's, without
 * what running `pnpm dev` as a package script added (raibid-ci's `node_modules/.bin` on PATH,
 * `npm_package_*`, `npm_lifecycle_event`, …) and without the server's PORT/METRICS_PORT/HOST,
 * so a step sees what it would see in an agent pod and not raibid-ci's own tools or ports.
 */
export function agentBaseEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const underScript = env.npm_lifecycle_event !== undefined;
  const out: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(env)) {
    if (SERVER_ONLY.includes(key)) continue;
    if (underScript && SCRIPT_RUNNER.test(key)) continue;
    out[key] = value;
  }
  if (underScript && env.PATH) {
    out.PATH = env.PATH.split(path.delimiter)
      .filter(
        (dir) => !/[\\/]node_modules[\\/]\.bin[\\/]?$/.test(dir) && path.basename(dir) !== 'node-gyp-bin',
      )
      .join(path.delimiter);
  }
  return out;
}

/** How long a one-job agent waits for a job before it exits 0 (AGENT_IDLE_TIMEOUT). */
export const AGENT_IDLE_TIMEOUT_DEFAULT = '30s';
/**
 * AGENT_IDLE_TIMEOUT of the agents of a ScaledJob that keeps warm agents (minReplicaCount > 0):
 * an idle warm agent that exited after 30 s would be replaced only at the next poll, every
 * 30 s, leaving no agent waiting for a poll interval plus a start each time. With an hour the
 * replacement happens once an hour. Tanka's `agent.warmIdleTimeoutSeconds` is the same value.
 */
export const AGENT_IDLE_TIMEOUT_WARM = '1h';

/** AGENT_IDLE_TIMEOUT for the stack's agents: the user's if set, else by whether agents are kept warm. */
export function agentIdleTimeout(env: NodeJS.ProcessEnv, minReplicaCount: number): string {
  return (
    env.AGENT_IDLE_TIMEOUT || (minReplicaCount > 0 ? AGENT_IDLE_TIMEOUT_WARM : AGENT_IDLE_TIMEOUT_DEFAULT)
  );
}
