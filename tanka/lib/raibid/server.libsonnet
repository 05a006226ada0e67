// raibid-server: API, webhooks, web UI and the reaper. It reads agent pods and Jobs (and the
// ScaledJob) of its namespace for /api/v1/agents, so it gets a read-only Role there.
local u = import 'util.libsonnet';

function(c) {
  local name = 'raibid-server',
  local component = 'server',
  local probe(path) = { httpGet: { path: path, port: 'http' }, timeoutSeconds: 3 },

  serviceAccount: {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: u.metadata(c, name, component),
  },

  role: {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: u.metadata(c, name, component),
    rules: [
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['keda.sh'], resources: ['scaledjobs'], verbs: ['get', 'list', 'watch'] },
    ],
  },

  roleBinding: {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: u.metadata(c, name, component),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: name },
    subjects: [{ kind: 'ServiceAccount', name: name, namespace: c.namespace }],
  },

  // Settings shared by the server and the agents; secrets come from raibid-secrets instead.
  configMap: {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: u.metadata(c, 'raibid-config', 'config'),
    data: {
      REDIS_URL: 'redis://redis.%s.svc:%d' % [c.namespace, c.redis.port],
      GITEA_URL: 'http://gitea-http.%s.svc:%d' % [c.namespace, c.gitea.httpPort],
      PUBLIC_URL: c.server.publicUrl,
    },
  },

  deployment: {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: u.metadata(c, name, component),
    spec: {
      replicas: c.server.replicas,
      selector: { matchLabels: u.selector(c, name) },
      template: {
        metadata: { labels: u.labels(c, name, component) },
        spec: {
          serviceAccountName: name,
          securityContext: u.podSecurityContext,
          containers: [{
            name: 'server',
            image: u.builtImage(c, c.images.server),
            imagePullPolicy: 'IfNotPresent',
            envFrom: [{ configMapRef: { name: 'raibid-config' } }],
            env: u.env({
              PORT: std.toString(c.server.port),
              METRICS_PORT: std.toString(c.server.metricsPort),
              LOG_LEVEL: c.server.logLevel,
            }) + [
              u.secretEnv('RAIBID_API_TOKEN', 'api-token'),
              u.secretEnv('GITEA_WEBHOOK_SECRET', 'webhook-secret'),
              u.secretEnv('GITEA_TOKEN', 'gitea-token', optional=true),  // set by `raibid seed-gitea`
            ],
            ports: [
              { name: 'http', containerPort: c.server.port, protocol: 'TCP' },
              { name: 'metrics', containerPort: c.server.metricsPort, protocol: 'TCP' },
            ],
            livenessProbe: probe('/health') { periodSeconds: 10, failureThreshold: 3 },
            readinessProbe: probe('/ready') { periodSeconds: 5, failureThreshold: 2 },
            resources: c.server.resources,
            securityContext: u.containerSecurityContext(c.server.readOnlyRootFilesystem),
            volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
          }],
          volumes: [{ name: 'tmp', emptyDir: {} }],
        },
      },
    },
  },

  service: u.service(c, name, component, name, [
    { name: 'http', port: c.server.port },
    { name: 'metrics', port: c.server.metricsPort },
  ]) + {
    metadata+: {
      annotations: {
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': std.toString(c.server.metricsPort),
        'prometheus.io/path': '/metrics',
      },
    },
  },
}
