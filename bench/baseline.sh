#!/usr/bin/env bash
# The baseline kubelab is measured against: the five labs done by hand, the way a
# student or a CI script would, with kubectl and curl, one step after another.
# For each pod it mints the pod's token (kubectl create token --bound-object-...),
# fetches ca.crt and writes the namespace file, as kubelab does without a node; then
# runs the same requests and checks the same status codes; then deletes what it made.
#
#   KUBECONFIG=... bench/baseline.sh <apiserver port>
#
# Prints one line per probe: "probe <lab>/<id> <milliseconds> ok|MISMATCH".
set -euo pipefail
port=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
labs=$here/scenarios/seed
kubectl=${KUBECTL:-kubectl}
work=$(mktemp -d)
chmod 700 "$work"
trap 'rm -rf "$work"' EXIT

now_ms() { date +%s%3N; }
started=0
begin() { started=$(now_ms); }
# end <lab/id> <want> <got>
end() { local t=$(( $(now_ms) - started )) verdict=ok; [ "$2" = "$3" ] || verdict="MISMATCH(want $2 got $3)"; echo "probe $1 $t $verdict"; }

# pod_files <namespace> <pod> <serviceaccount>: the pod's token, ca.crt, namespace
pod_files() {
  local dir=$work/$1-$2
  mkdir -p "$dir"
  "$kubectl" -n "$1" create token "$3" --bound-object-kind Pod --bound-object-name "$2" --duration 3607s > "$dir/token"
  "$kubectl" -n "$1" get configmap kube-root-ca.crt -o jsonpath='{.data.ca\.crt}' > "$dir/ca.crt"
  printf '%s' "$1" > "$dir/namespace"
  chmod 600 "$dir"/*
  echo "$dir"
}

# status <files dir or -> <path> [token|none|invalid]: curl as the pod would
status() {
  local dir=$1 path=$2 token=${3:-token} args=(-sS -o /dev/null -w '%{http_code}' --connect-to "kubernetes.default.svc:443:127.0.0.1:$port")
  if [ "$token" = token ]; then
    args+=(--cacert "$dir/ca.crt" -H "Authorization: Bearer $(cat "$dir/token")")
  elif [ "$token" = invalid ]; then
    args+=(-k -H "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln")
  else
    args+=(-k)
  fi
  curl "${args[@]}" "https://kubernetes.default.svc$path"
}

# in_pod_kubectl <files dir> <args...>: kubectl with the pod's identity
in_pod_kubectl() {
  local dir=$1; shift
  KUBECONFIG=/dev/null "$kubectl" --server "https://127.0.0.1:$port" --tls-server-name kubernetes.default.svc \
    --certificate-authority "$dir/ca.crt" --token "$(cat "$dir/token")" -n "$(cat "$dir/namespace")" "$@"
}

can_i() { "$kubectl" auth can-i "$@" 2>/dev/null || true; }
has_token_volume() { "$kubectl" -n "$1" get pod "$2" -o jsonpath='{.spec.volumes[*].projected.sources[*].serviceAccountToken.path}'; }
wait_pod() { until "$kubectl" -n "$1" get pod "$2" >/dev/null 2>&1; do sleep 0.1; done; }
# current_pod <namespace> <deployment> <label>: a pod of the deployment's newest ReplicaSet
current_pod() {
  local rev hash
  rev=$("$kubectl" -n "$1" get deployment "$2" -o jsonpath='{.metadata.annotations.deployment\.kubernetes\.io/revision}')
  hash=$("$kubectl" -n "$1" get replicasets -l "$3" -o jsonpath="{.items[?(@.metadata.annotations.deployment\.kubernetes\.io/revision=='$rev')].metadata.labels.pod-template-hash}")
  [ -n "$hash" ] && "$kubectl" -n "$1" get pods -l "$3,pod-template-hash=$hash" -o jsonpath='{.items[0].metadata.name}' 2>/dev/null
}

# Lab 01: the default ServiceAccount
l=$labs/01-default-serviceaccount
"$kubectl" apply -f "$l/pod.yaml" >/dev/null
wait_pod default testpod
d=$(pod_files default testpod default)
begin; end 01/token_file token "$(has_token_volume default testpod)"
begin; end 01/ca_file true "$([ -s "$d/ca.crt" ] && echo true)"
begin; end 01/namespace_file true "$([ -s "$d/namespace" ] && echo true)"
begin; end 01/discovery 200 "$(status "$d" /api)"
begin; end 01/list_pods 403 "$(status "$d" /api/v1/namespaces/default/pods)"
begin; end 01/get_own_pod 403 "$(status "$d" /api/v1/namespaces/default/pods/testpod)"
begin; end 01/can_i no "$(can_i list pods --as=system:serviceaccount:default:default -n default)"
"$kubectl" delete -f "$l/pod.yaml" --wait >/dev/null

# Lab 02: tokendemo and pod-reader
l=$labs/02-custom-serviceaccount
"$kubectl" apply -f "$l/rbac.yaml" -f "$l/pod.yaml" >/dev/null
wait_pod default mydemo
d=$(pod_files default mydemo tokendemo)
begin; end 02/list_pods 200 "$(status "$d" /api/v1/namespaces/default/pods)"
begin; end 02/get_own_pod 200 "$(status "$d" /api/v1/namespaces/default/pods/mydemo)"
begin; end 02/list_secrets 403 "$(status "$d" /api/v1/namespaces/default/secrets)"
begin; end 02/other_namespace 403 "$(status "$d" /api/v1/namespaces/kube-system/pods)"
begin; end 02/token token "$(has_token_volume default mydemo)"
begin; end 02/can_list yes "$(can_i list pods --as=system:serviceaccount:default:tokendemo -n default)"
begin; end 02/can_delete no "$(can_i delete pods --as=system:serviceaccount:default:tokendemo -n default)"
"$kubectl" delete -f "$l/pod.yaml" -f "$l/rbac.yaml" --wait >/dev/null

# Lab 03: the project-swan secret reader
l=$labs/03-project-swan-secret-reader
"$kubectl" apply -f "$l/namespace.yaml" >/dev/null
"$kubectl" apply -f "$l/serviceaccount.yaml" -f "$l/rbac.yaml" -f "$l/secret.yaml" -f "$l/pod.yaml" >/dev/null
wait_pod project-swan swan-reader
d=$(pod_files project-swan swan-reader secret-reader)
begin; end 03/list_secrets 200 "$(status "$d" /api/v1/namespaces/project-swan/secrets)"
begin; end 03/get_secret 200 "$(status "$d" /api/v1/namespaces/project-swan/secrets/swan-credentials)"
begin; end 03/list_pods 403 "$(status "$d" /api/v1/namespaces/project-swan/pods)"
begin; end 03/default_secrets 403 "$(status "$d" /api/v1/namespaces/default/secrets)"
begin; end 03/can_get yes "$(can_i get secrets --as=system:serviceaccount:project-swan:secret-reader -n project-swan)"
begin; end 03/can_create no "$(can_i create secrets --as=system:serviceaccount:project-swan:secret-reader -n project-swan)"
"$kubectl" delete -f "$l/namespace.yaml" --wait >/dev/null

# Lab 04: the Deployment that gets Forbidden, then the fix
l=$labs/04-deployment-forbidden
"$kubectl" apply -f "$l/namespace.yaml" -f "$l/deployment.yaml" >/dev/null
until p=$(current_pod project-swan pod-lister app=pod-lister) && [ -n "$p" ]; do sleep 0.1; done
d=$(pod_files project-swan "$p" default)
begin; end 04/before/can_i no "$(can_i list pods --as=system:serviceaccount:project-swan:default -n project-swan)"
begin; out=$(in_pod_kubectl "$d" get pods 2>&1 || true); end 04/before/kubectl true "$(grep -q 'Error from server (Forbidden)' <<<"$out" && echo true)"
begin; out=$(in_pod_kubectl "$d" get pods 2>&1 || true); end 04/before/logs true "$(grep -q 'pods is forbidden' <<<"$out" && echo true)"
"$kubectl" apply -f "$l/fix.yaml" >/dev/null
"$kubectl" -n project-swan rollout restart deployment/pod-lister >/dev/null
old=$p
until p=$(current_pod project-swan pod-lister app=pod-lister) && [ -n "$p" ] && [ "$p" != "$old" ]; do sleep 0.1; done
d=$(pod_files project-swan "$p" default)
begin; end 04/fix/can_i yes "$(can_i list pods --as=system:serviceaccount:project-swan:default -n project-swan)"
begin; out=$(in_pod_kubectl "$d" get pods 2>&1 || true); end 04/fix/kubectl true "$(grep -q pod-lister- <<<"$out" && echo true)"
begin; out=$(in_pod_kubectl "$d" get pods 2>&1 || true); end 04/fix/logs true "$(grep -q pod-lister- <<<"$out" && echo true)"
"$kubectl" delete -f "$l/namespace.yaml" --wait >/dev/null

# Lab 05: token automount disabled
l=$labs/05-token-automount-disabled
"$kubectl" apply -f "$l/namespace.yaml" >/dev/null
"$kubectl" apply -f "$l/serviceaccount.yaml" >/dev/null
"$kubectl" apply -f "$l/workloads.yaml" >/dev/null
wait_pod quiet-workloads pure-workload
wait_pod quiet-workloads sa-optout
begin; end 05/no_token_pod "" "$(has_token_volume quiet-workloads pure-workload)"
begin; end 05/no_token_sa "" "$(has_token_volume quiet-workloads sa-optout)"
begin; end 05/anonymous_pods 403 "$(status - /api/v1/namespaces/quiet-workloads/pods none)"
begin; end 05/anonymous_apis 403 "$(status - /apis none)"
begin; end 05/anonymous_version 200 "$(status - /version none)"
begin; end 05/forged_token 401 "$(status - /api invalid)"
"$kubectl" delete -f "$l/namespace.yaml" --wait >/dev/null
