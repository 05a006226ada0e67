// A multi-node k3s cluster, deployed without Tilt: images from a registry every node can pull
// from, volumes any node can mount, and agents spread over the nodes. Only the config differs.
local raibid = import 'raibid/raibid.libsonnet';

raibid {
  _config+:: {
    registry: 'registry.raibid.internal:5000',
    imageTag: '0.1.0',
    storageClass: 'longhorn',
    storage+: { agentCacheAccessMode: 'ReadWriteMany' },
    agent+: { spreadOverNodes: true },
  },
}
