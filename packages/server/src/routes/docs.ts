import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';

/** `GET /docs`: the OpenAPI 3.1 document, generated from the routes' zod schemas. */
export const docsRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get('/docs', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('application/json; charset=utf-8').send(JSON.stringify(app.swagger())),
  );
};
