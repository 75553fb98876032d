#!/usr/bin/env bash
# The local node, measured (root; binaries and images cached): `cluster up --node`
# time, the default suite with probes in pods vs on the host (a cluster without a node),
# and the memory of the whole node cluster (components, shims and pods).
#
#   sudo bench/node.sh [ROUNDS]       (default 3)
set -euo pipefail
rounds=${1:-3}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "bench/node.sh needs root" >&2; exit 3; }
cargo build --release --quiet
bin=$PWD/target/release/kubelab
state=$(mktemp -d /tmp/kubelab-node-bench.XXXXXX)
export KUBELAB_STATE_DIR=$state NO_COLOR=1 KUBELAB_PROVIDER=local
trap '$bin -q cluster down >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
ms() { date +%s%3N; }

up=() pods=() hosts=() downs=() memory=() conformance=()
for round in $(seq "$rounds"); do
  t0=$(ms); "$bin" -q cluster up --node >/dev/null; t1=$(ms)
  "$bin" -q run >/dev/null; t2=$(ms)
  "$bin" -q run --suite conformance >/dev/null; t2c=$(ms)
  # Resident memory: every component (containerd's shims and the pods live in cgroups).
  kb=0
  for pid in $("$bin" cluster status -o json | jq -r '.components[].pid'); do
    kb=$((kb + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")))
  done
  for pid in $(pgrep -f "containerd-shim.*$state" || true); do
    kb=$((kb + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
  done
  t3=$(ms); "$bin" -q cluster down >/dev/null; t4=$(ms)
  "$bin" -q cluster up >/dev/null; "$bin" -q run >/dev/null; t5=$(ms); "$bin" -q run >/dev/null; t6=$(ms); "$bin" -q cluster down >/dev/null
  up+=($((t1 - t0))) pods+=($((t2 - t1))) downs+=($((t4 - t3))) hosts+=($((t6 - t5))) memory+=($((kb / 1024))) conformance+=($((t2c - t2)))
  printf 'round %d: up --node %5d ms, default suite in pods %5d ms, conformance in pods %5d ms, down %5d ms, default suite on host %5d ms, node cluster RSS %d MiB\n' \
    "$round" "$((t1 - t0))" "$((t2 - t1))" "$((t2c - t2))" "$((t4 - t3))" "$((t6 - t5))" "$((kb / 1024))"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "median of $rounds: cluster up --node $(median "${up[@]}") ms (goal <= 5000); the default suite in pods $(median "${pods[@]}") ms vs on host $(median "${hosts[@]}") ms; conformance suite in pods $(median "${conformance[@]}") ms; down $(median "${downs[@]}") ms"
echo "memory of the node cluster after the labs (components + shims): $(median "${memory[@]}") MiB"
