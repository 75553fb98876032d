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

# CPU seconds spent so far by the cluster's processes and by every kubelab this shell
# (the shell SHELL_PID) has waited for: utime + stime and the children's, from
# /proc/PID/stat.
cpu_ms() { # cpu_ms SHELL_PID: prints "cluster kubelab"
  local ticks=0 pid hz
  hz=$(getconf CLK_TCK)
  for pid in $(pgrep -f "$state" || true); do
    ticks=$((ticks + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$((ticks * 1000 / hz)) $(awk -v hz="$hz" '{print int(($16 + $17) * 1000 / hz)}' "/proc/$1/stat")"
}

run_class() { # run_class N: prints "up starts grade down rss", then cluster and kubelab CPU per phase (ms, MB)
  local n=$1 t0 up starts grade down rss
  local dir="$state/class-$n" me=$BASHPID cpu=()
  phase_cpu() { local c k; read -r c k < <(cpu_ms "$me"); cpu+=("$c" "$k"); }
  phase_cpu
  t0=$(ms)
  "$bin" -q class up --students "$n" --class-name "c$n" --out "$dir" "${labs[@]}" >/dev/null
  up=$(($(ms) - t0))
  phase_cpu
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
  phase_cpu
  rss=$(rss_mb)
  t0=$(ms)
  "$bin" -q class grade --class "$dir" >/dev/null
  grade=$(($(ms) - t0))
  phase_cpu
  t0=$(ms)
  "$bin" -q class down --class "$dir" >/dev/null
  down=$(($(ms) - t0))
  phase_cpu
  local deltas=() i
  for i in 0 1; do # cluster, then kubelab: each phase's share
    local p
    for p in 0 1 2 3; do deltas+=($((cpu[2 * (p + 1) + i] - cpu[2 * p + i]))); done
  done
  echo "$up $starts $grade $down $rss ${deltas[*]}"
}

echo "class bench: ${#labs[@]} labs (${labs[*]}), $mode, $(nproc) cores"
# A class on a cluster just started meets controllers still starting (the first
# grade can wait seconds for them): one class first, not counted.
run_class 1 >/dev/null
read -r up1 st1 gr1 dn1 _ cu1 cs1 cg1 cd1 ku1 ks1 kg1 kd1 < <(run_class 1)
read -r upn stn grn dnn rssn cun csn cgn cdn kun ksn kgn kdn < <(run_class "$students")
cl1=$((cu1 + cs1 + cg1 + cd1)) kl1=$((ku1 + ks1 + kg1 + kd1))
cln=$((cun + csn + cgn + cdn)) kln=$((kun + ksn + kgn + kdn))
cpu1=$((cl1 + kl1)) cpun=$((cln + kln))
total1=$((up1 + st1 + gr1 + dn1))
totaln=$((upn + stn + grn + dnn))
printf '%-34s %10s %10s %8s\n' "" "1 student" "$students" "ratio"
row() { printf '%-34s %8d ms %8d ms %7.2fx\n' "$1" "$2" "$3" "$(echo "$3 / $2" | bc -l)"; }
row "class up" "$up1" "$upn"
row "every student starts every lab" "$st1" "$stn"
row "class grade" "$gr1" "$grn"
row "class down" "$dn1" "$dnn"
row "all of it" "$total1" "$totaln"
echo "CPU per phase, cluster + kubelab (ms):"
cpu_row() { printf '  %-32s %6d + %-6d %8d + %-6d\n' "$1" "$2" "$3" "$4" "$5"; }
cpu_row "class up" "$cu1" "$ku1" "$cun" "$kun"
cpu_row "every student starts every lab" "$cs1" "$ks1" "$csn" "$ksn"
cpu_row "class grade" "$cg1" "$kg1" "$cgn" "$kgn"
cpu_row "class down" "$cd1" "$kd1" "$cdn" "$kdn"
echo "cluster memory (RSS of its processes) with $students students' labs set up: ${rssn} MB"
cores=$(nproc)
printf 'CPU seconds, cluster (apiserver, etcd, controllers) + kubelab: 1 student %.1f + %.1f, %s students %.1f + %.1f\n' \
  "$(echo "$cl1 / 1000" | bc -l)" "$(echo "$kl1 / 1000" | bc -l)" "$students" "$(echo "$cln / 1000" | bc -l)" "$(echo "$kln / 1000" | bc -l)"
printf 'CPU (cluster + kubelab): 1 student %.1f s, %s students %.1f s (%.1fx); on %s cores the big class needs at least %.1f s of wall time: %.1fx one student\n' \
  "$(echo "$cpu1 / 1000" | bc -l)" "$students" "$(echo "$cpun / 1000" | bc -l)" "$(echo "$cpun / $cpu1" | bc -l)" \
  "$cores" "$(echo "$cpun / 1000 / $cores" | bc -l)" "$(echo "$cpun / $cores / $total1" | bc -l)"
echo "target: $students students take no more than 3x one: $(echo "$totaln <= 3 * $total1" | bc -l | sed 's/1/met/; s/0/NOT met/')"
