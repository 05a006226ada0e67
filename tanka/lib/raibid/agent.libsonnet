// raibid-agent: KEDA starts one Job per queued job (lag of the group raibid-agents on the stream
// raibid:jobs); each agent claims one entry, runs it and exits. The contract is docs/scaling.md.
// With the GPU on (docs/gpu.md), raibid-agent-gpu does the same for raibid:jobs:gpu, each Job
// holding one time-sliced share of the GPU.
local u = import 'util.libsonnet';

function(c) {
  local component = 'agent',
  local a = c.agent,

  // One pool's ScaledJob; only the GPU pool's asks for the GPU. With warm > 0 its agents wait
  // warmIdleTimeoutSeconds for a job instead of idleTimeout (config.libsonnet).
  local scaledJob(name, stream, maxReplicaCount, gpu=false, warm=0) = {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledJob',
    metadata: u.metadata(c, name, component),
    spec: {
      pollingInterval: a.pollingInterval,
      minReplicaCount: warm,
      maxReplicaCount: maxReplicaCount,
      successfulJobsHistoryLimit: a.successfulJobsHistoryLimit,
      failedJobsHistoryLimit: a.failedJobsHistoryLimit,
      // The lag counts only entries no agent has read, so only Jobs that have not started are
      // subtracted; `default` would subtract running Jobs again and under-scale.
      scalingStrategy: { strategy: 'accurate' },
      // A new generation (every agent image rebuild) must not delete Jobs that are running.
      rollout: { strategy: 'gradual' },
      triggers: [{
        type: 'redis-streams',
        metadata: {
          address: 'redis.%s.svc.cluster.local:%d' % [c.namespace, c.redis.port],
          stream: stream,
          consumerGroup: 'raibid-agents',
          lagCount: '1',
          activationLagCount: '0',
        },
      }],
      jobTargetRef: {
        // The job's entry is consumed when the agent claims it: never run a Job's pod twice.
        backoffLimit: 0,
        activeDeadlineSeconds: a.activeDeadlineSeconds + (if warm > 0 then a.warmIdleTimeoutSeconds else 0),
        template: {
          metadata: { labels: u.labels(c, name, component) },
          spec: {
            restartPolicy: 'Never',
            // The nvidia runtime (k3s's containerd handler) puts the driver and devices in the pod.
            [if gpu then 'runtimeClassName']: c.gpu.runtimeClass,
            securityContext: u.podSecurityContext,
            [if a.spreadOverNodes then 'topologySpreadConstraints']: [{
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: u.selector(c, name) },
            }],
            containers: [{
              name: 'agent',
              image: u.builtImage(c, c.images.agent),
              // Written out: Tilt rewrites it only where present, and the image is never pulled
              // again for a tag the node already has.
              imagePullPolicy: 'IfNotPresent',
              envFrom: [{ configMapRef: { name: 'raibid-config' } }],
              env: u.env({
                AGENT_IDLE_TIMEOUT: if warm > 0 then '%ds' % a.warmIdleTimeoutSeconds else a.idleTimeout,
                LOG_LEVEL: a.logLevel,
                RAIBID_CACHE_DIR: '/cache',
                RAIBID_WORK_DIR: '/work',
              } + (if gpu then { RAIBID_POOL: 'gpu' } else {})) + [u.secretEnv('GITEA_TOKEN', 'gitea-token', optional=true)],
              // One share of the GPU (a time-slicing replica): N of them make N GPU jobs at once.
              resources: if gpu then a.resources { limits+: { 'nvidia.com/gpu': 1 } } else a.resources,
              // Users' build steps write where they like (apt caches, ~/.cargo, ...).
              securityContext: u.containerSecurityContext(readOnlyRootFilesystem=false),
              volumeMounts: [
                { name: 'cache', mountPath: '/cache' },
                { name: 'work', mountPath: '/work' },
              ],
            }],
            volumes: [
              { name: 'cache', persistentVolumeClaim: { claimName: 'raibid-agent-cache' } },
              { name: 'work', emptyDir: {} },
            ],
          },
        },
      },
    },
  },

  cachePvc: u.pvc(c, 'raibid-agent-cache', component, c.storage.agentCache, c.storage.agentCacheAccessMode),
  scaledJob: scaledJob('raibid-agent', 'raibid:jobs', a.maxReplicaCount, warm=a.warmReplicaCount),
  [if c.gpu.enabled then 'gpuScaledJob']:
    scaledJob('raibid-agent-gpu', 'raibid:jobs:gpu', c.gpu.sharedJobs, gpu=true),
}
