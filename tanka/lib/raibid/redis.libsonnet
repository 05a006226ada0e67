// Redis 7: the job queue (stream raibid:jobs) and job state. A queue must survive restarts and
// never lose entries, so: AOF with fsync every second, and no eviction when memory runs out.
local u = import 'util.libsonnet';

function(c) {
  local name = 'redis',
  local component = 'queue',
  // Ready only on PONG (not while loading the AOF); alive whenever redis-cli gets any answer,
  // so a long AOF load after a crash is not killed and restarted.
  local ping = { exec: { command: ['redis-cli', 'ping'] }, timeoutSeconds: 3 },

  statefulSet: {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: u.metadata(c, name, component),
    spec: {
      serviceName: name,
      replicas: 1,
      selector: { matchLabels: u.selector(c, name) },
      template: {
        metadata: { labels: u.labels(c, name, component) },
        spec: {
          securityContext: u.podSecurityContext { runAsUser: 999, runAsGroup: 999, fsGroup: 999 },
          containers: [{
            name: 'redis',
            image: c.images.redis,
            args: [
              '--appendonly', 'yes',
              '--appendfsync', 'everysec',
              '--maxmemory', c.redis.maxmemory,
              '--maxmemory-policy', 'noeviction',
              '--dir', '/data',
            ],
            ports: [{ name: 'redis', containerPort: c.redis.port, protocol: 'TCP' }],
            readinessProbe: ping {
              exec: { command: ['sh', '-c', 'redis-cli ping | grep -qx PONG'] },
              periodSeconds: 5,
            },
            livenessProbe: ping { periodSeconds: 15, failureThreshold: 4 },
            resources: c.redis.resources,
            securityContext: u.containerSecurityContext(),
            volumeMounts: [{ name: 'data', mountPath: '/data' }],
          }],
        },
      },
      volumeClaimTemplates: [u.claimTemplate(c, 'data', component, c.storage.redis)],
    },
  },

  service: u.service(c, name, component, name, [{ name: 'redis', port: c.redis.port }]),
}
