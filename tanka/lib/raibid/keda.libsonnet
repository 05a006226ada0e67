// KEDA, installed by k3s's Helm controller: it turns the agents' queue lag into Jobs.
local u = import 'util.libsonnet';

function(c) {
  local resources = { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '512Mi' } },

  helmChart: u.helmChart(c, 'keda', c.keda, {
    watchNamespace: '',  // all namespaces
    resources: { operator: resources, metricServer: resources, webhooks: resources },
  }),
}
