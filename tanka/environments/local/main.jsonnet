// One k3s node (a DGX Spark) driven by Tilt: images keep the bare names Tilt replaces.
// Top-level arguments the Tiltfile passes (tk show ... --tla-code liveUpdate=true):
//   liveUpdate=true      the server's root filesystem becomes writable, so Tilt can sync the
//                        rebuilt bundle into the running container;
//   agentMaxReplicas=N   at most N agent Jobs at once (`tilt up -- --agent-max=N`);
//   agentWarmReplicas=N  N agents kept waiting for a job: the ScaledJob's minReplicaCount
//                        (`tilt up -- --agent-warm=N`; docs/scaling.md, "Warm agents");
//   gpu=true             the GPU pool: device plugin, RuntimeClass nvidia, ScaledJob
//                        raibid-agent-gpu (`tilt up -- --gpu`; docs/gpu.md);
//   gpuSharedJobs=N      N GPU jobs at once, sharing the GPU (`tilt up -- --gpu --gpu-jobs=N`).
local raibid = import 'raibid/raibid.libsonnet';

function(liveUpdate=false, agentMaxReplicas=null, agentWarmReplicas=null, gpu=false, gpuSharedJobs=null) raibid {
  _config+:: {
    server+: { readOnlyRootFilesystem: !liveUpdate },
    agent+: (if agentMaxReplicas == null then {} else { maxReplicaCount: agentMaxReplicas })
            + (if agentWarmReplicas == null then {} else { warmReplicaCount: agentWarmReplicas }),
    gpu+: { enabled: gpu } + (if gpuSharedJobs == null then {} else { sharedJobs: gpuSharedJobs }),
  },
}
