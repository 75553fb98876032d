#!/usr/bin/env bash
# Builds the upstream binaries kubelab runs into the cache, keyed by version: a thin
# wrapper around `kubelab setup`, which holds the recipe (the pinned go.mod/go.sum
# files beside this script, compiled into kubelab). A second run builds nothing.
# Prints the cache directory on stdout.
#
#   controlplane/build.sh [--print-dir] [COMPONENT...]
#
# COMPONENT: etcd kube-apiserver kube-controller-manager kubectl kind (the default set),
# kube-scheduler kube-proxy kubelet coredns (node), or "all"; "harnesses" builds
# chainsaw and kubectl-kuttl for bench/compare.sh. Environment: KUBELAB_CACHE (default
# ${XDG_CACHE_HOME:-~/.cache}/kubelab), GOFLAGS/GOPROXY as usual for Go.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${KUBELAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubelab}
out="$cache/bin/$KUBERNETES_VERSION"

for arg in "$@"; do
  case "$arg" in
    --print-dir) echo "$out"; exit 0 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  esac
done
cargo run --quiet --release --locked --manifest-path "$here/../Cargo.toml" -- setup "$@" >&2
echo "$out"
