// Gitea (rootless image, SQLite): the git server whose webhooks trigger raibid-ci jobs.
// Its admin user is created by the pod itself from the Secret raibid-secrets (see `start`).
local u = import 'util.libsonnet';

function(c) {
  local name = 'gitea',
  local component = 'git',
  local port = c.gitea.httpPort,
  local dataDir = '/var/lib/gitea',
  local adminMarker = '/tmp/gitea/raibid-admin-ready',

  // The image's entrypoint writes app.ini from the GITEA__* env and then runs this: Gitea in the
  // background (SIGTERM is passed on to it); once /api/healthz answers (migrations done), the
  // admin user is created, where "user already exists" (any later start) counts as done; then
  // the marker the readiness probe needs is written. Failing to create the user stops the pod
  // with the CLI's message, so the problem shows in `kubectl logs` instead of later in seeding.
  local start = |||
    set -u
    rm -f %(marker)s
    gitea -c "$GITEA_APP_INI" web &
    web=$!
    trap 'kill -TERM "$web" 2>/dev/null' TERM INT
    until curl -fsS -o /dev/null http://127.0.0.1:%(port)d/api/healthz; do
      if ! kill -0 "$web" 2>/dev/null; then wait "$web"; exit $?; fi
      sleep 2
    done
    if out=$(gitea -c "$GITEA_APP_INI" admin user create --admin --username %(user)s \
        --password "$GITEA_ADMIN_PASSWORD" --email %(email)s --must-change-password=false 2>&1); then
      echo "raibid: created the Gitea admin user %(user)s"
    elif [[ $out == *"user already exists"* ]]; then
      echo "raibid: the Gitea admin user %(user)s exists"
    else
      echo "raibid: cannot create the Gitea admin user %(user)s: $out" >&2
      kill -TERM "$web"; wait "$web"; exit 1
    fi
    touch %(marker)s
    status=0
    while kill -0 "$web" 2>/dev/null; do wait "$web" || status=$?; done
    exit "$status"
  ||| % { marker: adminMarker, port: port, user: c.gitea.adminUser, email: c.gitea.adminEmail },

  statefulSet: {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: u.metadata(c, name, component),
    spec: {
      serviceName: 'gitea-http',
      replicas: 1,
      selector: { matchLabels: u.selector(c, name) },
      template: {
        metadata: { labels: u.labels(c, name, component) },
        spec: {
          securityContext: u.podSecurityContext,
          containers: [{
            name: 'gitea',
            image: c.images.gitea,
            args: ['/bin/bash', '-c', start],
            env: u.env({
              // app.ini on the volume: Gitea writes its generated secrets into it on first start.
              GITEA_APP_INI: dataDir + '/custom/conf/app.ini',
              GITEA__database__DB_TYPE: 'sqlite3',
              GITEA__security__INSTALL_LOCK: 'true',
              GITEA__security__ALLOWED_HOST_LIST: c.gitea.allowedHostList,
              // Deprecated since the 2026 security release but still read; set both (either wins).
              GITEA__webhook__ALLOWED_HOST_LIST: c.gitea.allowedHostList,
              GITEA__service__DISABLE_REGISTRATION: 'true',
              GITEA__server__ROOT_URL: c.gitea.rootUrl,
              GITEA__server__HTTP_PORT: std.toString(port),
              GITEA__server__DISABLE_SSH: 'true',  // agents clone over HTTP
              GITEA__packages__ENABLED: 'true',  // the OCI/npm/... package registry
              GITEA__log__MODE: 'console',
            }) + [u.secretEnv('GITEA_ADMIN_PASSWORD', 'gitea-admin-password')],
            ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }],
            // Gitea's own advice: never restart it on a failing health check during a long
            // migration, so liveness only asks whether the HTTP port accepts connections.
            startupProbe: { tcpSocket: { port: 'http' }, periodSeconds: 5, failureThreshold: 60 },
            livenessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 20, failureThreshold: 3 },
            readinessProbe: {
              exec: { command: ['sh', '-c', 'test -e %s && curl -fsS -o /dev/null http://127.0.0.1:%d/api/healthz' % [adminMarker, port]] },
              periodSeconds: 5,
              timeoutSeconds: 4,
            },
            resources: c.gitea.resources,
            securityContext: u.containerSecurityContext(),
            volumeMounts: [
              { name: 'data', mountPath: dataDir },
              { name: 'tmp', mountPath: '/tmp' },
            ],
          }],
          volumes: [{ name: 'tmp', emptyDir: {} }],
        },
      },
      volumeClaimTemplates: [u.claimTemplate(c, 'data', component, c.storage.gitea)],
    },
  },

  service: u.service(c, 'gitea-http', component, name, [{ name: 'http', port: port }]),
}
