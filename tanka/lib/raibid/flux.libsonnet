// Flux, installed by k3s's Helm controller, for GitOps of the machine's own manifests. A dev box
// does not rewrite image tags in git, so the image automation controllers are left out.
local u = import 'util.libsonnet';

function(c) {
  local resources = { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '512Mi' } },

  helmChart: u.helmChart(c, 'flux', c.flux, {
    helmController: { resources: resources },
    kustomizeController: { resources: resources },
    notificationController: { resources: resources },
    sourceController: { resources: resources },
    imageAutomationController: { create: false },
    imageReflectionController: { create: false },
  }),
}
