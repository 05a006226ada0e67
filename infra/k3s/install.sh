#!/usr/bin/env bash
# Sets up this machine (a DGX Spark, or any arm64/amd64 Linux with systemd) for raibid-ci:
#   - a local image registry on localhost:5000 (Docker container raibid-registry) that Tilt pushes to;
#   - k3s, pinned, without traefik, with a world-readable kubeconfig, pulling localhost:5000 over http;
#   - the KEP-1755 ConfigMap kube-public/local-registry-hosting, so Tilt finds the registry by itself;
#   - a copy of k3s's kubeconfig in your ~/.kube/config;
#   - the Secret raibid-system/raibid-secrets (infra/k3s/secrets.sh);
#   - for GPU jobs (docs/gpu.md): it finds the NVIDIA driver and container toolkit, says what is
#     missing, and restarts k3s when k3s started before the toolkit (k3s adds its `nvidia` runtime
#     only at start).
# Idempotent: run it again at any time; what is already right is left alone, and it says so.
#
# Usage: sudo infra/k3s/install.sh [--dry-run] [--print-config] [--raise-inotify] [--gpu]
#   --dry-run        check the prerequisites and print what would be done; change nothing
#   --print-config   print the files it writes (config.yaml, registries.yaml, the ConfigMap) and exit
#   --raise-inotify  also raise the inotify limits Tilt needs (writes /etc/sysctl.d/90-raibid-inotify.conf)
#   --gpu            GPU jobs are wanted: a missing NVIDIA driver or container toolkit is an error
#                    (without it, a GPU with no toolkit is only a warning)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

dry_run=0
print_config=0
raise_inotify=0
want_gpu=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=1 ;;
    --print-config) print_config=1 ;;
    --raise-inotify) raise_inotify=1 ;;
    --gpu) want_gpu=1 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument '$arg': see infra/k3s/install.sh --help" ;;
  esac
done

# --- What it writes ---------------------------------------------------------------------------

k3s_config() {
  cat <<'EOF'
# Written by raibid-ci infra/k3s/install.sh; k3s reads it at start (`systemctl restart k3s` after edits).
# The kubeconfig is readable by every local user, so tools run without sudo.
write-kubeconfig-mode: "0644"
# raibid-ci needs no ingress controller: Tilt port-forwards the server and Gitea.
disable:
  - traefik
EOF
}

registries_config() {
  cat <<EOF
# Written by raibid-ci infra/k3s/install.sh; k3s reads it at start (\`systemctl restart k3s\` after edits).
# Pull images named $REGISTRY_HOST/... from the local registry over plain http (without the
# http:// scheme containerd would try https and fail with "server gave HTTP response to HTTPS client").
mirrors:
  "$REGISTRY_HOST":
    endpoint:
      - "http://$REGISTRY_HOST"
EOF
}

registry_hosting_manifest() {
  cat <<EOF
# Written by raibid-ci infra/k3s/install.sh. k3s applies every file in this directory at start and
# when it changes. KEP-1755: tells Tilt (and other dev tools) where to push images for this cluster.
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
  labels:
    app.kubernetes.io/managed-by: raibid-ci-install
data:
  localRegistryHosting.v1: |
    host: "$REGISTRY_HOST"
    hostFromContainerRuntime: "$REGISTRY_HOST"
    help: "https://github.com/kubernetes/enhancements/tree/master/keps/sig-cluster-lifecycle/generic/1755-communicating-a-local-registry"
EOF
}

inotify_sysctl() {
  cat <<EOF
# Written by raibid-ci infra/k3s/install.sh --raise-inotify: Tilt watches the repository tree.
fs.inotify.max_user_watches = $INOTIFY_MIN_WATCHES
fs.inotify.max_user_instances = $INOTIFY_MIN_INSTANCES
EOF
}

if [ "$print_config" = 1 ]; then
  printf '# %s\n' "${K3S_CONFIG#"$ROOT"}"
  k3s_config
  printf -- '---\n# %s\n' "${K3S_REGISTRIES#"$ROOT"}"
  registries_config
  printf -- '---\n# %s\n' "${REGISTRY_HOSTING_MANIFEST#"$ROOT"}"
  registry_hosting_manifest
  exit 0
fi

# --- Prerequisites: every missing one is reported, each on one line with its fix ---------------

problems=0
problem() { printf 'missing: %s\n' "$*" >&2; problems=$((problems + 1)); }

read_sysctl() { sysctl -n "$1" 2>/dev/null || cat "/proc/sys/${1//.//}" 2>/dev/null || echo 0; }

# The user the kubeconfig copy is for: the one who ran sudo, else whoever runs this.
target_user=${SUDO_USER:-}
[ "$target_user" != root ] || target_user=
if [ -n "$target_user" ]; then
  target_home=$(getent passwd "$target_user" | cut -d: -f6)
