import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import fastifySwagger from '@fastify/swagger';
import type { ServerConfig } from '@raibid/common';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  LogController,
  type RawServerDefault,
} from 'fastify';
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { trackConnections } from './connections.js';
import type { ServerDeps } from './deps.js';
import { ApiError, frameworkErrorHandler, installErrorHandling } from './errors.js';
import { healthFastPathServer } from './health-fast-path.js';
import { lazyRequestLogger } from './request-logger.js';
import { docsRoutes } from './routes/docs.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { type LogRoutesOptions, logRoutes } from './routes/logs.js';
import { queueRoutes } from './routes/queue.js';
import { webhookRoutes } from './routes/webhooks.js';
import { responseSerializerCompiler } from './serializer.js';
import { uiPlugin } from './ui/plugin.js';

/** What every plugin of the app (API routes, the web UI) reaches through `app.raibid`. */
export interface ServerContext {
  config: ServerConfig;
  deps: ServerDeps;
}

declare module 'fastify' {
  interface FastifyInstance {
    raibid: ServerContext;
  }
}

export type RaibidApp = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/** Body limit of every route (contract: 413 above it). */
export const BODY_LIMIT = 1024 * 1024;

export interface BuildServerOptions {
  /** SSE timing (tests shorten it). */
  logs?: LogRoutesOptions;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** A caller's X-Request-Id when it is safe to log; otherwise a fresh one. */
function requestIdOf(request: IncomingMessage): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * Routes of probes and scrapes: Kubernetes asks every few seconds, so a log line each is
 * noise (and, at load, the larger part of a request's cost). Failures on them are logged.
 */
const UNLOGGED_ROUTES = new Set(['/health', '/ready', '/metrics']);

/**
 * Builds the HTTP app (API, webhooks, docs; the web UI registers itself as a plugin).
 * Nothing listens yet: tests call `app.inject()` or `app.listen()`; main.ts listens on HOST:PORT.
 * Closing the app ends open log streams; the deps are the caller's to close.
 */
export function buildServer(
  config: ServerConfig,
  deps: ServerDeps,
  options: BuildServerOptions = {},
): RaibidApp {
  /** Set when close() begins: requests that still arrive are refused (onRequest below). */
  let closing = false;
  const app = Fastify({
    // GET and HEAD /health are answered before fastify routes them (health-fast-path.ts).
    serverFactory: healthFastPathServer({
      isClosing: () => closing,
      requestId: requestIdOf,
      observe: (method, status, seconds) => deps.metrics.observeHttp(method, '/health', status, seconds),
    }),
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    frameworkErrors: frameworkErrorHandler,
    // One line per request, written in onResponse below, instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyRequestLogger,
    // fastify's own 503 while closing has a body of its own shape; ours is below.
    return503OnClosing: false,
    requestIdHeader: false,
    genReqId: requestIdOf,
  }).withTypeProvider<ZodTypeProvider>();

  // Bodies are JSON only: fastify's default text/plain parser would hand JSON sent as
  // text to the schema as a string ("expected object") instead of a 415 that says why.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(responseSerializerCompiler);
  app.decorate('raibid', { config, deps });
  installErrorHandling(app);

  // On close: in-flight requests finish; connections without one are dropped, now and
  // as their last response ends, so close() never waits for an idle client.
  const connections = trackConnections(app.server);
  let idleSweep: NodeJS.Timeout | null = null;

  // The hooks on every request take `done` rather than being async: no promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    if (!closing) return done();
    // A request that still arrives (pipelined, or on a busy keep-alive connection) is refused.
    reply.header('connection', 'close');
    done(new ApiError(503, 'shutting_down', 'the server is shutting down; retry the request shortly'));
  });
  app.addHook('onResponse', (request, reply, done) => {
    const seconds = reply.elapsedTime / 1000;
    const route = request.routeOptions.url;
    const status = reply.statusCode;
    // Writes and failures at info (the error handler logs the error itself); reads at debug;
    // probes not at all unless they fail.
    const read = request.method === 'GET' || request.method === 'HEAD';
    const level = read && status < 500 ? 'debug' : 'info';
    if (status >= 500 || !UNLOGGED_ROUTES.has(route ?? '')) {
      request.log[level](
        { method: request.method, url: request.url, statusCode: status, ms: Math.round(reply.elapsedTime) },
        'request completed',
      );
    }
    // A log stream's duration is how long someone watched, not how fast we answered.
    const type = reply.getHeader('content-type');
    if (typeof type !== 'string' || !type.startsWith('text/event-stream')) {
      deps.metrics.observeHttp(request.method, route ?? 'unmatched', status, seconds);
    }
    done();
  });

  app.addHook('preClose', async () => {
    closing = true;
    connections.dropIdle();
    idleSweep = setInterval(() => connections.dropIdle(), 50);
    idleSweep.unref();
  });
  app.addHook('onClose', async () => {
    if (idleSweep) clearInterval(idleSweep);
  });

  app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'raibid-ci',
        description:
          'Self-hosted CI: jobs, logs, Gitea webhooks. Errors are `{"error": {"code", "message", "details"?}}`.',
        version: '1',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'RAIBID_API_TOKEN' } },
      },
    },
    // Only tagged routes are API: the web UI's pages and assets stay out of the document.
    hideUntagged: true,
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });

  app.register(healthRoutes);
  app.register(jobRoutes);
  app.register(logRoutes, options.logs ?? {});
  app.register(webhookRoutes);
  app.register(queueRoutes);
  app.register(docsRoutes);
  app.register(uiPlugin);

  return app;
}
