import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeAgents, kubeAgentsInCluster, SCALED_JOB_LABEL } from '../src/kube.js';
import { startRedis, startTestServer } from './support/server.js';

const TOKEN = 'service-account-token';

/**
 * A stand-in for the Kubernetes API (no cluster runs here): the two read-only list calls
 * the server makes, answering only the right namespace, label selector and bearer token.
 */
let api: Server;
let apiUrl: string;
const seen: string[] = [];
let failing = false;

beforeAll(async () => {
  api = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://kube');
    seen.push(`${req.method} ${url.pathname}?labelSelector=${url.searchParams.get('labelSelector')}`);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (failing) return json(403, { kind: 'Status', status: 'Failure', reason: 'Forbidden', code: 403 });
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return json(401, { kind: 'Status', code: 401 });
    if (url.searchParams.get('labelSelector') !== SCALED_JOB_LABEL)
      return json(400, { kind: 'Status', code: 400 });
    if (url.pathname === '/apis/batch/v1/namespaces/raibid-system/jobs') {
      return json(200, {
        kind: 'JobList',
        apiVersion: 'batch/v1',
        metadata: { resourceVersion: '1' },
        items: [
          {
            metadata: { name: 'raibid-agent-abcde', labels: { [SCALED_JOB_LABEL]: 'raibid-agent' } },
            status: { active: 1, startTime: '2024-05-14T10:00:00Z' },
          },
          {
            metadata: { name: 'raibid-agent-fghij', labels: { [SCALED_JOB_LABEL]: 'raibid-agent' } },
            status: {
              succeeded: 1,
              startTime: '2024-05-14T09:00:00Z',
              completionTime: '2024-05-14T09:03:00Z',
            },
          },
        ],
      });
    }
    if (url.pathname === '/api/v1/namespaces/raibid-system/pods') {
      return json(200, {
        kind: 'PodList',
        apiVersion: 'v1',
        metadata: { resourceVersion: '1' },
        items: [
          {
            metadata: {
              name: 'raibid-agent-abcde-x7k2p',
              labels: {
                [SCALED_JOB_LABEL]: 'raibid-agent',
                'batch.kubernetes.io/job-name': 'raibid-agent-abcde',
              },
            },
            spec: { nodeName: 'k3s-node', containers: [{ name: 'agent', image: 'raibid-agent' }] },
            status: { phase: 'Running', startTime: '2024-05-14T10:00:02Z' },
          },
        ],
      });
    }
    return json(404, { kind: 'Status', code: 404 });
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => api.close(resolve));
});

function agents(): KubeAgents {
  const config = new KubeConfig();
  config.loadFromClusterAndUser(
    { name: 'test', server: apiUrl, skipTLSVerify: true },
    { name: 'sa', token: TOKEN },
  );
  return new KubeAgents(config, 'raibid-system');
}

describe('agent Jobs and pods from the Kubernetes API', () => {
  it('lists KEDA agent Jobs and their pods in the namespace (read-only calls only)', async () => {
    seen.length = 0;
    expect(await agents().list()).toEqual({
      namespace: 'raibid-system',
      jobs: [
        {
          name: 'raibid-agent-abcde',
          active: 1,
          succeeded: 0,
          failed: 0,
          startedAt: '2024-05-14T10:00:00.000Z',
          completedAt: null,
        },
        {
          name: 'raibid-agent-fghij',
          active: 0,
          succeeded: 1,
          failed: 0,
          startedAt: '2024-05-14T09:00:00.000Z',
          completedAt: '2024-05-14T09:03:00.000Z',
        },
      ],
      pods: [
        {
          name: 'raibid-agent-abcde-x7k2p',
          job: 'raibid-agent-abcde',
          phase: 'Running',
          node: 'k3s-node',
          startedAt: '2024-05-14T10:00:02.000Z',
        },
      ],
    });
    expect(seen.sort()).toEqual([
      `GET /api/v1/namespaces/raibid-system/pods?labelSelector=${SCALED_JOB_LABEL}`,
      `GET /apis/batch/v1/namespaces/raibid-system/jobs?labelSelector=${SCALED_JOB_LABEL}`,
    ]);
  });

  it('GET /api/v1/agents adds them under `kubernetes`, and still answers when the API refuses', async () => {
    const redis = await startRedis();
    const server = await startTestServer(redis, { kube: agents() });
    try {
      const body = (await server.app.inject({ url: '/api/v1/agents' })).json();
      expect(body.agents).toEqual([]);
      expect(body.kubernetes.namespace).toBe('raibid-system');
      expect(body.kubernetes.pods).toHaveLength(1);
      failing = true;
      const degraded = await server.app.inject({ url: '/api/v1/agents' });
      expect(degraded.statusCode).toBe(200);
      expect(degraded.json()).toEqual({ agents: [] });
    } finally {
      failing = false;
      await server.close();
      await redis.stop();
    }
  });

  it('is absent outside a cluster', () => {
    expect(kubeAgentsInCluster({})).toBeNull();
    expect(
      kubeAgentsInCluster({ KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }),
    ).toBeNull();
  });
});
