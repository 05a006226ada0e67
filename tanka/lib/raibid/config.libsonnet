// Every parameter of the raibid-ci deployment, with the values for one k3s node (a DGX Spark).
// An environment overrides fields with `_config+:: { ... }`; the components only read this object.
{
  namespace: 'raibid-system',
  instance: 'raibid',  // app.kubernetes.io/instance on every object

  // Images. With registry '' the two images Tilt builds keep their bare names: Tilt replaces
  // `raibid-server` / `raibid-agent` with the ref it pushed (localhost:5000/raibid-server:tilt-<hash>).
  // Without Tilt, set registry and tag: the images become <registry>/<name>:<tag>.
  registry: '',
  imageTag: 'latest',
  images: {
    server: 'raibid-server',
    agent: 'raibid-agent',
    redis: 'redis:7.4.11-bookworm',
    gitea: 'gitea/gitea:1.27.3-rootless',
  },

  // PersistentVolumeClaims. k3s provisions `local-path` volumes on the node's disk.
  storageClass: 'local-path',
  storage: {
    redis: '2Gi',
    gitea: '10Gi',
    agentCache: '50Gi',  // shared build caches of all agents (cargo, npm, ...)
    // Every agent mounts the cache; on one node ReadWriteOnce suffices (it binds per node).
    // Agents on several nodes need a storage class with ReadWriteMany.
    agentCacheAccessMode: 'ReadWriteOnce',
  },

  redis: {
    port: 6379,
    // Below the memory limit, so a full Redis refuses writes (noeviction) instead of being killed.
    maxmemory: '768mb',
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } },
  },

  gitea: {
    httpPort: 3000,
    rootUrl: 'http://localhost:3000/',  // what a browser behind `tilt up`'s port forward sees
    // Webhooks go to raibid-server by its Service name, which resolves to a cluster IP; Gitea
    // refuses deliveries to such hosts unless they are allowed (`private` = RFC 1918 + cluster IPs).
    allowedHostList: 'private,loopback',
    adminUser: 'raibid',
    adminEmail: 'raibid@localhost',
    resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } },
  },

  server: {
    replicas: 1,
    port: 8080,
    metricsPort: 8081,
    publicUrl: 'http://localhost:8080',  // base of the links in Gitea commit statuses
    logLevel: 'info',
    // Tilt's live update writes the rebuilt bundle into the running container; only then false.
    readOnlyRootFilesystem: true,
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
  },

  agent: {
    // KEDA's poll interval; must equal RAIBID_SCALED_JOB.pollingIntervalMs / 1000 (docs/scaling.md).
    pollingInterval: 5,
    // At most this many agent Jobs at once. A DGX Spark has 20 cores; an agent may use 2 and
    // builds are CPU-bound, so 8 agents (16 cores) leave room for Redis, Gitea, the server,
    // KEDA and k3s itself. Per job a request of 1 core keeps the scheduler honest.
    maxReplicaCount: 8,
    // Kubernetes ends an agent Job after this. It must outlast the agent's worst case: the
    // clone (at most 15m), the longest job timeout a pipeline may set (6h, MAX_JOB_TIMEOUT_MS in
    // packages/common/src/pipeline.ts) and the 5m the agent waits for an unreachable Redis to
    // record the outcome, plus a margin. It only ends an agent that hangs: jobs time out first.
    activeDeadlineSeconds: (15 + 360 + 5 + 5) * 60,
    // A Job whose entry was taken by another agent exits 0 after this (a Complete Job, no retry).
    idleTimeout: '30s',
    // Warm agents: the ScaledJob's minReplicaCount. KEDA keeps this many agent Jobs even with an
    // empty queue, each already waiting on raibid:jobs, so a job starts without waiting for a
    // poll and a pod start. KEDA counts Jobs, not idle agents: one that took a job is replaced
    // on the first poll after it exits. 0: scale to zero (docs/scaling.md, "Warm agents").
    warmReplicaCount: 0,
    // With warm agents, the agents' AGENT_IDLE_TIMEOUT: a warm agent leaving after idleTimeout
    // would be replaced at the next poll, a new pod every 35 s and no agent waiting for a poll
    // and a pod start each time; with an hour, once an hour. Added to activeDeadlineSeconds,
    // since the deadline counts the wait too. Equals AGENT_IDLE_TIMEOUT_WARM of `raibid dev`.
    warmIdleTimeoutSeconds: 3600,
    successfulJobsHistoryLimit: 5,
    failedJobsHistoryLimit: 10,
    // Several nodes: prefer to put agents on different nodes (topology spread over hostnames).
    spreadOverNodes: false,
    logLevel: 'info',
    resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '2', memory: '4Gi' } },
  },

  // The GPU pool (docs/gpu.md). Off: nothing GPU is rendered. On (`tilt up -- --gpu`, or the
  // local environment's gpu=true): RuntimeClass nvidia, the NVIDIA device plugin and ScaledJob
  // raibid-agent-gpu. Needs the NVIDIA container toolkit on the node (infra/k3s/install.sh).
  gpu: {
    enabled: false,
    // GPU jobs at once. The device plugin's time-slicing advertises the one GPU as this many
    // `nvidia.com/gpu`, each GPU agent takes one, and KEDA starts at most this many. The jobs
    // share the GPU's time and its memory (no isolation between them): see docs/gpu.md.
    sharedJobs: 4,
    // k3s adds a containerd runtime `nvidia` when it finds the toolkit at start-up.
    runtimeClass: 'nvidia',
    // Where the device plugin runs; {} = every node (one DGX Spark). Label GPU nodes on a
    // larger cluster and select them here, or the plugin fails on nodes without a GPU.
    nodeSelector: {},
    devicePlugin: {
      repo: 'https://nvidia.github.io/k8s-device-plugin',
      chart: 'nvidia-device-plugin',
      version: '0.18.2',
      namespace: 'nvidia-device-plugin',
    },
  },

  // Operators installed by k3s's Helm controller from their chart repositories.
  keda: {
    repo: 'https://kedacore.github.io/charts',
    chart: 'keda',
    version: '2.20.2',
    namespace: 'keda',
  },
  flux: {
    repo: 'https://fluxcd-community.github.io/helm-charts',
    chart: 'flux2',
    version: '2.18.3',
    namespace: 'flux-system',
  },
}
