import { ScaledJob } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { RuntimeClass } from 'kubernetes-models/node.k8s.io/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, PersistentVolumeClaim, Service, ServiceAccount } from 'kubernetes-models/v1';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { RAIBID_SCALED_JOB } from '../../packages/cli/src/dev/scaling.js';
import { MAX_JOB_TIMEOUT_MS } from '../../packages/common/src/pipeline.js';
import { startApiServer, type TestApiServer } from './support/apiserver.js';
import { type Crd, crdFromGoModule, crdSchema, installCrds, schemaErrors } from './support/crds.js';
import { find, type KubeObject, renderEnvironment } from './support/render.js';
import { needTools } from './support/tools.js';

// k3s registers the HelmChart CRD from k3s-io/helm-controller's embedded YAML; this is the
// helm-controller line k3s v1.34 uses (k8s.io/api v0.34).
const HELM_CONTROLLER = 'github.com/k3s-io/helm-controller@v0.16.27';
const HELM_CHART_CRD = 'pkg/crds/yaml/generated/helm.cattle.io_helmcharts.yaml';
const KEDA_SCALED_JOB_CRD = 'config/crd/bases/keda.sh_scaledjobs.yaml';
// An agent's worst case: clone (15m in packages/agent/src/job-run.ts), the job timeout, and 5m
// waiting for an unreachable Redis to record the outcome.
const AGENT_WORST_CASE_SECONDS = 15 * 60 + MAX_JOB_TIMEOUT_MS / 1000 + 5 * 60;

const NS = 'raibid-system';
const LABELS = [
  'app.kubernetes.io/name',
  'app.kubernetes.io/instance',
  'app.kubernetes.io/component',
  'app.kubernetes.io/part-of',
  'app.kubernetes.io/managed-by',
];

/** Every object the contract names, as kind/namespace/name. */
const CONTRACT_OBJECTS = [
  `Namespace//${NS}`,
  `StatefulSet/${NS}/redis`,
  `Service/${NS}/redis`,
  `StatefulSet/${NS}/gitea`,
  `Service/${NS}/gitea-http`,
  `ServiceAccount/${NS}/raibid-server`,
  `Role/${NS}/raibid-server`,
  `RoleBinding/${NS}/raibid-server`,
  `ConfigMap/${NS}/raibid-config`,
  `Deployment/${NS}/raibid-server`,
  `Service/${NS}/raibid-server`,
  `ScaledJob/${NS}/raibid-agent`,
  `PersistentVolumeClaim/${NS}/raibid-agent-cache`,
  'HelmChart/kube-system/keda',
  'HelmChart/kube-system/flux',
].sort();

const MODELS: Record<string, { new (data: never): { validate(): void } }> = {
  Namespace,
  Service,
  ConfigMap,
  ServiceAccount,
  PersistentVolumeClaim,
  Deployment,
  StatefulSet,
  Role,
  RoleBinding,
  ScaledJob,
  RuntimeClass,
};

/** What the GPU pool adds (docs/gpu.md), and nothing of it when the GPU is off. */
const GPU_OBJECTS = [
  'HelmChart/kube-system/nvidia-device-plugin',
  'RuntimeClass//nvidia',
  `ScaledJob/${NS}/raibid-agent-gpu`,
];
const GPU_MARKS = /nvidia|raibid:jobs:gpu|raibid-agent-gpu|RAIBID_POOL/;

