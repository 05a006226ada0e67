import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type TestApiServer } from './support/apiserver.js';
import { needTools } from './support/tools.js';

const tools = needTools('kube-apiserver', 'etcd');

describe.skipIf(tools.skip)('a real kube-apiserver on 127.0.0.1 (test support)', () => {
  let api: TestApiServer;
  beforeAll(async () => {
    api = await startApiServer({ kubeApiserver: tools.path['kube-apiserver']!, etcd: tools.path.etcd! });
  });
  afterAll(async () => {
    await api?.stop();
  });

  it('stores objects for the admin token and refuses an unknown token', async () => {
    const created = await api.request('POST', '/api/v1/namespaces/default/configmaps', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'smoke' },
      data: { answer: '42' },
    });
    expect(created.status).toBe(201);
    const read = await api.request('GET', '/api/v1/namespaces/default/configmaps/smoke');
    expect(read.body.data).toEqual({ answer: '42' });
    const stranger = await api.request('GET', '/api/v1/namespaces', undefined, 'not-a-token');
    expect(stranger.status).toBe(401);
  });

  it('enforces RBAC: a service account without a Role may not list pods', async () => {
    const review = await api.request('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: 'system:serviceaccount:default:nobody',
        resourceAttributes: { namespace: 'default', verb: 'list', resource: 'pods' },
      },
    });
    expect(review.status).toBe(201);
    expect(review.body.status.allowed).toBe(false);
  });
});
