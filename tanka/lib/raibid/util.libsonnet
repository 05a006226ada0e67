// Small helpers shared by the components: labels and metadata, images, hardened containers.
{
  // The recommended app.kubernetes.io labels; every object carries all five.
  labels(c, name, component):: {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/instance': c.instance,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': 'raibid-ci',
    'app.kubernetes.io/managed-by': 'tanka',
  },

  // The stable subset used in selectors (a selector is immutable, so no version in it).
  selector(c, name):: {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/instance': c.instance,
  },

  metadata(c, name, component, namespace=c.namespace):: {
    name: name,
    namespace: namespace,
    labels: $.labels(c, name, component),
  },

  // An image Tilt builds: its bare name for Tilt to replace, or <registry>/<name>:<tag>.
  builtImage(c, name)::
    if c.registry == '' then name else '%s/%s:%s' % [c.registry, name, c.imageTag],

  // Non-root uid/gid 1000 (`node` in our images, `git` in Gitea's rootless image).
  podSecurityContext:: {
    runAsNonRoot: true,
    runAsUser: 1000,
    runAsGroup: 1000,
    fsGroup: 1000,
    seccompProfile: { type: 'RuntimeDefault' },
  },

  // Kubernetes' `restricted` profile for a container; writable paths come from volumes.
  containerSecurityContext(readOnlyRootFilesystem=true):: {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: readOnlyRootFilesystem,
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  },

  // An env var from the one Secret (raibid-secrets) that Tanka never renders.
  secretEnv(name, key, optional=false):: {
    name: name,
    valueFrom: { secretKeyRef: { name: 'raibid-secrets', key: key } + (if optional then { optional: true } else {}) },
  },

  // Env vars from a map of plain values.
  env(values):: [{ name: k, value: values[k] } for k in std.objectFields(values)],

  pvc(c, name, component, size, accessMode='ReadWriteOnce'):: {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: $.metadata(c, name, component),
    spec: {
      accessModes: [accessMode],
      storageClassName: c.storageClass,
      resources: { requests: { storage: size } },
    },
  },

  // A StatefulSet's volumeClaimTemplate (its labels are those of the StatefulSet).
  claimTemplate(c, name, component, size):: $.pvc(c, name, component, size) {
    metadata: { name: name, labels: $.labels(c, name, component) },
  },

  service(c, name, component, selectorName, ports):: {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: $.metadata(c, name, component),
    spec: {
      selector: $.selector(c, selectorName),
      ports: [{ name: p.name, port: p.port, targetPort: p.name, protocol: 'TCP' } for p in ports],
    },
  },

  // A k3s HelmChart: the Helm controller installs `chart` from `repo` into its target namespace.
  helmChart(c, name, chart, values):: {
    apiVersion: 'helm.cattle.io/v1',
    kind: 'HelmChart',
    metadata: $.metadata(c, name, 'operator', namespace='kube-system'),
    spec: {
      repo: chart.repo,
      chart: chart.chart,
      version: chart.version,
      targetNamespace: chart.namespace,
      createNamespace: true,
      valuesContent: std.manifestYamlDoc(values, quote_keys=false),
    },
  },
}
