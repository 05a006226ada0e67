// The GPU on the node (docs/gpu.md): the `nvidia` RuntimeClass GPU agent pods run with, and the
// NVIDIA device plugin, which advertises the GPU as `nvidia.com/gpu` — time-sliced into
// gpu.sharedJobs shares, so that many GPU jobs run at once. Nothing when the GPU is off.
// (ScaledJob raibid-agent-gpu is in agent.libsonnet, next to the CPU pool's.)
local u = import 'util.libsonnet';

function(c) if !c.gpu.enabled then {} else {
  local g = c.gpu,

  runtimeClass: {
    apiVersion: 'node.k8s.io/v1',
    kind: 'RuntimeClass',
    metadata: { name: g.runtimeClass, labels: u.labels(c, g.runtimeClass, 'gpu') },
    // The containerd runtime k3s configures when it finds nvidia-container-runtime.
    handler: 'nvidia',
  },

  devicePlugin: u.helmChart(c, 'nvidia-device-plugin', g.devicePlugin, {
    // The plugin needs the driver's libraries (NVML) in its own container.
    runtimeClassName: g.runtimeClass,
    // The chart's default affinity wants node labels from GPU feature discovery, which is not
    // installed; null removes it (Helm merges a map, but deletes a key set to null).
    affinity: null,
    nodeSelector: g.nodeSelector,
    gfd: { enabled: false },
    nfd: { enabled: false },
    config: {
      default: 'time-slicing',
      map: {
        'time-slicing': std.manifestYamlDoc({
          version: 'v1',
          flags: { migStrategy: 'none' },
          sharing: {
            timeSlicing: {
              // Keep the name nvidia.com/gpu (not .shared): agents ask for nvidia.com/gpu: 1.
              renameByDefault: false,
              failRequestsGreaterThanOne: true,
              resources: [{ name: 'nvidia.com/gpu', replicas: g.sharedJobs }],
            },
          },
        }, quote_keys=false),
      },
    },
  }),
}