else
  target_home=$HOME
fi

preflight() {
  local machine
  machine=$(uname -m)
  case "$machine" in
    x86_64 | amd64 | aarch64 | arm64) ;;
    *) die "k3s for raibid-ci is set up for arm64 (DGX Spark) and amd64 only; this machine is $machine" ;;
  esac

  if [ "$(id -u)" != 0 ]; then
    if [ "$dry_run" = 1 ]; then
      warn "a real run needs root: sudo $0"
    else
      problem "root: it installs k3s and writes /etc/rancher/k3s; run: sudo $0 $*"
    fi
  fi
  have curl || problem "curl (downloads the k3s installer): sudo apt-get install curl"
  if ! have docker; then
    problem "Docker (builds the images, runs the local registry): sudo apt-get install docker.io, or Docker's docker-ce"
  elif ! docker info >/dev/null 2>&1; then
    problem "a running Docker daemon (docker info fails): sudo systemctl enable --now docker"
  fi
  have systemctl || problem "systemd (k3s's installer runs k3s as a systemd service): use a systemd-based OS"
  if ! have ss; then
    problem "ss (finds ports in use): sudo apt-get install iproute2"
  else
    if port_in_use "$K3S_API_PORT" && ! k3s_running; then
      problem "a free port $K3S_API_PORT (the Kubernetes API) but another program listens there: find it with sudo ss -ltnp 'sport = :$K3S_API_PORT' and stop it"
    fi
    if port_in_use "$REGISTRY_PORT" && ! registry_running; then
      problem "a free port $REGISTRY_PORT (the image registry) but another program listens there: find it with sudo ss -ltnp 'sport = :$REGISTRY_PORT' (or docker ps) and stop it"
    fi
  fi

  if [ -n "$target_user" ] && have getent && ! id -nG "$target_user" 2>/dev/null | tr ' ' '\n' | grep -qx docker; then
    warn "$target_user is not in the docker group, so Tilt cannot build or push as $target_user: sudo usermod -aG docker $target_user, then log in again"
  fi
  local watches instances
  watches=$(read_sysctl fs.inotify.max_user_watches)
  instances=$(read_sysctl fs.inotify.max_user_instances)
  if [ "$raise_inotify" = 0 ] && { [ "$watches" -lt "$INOTIFY_MIN_WATCHES" ] || [ "$instances" -lt "$INOTIFY_MIN_INSTANCES" ]; }; then
    warn "inotify limits are low for Tilt (max_user_watches=$watches, max_user_instances=$instances; want $INOTIFY_MIN_WATCHES and $INOTIFY_MIN_INSTANCES): run again with --raise-inotify"
  fi

  gpu_preflight

  [ "$problems" = 0 ] || die "$problems prerequisite(s) missing; fix them and run infra/k3s/install.sh again (nothing was changed)"
}

# GPU jobs need the driver (nvidia-smi) and the NVIDIA container toolkit, whose
# nvidia-container-runtime k3s finds at start and registers as the containerd runtime `nvidia`.
gpu_toolkit=0
gpu_preflight() {
  if ! have nvidia-smi; then
    if [ "$want_gpu" = 1 ]; then
      problem "an NVIDIA driver (nvidia-smi not found) for --gpu: install the GPU driver (DGX OS has it), or run without --gpu"
    else
      say "ok: no NVIDIA GPU here (nvidia-smi not found): GPU jobs stay off"
    fi
    return
  fi
  local gpu
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1 || true)
  if ! have nvidia-container-runtime; then
    local what="the NVIDIA container toolkit (nvidia-container-runtime not found), needed for GPU jobs on the ${gpu:-GPU}: sudo apt-get install nvidia-container-toolkit (from NVIDIA's apt repository; docs/gpu.md), then run install.sh again"
    if [ "$want_gpu" = 1 ]; then problem "$what"; else warn "missing $what"; fi
    return
  fi
  gpu_toolkit=1
  have nvidia-ctk || warn "nvidia-ctk (the toolkit's CLI) not found though nvidia-container-runtime is: reinstall nvidia-container-toolkit"
  say "ok: ${gpu:-an NVIDIA GPU} with the NVIDIA container toolkit ($(command -v nvidia-container-runtime)); k3s adds the nvidia runtime when it starts"
}

# --- Steps: each does nothing when the machine is already right --------------------------------

changes=()
changed() { changes+=("$1"); say "changed: $1"; }
would() { changes+=("$1"); say "would: $1"; }
ok() { say "ok: $1"; }

