import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBodySchema, notFound } from '../errors.js';
import { LogFollower } from '../live/log-follower.js';
import { jobParamsSchema, logsHeadersSchema, logsQuerySchema } from '../schemas.js';

export interface LogRoutesOptions {
  /** SSE keep-alive comment period (tests shorten it). */
  keepAliveMs?: number;
  lingerMs?: number;
}

const SSE_DESCRIPTION = `Plain text by default. With \`Accept: text/event-stream\` or \`?follow=1\`: Server-Sent Events
- \`status\` (no id): the job; first the current state, then one per status change
- \`log\` (id = seq): \`{"seq","ts","stream","step","line"}\`
- \`end\` (no id): \`{"status"}\` after the final state; then the stream closes.
Reconnect with \`Last-Event-ID\` (the last log seq seen) to resume with nothing lost or repeated.`;

/** Job logs: full text, or a live SSE follow that many clients share through one Redis reader. */
export const logRoutes: FastifyPluginAsyncZod<LogRoutesOptions> = async (app, options) => {
  const { store, logs, feed, logger } = app.raibid.deps;
  const open = new Set<LogFollower>();

  // On shutdown, end every stream so close() does not wait for clients; they reconnect elsewhere.
  app.addHook('preClose', async () => {
    for (const follower of open) follower.close();
  });

  app.get(
    '/api/v1/jobs/:id/logs',
    {
      schema: {
        summary: "A job's log",
        description: SSE_DESCRIPTION,
        tags: ['logs'],
        params: jobParamsSchema,
        querystring: logsQuerySchema,
        headers: logsHeadersSchema,
        response: {
          200: {
            description: 'the log',
            content: {
              'text/plain': { schema: z.string() },
              'text/event-stream': { schema: z.string() },
            },
          },
          400: errorBodySchema,
          404: errorBodySchema,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const job = await store.get(id);
      if (job === null) throw notFound(`job ${id} does not exist`);
      const wantsStream =
        request.query.follow === true ||
        (request.query.follow === undefined && /\btext\/event-stream\b/.test(request.headers.accept ?? ''));
      if (!wantsStream) {
        return reply.type('text/plain; charset=utf-8').send(await logs.text(id));
      }
      const follower = new LogFollower({
        jobId: id,
        job,
        afterSeq: request.headers['last-event-id'] ?? 0,
        feed,
        logs,
        store,
        logger: request.log,
        ...(options.keepAliveMs === undefined ? {} : { keepAliveMs: options.keepAliveMs }),
        ...(options.lingerMs === undefined ? {} : { lingerMs: options.lingerMs }),
      });
      open.add(follower);
      follower.once('close', () => open.delete(follower));
      logger.debug({ jobId: id, followers: open.size }, 'log follow started');
      return (
        reply
          .header('content-type', 'text/event-stream; charset=utf-8')
          .header('cache-control', 'no-cache, no-transform')
          .header('x-accel-buffering', 'no')
          // fastify pipes the stream to the socket; the 200 schema documents the text it carries.
          .send(follower as unknown as string)
      );
    },
  );
};
