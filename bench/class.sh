#!/usr/bin/env bash
# A class on one cluster: `class up`, every student starting every lab (students at
# the same time, each lab after the other, each with their own kubeconfig and state),
# `class grade` and `class down`, for one student and for STUDENTS; then the ratio,
# and the memory of the cluster's processes (RSS) with the big class's labs set up.
#
#   bench/class.sh [STUDENTS] [no-node|node] [LAB...]   (default 30 no-node, all labs)
#
# With a node every lab's pod really runs: one node runs at most 110 pods (the
# kubelet's default), so name a few labs, e.g. `bench/class.sh 30 node 02 07 12`.
# Uses its own state directory and cluster, stopped at the end.
set -euo pipefail
students=${1:-30}
mode=${2:-no-node}
shift $(( $# < 2 ? $# : 2 ))
labs=("$@")
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet
bin=$PWD/target/release/kubelab
export NO_COLOR=1
state=$(mktemp -d /tmp/kubelab-class-bench.XXXXXX)
export KUBELAB_STATE_DIR=$state
cleanup() { "$bin" -q cluster down >/dev/null 2>&1 || true; rm -rf "$state"; }
trap cleanup EXIT

up_flags=()
[ "$mode" = node ] && up_flags=(--node)
"$bin" -q cluster up "${up_flags[@]}" >/dev/null
if [ ${#labs[@]} -eq 0 ]; then
  mapfile -t labs < <("$bin" list | awk '/^[0-9]+ / {id=$1} /hands-on:/ {print id}')
fi

ms() { date +%s%3N; }
rss_mb() { # the cluster's processes: apiserver, etcd, controller manager (+ node)
  local total=0 pid
  for pid in $(pgrep -f "$state" || true); do
    total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
  done
  echo $((total / 1024))
}

run_class() { # run_class N: prints "up starts grade down rss" (ms, ms, ms, ms, MB)
  local n=$1 t0 up starts grade down rss
  local dir="$state/class-$n"
  t0=$(ms)
  "$bin" -q class up --students "$n" --class-name "c$n" --out "$dir" "${labs[@]}" >/dev/null
  up=$(($(ms) - t0))
  t0=$(ms)
  for kubeconfig in "$dir"/*.kubeconfig; do
    (
      export KUBECONFIG=$kubeconfig KUBELAB_STATE_DIR
      KUBELAB_STATE_DIR=$(mktemp -d "$state/student.XXXX")
      for lab in "${labs[@]}"; do
        "$bin" -q start "$lab" >/dev/null 2>"$KUBELAB_STATE_DIR/err" || { cat "$KUBELAB_STATE_DIR/err" >&2; exit 1; }
      done
    ) &
  done
  wait
  starts=$(($(ms) - t0))
  rss=$(rss_mb)
  t0=$(ms)
  "$bin" -q class grade --class "$dir" >/dev/null
  grade=$(($(ms) - t0))
  t0=$(ms)
  "$bin" -q class down --class "$dir" >/dev/null
  down=$(($(ms) - t0))
  echo "$up $starts $grade $down $rss"
}

echo "class bench: ${#labs[@]} labs (${labs[*]}), $mode, $(nproc) cores"
read -r up1 st1 gr1 dn1 _ < <(run_class 1)
read -r upn stn grn dnn rssn < <(run_class "$students")
total1=$((up1 + st1 + gr1 + dn1))
totaln=$((upn + stn + grn + dnn))
printf '%-34s %10s %10s %8s\n' "" "1 student" "$students" "ratio"
row() { printf '%-34s %8d ms %8d ms %7.2fx\n' "$1" "$2" "$3" "$(echo "$3 / $2" | bc -l)"; }
row "class up" "$up1" "$upn"
row "every student starts every lab" "$st1" "$stn"
row "class grade" "$gr1" "$grn"
row "class down" "$dn1" "$dnn"
row "all of it" "$total1" "$totaln"
echo "cluster memory (RSS of its processes) with $students students' labs set up: ${rssn} MB"
echo "target: $students students take no more than 3x one: $(echo "$totaln <= 3 * $total1" | bc -l | sed 's/1/met/; s/0/NOT met/')"