# write_file <path> <generator>: writes the generator's output unless the file already holds it;
# a different file is kept as <path>.bak-raibid-<time>. Returns 0 when it wrote (or would write).
write_file() {
  local file=$1 generator=$2 wanted
  wanted=$("$generator")
  if [ -f "$file" ] && [ "$(cat "$file")" = "$wanted" ]; then
    ok "$file is current"
    return 1
  fi
  local backup=""
  [ ! -f "$file" ] || backup="$file.bak-raibid-$(date +%Y%m%d%H%M%S)"
  if [ "$dry_run" = 1 ]; then
    would "write $file${backup:+ (keeping the old one as $backup)}"
    return 0
  fi
  mkdir -p "$(dirname "$file")"
  [ -z "$backup" ] || cp -p "$file" "$backup"
  printf '%s\n' "$wanted" >"$file.tmp-raibid"
  chmod 0644 "$file.tmp-raibid"
  mv "$file.tmp-raibid" "$file"
  changed "wrote $file${backup:+ (the old one is $backup)}"
}

raise_inotify_limits() {
  [ "$raise_inotify" = 1 ] || return 0
  if write_file "$SYSCTL_FILE" inotify_sysctl && [ "$dry_run" = 0 ]; then
    sysctl -q -p "$SYSCTL_FILE"
  fi
}

start_registry() {
  if registry_running; then
    local image
    image=$(docker inspect -f '{{.Config.Image}}' "$REGISTRY_CONTAINER")
    [ "$image" = "$REGISTRY_IMAGE" ] ||
      warn "$REGISTRY_CONTAINER runs $image, this script pins $REGISTRY_IMAGE; to switch: docker rm -f $REGISTRY_CONTAINER and run install.sh again (images stay in the volume $REGISTRY_VOLUME)"
    ok "registry $REGISTRY_CONTAINER is running on $REGISTRY_HOST"
    return
  fi
  if docker inspect "$REGISTRY_CONTAINER" >/dev/null 2>&1; then
    if [ "$dry_run" = 1 ]; then would "start the stopped container $REGISTRY_CONTAINER"; return; fi
    docker start "$REGISTRY_CONTAINER" >/dev/null
    changed "started the stopped container $REGISTRY_CONTAINER"
  else
    if [ "$dry_run" = 1 ]; then
      would "run $REGISTRY_IMAGE as container $REGISTRY_CONTAINER on 127.0.0.1:$REGISTRY_PORT (data in volume $REGISTRY_VOLUME)"
      return
    fi
    docker run -d --name "$REGISTRY_CONTAINER" --restart=always \
      -p "127.0.0.1:$REGISTRY_PORT:5000" -v "$REGISTRY_VOLUME:/var/lib/registry" "$REGISTRY_IMAGE" >/dev/null
    changed "started $REGISTRY_IMAGE as container $REGISTRY_CONTAINER on 127.0.0.1:$REGISTRY_PORT"
  fi
  local tries=0
  until curl -sf "http://$REGISTRY_HOST/v2/" >/dev/null; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || die "the registry does not answer on http://$REGISTRY_HOST/v2/: see docker logs $REGISTRY_CONTAINER"
    sleep 1
  done
}

k3s_files_changed=0
write_k3s_files() {
  if write_file "$K3S_CONFIG" k3s_config; then k3s_files_changed=1; fi
  if write_file "$K3S_REGISTRIES" registries_config; then k3s_files_changed=1; fi
  # k3s applies this itself (at start, or within seconds when running): no restart needed.
  write_file "$REGISTRY_HOSTING_MANIFEST" registry_hosting_manifest || true
}

install_k3s() {
  local installed
  installed=$(installed_k3s_version)
  if [ "$installed" = "$K3S_VERSION" ]; then
    if k3s_running && [ "$k3s_files_changed" = 0 ]; then
      ok "k3s $K3S_VERSION is running"
    elif [ "$dry_run" = 1 ]; then
      would "restart k3s (its configuration changed or it is stopped)"
    else
      systemctl restart k3s
      changed "restarted k3s (its configuration changed or it was stopped)"
    fi
    return
  fi
  if [ -n "$installed" ] && [ "$(printf '%s\n%s\n' "$installed" "$K3S_VERSION" | sort -V | tail -n1)" = "$installed" ]; then
    warn "k3s $installed is newer than the pinned $K3S_VERSION; keeping it (raibid-ci is tested against 1.34)"
    if [ "$k3s_files_changed" = 1 ] || ! k3s_running; then
      if [ "$dry_run" = 1 ]; then would "restart k3s"; else systemctl restart k3s && changed "restarted k3s"; fi
    fi
    return
  fi
  local what="install k3s $K3S_VERSION"
  [ -z "$installed" ] || what="upgrade k3s $installed to $K3S_VERSION"
  if [ "$dry_run" = 1 ]; then would "$what with the official installer ($K3S_INSTALLER_URL)"; return; fi
  local installer
  installer=$(mktemp)
  curl -sfL "$K3S_INSTALLER_URL" -o "$installer" || die "cannot download $K3S_INSTALLER_URL: check this machine's internet access"
  # The installer reads $K3S_CONFIG through k3s itself; the version pin is all it needs.
  INSTALL_K3S_VERSION="$K3S_VERSION" sh "$installer"
  rm -f "$installer"
  changed "$what"
}

