// The peer a fastify user starts from: the same fastify, one route, a response schema, no logger.
import Fastify from 'fastify';

const app = Fastify();
app.get(
  '/health',
  {
    schema: {
      response: { 200: { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] } },
    },
  },
  async () => ({ status: 'ok' }),
);
await app.listen({ port: Number(process.env.PORT), host: process.env.HOST });
