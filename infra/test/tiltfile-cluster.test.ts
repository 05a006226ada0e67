// The Tiltfile against a real kube-apiserver with the real kubectl: no stand-in answers its
// checks. The API server is made to look like a healthy k3s the way k3s and infra/k3s/install.sh
// leave it: a Ready node, the KEP-1755 ConfigMap naming a registry that answers, k3s's HelmChart
// CRD. Then the keda resource's command, exactly as Tilt runs it, applies KEDA's HelmChart and
// must hold (and so hold the agent) until KEDA's ScaledJob CRD is Established and
// deployment/keda-operator has rolled out; the test plays k3s's Helm controller and the
// Deployment controller (there is no kubelet or controller-manager here).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type TestApiServer } from './support/apiserver.js';
import { type CommandResult, runCommand } from './support/command.js';
import { crdFromGoModule, installCrds } from './support/crds.js';
import { needTools, REPO_ROOT } from './support/tools.js';

const tools = needTools('tilt', 'tk', 'kubectl', 'kube-apiserver', 'etcd', 'go', 'curl');

// k3s registers the HelmChart CRD from k3s-io/helm-controller; the line k3s v1.34 uses.
const HELM_CONTROLLER = 'github.com/k3s-io/helm-controller@v0.16.27';
const HELM_CHART_CRD = 'pkg/crds/yaml/generated/helm.cattle.io_helmcharts.yaml';
const KEDA_SCALED_JOB_CRD = 'config/crd/bases/keda.sh_scaledjobs.yaml';

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe.skipIf(tools.skip)('the Tiltfile against a real kube-apiserver and kubectl', () => {
  let api: TestApiServer | undefined;
  let registry: http.Server | undefined;
  let work: string | undefined;
  let env: NodeJS.ProcessEnv;
  let load: CommandResult;

  async function created(urlPath: string, body: unknown): Promise<void> {
    const response = await api!.request('POST', urlPath, body);
    if (response.status !== 201)
      throw new Error(`POST ${urlPath}: ${response.status} ${JSON.stringify(response.body)}`);
  }

  /** PUT of an object's status subresource, as its controller would. */
  async function setStatus(
    urlPath: string,
    status: (object: { metadata: { generation?: number } }) => unknown,
  ) {
    const current = await api!.request('GET', urlPath);
    const response = await api!.request('PUT', `${urlPath}/status`, {
      ...current.body,
      status: status(current.body),
    });
    if (response.status !== 200) throw new Error(`PUT ${urlPath}/status: ${response.status}`);
  }

  function tilt(args: string[], environment = env) {
    return runCommand(tools.path.tilt!, args, { cwd: REPO_ROOT, env: environment, allowFailure: true });
  }

  /** A kubeconfig for the API server with k3s's names (cluster, user and context `default`). */
  function k3sKubeconfig(server: string): string {
    return JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'default', cluster: { server, 'certificate-authority': api!.caFile } }],
      users: [{ name: 'default', user: { token: api!.token } }],
      contexts: [{ name: 'default', context: { cluster: 'default', user: 'default' } }],
      'current-context': 'default',
    });
  }

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'raibid-tiltfile-cluster-'));
    api = await startApiServer({ kubeApiserver: tools.path['kube-apiserver']!, etcd: tools.path.etcd! });
    registry = http.createServer((request, response) => {
      response.writeHead(request.url === '/v2/' ? 200 : 404, { 'content-type': 'application/json' });
      response.end('{}');
    });
    await new Promise<void>((resolve) => registry!.listen(0, '127.0.0.1', resolve));
    const registryHost = `127.0.0.1:${(registry.address() as AddressInfo).port}`;

    const bin = path.join(work, 'bin');
    await mkdir(bin);
    await mkdir(path.join(work, 'home'));
    await symlink(tools.path.kubectl!, path.join(bin, 'kubectl'));
    await symlink(tools.path.tk!, path.join(bin, 'tk'));
    await writeFile(path.join(work, 'kubeconfig'), k3sKubeconfig(api.server), { mode: 0o600 });
    env = {
      HOME: path.join(work, 'home'),
      KUBECONFIG: path.join(work, 'kubeconfig'),
      PATH: `${bin}:/usr/bin:/bin`,
      TILT_DISABLE_ANALYTICS: '1',
    };

    // What a healthy k3s after infra/k3s/install.sh has: a Ready node, the registry ConfigMap, the
    // HelmChart CRD.
    await created('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'spark' } });
    const now = new Date().toISOString();
    await setStatus('/api/v1/nodes/spark', () => ({
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'KubeletReady',
          message: 'ready',
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
      ],
    }));
    await created('/api/v1/namespaces/kube-public/configmaps', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'local-registry-hosting', namespace: 'kube-public' },
      data: { 'localRegistryHosting.v1': `host: "${registryHost}"\nhelp: "https://kep.k8s.io/1755"\n` },
    });
    await installCrds(api, [await crdFromGoModule(tools.path.go!, HELM_CONTROLLER, HELM_CHART_CRD)]);
    load = await tilt(['alpha', 'tiltfile-result', '-f', path.join(REPO_ROOT, 'Tiltfile')]);
  });

  afterAll(async () => {
    await new Promise((resolve) => (registry ? registry.close(resolve) : resolve(undefined)));
    await api?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("loads: every check passes against the cluster's own answers", async () => {
    expect(load.code, load.stderr).toBe(0);
    // The JSON may hold Secret values: only the picked-out fields are ever shown.
    const loaded = JSON.parse(load.stdout) as { Error: unknown; Manifests: { Name: string }[] };
    expect(loaded.Error).toBeNull();
    expect(loaded.Manifests.map((m) => m.Name)).toEqual(expect.arrayContaining(['keda', 'agent', 'server']));
  });

  /** The keda resource's command, as Tilt runs it. */
  function kedaCommand(): string {
    const loaded = JSON.parse(load.stdout) as {
      Manifests: { Name: string; DeployTarget: { UpdateCmdSpec?: { args: string[] } } }[];
    };
    const args = loaded.Manifests.find((m) => m.Name === 'keda')?.DeployTarget.UpdateCmdSpec?.args ?? [];
    expect(args.slice(0, 2)).toEqual(['sh', '-c']);
    return args[2]!;
  }

  it('keda holds until the ScaledJob CRD is Established and the KEDA operator has rolled out', async () => {
    let output = '';
    const child: ChildProcess = spawn('sh', ['-c', kedaCommand()], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const running = () => child.exitCode === null && child.signalCode === null;
    try {
      // The chart is applied (k3s's Helm controller would now install KEDA) ...
      const chart = await until('the keda HelmChart', async () => {
        const response = await api!.request(
          'GET',
          '/apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts/keda',
        );
        return response.status === 200 ? response.body : undefined;
      });
      expect(chart.spec.targetNamespace).toBe('keda');
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(running(), output).toBe(true); // ... and without KEDA's CRD the agent must wait.

      // KEDA's chart installs its CRDs, then its operator.
      await created(
        '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
        await crdFromGoModule(
          tools.path.go!,
          `github.com/kedacore/keda/v2@v${chart.spec.version}`,
          KEDA_SCALED_JOB_CRD,
        ),
      );
      await created('/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'keda' },
      });
      await created('/apis/apps/v1/namespaces/keda/deployments', {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'keda-operator', namespace: 'keda' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'keda-operator' } },
          template: {
            metadata: { labels: { app: 'keda-operator' } },
            spec: { containers: [{ name: 'keda-operator', image: 'ghcr.io/kedacore/keda:2' }] },
          },
        },
      });
      await until('the wait for the CRD to be done', async () =>
        output.includes('condition met') && output.includes('Waiting for deployment') ? true : undefined,
      ).catch((error: Error) => {
        throw new Error(`${error.message}; the command printed:\n${output}`);
      });
      expect(running(), output).toBe(true); // the CRD is there, the operator is not running yet

      // The Deployment controller reports the operator's pod available.
      await setStatus('/apis/apps/v1/namespaces/keda/deployments/keda-operator', (deployment) => ({
        observedGeneration: deployment.metadata.generation,
        replicas: 1,
        updatedReplicas: 1,
        readyReplicas: 1,
        availableReplicas: 1,
        conditions: [
          { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'up' },
          { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: 'done' },
        ],
      }));
      expect(await exited, output).toBe(0);
      expect(output).toContain('helmchart.helm.cattle.io/keda created');
      expect(output).toContain('deployment "keda-operator" successfully rolled out');
    } finally {
      if (running()) child.kill('SIGTERM');
    }
  });

  it('with k3s stopped (nothing listens at the API address) the load ends with how to start it', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = http.createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as AddressInfo;
        probe.close(() => resolve(free));
      });
    });
    const stopped = path.join(work!, 'kubeconfig-stopped');
    await writeFile(stopped, k3sKubeconfig(`https://127.0.0.1:${port}`), { mode: 0o600 });
    const result = await tilt(['alpha', 'tiltfile-result', '-f', path.join(REPO_ROOT, 'Tiltfile')], {
      ...env,
      KUBECONFIG: stopped,
    });
    expect(result.code).toBe(5);
    expect(result.stderr).toContain("The Kubernetes API of context 'default' does not answer. Start k3s");
  });
});
