import net, { type AddressInfo } from 'node:net';
import { createLogger, parseConfig, type ServerConfig, serverEnvSchema } from '@raibid/common';
import { lateBound, startRedis, type TestRedis, useRedis } from '@raibid/common/testing';
import { afterEach, beforeEach } from 'vitest';
import { type BuildServerOptions, buildServer, type RaibidApp } from '../../src/app.js';
import { createServerDeps, type ServerDeps } from '../../src/deps.js';
import type { KubeAgents } from '../../src/kube.js';

export const API_TOKEN = 'test-api-token-0123456789';
export const WEBHOOK_SECRET = 'raibid-test-secret';
export const AUTH = { authorization: `Bearer ${API_TOKEN}` };

export interface TestServer {
  redis: TestRedis;
  config: ServerConfig;
  deps: ServerDeps;
  app: RaibidApp;
  /** Base URL when started with `listen: true`. */
  url: string;
  /** Closes app and deps (not Redis: the file's redis is shared by its tests). */
  close(): Promise<void>;
}

export interface TestServerOptions {
  env?: Record<string, string>;
  listen?: boolean;
  kube?: KubeAgents;
  app?: BuildServerOptions;
  /** Where log output goes (default: nowhere). */
  logLevel?: string;
  /** Called on the app before it is ready (to add a hook a test observes). */
  prepare?: (app: RaibidApp) => void;
}

/** The app against this file's Redis, optionally on a real 127.0.0.1 listener. */
export async function startTestServer(
  redis: TestRedis,
  options: TestServerOptions = {},
): Promise<TestServer> {
  const config = parseConfig(serverEnvSchema, {
    REDIS_URL: redis.url,
    RAIBID_API_TOKEN: API_TOKEN,
    GITEA_WEBHOOK_SECRET: WEBHOOK_SECRET,
    GITEA_URL: 'http://gitea-http:3000',
    LOG_LEVEL: options.logLevel ?? 'silent',
    ...options.env,
  });
  const logger = createLogger({ name: 'server-test', level: config.LOG_LEVEL });
  const { deps, close } = createServerDeps(config, logger, {
    kube: options.kube ?? null,
    feedBlockMs: 1_000,
  });
  await deps.queue.ensureGroup();
  const app = buildServer(config, deps, options.app);
  options.prepare?.(app);
  let url = '';
  if (options.listen) {
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  } else {
    await app.ready();
  }
  return {
    redis,
    config,
    deps,
    app,
    url,
    async close() {
      await app.close();
      await close();
    },
  };
}

/** A fresh app before each test of the file (against `redis`), closed after it. */
export function useTestServer(redis: TestRedis, options: TestServerOptions = {}): TestServer {
  let server: TestServer | undefined;
  beforeEach(async () => {
    server = await startTestServer(redis, options);
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });
  return lateBound('the test server', () => server);
}

/**
 * http://127.0.0.1:<port> where nothing listens: a GITEA_URL that refuses at once. The
 * default `http://gitea-http:3000` costs a DNS lookup per request the server sends it
 * (it reads .raibid.yml through Gitea before queueing), too slow for thousands of requests.
 */
export async function closedLocalUrl(): Promise<string> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return `http://127.0.0.1:${port}`;
}

export { startRedis, useRedis };
