import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { durationSchema } from './duration.js';

/** A boolean flag from the environment: 1/true/yes/on or 0/false/no/off (or empty). */
const flag = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['', '0', '1', 'true', 'false', 'yes', 'no', 'on', 'off'].includes(v), 'must be 1 or 0')
  .transform((v) => ['1', 'true', 'yes', 'on'].includes(v));

const port = z.coerce.number().int().min(0).max(65_535);
const positiveMs = z.coerce.number().int().positive();
const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));
const httpUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .transform((v) => v.replace(/\/+$/, ''));

const redisUrl = z
  .string()
  .default('redis://127.0.0.1:6379')
  .refine(
    (v) => /^(rediss?|unix):\/\//.test(v) || v.startsWith('/'),
    'must be a redis://, rediss:// or unix:// URL',
  );

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');

const shared = {
  REDIS_URL: redisUrl,
  LOG_LEVEL: logLevel,
};

export const serverEnvSchema = z.object({
  ...shared,
  PORT: port.default(8080),
  METRICS_PORT: port.default(8081),
  HOST: z.string().min(1).default('0.0.0.0'),
  RAIBID_API_TOKEN: optionalText,
  RAIBID_INSECURE_NO_AUTH: flag.default(false),
  GITEA_URL: httpUrl.optional(),
  GITEA_TOKEN: optionalText,
  GITEA_WEBHOOK_SECRET: optionalText,
  PUBLIC_URL: httpUrl.default('http://localhost:8080'),
  RAIBID_LEASE_MS: positiveMs.default(30_000),
  RAIBID_ALLOW_FILE_REPOS: flag.default(false),
  RAIBID_LOG_CAP_BYTES: positiveMs.default(10 * 1024 * 1024),
});
export type ServerConfig = z.infer<typeof serverEnvSchema>;

export const agentEnvSchema = z.object({
  ...shared,
  RAIBID_HEARTBEAT_MS: positiveMs.default(5_000),
  AGENT_IDLE_TIMEOUT: durationSchema.default(30_000),
  RAIBID_CACHE_DIR: z
    .string()
    .min(1)
    .default(path.join(os.homedir(), '.cache', 'raibid')),
  RAIBID_WORK_DIR: z.string().min(1).default(os.tmpdir()),
  RAIBID_LOG_CAP_BYTES: positiveMs.default(10 * 1024 * 1024),
  GITEA_TOKEN: optionalText,
  GIT_TOKEN: optionalText,
  HOSTNAME: optionalText,
});
export type AgentConfig = z.infer<typeof agentEnvSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

/**
 * Parses the environment with `schema`. Empty strings count as unset so that
 * `FOO=` in a manifest means "use the default". Throws ConfigError whose
 * message is one line naming the first bad variable.
 */
export function parseConfig<S extends z.ZodType>(schema: S, env: Env = process.env): z.infer<S> {
  const cleaned: Env = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value !== '') cleaned[key] = value;
  }
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const variable = issue.path.join('.') || 'environment';
  const given = cleaned[variable];
  const shown = given === undefined ? '' : ` (got "${/TOKEN|SECRET/.test(variable) ? '***' : given}")`;
  const message = issue.code === 'invalid_type' ? `must be a ${issue.expected}` : issue.message;
  throw new ConfigError(`invalid configuration: ${variable} ${message}${shown}`);
}

/** parseConfig for a process entry point: a bad value prints one line and exits 2. */
export function loadConfigOrExit<S extends z.ZodType>(schema: S, env: Env = process.env): z.infer<S> {
  try {
    return parseConfig(schema, env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`raibid: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}
