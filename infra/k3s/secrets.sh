#!/usr/bin/env bash
# Creates the Secret raibid-system/raibid-secrets once, with random values, and keeps it:
#   api-token             bearer token for the server's API writes (RAIBID_API_TOKEN)
#   webhook-secret        HMAC key of Gitea's webhooks (GITEA_WEBHOOK_SECRET)
#   gitea-admin-password  password of the Gitea admin that `raibid seed-gitea` creates
#   gitea-token           empty until `raibid seed-gitea` creates the Gitea token and writes it here
# The Secret lives only in the cluster: Tanka does not render it, so a deploy never overwrites it.
# No value is ever printed, passed as a command argument or written to a file.
#
# Usage: infra/k3s/secrets.sh                 create it if absent (a second run keeps every value)
#        infra/k3s/secrets.sh --rotate <key>  give one key a new random value; says what to restart
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

GENERATED_KEYS=(api-token webhook-secret gitea-admin-password)
EMPTY_KEYS=(gitea-token)

rotate=""
case "${1:-}" in
  "") ;;
  --rotate)
    [ $# = 2 ] || die "--rotate needs one key: ${GENERATED_KEYS[*]}"
    rotate=$2
    ;;
  -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
  *) die "unknown argument '$1': see infra/k3s/secrets.sh --help" ;;
esac

have_kubectl || die "kubectl is missing: install k3s with sudo infra/k3s/install.sh (it brings kubectl)"
have base64 || die "base64 is missing: sudo apt-get install coreutils"
kc get --raw=/readyz >/dev/null 2>&1 ||
  die "the cluster does not answer (kubectl get --raw=/readyz failed): run infra/k3s/check.sh"

# 32 random bytes as 64 hex characters: safe in URLs, headers and shells.
random_value() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
b64() { printf '%s' "$1" | base64 | tr -d '\n'; }

# The Secret's key names (never its values), one a line; empty when the Secret does not exist.
existing_keys() {
  # shellcheck disable=SC2016 # a Go template, not shell
  kc -n "$NAMESPACE" get secret "$SECRET" --ignore-not-found \
    -o go-template='{{range $key, $value := .data}}{{$key}}{{"\n"}}{{end}}'
}

# Values travel to kubectl on stdin only (argv is visible to every user in ps).
patch_data() { # <json data object>
  printf '{"data":%s}' "$1" | kc -n "$NAMESPACE" patch secret "$SECRET" --type=merge --patch-file=/dev/stdin >/dev/null
}

restart_advice() {
  case "$1" in
    api-token)
      say "restart the server: kubectl -n $NAMESPACE rollout restart deployment/raibid-server; CLI users need the new token (RAIBID_API_TOKEN)" ;;
    webhook-secret)
      say "restart the server: kubectl -n $NAMESPACE rollout restart deployment/raibid-server; then run raibid seed-gitea so Gitea's webhook signs with the new secret" ;;
    gitea-admin-password)
      say "Gitea still has the old password: run raibid seed-gitea to set the admin's password to the new value (nothing needs a restart)" ;;
  esac
}

if [ -n "$rotate" ]; then
  case " ${GENERATED_KEYS[*]} " in
    *" $rotate "*) ;;
    *)
      if [ "$rotate" = gitea-token ]; then
        die "gitea-token is made by Gitea, not at random: run raibid seed-gitea (it creates a new token and writes it here)"
      fi
      die "unknown key '$rotate': one of ${GENERATED_KEYS[*]}"
      ;;
  esac
  existing_keys | grep -qx "$rotate" || die "$NAMESPACE/$SECRET has no $rotate yet: run infra/k3s/secrets.sh first"
  patch_data "{\"$rotate\":\"$(b64 "$(random_value)")\"}"
  say "rotated $rotate in $NAMESPACE/$SECRET (the value is not shown)"
  restart_advice "$rotate"
  exit 0
fi

if ! kc get namespace "$NAMESPACE" >/dev/null 2>&1; then
  kc create namespace "$NAMESPACE" >/dev/null
  say "created namespace $NAMESPACE"
fi

keys=$(existing_keys)
if [ -z "$keys" ] && ! kc -n "$NAMESPACE" get secret "$SECRET" >/dev/null 2>&1; then
  data=""
  for key in "${GENERATED_KEYS[@]}"; do data+="  $key: $(b64 "$(random_value)")"$'\n'; done
  for key in "${EMPTY_KEYS[@]}"; do data+="  $key: \"\""$'\n'; done
  kc create -f - >/dev/null <<EOF
apiVersion: v1
kind: Secret
type: Opaque
metadata:
  name: $SECRET
  namespace: $NAMESPACE
  labels:
    app.kubernetes.io/part-of: raibid-ci
    app.kubernetes.io/managed-by: raibid-ci-secrets
data:
$data
EOF
  say "created $NAMESPACE/$SECRET with new random ${GENERATED_KEYS[*]} and an empty ${EMPTY_KEYS[*]} (values not shown)"
  exit 0
fi

# The Secret exists: keep every value, only add keys it lacks (from an older version of this script).
added=()
json=""
for key in "${GENERATED_KEYS[@]}" "${EMPTY_KEYS[@]}"; do
  printf '%s\n' "$keys" | grep -qx "$key" && continue
  value=""
  case " ${GENERATED_KEYS[*]} " in *" $key "*) value=$(b64 "$(random_value)") ;; esac
  json+="${json:+,}\"$key\":\"$value\""
  added+=("$key")
done
if [ "${#added[@]}" = 0 ]; then
  say "kept $NAMESPACE/$SECRET as it is (all keys present; values not shown)"
else
  patch_data "{$json}"
  say "kept the values in $NAMESPACE/$SECRET and added the missing ${added[*]} (values not shown)"
fi
