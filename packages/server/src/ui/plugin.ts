import { JOB_ID_PATTERN } from '@raibid/common';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { loadUiBundle, type UiFile } from './bundle.js';

export interface UiPluginOptions {
  /** Where the UI files are; defaults to `./assets/` next to this module (or to dist/main.js when bundled). */
  assetsDir?: URL;
}

/** Pages are revalidated on every load (cheap 304s); assets live under a versioned path and never change. */
const PAGE_CACHE = 'no-cache';
const ASSET_CACHE = 'public, max-age=31536000, immutable';

/**
 * Everything the pages load comes from this server: the UI works with no
 * external network, and injected content could not reach anywhere else either.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Whether an If-None-Match header names this ETag (weak or strong, in a list, or `*`). */
function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((candidate) => {
    const tag = candidate.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

function send(
  request: FastifyRequest,
  reply: FastifyReply,
  file: UiFile,
  cacheControl: string,
  status = 200,
): FastifyReply {
  reply
    .header('cache-control', cacheControl)
    .header('etag', file.etag)
    .header('x-content-type-options', 'nosniff');
  if (status === 200 && etagMatches(request.headers['if-none-match'], file.etag)) {
    return reply.code(304).send();
  }
  return reply.code(status).type(file.contentType).send(file.body);
}

function sendPage(request: FastifyRequest, reply: FastifyReply, page: UiFile, status = 200): FastifyReply {
  reply
    .header('content-security-policy', CONTENT_SECURITY_POLICY)
    .header('referrer-policy', 'same-origin')
    .header('x-frame-options', 'DENY');
  return send(request, reply, page, PAGE_CACHE, status);
}

/**
 * The web UI: the job list at `/`, a job's page at `/jobs/:id` (the `target_url`
 * of commit statuses) and their static assets under `/ui/<version>/`. The pages
 * are static shells; their scripts read the JSON API and the log's SSE stream.
 */
export const uiPlugin: FastifyPluginAsync<UiPluginOptions> = async (app, options) => {
  const bundle = await loadUiBundle(options.assetsDir ?? new URL('./assets/', import.meta.url));

  app.get('/', (request, reply) => sendPage(request, reply, bundle.pages.list));

  app.get<{ Params: { id: string } }>('/jobs/:id', (request, reply) => {
    // The page itself reports a job that does not exist; an id that cannot exist is a 404 at once.
    const status = JOB_ID_PATTERN.test(request.params.id) ? 200 : 404;
    return sendPage(request, reply, bundle.pages.job, status);
  });

  app.get<{ Params: { version: string; file: string } }>('/ui/:version/:file', (request, reply) => {
    const asset = bundle.assets.get(request.params.file);
    if (request.params.version !== bundle.version || asset === undefined) {
      return reply
        .code(404)
        .header('cache-control', 'no-store')
        .send({ error: { code: 'NOT_FOUND', message: `no UI file ${request.url}; reload the page` } });
    }
    return send(request, reply, asset, ASSET_CACHE);
  });
};
