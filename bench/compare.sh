#!/usr/bin/env bash
# Races kubelab against Chainsaw and kuttl on the same five labs: bench/compare/ holds
# each harness's version of the five seed labs, with the same manifests, steps and
# assertions. All three run on one local node cluster, taking turns in every round
# (the order rotates), and the script prints medians and paired ratios.
# Goals (issue 12): kubelab <= 0.3x Chainsaw and <= 0.5x kuttl.
#
#   sudo bench/compare.sh [ROUNDS]     (default 5, plus one warm-up round not counted)
#
# Needs root (the node), jq, and the harnesses, which controlplane/build.sh harnesses
# builds into the cache (Chainsaw and kuttl from their Go modules; a second run builds
# nothing). Each run's output is kept in a temporary directory printed at the end.
set -euo pipefail
rounds=${1:-5}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
[ "$(id -u)" = 0 ] || { echo "bench/compare.sh needs root (the local node)" >&2; exit 3; }
command -v jq >/dev/null || { echo "needs jq: apt-get install jq" >&2; exit 3; }
cargo build --release --quiet
bin=$repo/target/release/kubelab
tools=$(controlplane/build.sh harnesses kubectl)
export PATH="$tools:$PATH"   # Chainsaw's and kuttl's probes run kubectl

out=$(mktemp -d /tmp/kubelab-compare.XXXXXX)
state=$(mktemp -d /tmp/kubelab-compare-state.XXXXXX)
export KUBELAB_STATE_DIR=$state KUBELAB_PROVIDER=local NO_COLOR=1
trap '"$bin" -q cluster down >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
echo "starting a local node cluster ..." >&2
"$bin" -q cluster up --node >/dev/null
export KUBECONFIG
KUBECONFIG=$("$bin" cluster kubeconfig)

# Before each run: no lab namespace and no pod outside kube-system left over. Each
# list is read whole before it is searched: under pipefail, grep -q leaving early can
# fail kubectl with SIGPIPE, which read as "none left" (a terminating project-swan
# then failed Chainsaw's next lab 03).
settle() {
  local i namespaces pods
  for i in $(seq 240); do
    if namespaces=$(kubectl get namespaces -o name) &&
       pods=$(kubectl get pods -A --no-headers 2>/dev/null) &&
       ! grep -qE '^namespace/(project-swan|quiet-workloads)$' <<< "$namespaces" &&
       [ -z "$(grep -v '^kube-system ' <<< "$pods")" ]; then
      sleep 1
      return
    fi
    sleep 0.5
  done
  echo "the cluster did not settle after a run: $(kubectl get namespaces,pods -A --no-headers | head)" >&2
  exit 4
}

run_kubelab() { "$bin" -q run --dir "$repo/bench/compare/kubelab" --output json > "$1.json"; }
# The same, leaving the emptied namespaces to the namespace controller's fixed 5 s
# hold (run --no-wait); the next run's settle waits for them, untimed.
run_kubelab-nowait() {
  "$bin" -q run --no-wait --dir "$repo/bench/compare/kubelab" --output json > "$1.json"
}
run_chainsaw() {
  chainsaw test --test-dir "$repo/bench/compare/chainsaw" --no-color > "$1.log" 2>&1
}
run_kuttl() { # two suites: 04 shares project-swan with 03, so it runs after it
  local k=$repo/bench/compare/kuttl
  (cd "$out" &&  # kuttl writes ./kubeconfig
   kubectl-kuttl test --config "$k/kuttl-test-a.yaml" "$k/suite-a" &&
   kubectl-kuttl test --config "$k/kuttl-test-b.yaml" "$k/suite-b") > "$1.log" 2>&1
}

ms() { date +%s%3N; }
harnesses=(kubelab chainsaw kuttl kubelab-nowait)
for round in $(seq 0 "$rounds"); do
  line="round $round:"
  [ "$round" != 0 ] || line="round 0 (warm-up):"
  for i in "${!harnesses[@]}"; do
    h=${harnesses[$(((round + i) % ${#harnesses[@]}))]}
    settle
    t0=$(ms)
    if "run_$h" "$out/$h-$round"; then result=ok; else result=FAILED; fi
    wall=$(($(ms) - t0))
    line+=$(printf ' %s %6d ms %s;' "$h" "$wall" "$result")
    if [ "$round" != 0 ]; then
      [ "$result" = ok ] || echo "$h failed in round $round: see $out/$h-$round.*" >&2
      echo "$wall" >> "$out/$h-wall"
      echo "$round $wall" >> "$out/$h-rounds"
    fi
  done
  echo "$line"
  if [ "$round" != 0 ]; then
    jq -r '.labs[].steps[].operations[] | select(.check and .kind != "can-i") | .duration_ms' \
      "$out/kubelab-$round.json" >> "$out/kubelab-probes"
  fi
done

median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
range() { sort -n "$1" | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.1f-%.1f", lo/1000, hi/1000}'; }
pct() { sort -n "$1" | awk -v p="$2" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if (i<1) i=1; print a[i]}'; }
# The ratio of each round's kubelab time to the other's, then the median of those.
paired() { # OTHER [KUBELAB VARIANT]
  join <(sort -k1,1 "$out/${2:-kubelab}-rounds") <(sort -k1,1 "$out/$1-rounds") | awk '{print $2/$3}' | sort -n |
    awk '{a[NR]=$1} END {printf "%.2f [%.2f-%.2f]", a[int((NR+1)/2)], a[1], a[NR]}'
}
echo
printf '%-10s %s\n' harness "median of $rounds (min-max), seconds"
for h in "${harnesses[@]}"; do
  printf '%-10s %.1f (%s)\n' "$h" "$(awk -v m="$(median "$out/$h-wall")" 'BEGIN {print m/1000}')" "$(range "$out/$h-wall")"
done
echo "kubelab / chainsaw: $(paired chainsaw) (goal <= 0.30)"
echo "kubelab / kuttl:    $(paired kuttl) (goal <= 0.50)"
echo "kubelab --no-wait / chainsaw: $(paired chainsaw kubelab-nowait); / kuttl: $(paired kuttl kubelab-nowait)"
echo "kubelab probe in a pod (ms, $(wc -l < "$out/kubelab-probes") probes): p50 $(pct "$out/kubelab-probes" 50)" \
     "p95 $(pct "$out/kubelab-probes" 95) (goal p95 <= 100)"
echo "(outputs: $out)"
