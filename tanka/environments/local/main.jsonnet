// One k3s node (a DGX Spark) driven by Tilt: images keep the bare names Tilt replaces.
// Top-level arguments the Tiltfile passes (tk show ... --tla-code liveUpdate=true):
//   liveUpdate=true      the server's root filesystem becomes writable, so Tilt can sync the
//                        rebuilt bundle into the running container;
//   agentMaxReplicas=N   at most N agent Jobs at once (`tilt up -- --agent-max=N`).
local raibid = import 'raibid/raibid.libsonnet';

function(liveUpdate=false, agentMaxReplicas=null) raibid {
  _config+:: {
    server+: { readOnlyRootFilesystem: !liveUpdate },
    agent+: if agentMaxReplicas == null then {} else { maxReplicaCount: agentMaxReplicas },
  },
}
