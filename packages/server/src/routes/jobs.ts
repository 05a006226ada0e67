import { isFinalStatus, type Job, parseRepoSpec, RepoSpecError, toApiJob } from '@raibid/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { requireApiToken } from '../auth.js';
import { ApiError, errorBodySchema, notFound } from '../errors.js';
import { rejection, routeJob } from '../pool-routing.js';
import {
  apiJobSchema,
  createJobBodySchema,
  jobPageSchema,
  jobParamsSchema,
  listJobsQuerySchema,
} from '../schemas.js';

const errors = {
  400: errorBodySchema,
  401: errorBodySchema,
  404: errorBodySchema,
  409: errorBodySchema,
  413: errorBodySchema,
  415: errorBodySchema,
};

/** Jobs API: create, list, get, cancel, retry. Writes need the bearer token. */
export const jobRoutes: FastifyPluginAsyncZod = async (app) => {
  const { config, deps } = app.raibid;
  const { store, queue } = deps;
  const auth = requireApiToken(config);

  async function jobOr404(id: string): Promise<Job> {
    const job = await store.get(id);
    if (job === null) throw notFound(`job ${id} does not exist`);
    return job;
  }

  app.post(
    '/api/v1/jobs',
    {
      onRequest: auth,
      schema: {
        summary: 'Queue a job',
        description:
          '`repo` is "owner/name" (a repository in GITEA_URL) or an http(s) clone URL; `ref` defaults to "main". The server reads `.raibid.yml` at the commit (Gitea API, or git for a local repository) and routes on its `runs-on`; `pool` is used when it cannot read the file, and a `pool` the file contradicts is refused (400). A broken pipeline file: 201 with the job already `error`, no agent started.',
        tags: ['jobs'],
        security: [{ bearer: [] }],
        body: createJobBodySchema,
        response: { 201: apiJobSchema, ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body;
      let repo: Job['repo'];
      try {
        repo = parseRepoSpec(body.repo, {
          giteaUrl: config.GITEA_URL,
          allowFileRepos: config.RAIBID_ALLOW_FILE_REPOS,
        });
      } catch (error) {
        if (error instanceof RepoSpecError) {
          throw new ApiError(400, 'invalid_request', error.message, [
            { path: 'body.repo', message: error.message },
          ]);
        }
        throw error;
      }
      const input = {
        repo,
        ref: body.ref,
        sha: body.sha ?? null,
        trigger: 'api' as const,
        env: body.env ?? {},
      };
      const route = await routeJob({ job: input, requested: body.pool }, config);
      if (route.kind === 'conflict') {
        throw new ApiError(400, 'invalid_request', route.message, [
          { path: 'body.pool', message: route.message },
        ]);
      }
      if (route.kind === 'invalid') {
        const { message, lines } = rejection(route.error);
        const job = await queue.reject(input, message, lines);
        request.log.info({ jobId: job.id, error: message }, 'job refused: broken pipeline file');
        return reply.code(201).send(toApiJob(job));
      }
      const job = await queue.enqueue({ ...input, pool: route.pool }, route.lines);
      request.log.info(
        { jobId: job.id, repo: `${repo.owner}/${repo.name}`, ref: job.ref, pool: job.pool },
        'job queued',
      );
      return reply.code(201).send(toApiJob(job));
    },
  );

  app.get(
    '/api/v1/jobs',
    {
      schema: {
        summary: 'List jobs, newest first',
        description:
          'Pass `nextCursor` of a page as `cursor` to get the next page; it is null on the last page.',
        tags: ['jobs'],
        querystring: listJobsQuerySchema,
        response: { 200: jobPageSchema, 400: errorBodySchema },
      },
    },
    async (request) => {
      const { status, repo, limit, cursor } = request.query;
      const page = await store.list({
        limit,
        ...(status ? { status } : {}),
        ...(repo ? { repo } : {}),
        ...(cursor ? { cursor } : {}),
      });
      return { jobs: page.jobs.map(toApiJob), nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/api/v1/jobs/:id',
    {
      schema: {
        summary: 'One job',
        tags: ['jobs'],
        params: jobParamsSchema,
        response: { 200: apiJobSchema, 400: errorBodySchema, 404: errorBodySchema },
      },
    },
    async (request) => toApiJob(await jobOr404(request.params.id)),
  );

  app.post(
    '/api/v1/jobs/:id/cancel',
    {
      onRequest: auth,
      schema: {
        summary: 'Cancel a job',
        description:
          'A queued job ends `cancelled` at once. A running one is signalled: its agent kills the running step and the job ends `cancelled` (the response still shows `running`). 409 if the job already ended.',
        tags: ['jobs'],
        security: [{ bearer: [] }],
        params: jobParamsSchema,
        response: { 202: apiJobSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const job = await queue.requestCancel(id);
      if (job === null) throw notFound(`job ${id} does not exist`);
      if (isFinalStatus(job.status) && job.status !== 'cancelled') {
        throw new ApiError(409, 'conflict', `job ${id} already ended ${job.status}; nothing to cancel`);
      }
      request.log.info({ jobId: id, status: job.status }, 'job cancel requested');
      return reply.code(202).send(toApiJob(job));
    },
  );

  app.post(
    '/api/v1/jobs/:id/retry',
    {
      onRequest: auth,
      schema: {
        summary: 'Run an ended job again, as a new job',
        description:
          'The new job has the same repo, ref, sha, env and pool, trigger `retry` and `retryOf` = this id.',
        tags: ['jobs'],
        security: [{ bearer: [] }],
        params: jobParamsSchema,
        response: { 201: apiJobSchema, ...errors },
      },
    },
    async (request, reply) => {
      const original = await jobOr404(request.params.id);
      if (!isFinalStatus(original.status)) {
        throw new ApiError(
          409,
          'conflict',
          `job ${original.id} is still ${original.status}; wait for it to end or cancel it first`,
        );
      }
      const job = await queue.enqueue({
        repo: original.repo,
        ref: original.ref,
        sha: original.sha,
        trigger: 'retry',
        env: original.env,
        retryOf: original.id,
        pool: original.pool,
      });
      request.log.info({ jobId: job.id, retryOf: original.id }, 'job retried');
      return reply.code(201).send(toApiJob(job));
    },
  );
};
