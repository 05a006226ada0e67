// `raibid server-logs` against the real kube-apiserver and the Deployment Tanka renders. No kubelet
// runs here, so no log can really be read: what is proven is which pods are chosen (the Deployment's
// own selector), their order, and that every way of failing says why and what to look at.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type TestApiServer } from './support/apiserver.js';
import { runRaibid } from './support/raibid-cli.js';
import { find, type KubeObject, renderEnvironment } from './support/render.js';
import { needTools } from './support/tools.js';

const NS = 'raibid-system';
const tools = needTools('tk', 'etcd', 'kube-apiserver');

describe.skipIf(tools.skip)('raibid server-logs against a real kube-apiserver', () => {
  let api: TestApiServer;
  let objects: KubeObject[];
  const logs = (...args: string[]) => runRaibid(['server-logs', ...args], { KUBECONFIG: api.kubeconfig });
  /** A pod as the Deployment's ReplicaSet would make it (its template), optionally bound to a node. */
  const createPod = async (name: string, nodeName?: string) => {
    const template = find(objects, 'Deployment', 'raibid-server').spec.template;
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS, labels: template.metadata.labels },
      spec: { ...template.spec, ...(nodeName ? { nodeName } : {}) },
    };
    const created = await api.request('POST', `/api/v1/namespaces/${NS}/pods`, pod);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  };

  beforeAll(async () => {
    objects = await renderEnvironment(tools.path.tk!, 'local');
    api = await startApiServer({ kubeApiserver: tools.path['kube-apiserver']!, etcd: tools.path.etcd! });
    expect((await api.request('POST', '/api/v1/namespaces', find(objects, 'Namespace', NS))).status).toBe(
      201,
    );
  });
  afterAll(async () => {
    await api?.stop();
  });

  it('without the Deployment: says to deploy first (exit 2)', async () => {
    const result = await logs();
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`Deployment ${NS}/raibid-server does not exist: deploy raibid-ci first`);
  });

  it('with the Deployment but no pod: says none runs (exit 3)', async () => {
    const deployment = find(objects, 'Deployment', 'raibid-server');
    const created = await api.request('POST', `/apis/apps/v1/namespaces/${NS}/deployments`, deployment);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const account = find(objects, 'ServiceAccount', 'raibid-server');
    expect((await api.request('POST', `/api/v1/namespaces/${NS}/serviceaccounts`, account)).status).toBe(201);
    const result = await logs();
    expect(result.code).toBe(3);
    const selector = Object.entries(deployment.spec.selector.matchLabels as Record<string, string>)
      .map(([key, value]) => `${key}=${value}`)
      .join(',');
    expect(result.stderr).toContain(`no raibid-server pod runs (selector ${selector})`);
  });

  it("picks only the Deployment's pods, oldest first, and says why each log cannot be read (exit 3)", async () => {
    // Another component's pod in the namespace must not be picked.
    const redis = find(objects, 'StatefulSet', 'redis').spec.template;
    const other = await api.request('POST', `/api/v1/namespaces/${NS}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'redis-0', namespace: NS, labels: redis.metadata.labels },
      spec: { serviceAccountName: 'raibid-server', containers: [{ name: 'redis', image: 'redis' }] },
    });
    expect(other.status, JSON.stringify(other.body)).toBe(201);
    await createPod('raibid-server-1');
    await createPod('raibid-server-2', 'node-that-is-not-there');

    const result = await logs('--tail', '20');
    expect(result.code).toBe(3);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trim().split('\n');
    expect(lines[0]).toBe('==> pod raibid-server-1 (Pending)');
    expect(lines[1]).toBe(
      `raibid: pod raibid-server-1 is not on a node yet (Pending): kubectl -n ${NS} describe pod raibid-server-1`,
    );
    expect(lines[2]).toBe('==> pod raibid-server-2 (Pending)');
    expect(lines[3]).toMatch(/^raibid: cannot read the log of pod raibid-server-2: .*node-that-is-not-there/);
    expect(result.stderr).not.toContain('redis-0');
    expect(lines.at(-1)).toMatch(/^raibid: cannot read any raibid-server log: /);

    const json = await runRaibid(['--json', 'server-logs'], { KUBECONFIG: api.kubeconfig });
    expect(json.code).toBe(3);
    expect(
      JSON.parse(json.stdout).pods.map((p: { pod: string; lines: unknown }) => [p.pod, p.lines]),
    ).toEqual([
      ['raibid-server-1', null],
      ['raibid-server-2', null],
    ]);
    expect(JSON.parse(json.stderr).error.code).toBe('no_logs');
  });

  it('refuses a bad --tail (exit 2)', async () => {
    const result = await logs('--tail', 'x');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--tail must be a whole number above 0');
  });
});
