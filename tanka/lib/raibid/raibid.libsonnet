// raibid-ci on k3s: every component as a function of one config object. An environment is
// `raibid { _config+:: { ... } }`; the fields below read the final, overridden config.
{
  _config:: import 'config.libsonnet',

  namespace: (import 'namespace.libsonnet')($._config),
  redis: (import 'redis.libsonnet')($._config),
  gitea: (import 'gitea.libsonnet')($._config),
  keda: (import 'keda.libsonnet')($._config),
  flux: (import 'flux.libsonnet')($._config),
  server: (import 'server.libsonnet')($._config),
  agent: (import 'agent.libsonnet')($._config),
  gpu: (import 'gpu.libsonnet')($._config),
}
