#!/usr/bin/env bash
# Preflight for raibid-ci on k3s: run it when something is wrong. Each check prints one line;
# a failed one says how to fix it. Exits 1 when any check failed. Changes nothing.
# Run it as yourself (it checks what Tilt will use); with sudo it can also test a pull on the node.
#
# Usage: infra/k3s/check.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

case "${1:-}" in
  "") ;;
  -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
  *) die "unknown argument '$1': see infra/k3s/check.sh --help" ;;
esac

MIN_FREE_GIB=10
passed=0 failed=0 skipped=0
pass() { printf 'ok    %s\n' "$*"; passed=$((passed + 1)); }
fail() { printf 'FAIL  %s\n' "$*"; failed=$((failed + 1)); }
skip() { printf 'skip  %s\n' "$*"; skipped=$((skipped + 1)); }

read_sysctl() { sysctl -n "$1" 2>/dev/null || cat "/proc/sys/${1//.//}" 2>/dev/null || echo 0; }

# --- Docker and the registry (Tilt builds with Docker and pushes to localhost:5000) -------------

if ! have docker; then
  fail "Docker is missing (Tilt builds the images with it): sudo apt-get install docker.io"
elif ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    fail "the Docker daemon does not answer: sudo systemctl enable --now docker"
  else
    fail "Docker does not answer for $(id -un): sudo systemctl enable --now docker; if it runs, sudo usermod -aG docker $(id -un) and log in again"
  fi
else
  pass "Docker answers"
fi

registry_catalog=""
if ! have curl; then
  fail "curl is missing (needed to ask the registry): sudo apt-get install curl"
elif registry_catalog=$(curl -sf --max-time 5 "http://$REGISTRY_HOST/v2/_catalog"); then
  pass "the registry answers on http://$REGISTRY_HOST/v2/"
else
  fail "the registry does not answer on http://$REGISTRY_HOST/v2/: docker start $REGISTRY_CONTAINER (or sudo infra/k3s/install.sh); log: docker logs $REGISTRY_CONTAINER"
fi

# k3s must be told to pull localhost:5000 over http, and must have loaded that (it writes
# containerd's hosts.toml at start).
hosts_toml=$ROOT/var/lib/rancher/k3s/agent/etc/containerd/certs.d/$REGISTRY_HOST/hosts.toml
if [ ! -r "$K3S_REGISTRIES" ]; then
  fail "$K3S_REGISTRIES is missing or unreadable, so k3s cannot pull from $REGISTRY_HOST: sudo infra/k3s/install.sh"
elif ! grep -q "\"http://$REGISTRY_HOST\"" "$K3S_REGISTRIES"; then
  fail "$K3S_REGISTRIES has no http://$REGISTRY_HOST endpoint (k3s would use https and fail): sudo infra/k3s/install.sh"
elif [ ! -r "$hosts_toml" ]; then
  if [ -e "$(dirname "$hosts_toml")" ] || [ "$(id -u)" = 0 ]; then
    fail "k3s has not loaded $K3S_REGISTRIES (no $hosts_toml): sudo systemctl restart k3s"
  else
    skip "k3s's containerd config for $REGISTRY_HOST: run with sudo to read it"
  fi
elif ! grep -q "http://$REGISTRY_HOST" "$hosts_toml"; then
  fail "k3s's containerd uses https for $REGISTRY_HOST ($hosts_toml; see k3s-io/k3s#13379): sudo systemctl restart k3s, or a newer k3s"
else
  pass "k3s pulls $REGISTRY_HOST over http ($hosts_toml)"
fi

# A real pull by the node's containerd, of an image already in the registry (this never pushes).
repository=$(printf '%s' "$registry_catalog" | sed -n 's/.*"repositories":\["\([^"]*\)".*/\1/p')
if [ -z "$registry_catalog" ]; then
  skip "a pull by the node: the registry does not answer"
elif [ -z "$repository" ]; then
  skip "a pull by the node: the registry is empty (tilt up pushes raibid-server and raibid-agent)"
elif [ "$(id -u)" != 0 ] || ! have k3s; then
  skip "a pull by the node of $REGISTRY_HOST/$repository: run with sudo on the k3s machine"
else
  tag=$(curl -sf --max-time 5 "http://$REGISTRY_HOST/v2/$repository/tags/list" | sed -n 's/.*"tags":\["\([^"]*\)".*/\1/p')
  if [ -z "$tag" ]; then
    skip "a pull by the node: $REGISTRY_HOST/$repository has no tag"
  elif k3s crictl pull "$REGISTRY_HOST/$repository:$tag" >/dev/null 2>&1; then
    pass "the node pulls $REGISTRY_HOST/$repository:$tag"
  else
    fail "the node cannot pull $REGISTRY_HOST/$repository:$tag: sudo k3s crictl pull $REGISTRY_HOST/$repository:$tag shows why"
  fi
fi

# --- The cluster ---------------------------------------------------------------------------------

cluster=0
if ! have_kubectl; then
  fail "kubectl is missing: sudo infra/k3s/install.sh (k3s brings kubectl)"
