import { deliveryKey, type Job, JobQueue, JobStore, type NewJob } from '@raibid/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ApiError, errorBodySchema } from '../errors.js';
import { decideDelivery, verifyGiteaSignature, WebhookPayloadError } from '../gitea/webhook.js';
import { rejection, routeJob } from '../pool-routing.js';

/** How long a delivery id is remembered (a re-sent delivery within this maps to the same job). */
const DELIVERY_TTL_SECONDS = 7 * 24 * 3600;

// Checked in the handler, after the signature: an unsigned request gets 401 whatever its headers.
const headersSchema = z.object({
  'x-gitea-event': z.string().optional().describe('push, pull_request, ping, … (required)'),
  'x-gitea-signature': z.string().optional().describe('hex HMAC-SHA256 of the raw body (required)'),
  'x-gitea-delivery': z.string().optional().describe('delivery UUID; a repeated one returns the first job'),
});

const EVENT = /^[a-z_]{1,64}$/;
const DELIVERY = /^[A-Za-z0-9._:-]{1,100}$/;

/**
 * `POST /webhooks/gitea`: verifies the HMAC of the raw body, then turns push and
 * pull_request deliveries into jobs. A delivery id seen before returns its job.
 */
export const webhookRoutes: FastifyPluginAsyncZod = async (app) => {
  const { config, deps } = app.raibid;
  const { redis, store } = deps;

  // The signature covers the exact bytes Gitea sent, so this route keeps the body raw.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );

  /** Creates the job once per delivery id, even for concurrent identical deliveries (SET NX). */
  async function jobForDelivery(
    delivery: string | undefined,
    input: NewJob,
  ): Promise<{ jobId: string; duplicate: boolean }> {
    // Routed on the pipeline file at the pushed commit, read through Gitea's API.
    const route = await routeJob({ job: input, fromGitea: true }, config);
    let job: Job;
    let enqueue = true;
    let lines: string[] = [];
    if (route.kind === 'invalid') {
      const refused = rejection(route.error);
      job = JobQueue.rejectedRecord(input, refused.message);
      enqueue = false;
      lines = refused.lines;
    } else {
      // A webhook names no pool, so there is no conflict to refuse.
      job = JobStore.newRecord({ ...input, pool: route.kind === 'queue' ? route.pool : 'cpu' });
      lines = route.kind === 'queue' ? route.lines : [];
    }
    if (delivery !== undefined) {
      const key = deliveryKey(delivery);
      const claimed = await redis.set(key, job.id, 'EX', DELIVERY_TTL_SECONDS, 'NX');
      if (claimed === null) {
        const existing = await redis.get(key);
        if (existing !== null) return { jobId: existing, duplicate: true };
        // Expired between SET and GET: treat it as new.
        await redis.set(key, job.id, 'EX', DELIVERY_TTL_SECONDS);
      }
      try {
        await store.insert(job, enqueue, lines);
      } catch (error) {
        // Let a redelivery try again rather than point at a job that was never stored.
        await redis
          .del(key)
          .catch((cleanup: unknown) => app.log.error({ err: cleanup }, 'cannot forget delivery'));
        throw error;
      }
      return { jobId: job.id, duplicate: false };
    }
    await store.insert(job, enqueue, lines);
    return { jobId: job.id, duplicate: false };
  }

  app.post(
    '/webhooks/gitea',
    {
      schema: {
        summary: 'Gitea webhook (content type application/json, with a secret)',
        description:
          'push (branch or tag) and pull_request (opened, synchronized, reopened) start a job: 202 {"jobId"}. ping and other events: 200. Bad or missing X-Gitea-Signature, or no GITEA_WEBHOOK_SECRET on the server: 401.',
        tags: ['webhooks'],
        headers: headersSchema,
        response: {
          200: z.union([z.object({ ignored: z.string() }), z.object({ pong: z.literal(true) })]),
          202: z.object({ jobId: z.string(), duplicate: z.boolean() }),
          400: errorBodySchema,
          401: errorBodySchema,
          413: errorBodySchema,
          415: errorBodySchema,
        },
      },
    },
    async (request, reply) => {
      const secret = config.GITEA_WEBHOOK_SECRET;
      if (secret === undefined) {
        throw new ApiError(
          401,
          'unauthorized',
          'webhooks are disabled: set GITEA_WEBHOOK_SECRET on the server and the same secret on the Gitea webhook',
        );
      }
      const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      if (!verifyGiteaSignature(secret, raw, request.headers['x-gitea-signature'])) {
        throw new ApiError(
          401,
          'unauthorized',
          request.headers['x-gitea-signature']
            ? 'X-Gitea-Signature does not match the body; the webhook secret must equal GITEA_WEBHOOK_SECRET'
            : 'missing X-Gitea-Signature; give the Gitea webhook a secret equal to GITEA_WEBHOOK_SECRET',
        );
      }
      const event = request.headers['x-gitea-event'];
      if (!event || !EVENT.test(event)) {
        throw new ApiError(400, 'invalid_request', 'X-Gitea-Event must name the event, e.g. push', [
          { path: 'headers.x-gitea-event', message: event ? 'is not an event name' : 'is required' },
        ]);
      }
      const delivery = request.headers['x-gitea-delivery'];
      if (delivery !== undefined && !DELIVERY.test(delivery)) {
        throw new ApiError(400, 'invalid_request', 'X-Gitea-Delivery must be a delivery id (a UUID)', [
          { path: 'headers.x-gitea-delivery', message: 'is not a delivery id' },
        ]);
      }
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new ApiError(400, 'invalid_json', 'webhook body is not valid JSON');
      }
      let decision: ReturnType<typeof decideDelivery>;
      try {
        decision = decideDelivery(event, body, { giteaUrl: config.GITEA_URL });
      } catch (error) {
        if (error instanceof WebhookPayloadError) {
          throw new ApiError(400, 'invalid_request', error.message, error.issues);
        }
        throw error;
      }
      switch (decision.kind) {
        case 'ping':
          return reply.code(200).send({ pong: true as const });
        case 'ignored':
          request.log.info({ event, delivery, reason: decision.reason }, 'webhook ignored');
          return reply.code(200).send({ ignored: decision.reason });
        case 'job': {
          const result = await jobForDelivery(delivery, decision.job);
          request.log.info(
            { event, delivery, jobId: result.jobId, duplicate: result.duplicate, sha: decision.job.sha },
            result.duplicate ? 'webhook redelivered; same job' : 'webhook queued a job',
          );
          return reply.code(202).send(result);
        }
      }
    },
  );
};
