#!/usr/bin/env bash
# Measures the local provider with cached binaries: `cluster up` to ready (default
# ServiceAccount present), `cluster down`, and kubelab's own peak RSS, over RUNS rounds.
#
#   bench/cluster.sh [RUNS]        (default 5; builds kubelab --release first)
#
# Goals: up <= 3 s (issue 12; issue 2 asked <= 10 s), down <= 3 s.
set -euo pipefail
runs=${1:-5}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 3; }
cargo build --release --quiet
bin=target/release/kubelab
state=$(mktemp -d /tmp/kubelab-bench.XXXXXX)
export KUBELAB_STATE_DIR=$state NO_COLOR=1
trap '$bin cluster down -q >/dev/null 2>&1 || true; rm -rf "$state"' EXIT

measure() { # prints "<seconds> <max RSS KiB>" for one kubelab command
  /usr/bin/time -f '%e %M' -o "$state/time" "$bin" -q "$@" >/dev/null
  cat "$state/time"
}

ups=() downs=() rss=() cluster_rss=()
for i in $(seq "$runs"); do
  read -r up_s up_kb < <(measure cluster up)
  # Resident memory of the three components while the cluster idles.
  pids=$(jq -r '.components[].pid' < <("$bin" cluster status -o json))
  cluster_kb=$(for p in $pids; do awk '/^VmRSS/ {print $2}' "/proc/$p/status"; done | paste -sd+ | bc)
  read -r down_s down_kb < <(measure cluster down)
  ups+=("$up_s") downs+=("$down_s") rss+=("$up_kb" "$down_kb") cluster_rss+=("$cluster_kb")
  printf 'run %d: up %ss, down %ss, kubelab peak RSS %s KiB, cluster RSS %s MiB\n' \
    "$i" "$up_s" "$down_s" "$((up_kb > down_kb ? up_kb : down_kb))" "$((cluster_kb / 1024))"
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "median %.2f  min %.2f  max %.2f", a[int((NR+1)/2)], a[1], a[NR]}'; }
echo "cluster up   (s): $(stats "${ups[@]}")   goal <= 3"
echo "cluster down (s): $(stats "${downs[@]}")   target <= 3"
echo "kubelab peak RSS (MiB): $(printf '%s\n' "${rss[@]}" | sort -n | tail -1 | awk '{printf "%.1f", $1/1024}')"
echo "cluster RSS after up (MiB): $(printf '%s\n' "${cluster_rss[@]}" | awk '{s+=$1} END {printf "%.0f", s/NR/1024}') (mean of etcd + kube-apiserver + kube-controller-manager)"
