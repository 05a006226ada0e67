// One k3s node (a DGX Spark) driven by Tilt: images keep the bare names Tilt replaces.
// `liveUpdate=true` (tk show ... --tla-code liveUpdate=true, as the Tiltfile does) makes the
// server's root filesystem writable, so Tilt can sync the rebuilt bundle into the container.
local raibid = import 'raibid/raibid.libsonnet';

function(liveUpdate=false) raibid {
  _config+:: {
    server+: { readOnlyRootFilesystem: !liveUpdate },
  },
}
