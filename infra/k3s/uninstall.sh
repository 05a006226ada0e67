#!/usr/bin/env bash
# Removes what install.sh set up: k3s with everything in it (Redis and Gitea data, the Secret
# raibid-secrets, job caches) and the registry container. The registry's images stay in the Docker
# volume raibid-registry-data unless --purge.
#
# Usage: sudo infra/k3s/uninstall.sh [--yes] [--purge]
#   --yes    do not ask
#   --purge  also delete the registry's images and /etc/sysctl.d/90-raibid-inotify.conf
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

yes=0
purge=0
for arg in "$@"; do
  case "$arg" in
    --yes) yes=1 ;;
    --purge) purge=1 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument '$arg': see infra/k3s/uninstall.sh --help" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "it removes k3s and Docker containers: run sudo $0 $*"

uninstaller=$ROOT/usr/local/bin/k3s-uninstall.sh
k3s_installed=0
[ ! -x "$uninstaller" ] || k3s_installed=1
registry_exists=0
if have docker && docker inspect "$REGISTRY_CONTAINER" >/dev/null 2>&1; then registry_exists=1; fi
volume_exists=0
if [ "$purge" = 1 ] && have docker && docker volume inspect "$REGISTRY_VOLUME" >/dev/null 2>&1; then volume_exists=1; fi

if [ "$k3s_installed" = 0 ] && [ "$registry_exists" = 0 ] && [ "$volume_exists" = 0 ]; then
  say "nothing to remove: no k3s ($uninstaller) and no container $REGISTRY_CONTAINER"
  exit 0
fi

if [ "$yes" = 0 ]; then
  [ -t 0 ] || die "not a terminal, so it cannot ask: run again with --yes to remove k3s and the registry"
  plan="k3s and all cluster data (Redis, Gitea, the Secret $SECRET)"
  [ "$registry_exists" = 0 ] || plan+=", the container $REGISTRY_CONTAINER"
  [ "$purge" = 0 ] || plan+=", the registry's images"
  read -r -p "Remove $plan? [y/N] " answer
  case "$answer" in y | Y | yes) ;; *) die "nothing removed" ;; esac
fi

if [ "$k3s_installed" = 1 ]; then
  # KEDA puts a finalizer on every ScaledJob: delete them while KEDA still runs to remove it,
  # then KEDA and Flux (their HelmCharts' uninstall Jobs), so nothing hangs on the way out.
  if KUBECONFIG=$K3S_KUBECONFIG kc get --raw=/readyz >/dev/null 2>&1; then
    export KUBECONFIG=$K3S_KUBECONFIG
    if [ -n "$(kc get crd scaledjobs.keda.sh --ignore-not-found -o name)" ]; then
      kc delete scaledjobs.keda.sh --all --all-namespaces --timeout=60s ||
        warn "ScaledJobs were not deleted within 60 s; k3s-uninstall.sh removes them anyway"
    fi
    kc -n kube-system delete helmchart keda flux --ignore-not-found --timeout=120s ||
      warn "the KEDA/Flux HelmCharts were not deleted within 120 s; k3s-uninstall.sh removes them anyway"
  else
    warn "k3s does not answer, so ScaledJobs and HelmCharts are not deleted first; k3s-uninstall.sh removes them anyway"
  fi
  "$uninstaller"
  say "removed k3s (k3s-uninstall.sh also removed /etc/rancher/k3s and /var/lib/rancher/k3s)"
fi

if [ "$registry_exists" = 1 ]; then
  docker rm -f "$REGISTRY_CONTAINER" >/dev/null
  say "removed the container $REGISTRY_CONTAINER"
fi
if [ "$purge" = 1 ]; then
  if [ "$volume_exists" = 1 ]; then
    docker volume rm "$REGISTRY_VOLUME" >/dev/null
    say "removed the registry's images (volume $REGISTRY_VOLUME)"
  fi
  if [ -f "$SYSCTL_FILE" ]; then
    rm -f "$SYSCTL_FILE"
    say "removed $SYSCTL_FILE (the raised inotify limits last until the next reboot)"
  fi
elif have docker && docker volume inspect "$REGISTRY_VOLUME" >/dev/null 2>&1; then
  say "kept the registry's images in the Docker volume $REGISTRY_VOLUME (--purge deletes them)"
fi
say "your ~/.kube/config still has k3s's context, cluster and user 'default': kubectl config delete-context default; kubectl config delete-cluster default; kubectl config delete-user default"