elif ! error=$(kc get --raw=/readyz 2>&1 >/dev/null); then
  case "$error" in
    *Unauthorized* | *certificate*)
      fail "kubectl is refused by the cluster (stale ~/.kube/config from an older k3s): sudo infra/k3s/install.sh copies the current one" ;;
    *)
      fail "kubectl does not reach the cluster: sudo systemctl start k3s; why: sudo journalctl -u k3s -e" ;;
  esac
else
  pass "kubectl reaches the cluster (context $(kc config current-context 2>/dev/null || echo '?'))"
  cluster=1
fi

if [ "$cluster" = 0 ]; then
  skip "node, KEDA, GPU and Secret checks: they need the cluster"
else
  not_ready=$(kc get nodes -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    awk '$2 != "True" { print $1 }')
  if [ -z "$(kc get nodes -o name)" ]; then
    fail "the cluster has no node: sudo systemctl restart k3s; why: sudo journalctl -u k3s -e"
  elif [ -n "$not_ready" ]; then
    fail "node(s) not Ready: $(echo "$not_ready" | tr '\n' ' ')— kubectl describe node; sudo journalctl -u k3s -e"
  else
    pass "the node is Ready"
  fi

  established=$(kc get crd scaledjobs.keda.sh --ignore-not-found -o jsonpath='{.status.conditions[?(@.type=="Established")].status}')
  if [ "$established" = True ]; then
    pass "KEDA's CRD scaledjobs.keda.sh is Established"
  elif [ -z "$(kc -n kube-system get helmchart keda --ignore-not-found -o name 2>/dev/null)" ]; then
    skip "KEDA is not deployed yet (tilt up deploys the HelmChart keda)"
  else
    fail "KEDA's CRD scaledjobs.keda.sh is not Established though HelmChart keda exists: kubectl -n kube-system logs job/helm-install-keda"
  fi

  # GPU (docs/gpu.md): on when tilt up -- --gpu deployed the device plugin.
  if [ -z "$(kc -n kube-system get helmchart nvidia-device-plugin --ignore-not-found -o name 2>/dev/null)" ]; then
    skip "GPU: off (no HelmChart nvidia-device-plugin; tilt up -- --gpu turns it on, docs/gpu.md)"
  else
    gpus=$(kc get nodes -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.allocatable.nvidia\.com/gpu}{"\n"}{end}' |
      awk '$2 > 0 { printf "%s%s (%s)", sep, $1, $2; sep = ", " }')
    if [ -n "$gpus" ]; then
      pass "nvidia.com/gpu is advertised: $gpus (each share runs one GPU job)"
    else
      fail "no node advertises nvidia.com/gpu though HelmChart nvidia-device-plugin exists: sudo infra/k3s/install.sh --gpu says what the node lacks; kubectl -n nvidia-device-plugin logs daemonset/nvidia-device-plugin shows why"
    fi
  fi

  # shellcheck disable=SC2016 # a Go template, not shell
  keys=$(kc -n "$NAMESPACE" get secret "$SECRET" --ignore-not-found \
    -o go-template='{{range $key, $value := .data}}{{$key}}={{len $value}}{{"\n"}}{{end}}')
  if [ -z "$keys" ]; then
    fail "the Secret $NAMESPACE/$SECRET is missing: infra/k3s/secrets.sh"
  else
    missing=""
    for key in api-token webhook-secret gitea-admin-password gitea-token; do
      printf '%s\n' "$keys" | grep -q "^$key=" || missing+=" $key"
    done
    if [ -n "$missing" ]; then
      fail "the Secret $NAMESPACE/$SECRET lacks$missing: infra/k3s/secrets.sh adds them"
    elif printf '%s\n' "$keys" | grep -qx 'gitea-token=0'; then
      pass "the Secret $NAMESPACE/$SECRET has its keys (gitea-token still empty: raibid seed-gitea fills it)"
    else
      pass "the Secret $NAMESPACE/$SECRET has its keys"
    fi
  fi
fi

# --- The machine -----------------------------------------------------------------------------------

disk_dir=$ROOT/var/lib/rancher
[ -d "$disk_dir" ] || disk_dir=$ROOT/var/lib
[ -d "$disk_dir" ] || disk_dir=/
free_kib=$(df -Pk "$disk_dir" | awk 'NR == 2 { print $4 }')
free_gib=$((free_kib / 1024 / 1024))
if [ "$free_gib" -lt "$MIN_FREE_GIB" ]; then
  fail "only $free_gib GiB free for $disk_dir (images, volumes, job caches; want $MIN_FREE_GIB): docker system prune; sudo k3s crictl rmi --prune"
else
  pass "$free_gib GiB free for $disk_dir"
fi

watches=$(read_sysctl fs.inotify.max_user_watches)
instances=$(read_sysctl fs.inotify.max_user_instances)
if [ "$watches" -lt "$INOTIFY_MIN_WATCHES" ] || [ "$instances" -lt "$INOTIFY_MIN_INSTANCES" ]; then
  fail "inotify limits are low for Tilt (max_user_watches=$watches, max_user_instances=$instances; want $INOTIFY_MIN_WATCHES and $INOTIFY_MIN_INSTANCES): sudo infra/k3s/install.sh --raise-inotify"
else
  pass "inotify limits ($watches watches, $instances instances)"
fi

say "check: $passed ok, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
