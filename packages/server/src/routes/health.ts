import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';

const READY_TIMEOUT_MS = 2_000;

const checksSchema = z.object({
  redis: z.string().describe('"ok", or why Redis did not answer'),
  group: z.string().describe('"ok", or why the raibid-agents consumer group is not there'),
});

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Liveness (`/health`, no dependencies) and readiness (`/ready`: Redis answers, the group exists). */
export const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  const { redis, queue } = app.raibid.deps;

  app.get(
    '/health',
    {
      schema: {
        summary: 'Liveness: 200 while the process serves requests',
        tags: ['health'],
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/ready',
    {
      schema: {
        summary: 'Readiness: Redis answers and the agents consumer group exists',
        tags: ['health'],
        response: {
          200: z.object({ status: z.literal('ready'), checks: checksSchema }),
          503: z.object({
            status: z.literal('unavailable'),
            checks: checksSchema,
            error: z.object({ code: z.literal('not_ready'), message: z.string() }),
          }),
        },
      },
    },
    async (_request, reply) => {
      const checks = { redis: 'ok', group: 'ok' };
      try {
        await withTimeout(redis.ping(), READY_TIMEOUT_MS);
        try {
          const exists = await withTimeout(queue.groupExists(), READY_TIMEOUT_MS);
          if (!exists) checks.group = 'consumer group raibid-agents on raibid:jobs does not exist';
        } catch (error) {
          checks.group = `cannot check: ${reason(error)}`;
        }
      } catch (error) {
        checks.redis = `no answer: ${reason(error)}`;
        checks.group = 'unknown (Redis is not answering)';
      }
      if (checks.redis === 'ok' && checks.group === 'ok') return { status: 'ready' as const, checks };
      const failed = Object.entries(checks)
        .filter(([, value]) => value !== 'ok')
        .map(([name, value]) => `${name}: ${value}`);
      return reply.code(503).send({
        status: 'unavailable' as const,
        checks,
        error: { code: 'not_ready' as const, message: `not ready; ${failed.join('; ')}` },
      });
    },
  );
};