const key = (o: KubeObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** Every container (and init container) of a workload, wherever its pod template is. */
function containers(o: KubeObject): { spec: KubeObject['spec']; list: Record<string, unknown>[] } {
  const pod = o.kind === 'ScaledJob' ? o.spec.jobTargetRef.template.spec : o.spec?.template?.spec;
  return { spec: pod, list: pod ? [...(pod.initContainers ?? []), ...pod.containers] : [] };
}

/** All string values in an object, with their paths. */
function strings(value: unknown, at = ''): [string, string][] {
  if (typeof value === 'string') return [[at, value]];
  if (Array.isArray(value)) return value.flatMap((v, i) => strings(v, `${at}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => strings(v, `${at}.${k}`));
  }
  return [];
}

const tools = needTools('tk');
const tk = tools.path.tk!;

describe.skipIf(tools.skip)('tanka: the rendered environments', () => {
  const envs: Record<string, KubeObject[]> = {};
  beforeAll(async () => {
    [envs.local, envs.cluster, envs.live, envs.max2, envs.warm1, envs.gpu, envs.gpu2] = await Promise.all([
      renderEnvironment(tk, 'local'),
      renderEnvironment(tk, 'cluster'),
      renderEnvironment(tk, 'local', ['--tla-code', 'liveUpdate=true']),
      renderEnvironment(tk, 'local', ['--tla-code', 'agentMaxReplicas=2']),
      renderEnvironment(tk, 'local', ['--tla-code', 'agentWarmReplicas=1']),
      renderEnvironment(tk, 'local', ['--tla-code', 'gpu=true']),
      renderEnvironment(tk, 'local', ['--tla-code', 'gpu=true', '--tla-code', 'gpuSharedJobs=2']),
    ]);
  });

  for (const env of ['local', 'cluster']) {
    describe(env, () => {
      it('renders exactly the objects of the contract, in their namespaces', () => {
        const rendered = envs[env]!.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
        expect(rendered.sort()).toEqual(CONTRACT_OBJECTS);
      });

      it('labels every object (and every pod template) with the five app.kubernetes.io labels', () => {
        for (const o of envs[env]!) {
          const where = `${o.kind}/${o.metadata.name}`;
          expect(Object.keys(o.metadata.labels ?? {}), where).toEqual(expect.arrayContaining(LABELS));
          expect(o.metadata.labels!['app.kubernetes.io/part-of'], where).toBe('raibid-ci');
          const pod = o.kind === 'ScaledJob' ? o.spec.jobTargetRef.template : o.spec?.template;
          if (pod) expect(Object.keys(pod.metadata.labels), where).toEqual(expect.arrayContaining(LABELS));
        }
      });

      it('passes the kubernetes-models schemas (types, required fields)', () => {
        for (const o of envs[env]!) {
          if (o.kind === 'HelmChart') continue; // no model; checked against its CRD below
          const Model = MODELS[o.kind];
          expect(Model, `a model for ${o.kind}`).toBeDefined();
          expect(() => new Model!(o as never).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
        }
      });

      it('holds no Secret and no literal credential: every secret is a secretKeyRef into raibid-secrets', () => {
        expect(envs[env]!.filter((o) => o.kind === 'Secret')).toEqual([]);
        for (const o of envs[env]!) {
          for (const c of containers(o).list) {
            for (const e of (c.env ?? []) as { name: string; value?: string; valueFrom?: KubeObject }[]) {
              if (/TOKEN|SECRET|PASSWORD/.test(e.name)) {
                expect(e.value, `${o.metadata.name} ${e.name}`).toBeUndefined();
                expect(e.valueFrom?.secretKeyRef?.name, `${o.metadata.name} ${e.name}`).toBe(
                  'raibid-secrets',
                );
              }
            }
          }
          for (const [at, value] of strings(o)) {
            expect(`${at}=${value}`).not.toMatch(/(password|token|secret)\s*[=:]\s*\S{8,}/i);
          }
        }
      });

      it('uses only pinned third-party images and the two images Tilt builds', () => {
        const built = env === 'local' ? ['raibid-server', 'raibid-agent'] : [];
        for (const o of envs[env]!) {
          for (const c of containers(o).list) {
            const image = c.image as string;
            if (/raibid-(server|agent)/.test(image)) {
              if (env === 'local') expect(built).toContain(image);
              else expect(image).toMatch(/^[a-z0-9.-]+(:\d+)?\/raibid-(server|agent):[\w.-]+$/);
            } else {
              expect(image, `${o.metadata.name}`).toMatch(/^[\w./-]+:\d+\.\d+\.\d+[\w.-]*$/);
            }
          }
        }
      });

      it('runs every container non-root, without privilege escalation or capabilities, with RuntimeDefault seccomp', () => {
        for (const o of envs[env]!) {
          const { spec, list } = containers(o);
          if (!spec) continue;
          expect(spec.securityContext.runAsNonRoot, o.metadata.name).toBe(true);
          for (const c of list) {
            expect(c.securityContext, `${o.metadata.name}/${c.name}`).toMatchObject({
              allowPrivilegeEscalation: false,
              runAsNonRoot: true,
              capabilities: { drop: ['ALL'] },
              seccompProfile: { type: 'RuntimeDefault' },
            });
            expect(c.resources, `${o.metadata.name}/${c.name}`).toHaveProperty('requests');
            expect(c.resources, `${o.metadata.name}/${c.name}`).toHaveProperty('limits.memory');
          }
        }
      });

      it('has the ScaledJob of docs/scaling.md: lag mode, accurate, gradual, one try per Job', () => {
        const job = find(envs[env]!, 'ScaledJob', 'raibid-agent');
        // The local scaler (pnpm dev) and KEDA must scale alike (docs/scaling.md).
        expect(job.spec).toMatchObject({
          pollingInterval: RAIBID_SCALED_JOB.pollingIntervalMs / 1000,
          minReplicaCount: RAIBID_SCALED_JOB.minReplicaCount,
          scalingStrategy: { strategy: RAIBID_SCALED_JOB.strategy },
          rollout: { strategy: 'gradual' },
        });
        expect(job.spec.triggers).toEqual([
          {
            type: 'redis-streams',
            metadata: {
              address: 'redis.raibid-system.svc.cluster.local:6379',
              stream: 'raibid:jobs',
              consumerGroup: 'raibid-agents',
              lagCount: String(RAIBID_SCALED_JOB.targetLagCount),
              activationLagCount: String(RAIBID_SCALED_JOB.activationLagCount),
            },
          },
        ]);
        expect(job.spec.pollingInterval).toBe(5);
        expect(job.spec.maxReplicaCount).toBe(8);
        expect(job.spec.minReplicaCount).toBe(0); // scale to zero unless warm agents are asked for
        expect(job.spec.successfulJobsHistoryLimit).toBeLessThanOrEqual(10);
        expect(job.spec.failedJobsHistoryLimit).toBeLessThanOrEqual(10);
        const target = job.spec.jobTargetRef;
        expect(target.backoffLimit).toBe(0);
        expect(target.activeDeadlineSeconds).toBeGreaterThan(AGENT_WORST_CASE_SECONDS);
        expect(target.template.spec.restartPolicy).toBe('Never');
        const [agent, ...others] = target.template.spec.containers;
        expect(others).toEqual([]);
        expect(agent.name).toBe('agent');
        expect(agent.imagePullPolicy).toBe('IfNotPresent');
        expect(agent.envFrom).toEqual([{ configMapRef: { name: 'raibid-config' } }]);
        const env_ = Object.fromEntries(agent.env.map((e: { name: string }) => [e.name, e]));
        expect(env_.RAIBID_CACHE_DIR.value).toBe('/cache');
        expect(env_.RAIBID_WORK_DIR.value).toBe('/work');
        expect(env_.AGENT_IDLE_TIMEOUT.value).toBe('30s');
        expect(env_.GITEA_TOKEN.valueFrom.secretKeyRef).toEqual({
          name: 'raibid-secrets',
          key: 'gitea-token',
          optional: true,
        });
        const volumes = Object.fromEntries(
          target.template.spec.volumes.map((v: { name: string }) => [v.name, v]),
        );
        expect(volumes.cache.persistentVolumeClaim.claimName).toBe('raibid-agent-cache');
        expect(volumes.work.emptyDir).toEqual({});
      });

      it('runs Redis 7 as a StatefulSet with AOF (fsync every second), noeviction, a volume and probes', () => {
        const redis = find(envs[env]!, 'StatefulSet', 'redis');
        const [c] = redis.spec.template.spec.containers;
        expect(c.image).toMatch(/^redis:7\./);
        expect(c.args.join(' ')).toContain('--appendonly yes --appendfsync everysec');
        expect(c.args.join(' ')).toContain('--maxmemory-policy noeviction');
        expect(c.readinessProbe.exec.command).toEqual(['sh', '-c', 'redis-cli ping | grep -qx PONG']);
        expect(c.livenessProbe.exec.command).toEqual(['redis-cli', 'ping']);
        expect(c.volumeMounts).toEqual([{ name: 'data', mountPath: '/data' }]);
        expect(redis.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
        const service = find(envs[env]!, 'Service', 'redis');
        expect(service.spec.ports).toEqual([
          { name: 'redis', port: 6379, targetPort: 'redis', protocol: 'TCP' },
        ]);
      });

      it('runs Gitea rootless with SQLite, no registration, packages, and webhooks allowed to the cluster', () => {
        const gitea = find(envs[env]!, 'StatefulSet', 'gitea');
        const [c] = gitea.spec.template.spec.containers;
        expect(c.image).toMatch(/^gitea\/gitea:\d+\.\d+\.\d+-rootless$/);
        const env_ = Object.fromEntries(c.env.map((e: { name: string; value?: string }) => [e.name, e]));
        expect(env_.GITEA__database__DB_TYPE.value).toBe('sqlite3');
        expect(env_.GITEA__security__INSTALL_LOCK.value).toBe('true');
        expect(env_.GITEA__service__DISABLE_REGISTRATION.value).toBe('true');
        expect(env_.GITEA__server__ROOT_URL.value).toBe('http://localhost:3000/');
        expect(env_.GITEA__packages__ENABLED.value).toBe('true');
        expect(env_.GITEA__security__ALLOWED_HOST_LIST.value).toContain('private');
        expect(env_.GITEA__webhook__ALLOWED_HOST_LIST.value).toBe(
          env_.GITEA__security__ALLOWED_HOST_LIST.value,
        );
        expect(env_.GITEA_ADMIN_PASSWORD.valueFrom.secretKeyRef).toEqual({
          name: 'raibid-secrets',
          key: 'gitea-admin-password',
        });
        const start = c.args.join(' ');
        expect(start).toContain('admin user create --admin --username raibid');
        expect(start).toContain('--email raibid@localhost --must-change-password=false');
        expect(start).toContain('user already exists');
        expect(c.readinessProbe.exec.command.join(' ')).toContain('/api/healthz');
        expect(gitea.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBeDefined();
        const service = find(envs[env]!, 'Service', 'gitea-http');
        expect(service.spec.ports).toEqual([
          { name: 'http', port: 3000, targetPort: 'http', protocol: 'TCP' },
        ]);
      });

      it('runs the server with probes, a read-only root, its ServiceAccount and the secrets by reference', () => {
        const server = find(envs[env]!, 'Deployment', 'raibid-server');
        const pod = server.spec.template.spec;
        expect(pod.serviceAccountName).toBe('raibid-server');
        const [c] = pod.containers;
        expect(c.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'http' });
        expect(c.livenessProbe.httpGet).toEqual({ path: '/health', port: 'http' });
        expect(c.ports).toEqual([
          { name: 'http', containerPort: 8080, protocol: 'TCP' },
          { name: 'metrics', containerPort: 8081, protocol: 'TCP' },
        ]);
        expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
        expect(pod.securityContext.runAsUser).toBe(1000);
        expect(c.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
        const secretRefs = Object.fromEntries(
          c.env
            .filter((e: KubeObject) => e.valueFrom)
            .map((e: KubeObject) => [e.name, e.valueFrom.secretKeyRef]),
        );
        expect(secretRefs).toEqual({
          RAIBID_API_TOKEN: { name: 'raibid-secrets', key: 'api-token' },
          GITEA_WEBHOOK_SECRET: { name: 'raibid-secrets', key: 'webhook-secret' },
          GITEA_TOKEN: { name: 'raibid-secrets', key: 'gitea-token', optional: true },
        });
        expect(find(envs[env]!, 'ConfigMap', 'raibid-config').data).toEqual({
          REDIS_URL: 'redis://redis.raibid-system.svc:6379',
          GITEA_URL: 'http://gitea-http.raibid-system.svc:3000',
          PUBLIC_URL: 'http://localhost:8080',
        });
        const service = find(envs[env]!, 'Service', 'raibid-server');
        expect(service.spec.ports.map((p: KubeObject) => `${p.name}:${p.port}`)).toEqual([
          'http:8080',
          'metrics:8081',
        ]);
        expect(service.metadata.annotations).toMatchObject({
          'prometheus.io/scrape': 'true',
          'prometheus.io/port': '8081',
        });
        expect(find(envs[env]!, 'Role', 'raibid-server').rules).toEqual([
          { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: ['keda.sh'], resources: ['scaledjobs'], verbs: ['get', 'list', 'watch'] },
        ]);
      });

      it('installs KEDA and Flux as k3s HelmCharts with pinned chart versions', () => {
        const keda = find(envs[env]!, 'HelmChart', 'keda');
        expect(keda.spec).toMatchObject({
          repo: 'https://kedacore.github.io/charts',
          chart: 'keda',
          version: '2.20.2',
          targetNamespace: 'keda',
        });
        expect(parse(keda.spec.valuesContent)).toMatchObject({ watchNamespace: '' });
        const flux = find(envs[env]!, 'HelmChart', 'flux');
        expect(flux.spec).toMatchObject({
          repo: 'https://fluxcd-community.github.io/helm-charts',
          chart: 'flux2',
          version: '2.18.3',
          targetNamespace: 'flux-system',
        });
      });
    });
  }

  it('gpu off (the default, local and cluster): nothing of the GPU is rendered', () => {
    for (const env of ['local', 'cluster', 'live', 'max2']) {
      for (const o of envs[env]!) expect(JSON.stringify(o), `${env}: ${key(o)}`).not.toMatch(GPU_MARKS);
    }
  });

  it('gpu=true (tilt up -- --gpu): adds the RuntimeClass, the device plugin and raibid-agent-gpu, changes nothing else', () => {
    const added = envs.gpu!.filter((o) => !envs.local!.some((l) => key(l) === key(o))).map(key);
    expect(added.sort()).toEqual(GPU_OBJECTS);
    const rest = envs.gpu!.filter((o) => !GPU_OBJECTS.includes(key(o)));
    expect(JSON.stringify(rest)).toBe(JSON.stringify(envs.local));
    for (const o of envs.gpu!.filter((o) => GPU_OBJECTS.includes(key(o)))) {
      expect(Object.keys(o.metadata.labels ?? {}), key(o)).toEqual(expect.arrayContaining(LABELS));
      if (o.kind === 'HelmChart') continue;
      expect(() => new MODELS[o.kind]!(o as never).validate(), key(o)).not.toThrow();
    }
    expect(find(envs.gpu!, 'RuntimeClass', 'nvidia').handler).toBe('nvidia');
  });

  it('gpu=true: raibid-agent-gpu is raibid-agent on raibid:jobs:gpu, with one GPU share, the nvidia runtime and at most N Jobs', () => {
    const cpu = find(envs.gpu!, 'ScaledJob', 'raibid-agent');
    const gpu = find(envs.gpu!, 'ScaledJob', 'raibid-agent-gpu');
    const differences: string[] = [];
    const before = new Map(strings(cpu));
    for (const [at, value] of strings(gpu)) {
      if (before.get(at) !== value) differences.push(`${at}=${value}`);
    }
    expect(differences.sort()).toEqual(
      [
        '.metadata.labels.app.kubernetes.io/name=raibid-agent-gpu',
        '.metadata.name=raibid-agent-gpu',
        '.spec.jobTargetRef.template.metadata.labels.app.kubernetes.io/name=raibid-agent-gpu',
        '.spec.jobTargetRef.template.spec.containers[0].env[3].name=RAIBID_POOL',
        '.spec.jobTargetRef.template.spec.containers[0].env[3].value=gpu',
        '.spec.jobTargetRef.template.spec.containers[0].env[4].name=RAIBID_WORK_DIR',
        '.spec.jobTargetRef.template.spec.containers[0].env[4].value=/work',
        '.spec.jobTargetRef.template.spec.containers[0].env[5].valueFrom.secretKeyRef.key=gitea-token',
        '.spec.jobTargetRef.template.spec.containers[0].env[5].valueFrom.secretKeyRef.name=raibid-secrets',
        '.spec.jobTargetRef.template.spec.containers[0].env[5].name=GITEA_TOKEN',
        '.spec.jobTargetRef.template.spec.runtimeClassName=nvidia',
        '.spec.triggers[0].metadata.stream=raibid:jobs:gpu',
      ].sort(),
    );
    const pod = gpu.spec.jobTargetRef.template.spec;
    expect(pod.containers[0].resources.limits['nvidia.com/gpu']).toBe(1);
    expect(gpu.spec.triggers[0].metadata).toMatchObject({ consumerGroup: 'raibid-agents', lagCount: '1' });

    // N = gpu.sharedJobs: KEDA's limit and the device plugin's time-slicing replicas agree.
    for (const [env, n] of [
      ['gpu', 4],
      ['gpu2', 2],
    ] as const) {
      expect(find(envs[env]!, 'ScaledJob', 'raibid-agent-gpu').spec.maxReplicaCount, env).toBe(n);
      const plugin = find(envs[env]!, 'HelmChart', 'nvidia-device-plugin');
      const values = parse(plugin.spec.valuesContent);
      const slicing = parse(values.config.map[values.config.default]);
      expect(slicing.sharing.timeSlicing.resources, env).toEqual([{ name: 'nvidia.com/gpu', replicas: n }]);
    }
  });

  it('gpu=true: the device plugin is a k3s HelmChart with a pinned chart version, running with the nvidia runtime', () => {
    const plugin = find(envs.gpu!, 'HelmChart', 'nvidia-device-plugin');
    expect(plugin.spec).toMatchObject({
      repo: 'https://nvidia.github.io/k8s-device-plugin',
      chart: 'nvidia-device-plugin',
      targetNamespace: 'nvidia-device-plugin',
    });
    expect(plugin.spec.version).toMatch(/^\d+\.\d+\.\d+$/);
    const values = parse(plugin.spec.valuesContent);
    expect(values).toMatchObject({ runtimeClassName: 'nvidia', affinity: null, gfd: { enabled: false } });
    expect(parse(values.config.map['time-slicing'])).toEqual({
      version: 'v1',
      flags: { migStrategy: 'none' },
      sharing: {
        timeSlicing: {
          renameByDefault: false,
          failRequestsGreaterThanOne: true,
          resources: [{ name: 'nvidia.com/gpu', replicas: 4 }],
        },
      },
    });
  });

  it('local: keeps the bare image names Tilt replaces and the local-path storage class', () => {
    expect(find(envs.local!, 'Deployment', 'raibid-server').spec.template.spec.containers[0].image).toBe(
      'raibid-server',
    );
    const storageClasses = envs.local!.flatMap((o) =>
      o.kind === 'PersistentVolumeClaim'
        ? [o.spec.storageClassName]
        : (o.spec?.volumeClaimTemplates ?? []).map((t: KubeObject) => t.spec.storageClassName),
    );
    expect(new Set(storageClasses)).toEqual(new Set(['local-path']));
  });

  it('cluster: differs from local only where its config says (registry, storage, spreading agents)', () => {
    const differences: string[] = [];
    for (const o of envs.cluster!) {
      const local = find(envs.local!, o.kind, o.metadata.name);
      const before = new Map(strings(local));
      for (const [at, value] of strings(o)) {
        if (before.get(at) !== value) differences.push(`${o.kind}/${o.metadata.name}${at}=${value}`);
      }
    }
    expect(differences.sort()).toEqual(
      [
        'Deployment/raibid-server.spec.template.spec.containers[0].image=registry.raibid.internal:5000/raibid-server:0.1.0',
        'PersistentVolumeClaim/raibid-agent-cache.spec.accessModes[0]=ReadWriteMany',
        'PersistentVolumeClaim/raibid-agent-cache.spec.storageClassName=longhorn',
        'ScaledJob/raibid-agent.spec.jobTargetRef.template.spec.containers[0].image=registry.raibid.internal:5000/raibid-agent:0.1.0',
        'ScaledJob/raibid-agent.spec.jobTargetRef.template.spec.topologySpreadConstraints[0].labelSelector.matchLabels.app.kubernetes.io/instance=raibid',
        'ScaledJob/raibid-agent.spec.jobTargetRef.template.spec.topologySpreadConstraints[0].labelSelector.matchLabels.app.kubernetes.io/name=raibid-agent',
        'ScaledJob/raibid-agent.spec.jobTargetRef.template.spec.topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname',
        'ScaledJob/raibid-agent.spec.jobTargetRef.template.spec.topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway',
        'StatefulSet/gitea.spec.volumeClaimTemplates[0].spec.storageClassName=longhorn',
        'StatefulSet/redis.spec.volumeClaimTemplates[0].spec.storageClassName=longhorn',
      ].sort(),
    );
  });

  it('local with agentMaxReplicas=2 (tilt up -- --agent-max=2): only the ScaledJob maxReplicaCount changes', () => {
    expect(find(envs.max2!, 'ScaledJob', 'raibid-agent').spec.maxReplicaCount).toBe(2);
    const withMax = (objects: KubeObject[], max: number) =>
      JSON.stringify(
        objects.map((o) =>
          o.kind === 'ScaledJob' ? { ...o, spec: { ...o.spec, maxReplicaCount: max } } : o,
        ),
      );
    expect(withMax(envs.max2!, 8)).toBe(withMax(envs.local!, 8));
  });

  it('local with agentWarmReplicas=1 (tilt up -- --agent-warm=1): minReplicaCount 1, agents wait an hour, and the deadline counts that wait', () => {
    const warm = find(envs.warm1!, 'ScaledJob', 'raibid-agent');
    const cold = find(envs.local!, 'ScaledJob', 'raibid-agent');
    expect(warm.spec.minReplicaCount).toBe(1);
    const idleTimeout = (job: KubeObject) =>
      job.spec.jobTargetRef.template.spec.containers[0].env.find(
        (e: { name: string }) => e.name === 'AGENT_IDLE_TIMEOUT',
      ).value;
    expect(idleTimeout(warm)).toBe('3600s');
    expect(warm.spec.jobTargetRef.activeDeadlineSeconds).toBe(
      cold.spec.jobTargetRef.activeDeadlineSeconds + 3600,
    );
    expect(warm.spec.jobTargetRef.activeDeadlineSeconds).toBeGreaterThan(AGENT_WORST_CASE_SECONDS + 3600);
    // Nothing else changes; the GPU pool stays at zero.
    const asCold = (objects: KubeObject[]) =>
      JSON.stringify(
        objects.map((o) =>
          o.kind === 'ScaledJob' && o.metadata.name === 'raibid-agent'
            ? { ...o, spec: { ...o.spec, minReplicaCount: 0, jobTargetRef: cold.spec.jobTargetRef } }
            : o,
        ),
      );
    expect(asCold(envs.warm1!)).toBe(asCold(envs.local!));
  });

  it('local with liveUpdate=true (the Tiltfile): only the server root filesystem becomes writable', () => {
    const live = find(envs.live!, 'Deployment', 'raibid-server');
    expect(live.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem).toBe(false);
    const rest = (objects: KubeObject[]) =>
      JSON.stringify(
        objects.map((o) =>
          o.kind === 'Deployment'
            ? {
                ...o,
                spec: {
                  ...o.spec,
                  template: { ...o.spec.template, spec: { ...o.spec.template.spec, containers: [] } },
                },
              }
            : o,
        ),
      );
    expect(rest(envs.live!)).toBe(rest(envs.local!));
  });
});

const strict = needTools('tk', 'go', 'etcd', 'kube-apiserver');

describe.skipIf(strict.skip)(
  'tanka: strict validation against the real CRDs and a real kube-apiserver',
  () => {
    let objects: KubeObject[];
    let cluster: KubeObject[];
    let gpu: KubeObject[];
    let warm: KubeObject[];
    let scaledJobCrd: Crd;
    let helmChartCrd: Crd;
    let api: TestApiServer;

    beforeAll(async () => {
      [objects, cluster, gpu, warm] = await Promise.all([
        renderEnvironment(strict.path.tk!, 'local'),
        renderEnvironment(strict.path.tk!, 'cluster'),
        renderEnvironment(strict.path.tk!, 'local', ['--tla-code', 'gpu=true']),
        renderEnvironment(strict.path.tk!, 'local', ['--tla-code', 'agentWarmReplicas=1']),
      ]);
      // The CRDs of exactly the KEDA the HelmChart installs.
      const kedaVersion = find(objects, 'HelmChart', 'keda').spec.version as string;
      [scaledJobCrd, helmChartCrd] = await Promise.all([
        crdFromGoModule(strict.path.go!, `github.com/kedacore/keda/v2@v${kedaVersion}`, KEDA_SCALED_JOB_CRD),
        crdFromGoModule(strict.path.go!, HELM_CONTROLLER, HELM_CHART_CRD),
      ]);
      api = await startApiServer({ kubeApiserver: strict.path['kube-apiserver']!, etcd: strict.path.etcd! });
      await installCrds(api, [scaledJobCrd, helmChartCrd]);
      // Namespaced objects can only be (dry-run) created in a namespace that really exists.
      const namespace = await create(api, find(objects, 'Namespace', NS), false);
      expect(namespace.status, JSON.stringify(namespace.body)).toBe(201);
    });
    afterAll(async () => {
      await api?.stop();
    });

    it('the ScaledJob and HelmCharts have no unknown field, wrong type or bad enum for their CRDs', () => {
      for (const o of [...objects, ...cluster, ...gpu, ...warm]) {
        const crd = o.kind === 'ScaledJob' ? scaledJobCrd : o.kind === 'HelmChart' ? helmChartCrd : undefined;
        if (crd)
          expect(schemaErrors(o, crdSchema(crd, o.apiVersion)), `${o.kind}/${o.metadata.name}`).toEqual([]);
      }
    });

    it('the CRD schema check finds an unknown field and a bad enum', () => {
      const job = structuredClone(find(objects, 'ScaledJob', 'raibid-agent'));
      job.spec.pollingIntervall = 5;
      job.spec.rollout.strategy = 'default';
      expect(schemaErrors(job, crdSchema(scaledJobCrd, job.apiVersion))).toEqual([
        '.spec.rollout.strategy: "default" is not one of ["gradual","immediate"]',
        '.spec: unknown field pollingIntervall',
      ]);
    });

    for (const env of ['local', 'cluster']) {
      it(`${env}: the API server accepts every object (dryRun=All, fieldValidation=Strict)`, async () => {
        const rendered = env === 'local' ? objects : cluster;
        for (const o of rendered) {
          if (o.kind === 'Namespace') continue; // created for real above
          const response = await create(api, o, true);
          expect(
            response.status,
            `${o.kind}/${o.metadata.name}: ${JSON.stringify(response.body.message)}`,
          ).toBe(201);
        }
      });
    }

    it('agentWarmReplicas=1: the API server accepts raibid-agent with minReplicaCount 1, and the Job KEDA makes from it (dryRun=All, Strict)', async () => {
      const scaledJob = find(warm, 'ScaledJob', 'raibid-agent');
      const accepted = await create(api, scaledJob, true);
      expect(accepted.status, JSON.stringify(accepted.body.message)).toBe(201);
      expect(accepted.body.spec.minReplicaCount).toBe(1);
      const job = await create(api, jobOf(scaledJob), true);
      expect(job.status, JSON.stringify(job.body.message)).toBe(201);
      expect(job.body.spec.activeDeadlineSeconds).toBe(scaledJob.spec.jobTargetRef.activeDeadlineSeconds);
    });

    it('gpu=true: the API server accepts the RuntimeClass, the device plugin HelmChart and raibid-agent-gpu (dryRun=All, Strict)', async () => {
      const added = gpu.filter((o) => GPU_OBJECTS.includes(key(o)));
      expect(added.map(key).sort()).toEqual(GPU_OBJECTS);
      for (const o of added) {
        const response = await create(api, o, true);
        expect(response.status, `${key(o)}: ${JSON.stringify(response.body.message)}`).toBe(201);
      }
      // A RuntimeClass is validated for real: a handler must be a DNS label.
      const bad = structuredClone(find(gpu, 'RuntimeClass', 'nvidia'));
      bad.handler = 'Nvidia_Runtime';
      const refused = await create(api, bad, true);
      expect(refused.status).toBe(422);
      expect(refused.body.message).toContain('handler');
    });

    it('gpu=true: the Job KEDA makes from raibid-agent-gpu passes batch/v1 validation, with its GPU limit and runtime class', async () => {
      const scaledJob = find(gpu, 'ScaledJob', 'raibid-agent-gpu');
      const response = await create(api, jobOf(scaledJob), true);
      expect(response.status, JSON.stringify(response.body.message)).toBe(201);
      expect(response.body.spec.template.spec.runtimeClassName).toBe('nvidia');
      // An extended resource is whole and never overcommitted: the limit alone asks for one share.
      expect(response.body.spec.template.spec.containers[0].resources.limits['nvidia.com/gpu']).toBe('1');
    });

    it('the Job KEDA makes from the ScaledJob passes batch/v1 validation (which the CRD schema cannot do)', async () => {
      // KEDA copies jobTargetRef into a Job's spec; the CRD only checks its shape, the API
      // server's Job validation checks values (restartPolicy, imagePullPolicy, volumes, ...).
      for (const rendered of [objects, cluster]) {
        const scaledJob = find(rendered, 'ScaledJob', 'raibid-agent');
        const response = await create(api, jobOf(scaledJob), true);
        expect(response.status, JSON.stringify(response.body.message)).toBe(201);
      }
    });

    it('the API server rejects an unknown field and a bad value in a dry-run', async () => {
      const job = structuredClone(find(objects, 'ScaledJob', 'raibid-agent'));
      job.spec.pollingIntervall = 5;
      const unknown = await create(api, job, true);
      expect(unknown.status).toBeGreaterThanOrEqual(400);
      expect(unknown.body.message).toContain('unknown field "spec.pollingIntervall"');

      const server = structuredClone(find(objects, 'Deployment', 'raibid-server'));
      server.spec.template.spec.containers[0].imagePullPolicy = 'Sometimes';
      const invalid = await create(api, server, true);
      expect(invalid.status).toBe(422);
      expect(invalid.body.message).toContain('imagePullPolicy');
    });

    it("RBAC: raibid-server's ServiceAccount may read pods, jobs and scaledjobs in its namespace, nothing more", async () => {
      for (const kind of ['ServiceAccount', 'Role', 'RoleBinding']) {
        const created = await create(api, find(objects, kind, 'raibid-server'), false);
        expect(created.status, JSON.stringify(created.body)).toBe(201);
      }
      const can = async (verb: string, group: string, resource: string, namespace = NS) => {
        const review = await api.request('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: `system:serviceaccount:${NS}:raibid-server`,
            groups: ['system:serviceaccounts', `system:serviceaccounts:${NS}`, 'system:authenticated'],
            resourceAttributes: { namespace, verb, group, resource },
          },
        });
        expect(review.status).toBe(201);
        return review.body.status.allowed === true;
      };
      for (const verb of ['get', 'list', 'watch']) {
        expect(await can(verb, '', 'pods'), `${verb} pods`).toBe(true);
        expect(await can(verb, 'batch', 'jobs'), `${verb} jobs`).toBe(true);
        expect(await can(verb, 'keda.sh', 'scaledjobs'), `${verb} scaledjobs`).toBe(true);
      }
      expect(await can('delete', '', 'pods')).toBe(false);
      expect(await can('create', 'batch', 'jobs')).toBe(false);
      expect(await can('get', '', 'secrets')).toBe(false);
      expect(await can('list', '', 'pods', 'kube-system')).toBe(false);
    });
  },
);

/** The Job KEDA makes from a ScaledJob: its jobTargetRef as a batch/v1 Job's spec. */
function jobOf(scaledJob: KubeObject): KubeObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: `${scaledJob.metadata.name}-dry-run`,
      namespace: NS,
      labels: scaledJob.metadata.labels,
    },
    spec: scaledJob.spec.jobTargetRef,
  };
}

/** POSTs an object to its collection, found through the API server's discovery. */
async function create(api: TestApiServer, o: KubeObject, dryRun: boolean) {
  const base = o.apiVersion.includes('/') ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
  const discovery = await api.request('GET', base);
  const resource = (discovery.body.resources ?? []).find(
    (r: { kind: string; name: string }) => r.kind === o.kind && !r.name.includes('/'),
  );
  if (!resource) throw new Error(`the API server serves no ${o.kind} in ${o.apiVersion}`);
  const collection = resource.namespaced
    ? `${base}/namespaces/${o.metadata.namespace}/${resource.name}`
    : `${base}/${resource.name}`;
  const query = `?fieldValidation=Strict${dryRun ? '&dryRun=All' : ''}`;
  return api.request('POST', collection + query, o);
}
