#!/usr/bin/env bash
# Hands-on mode timings: `start`, `check` (on the starting state, which fails, and
# after `solution --apply`, which passes) and `reset`, for every hands-on lab of the
# default suite, ROUNDS times, on a local cluster without a node and (as root) with
# one. Prints p50 and max per command, in ms. Each start is cold: the lab's objects
# are deleted (untimed) after its reset. Uses its own state directory: the
# clusters it starts are its own and stopped at the end.
#
#   bench/handson.sh [ROUNDS] [no-node|node|both]   (default 3 both; needs jq)
set -euo pipefail
rounds=${1:-3}
which=${2:-both}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v jq >/dev/null || { echo "needs jq: apt-get install jq" >&2; exit 3; }
cargo build --release --quiet
bin=$PWD/target/release/kubelab
export NO_COLOR=1
state=$(mktemp -d /tmp/kubelab-handson.XXXXXX)
export KUBELAB_STATE_DIR=$state
cleanup() { "$bin" -q cluster down >/dev/null 2>&1 || true; rm -rf "$state"; }
trap cleanup EXIT

labs=$("$bin" list | awk '/^[0-9]+ / {id=$1} /hands-on:/ {print id}')
ms() { date +%s%3N; }
timed() { # timed NAME CMD...: runs CMD, appends its wall ms to $out/NAME
  local name=$1; shift
  local t0; t0=$(ms)
  "$@" >/dev/null 2>&1 || true
  echo "$(($(ms) - t0))" >> "$out/$name"
}
stats() {
  sort -n "$1" | awk '{a[NR]=$1} END {printf "p50 %5d  max %5d  (n=%d)", a[int((NR+1)/2)], a[NR], NR}'
}

measure() { # measure LABEL [up flags...]
  local label=$1; shift
  out=$(mktemp -d "$state/out.XXXX")
  "$bin" -q cluster up "$@" >/dev/null
  kubeconfig=$("$bin" cluster kubeconfig)
  kubectl=$(jq -r .kubectl "$(dirname "$kubeconfig")/cluster.json")
  for round in $(seq "$rounds"); do
    for lab in $labs; do
      timed start "$bin" -q start "$lab"
      timed check-failing "$bin" -q check
      "$bin" -q solution --apply >/dev/null 2>&1
      timed check-passing "$bin" -q check
      timed reset "$bin" -q reset
      # Not timed: take the lab away, so that the next round's start is a cold one.
      "$kubectl" --kubeconfig "$kubeconfig" delete \
        namespaces,pods,deployments,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,secrets,configmaps \
        -A -l "kubelab.dev/lab=$lab" --wait >/dev/null 2>&1 || true
    done
    # The next round starts each lab afresh.
    rm -f "$state/progress.json"
  done
  echo "$label ($(echo $labs | wc -w) labs x $rounds rounds):"
  for name in start check-failing check-passing reset; do
    printf '  %-14s %s\n' "$name" "$(stats "$out/$name")"
  done
  "$bin" -q cluster down >/dev/null
}

case $which in
  no-node|both) measure "local cluster, no node (probes on the host)" ;;
esac
case $which in
  node|both)
    if [ "$(id -u)" = 0 ]; then
      measure "local cluster with a node (probes in the pods)" --node
    else
      echo "with a node: skipped (needs root)"
    fi
    ;;
esac
