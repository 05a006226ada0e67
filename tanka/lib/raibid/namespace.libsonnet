// The namespace everything of raibid-ci lives in (the operators get their own, via HelmChart).
local u = import 'util.libsonnet';

function(c) {
  namespace: {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: c.namespace, labels: u.labels(c, c.namespace, 'namespace') },
  },
}
