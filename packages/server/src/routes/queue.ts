import { POOLS, poolUnavailableKey } from '@raibid/common';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { agentsSchema, type KubeAgentsView, queueStatsSchema } from '../schemas.js';

/** Queue numbers and the agents list. */
export const queueRoutes: FastifyPluginAsyncZod = async (app) => {
  const { config, deps } = app.raibid;
  const { queue, store, agents, kube } = deps;

  app.get(
    '/api/v1/queue',
    {
      schema: {
        summary: 'Queue lag, pending and running jobs, active agents; per pool too',
        tags: ['queue'],
        response: { 200: queueStatsSchema },
      },
    },
    async () => {
      const [cpu, gpu, running, active, unavailable] = await Promise.all([
        queue.stats('cpu'),
        queue.stats('gpu'),
        store.countByStatus('running'),
        agents.countActive(config.RAIBID_LEASE_MS, deps.now()),
        deps.redis.mget(POOLS.map(poolUnavailableKey)),
      ]);
      const [cpuUnavailable = null, gpuUnavailable = null] = unavailable;
      return {
        lag: cpu.lag,
        pending: cpu.pending,
        running,
        agents: active,
        pools: {
          cpu: { ...cpu, unavailable: cpuUnavailable },
          gpu: { ...gpu, unavailable: gpuUnavailable },
        },
      };
    },
  );

  app.get(
    '/api/v1/agents',
    {
      schema: {
        summary: 'Recent agents (heartbeats), and agent Jobs/pods when the server runs in Kubernetes',
        tags: ['queue'],
        response: { 200: agentsSchema },
      },
    },
    async (request) => {
      const [seen, cluster] = await Promise.all([
        agents.list(undefined, deps.now()),
        kube
          ? kube.list().catch((error: unknown): KubeAgentsView | undefined => {
              // The heartbeat list is still worth answering with.
              request.log.warn({ err: error }, 'cannot list agent pods from the Kubernetes API');
              return undefined;
            })
          : undefined,
      ]);
      return cluster ? { agents: seen, kubernetes: cluster } : { agents: seen };
    },
  );
};
