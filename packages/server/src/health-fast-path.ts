import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { FastifyServerFactory } from 'fastify';

/** The liveness answer, byte for byte what the `/health` route in routes/health.ts serialises. */
const HEALTH_BODY = JSON.stringify({ status: 'ok' });
const HEALTH_BODY_LENGTH = String(Buffer.byteLength(HEALTH_BODY));
const JSON_TYPE = 'application/json; charset=utf-8';

export interface HealthFastPathOptions {
  /** True once the server shuts down: probes then go through fastify, which refuses them like any request. */
  isClosing(): boolean;
  /** The request id every response carries (the same rule as fastify's genReqId). */
  requestId(request: IncomingMessage): string;
  /** Times the probe in the HTTP duration histogram, under the route `/health`. */
  observe(method: string, statusCode: number, seconds: number): void;
}

/** `/health` as fastify routes it: the query string is ignored, a trailing slash is another path. */
function isHealthProbe(request: IncomingMessage): boolean {
  const { method, url = '' } = request;
  return (method === 'GET' || method === 'HEAD') && (url === '/health' || url.startsWith('/health?'));
}

/** fastify's option as a number, when it is one (the factory gets the options untyped). */
const numberOption = (options: Record<string, unknown>, name: string): number | undefined => {
  const value = options[name];
  return typeof value === 'number' ? value : undefined;
};

/**
 * fastify's `serverFactory`: a node:http server that answers `GET`/`HEAD /health` itself and
 * hands every other request to fastify. Kubernetes probes every few seconds, and fastify's
 * routing, request and reply objects and hooks cost more than the answer; here a probe costs
 * about what a bare node:http server spends. The answer is the route's: same status, body,
 * content type and length, an `x-request-id`, a histogram entry, no log line. The `/health`
 * route stays registered for `/docs` and `inject()`, which do not go through this server.
 */
export function healthFastPathServer(options: HealthFastPathOptions): FastifyServerFactory<Server> {
  return (handler, fastifyOptions) => {
    const server = createServer((request: IncomingMessage, response: ServerResponse) => {
      if (!isHealthProbe(request) || options.isClosing()) {
        handler(request, response);
        return;
      }
      const started = performance.now();
      response.writeHead(200, [
        'x-request-id',
        options.requestId(request),
        'content-type',
        JSON_TYPE,
        'content-length',
        HEALTH_BODY_LENGTH,
      ]);
      response.end(request.method === 'HEAD' ? undefined : HEALTH_BODY);
      // end() has handed the whole response to the socket: fastify times up to that point too.
      options.observe(request.method!, 200, (performance.now() - started) / 1000);
    });
    // What fastify does to the server it creates (lib/server.js) and skips for a factory's:
    // without it, keep-alive would drop from 72 s to Node's 5 s and requests would time out at 300 s.
    const keepAliveTimeout = numberOption(fastifyOptions, 'keepAliveTimeout');
    if (keepAliveTimeout !== undefined) server.keepAliveTimeout = keepAliveTimeout;
    const requestTimeout = numberOption(fastifyOptions, 'requestTimeout');
    if (requestTimeout !== undefined) server.requestTimeout = requestTimeout;
    server.setTimeout(numberOption(fastifyOptions, 'connectionTimeout') ?? 0);
    const maxRequestsPerSocket = numberOption(fastifyOptions, 'maxRequestsPerSocket') ?? 0;
    if (maxRequestsPerSocket > 0) server.maxRequestsPerSocket = maxRequestsPerSocket;
    return server;
  };
}
