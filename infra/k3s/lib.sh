# Shared by the infra/k3s scripts: the names and pins of the k3s setup, and small helpers.
# Sourced, not run.
# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts that source this

# k3s release: Kubernetes 1.34, the same minor as the kube-apiserver the manifests are tested
# against (tools/kube-apiserver/go.mod). 1.34 is also the last minor whose kubelet accepts cgroup v1
# without an extra flag (KEP-5573).
K3S_VERSION=v1.34.4+k3s1
K3S_INSTALLER_URL=https://get.k3s.io

# The local registry Tilt pushes to and k3s pulls from (a Docker container on the host, so it
# survives a k3s reinstall). Published on 127.0.0.1 only: nothing off this machine can push.
REGISTRY_IMAGE=registry:2.8.3
REGISTRY_CONTAINER=raibid-registry
REGISTRY_VOLUME=raibid-registry-data
REGISTRY_PORT=5000
REGISTRY_HOST=localhost:$REGISTRY_PORT
K3S_API_PORT=6443

NAMESPACE=raibid-system
SECRET=raibid-secrets

# RAIBID_INSTALL_ROOT puts every file these scripts write under another directory (like DESTDIR);
# the tests use it. Empty on a real machine.
ROOT=${RAIBID_INSTALL_ROOT:-}
K3S_ETC=$ROOT/etc/rancher/k3s
K3S_CONFIG=$K3S_ETC/config.yaml
K3S_REGISTRIES=$K3S_ETC/registries.yaml
K3S_KUBECONFIG=$K3S_ETC/k3s.yaml
K3S_MANIFESTS=$ROOT/var/lib/rancher/k3s/server/manifests
REGISTRY_HOSTING_MANIFEST=$K3S_MANIFESTS/raibid-local-registry-hosting.yaml

# Tilt (and every tool that watches a pnpm tree) needs more inotify watches than distributions give.
INOTIFY_MIN_WATCHES=524288
INOTIFY_MIN_INSTANCES=512
SYSCTL_FILE=$ROOT/etc/sysctl.d/90-raibid-inotify.conf

say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# kubectl, or the one inside the k3s binary when no kubectl is on PATH.
kc() {
  if have kubectl; then kubectl "$@"; else k3s kubectl "$@"; fi
}
have_kubectl() { have kubectl || have k3s; }

# Is TCP port $1 listening on this machine? (ss is in iproute2, present wherever k3s runs.)
port_in_use() {
  [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

registry_running() {
  [ "$(docker inspect -f '{{.State.Running}}' "$REGISTRY_CONTAINER" 2>/dev/null)" = true ]
}

k3s_running() {
  have systemctl && systemctl is-active --quiet k3s 2>/dev/null
}

# The version k3s reports ("k3s version v1.34.4+k3s1 (abcdef12)"), or empty when not installed.
installed_k3s_version() {
  if have k3s; then k3s --version 2>/dev/null | awk 'NR == 1 { print $3 }' || true; fi
}

# kubectl reads ~/.kube/config; before install.sh copied it there, fall back to k3s's own file.
if [ -z "${KUBECONFIG:-}" ] && [ ! -f "$HOME/.kube/config" ] && [ -r "$K3S_KUBECONFIG" ]; then
  export KUBECONFIG=$K3S_KUBECONFIG
fi
