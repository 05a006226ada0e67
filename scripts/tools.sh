#!/usr/bin/env bash
# Installs what the cluster-side tests need and a user's CI machine lacks, pinned:
#   - Debian packages: Docker engine (classic builder), a local registry, containerd,
#     debootstrap (stand-in base images), etcd (for kube-apiserver), shellcheck;
#   - Go tools built from the Go module proxy into a cache, one binary per version:
#     tilt (tools/tilt/go.mod), tk (tools/tanka/go.mod), kube-apiserver and kubectl (tools/kube-apiserver/go.mod),
#     gitea (tools/gitea/go.mod; for the seed-gitea and trigger-test-job tests).
# Idempotent: what is already there is kept. Prints the tools' bin directory last.
# Usage: bash scripts/tools.sh [--no-apt]
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS_DIR=${RAIBID_TOOLS_DIR:-$HOME/.cache/raibid-ci/tools}
BIN="$TOOLS_DIR/bin"
mkdir -p "$BIN"

say() { printf 'tools: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# --- Debian packages -------------------------------------------------------------------------
apt_packages=(docker.io docker-registry debootstrap containerd runc etcd-server shellcheck)
commands=(dockerd docker-registry debootstrap containerd runc etcd shellcheck)
if [ "${1:-}" != "--no-apt" ]; then
  missing=()
  for i in "${!commands[@]}"; do
    command -v "${commands[$i]}" >/dev/null || missing+=("${apt_packages[$i]}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]}: run as root, or: sudo apt-get install ${missing[*]}"
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install them with your package manager"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# --- Go tools --------------------------------------------------------------------------------
command -v go >/dev/null || die "Go 1.26+ is needed to build tilt, tk and kube-apiserver: https://go.dev/dl/"
module_version() { # <go.mod> <module path>: the required version of the module
  awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1"
}

# build <name> <version> <command...>: runs the command (which writes $out) unless the binary exists.
build() {
  local name=$1 version=$2; shift 2
  out="$BIN/$name-$version"
  if [ ! -x "$out" ]; then
    say "building $name $version (first time only; minutes)"
    local started=$SECONDS
    "$@"
    say "built $name $version in $((SECONDS - started)) s"
  fi
  ln -sfn "$name-$version" "$BIN/$name"
}

tilt_version=$(module_version tools/tilt/go.mod github.com/tilt-dev/tilt)
build tilt "$tilt_version" \
  env -C tools/tilt CGO_ENABLED=1 go build -tags osusergo -o "$BIN/tilt-$tilt_version" github.com/tilt-dev/tilt/cmd/tilt

tanka_version=$(module_version tools/tanka/go.mod github.com/grafana/tanka)
build tk "$tanka_version" \
  env -C tools/tanka CGO_ENABLED=0 go build -o "$BIN/tk-$tanka_version" github.com/grafana/tanka/cmd/tk

k8s_version=$(module_version tools/kube-apiserver/go.mod k8s.io/kubernetes)
build kube-apiserver "$k8s_version" \
  env -C tools/kube-apiserver CGO_ENABLED=0 go build -o "$BIN/kube-apiserver-$k8s_version" k8s.io/kubernetes/cmd/kube-apiserver
build kubectl "$k8s_version" \
  env -C tools/kube-apiserver CGO_ENABLED=0 go build -o "$BIN/kubectl-$k8s_version" k8s.io/kubernetes/cmd/kubectl

gitea_version=$(module_version tools/gitea/go.mod code.gitea.io/gitea)
build gitea "$gitea_version" \
  env -C tools/gitea CGO_ENABLED=1 go build -tags 'sqlite sqlite_unlock_notify' \
  -ldflags "-X main.Version=${gitea_version#v}" -o "$BIN/gitea-$gitea_version" code.gitea.io/gitea
# Built without bindata, Gitea reads templates/ and options/ from its STATIC_ROOT_PATH: keep the
# module's copies next to the binary (the tests point STATIC_ROOT_PATH there).
gitea_share="$TOOLS_DIR/share/gitea-$gitea_version"
if [ ! -d "$gitea_share/templates" ]; then
  gitea_src=$(env -C tools/gitea go list -m -f '{{.Dir}}' code.gitea.io/gitea)
  rm -rf "$gitea_share.tmp" && mkdir -p "$gitea_share.tmp"
  cp -R "$gitea_src/templates" "$gitea_src/options" "$gitea_src/public" "$gitea_share.tmp/"
  chmod -R u+w "$gitea_share.tmp"
  mv "$gitea_share.tmp" "$gitea_share"
fi

echo "$BIN"