wait_for_node() {
  if [ "$dry_run" = 1 ]; then say "would: wait for the node to be Ready"; return; fi
  local deadline=$((SECONDS + 180))
  until [ -n "$(KUBECONFIG=$K3S_KUBECONFIG kc get nodes -o name 2>/dev/null)" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "k3s registered no node within 180 s: see sudo journalctl -u k3s -e"
    sleep 2
  done
  KUBECONFIG=$K3S_KUBECONFIG kc wait --for=condition=Ready node --all --timeout=180s >/dev/null ||
    die "the k3s node is not Ready after 180 s: see kubectl describe node and sudo journalctl -u k3s -e"
  ok "the k3s node is Ready"
}

# k3s rewrites /etc/rancher/k3s/k3s.yaml on every restart, so edits there (a renamed context) are
# lost. Copy it into the user's ~/.kube/config instead, merged with what is there: k3s's entries
# (all named 'default') replace older ones of that name, others stay. kubectl does the merge.
copy_kubeconfig() {
  local target="$target_home/.kube/config"
  if [ "$dry_run" = 1 ] && [ ! -f "$K3S_KUBECONFIG" ]; then
    would "merge $K3S_KUBECONFIG into $target (context 'default'; the old file kept as a backup)"
    return
  fi
  local sources=$K3S_KUBECONFIG previous=""
  if [ -f "$target" ]; then
    sources="$K3S_KUBECONFIG:$target"
    previous=$(KUBECONFIG=$target kc config current-context 2>/dev/null || true)
  fi
  local merged
  merged=$(KUBECONFIG=$sources kc config view --flatten) || die "kubectl cannot merge $K3S_KUBECONFIG with $target: fix or move $target, then run again"
  if [ -f "$target" ] && [ "$(cat "$target")" = "$merged" ]; then
    ok "$target has k3s's context 'default'"
    return
  fi
  local backup=""
  [ ! -f "$target" ] || backup="$target.bak-raibid-$(date +%Y%m%d%H%M%S)"
  if [ "$dry_run" = 1 ]; then
    would "merge $K3S_KUBECONFIG into $target${backup:+ (keeping the old one as $backup)}"
    return
  fi
  mkdir -p "$target_home/.kube"
  [ -z "$backup" ] || cp -p "$target" "$backup"
  (umask 077 && printf '%s\n' "$merged" >"$target")
  if [ -n "$target_user" ]; then chown -R "$target_user:" "$target_home/.kube"; fi
  changed "merged k3s's kubeconfig into $target${backup:+ (the old one is $backup)}"
  if [ -n "$previous" ] && [ "$previous" != default ]; then
    say "note: kubectl's current context is now 'default' (k3s); 'kubectl config use-context $previous' goes back"
  fi
}

# k3s writes the nvidia runtime into containerd's config only when it finds the toolkit at start.
gpu_runtime() {
  [ "$gpu_toolkit" = 1 ] || return 0
  local config=$ROOT/var/lib/rancher/k3s/agent/etc/containerd/config.toml
  if grep -Eq "runtimes[.]['\"]nvidia['\"]" "$config" 2>/dev/null; then
    ok "k3s's containerd has the nvidia runtime (RuntimeClass nvidia)"
  elif [ "$dry_run" = 1 ]; then
    would "restart k3s so it finds the NVIDIA container runtime"
  else
    systemctl restart k3s
    changed "restarted k3s so it finds the NVIDIA container runtime (k3s looks for it only at start)"
  fi
}

create_secrets() {
  if [ "$dry_run" = 1 ]; then say "would: run infra/k3s/secrets.sh (creates $NAMESPACE/$SECRET once)"; return; fi
  KUBECONFIG=$K3S_KUBECONFIG "$here/secrets.sh"
}

preflight "$@"
raise_inotify_limits
start_registry
write_k3s_files
install_k3s
wait_for_node
gpu_runtime
copy_kubeconfig
create_secrets

if [ "${#changes[@]}" = 0 ]; then
  say "nothing to change: k3s $K3S_VERSION, the registry on $REGISTRY_HOST and the kubeconfig were already set up"
elif [ "$dry_run" = 1 ]; then
  say "dry run: ${#changes[@]} change(s) would be made; nothing was changed"
else
  say "done: ${#changes[@]} change(s). Next: infra/k3s/check.sh, then tilt up"
fi
