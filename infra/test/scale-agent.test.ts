// `raibid scale-agent N` against the real kube-apiserver with KEDA's real ScaledJob CRD and the
// ScaledJob Tanka renders: the Jobs it creates must be the ones KEDA's scale executor would create.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type TestApiServer } from './support/apiserver.js';
import { crdFromGoModule, installCrds } from './support/crds.js';
import { runRaibid } from './support/raibid-cli.js';
import { find, type KubeObject, renderEnvironment } from './support/render.js';
import { needTools } from './support/tools.js';

const NS = 'raibid-system';
const tools = needTools('tk', 'go', 'etcd', 'kube-apiserver');

describe.skipIf(tools.skip)('raibid scale-agent against a real kube-apiserver', () => {
  let api: TestApiServer;
  let rendered: KubeObject;
  let scaledJob: KubeObject;
  const agentJobs = async (): Promise<KubeObject[]> => {
    const list = await api.request(
      'GET',
      `/apis/batch/v1/namespaces/${NS}/jobs?labelSelector=scaledjob.keda.sh%2Fname%3Draibid-agent`,
    );
    return list.body.items;
  };
  const scale = (...args: string[]) => runRaibid(['scale-agent', ...args], { KUBECONFIG: api.kubeconfig });

  beforeAll(async () => {
    const objects = await renderEnvironment(tools.path.tk!, 'local');
    rendered = find(objects, 'ScaledJob', 'raibid-agent');
    const kedaVersion = find(objects, 'HelmChart', 'keda').spec.version as string;
    const crd = await crdFromGoModule(
      tools.path.go!,
      `github.com/kedacore/keda/v2@v${kedaVersion}`,
      'config/crd/bases/keda.sh_scaledjobs.yaml',
    );
    api = await startApiServer({ kubeApiserver: tools.path['kube-apiserver']!, etcd: tools.path.etcd! });
    await installCrds(api, [crd]);
    const namespace = find(objects, 'Namespace', NS);
    expect((await api.request('POST', '/api/v1/namespaces', namespace)).status).toBe(201);
    const created = await api.request('POST', `/apis/keda.sh/v1alpha1/namespaces/${NS}/scaledjobs`, rendered);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    scaledJob = created.body;
  });
  afterAll(async () => {
    await api?.stop();
  });

  it('starts 2 Jobs the way KEDA does: name, labels, generation, controller owner, the job template', async () => {
    const result = await scale('2');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const jobs = await agentJobs();
    expect(jobs).toHaveLength(2);
    expect(result.stdout.trim().split('\n').sort()).toEqual(
      jobs.map((job) => `created Job ${NS}/${job.metadata.name}`).sort(),
    );
    for (const job of jobs) {
      expect(job.metadata.generateName).toBe('raibid-agent-');
      expect(job.metadata.name).toMatch(/^raibid-agent-[a-z0-9]{5}$/);
      // KEDA's labels, then the ScaledJob's own (which win).
      expect(job.metadata.labels).toEqual({
        'app.kubernetes.io/name': 'raibid-agent',
        'app.kubernetes.io/part-of': 'raibid-agent',
        'app.kubernetes.io/managed-by': 'raibid-scale-agent',
        'scaledjob.keda.sh/name': 'raibid-agent',
        ...scaledJob.metadata.labels,
      });
      expect(job.metadata.annotations).toMatchObject({
        'scaledjob.keda.sh/generation': String(scaledJob.metadata.generation),
      });
      expect(job.metadata.ownerReferences).toEqual([
        {
          apiVersion: 'keda.sh/v1alpha1',
          kind: 'ScaledJob',
          name: 'raibid-agent',
          uid: scaledJob.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
      const template = rendered.spec.jobTargetRef;
      expect(job.spec.backoffLimit).toBe(template.backoffLimit);
      expect(job.spec.activeDeadlineSeconds).toBe(template.activeDeadlineSeconds);
      expect(job.spec.template.metadata.labels).toMatchObject({
        ...template.template.metadata.labels,
        'scaledjob.keda.sh/name': 'raibid-agent',
      });
      expect(job.spec.template.spec.restartPolicy).toBe('Never');
      const [container] = job.spec.template.spec.containers;
      const [wanted] = template.template.spec.containers;
      expect(container).toMatchObject({
        name: 'agent',
        image: wanted.image,
        imagePullPolicy: 'IfNotPresent',
        env: wanted.env,
        envFrom: wanted.envFrom,
        volumeMounts: wanted.volumeMounts,
      });
      expect(job.spec.template.spec.volumes).toMatchObject(template.template.spec.volumes);
    }
  });

  it('starts no more than maxReplicaCount agent Jobs at once, and says so', async () => {
    const max = rendered.spec.maxReplicaCount as number;
    const running = (await agentJobs()).length;
    const result = await scale(String(max + 2));
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      `raibid-agent allows ${max} agent Job(s) at once and ${running} are unfinished: starting ${max - running} of ${max + 2}`,
    );
    expect(await agentJobs()).toHaveLength(max);

    const none = await scale('1');
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('no agent Job started\n');
    expect(await agentJobs()).toHaveLength(max);
  });

  it('--json reports what it did', async () => {
    const result = await runRaibid(['--json', 'scale-agent', '1'], { KUBECONFIG: api.kubeconfig });
    expect(result.code).toBe(0);
    const max = rendered.spec.maxReplicaCount as number;
    expect(JSON.parse(result.stdout)).toEqual({
      requested: 1,
      running: max,
      maxReplicaCount: max,
      created: [],
    });
  });

  it('refuses a bad N (exit 2) and explains a missing ScaledJob (exit 2)', async () => {
    const bad = await scale('0');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('N must be a whole number from 1 to 100');

    expect(
      (await api.request('DELETE', `/apis/keda.sh/v1alpha1/namespaces/${NS}/scaledjobs/raibid-agent`)).status,
    ).toBe(200);
    const missing = await scale('1');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`ScaledJob ${NS}/raibid-agent does not exist`);
    expect(missing.stderr).toContain('deploy raibid-ci first');
  });
});
