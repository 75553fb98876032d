#!/usr/bin/env bash
# Runs labs 01-05 with kubelab and with the plain shell baseline (bench/baseline.sh)
# on the same running local cluster, ROUNDS times each, alternating, and prints both
# wall times, their ratio, and per-probe p50/p95 (target, issue 3: kubelab <= 0.5x);
# then the whole default suite's and the conformance suite's wall times, and the
# slowest conformance lab.
#
#   bench/labs.sh [ROUNDS]        (default 3; builds kubelab --release; needs jq)
set -euo pipefail
rounds=${1:-3}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v jq >/dev/null || { echo "needs jq: apt-get install jq" >&2; exit 3; }
cargo build --release --quiet
bin=$PWD/target/release/kubelab
out=$(mktemp -d /tmp/kubelab-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT
export NO_COLOR=1

started_cluster=false
if ! "$bin" cluster status >/dev/null 2>&1; then
  "$bin" -q cluster up >/dev/null
  started_cluster=true
fi
cleanup() { $started_cluster && "$bin" -q cluster down || true; rm -rf "$out"; }
trap cleanup EXIT
export KUBECONFIG
KUBECONFIG=$("$bin" cluster kubeconfig)
port=$("$bin" cluster status -o json | jq '.components[] | select(.component == "kube-apiserver") | .port')
export KUBECTL
KUBECTL=$(jq -r .kubectl "$(dirname "$KUBECONFIG")/cluster.json")

ms() { date +%s%3N; }
for round in $(seq "$rounds"); do
  t0=$(ms)
  # Labs 01-05: what the shell baseline does too (kubelab also sets each up and solves it).
  "$bin" -q run 01 02 03 04 05 --output json > "$out/kubelab-$round.json"
  t1=$(ms)
  bench/baseline.sh "$port" > "$out/baseline-$round.txt"
  t2=$(ms)
  echo "$((t1 - t0))" >> "$out/kubelab-wall"
  echo "$((t2 - t1))" >> "$out/baseline-wall"
  passed=$(jq '[.labs[] | select(.outcome == "passed")] | length' "$out/kubelab-$round.json")
  ok=$(grep -c ' ok$' "$out/baseline-$round.txt" || true)
  total=$(jq '.labs | length' "$out/kubelab-$round.json")
  printf 'round %d: kubelab %5d ms (%d/%d labs passed)   baseline %5d ms (%d/32 probes ok)\n' \
    "$round" "$((t1 - t0))" "$passed" "$total" "$((t2 - t1))" "$ok"
  jq -r '.labs[].steps[].operations[] | select(.check) | .duration_ms' "$out/kubelab-$round.json" >> "$out/kubelab-probes"
  jq -r '.labs[].steps[].operations[] | select(.check) | "\(.kind) \(.duration_ms)"' "$out/kubelab-$round.json" >> "$out/kubelab-probe-kinds"
  jq -r '.labs[] | "\(.duration_ms) \(.folder)"' "$out/kubelab-$round.json" >> "$out/seed-labs"
  t3=$(ms)
  "$bin" -q run --output json > "$out/seed-$round.json" || true
  t35=$(ms)
  printf '         the default suite %5d ms (%d/%d labs passed)\n' "$((t35 - t3))" \
    "$(jq '[.labs[] | select(.outcome == "passed")] | length' "$out/seed-$round.json")" \
    "$(jq '.labs | length' "$out/seed-$round.json")"
  t3=$(ms)
  "$bin" -q run --suite conformance --output json > "$out/conformance-$round.json" || true
  t4=$(ms)
  echo "$((t4 - t3))" >> "$out/conformance-wall"
  jq -r '.labs[] | "\(.duration_ms) \(.folder)"' "$out/conformance-$round.json" >> "$out/conformance-labs"
  printf '         conformance suite %5d ms (%d/16 labs passed, %d skipped)\n' "$((t4 - t3))" \
    "$(jq '[.labs[] | select(.outcome == "passed")] | length' "$out/conformance-$round.json")" \
    "$(jq '[.labs[] | select(.outcome == "skipped")] | length' "$out/conformance-$round.json")"
  awk '/^probe / {print $3}' "$out/baseline-$round.txt" >> "$out/baseline-probes"
done

# The five seed labs without waiting for the namespace controller (run --no-wait); the
# namespaces it leaves terminating are let go (untimed) before the next round.
for round in $(seq "$rounds"); do
  t0=$(ms)
  "$bin" -q run --no-wait 01 02 03 04 05 --output json > "$out/nowait-$round.json"
  echo "$(($(ms) - t0))" >> "$out/nowait-wall"
  while kubectl_ns=$("$KUBECTL" get namespaces --no-headers 2>/dev/null | grep -c Terminating) && [ "$kubectl_ns" -gt 0 ]; do sleep 0.5; done
done

median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
pct() { sort -n "$1" | awk -v p="$2" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if (i<1) i=1; print a[i]}'; }
k=$(median "$out/kubelab-wall"); b=$(median "$out/baseline-wall")
echo
echo "wall time, median of $rounds: kubelab $k ms, shell baseline $b ms, ratio $(awk -v k="$k" -v b="$b" 'BEGIN {printf "%.2f", k/b}') (target <= 0.50)"
echo "five seed labs, median of $rounds: $k ms (goal <= 1500, issue 12; namespaces removed and checked gone)"
echo "per probe (ms): kubelab p50 $(pct "$out/kubelab-probes" 50) p95 $(pct "$out/kubelab-probes" 95) (goal p95 <= 30);" \
     "baseline p50 $(pct "$out/baseline-probes" 50) p95 $(pct "$out/baseline-probes" 95)"
echo "five seed labs with --no-wait, median of $rounds: $(median "$out/nowait-wall") ms (cleanup checked, namespaces left terminating)"
# The probes' tail by kind: kubectl and logs probes start the real kubectl (its own
# start-up is tens of ms); http, file and can-i are requests kubelab makes itself.
for kinds in "http file can-i assert events" "kubectl logs exec"; do
  awk -v k=" $kinds " 'index(k, " " $1 " ") {print $2}' "$out/kubelab-probe-kinds" > "$out/kind-probes"
  [ -s "$out/kind-probes" ] && echo "  $kinds: $(wc -l < "$out/kind-probes") probes, p50 $(pct "$out/kind-probes" 50) p95 $(pct "$out/kind-probes" 95) ms"
done
slowest_seed=$(sort -n "$out/seed-labs" | tail -1)
slowest_conformance=$(sort -n "$out/conformance-labs" | tail -1)
echo "conformance suite, median of $rounds: $(median "$out/conformance-wall") ms; slowest lab $slowest_conformance, slowest seed lab $slowest_seed:" \
  "$(awk -v c="${slowest_conformance%% *}" -v s="${slowest_seed%% *}" 'BEGIN {printf "%.2fx (goal <= 2x) %s", c/s, (c <= 2*s ? "met" : "NOT met")}')"
echo "(kubelab runs a step's probes side by side and labs in parallel where namespaces allow;"
echo " the baseline mints each pod's token once, like kubelab, and runs everything in sequence)"
