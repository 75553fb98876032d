#!/usr/bin/env bash
# Builds the upstream binaries kubelab runs, from the Go module proxy, into a cache
# outside the repository keyed by version. A second run builds nothing.
#
#   controlplane/build.sh [--print-dir] [COMPONENT...]
#
# COMPONENT: etcd kube-apiserver kube-controller-manager kubectl kind (the default set),
# kube-scheduler kube-proxy kubelet coredns (for --node), or "all"; "harnesses" builds
# chainsaw and kubectl-kuttl for bench/compare.sh (not part of "all": the tests never run
# them). Environment: KUBELAB_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/kubelab),
# GOFLAGS/GOPROXY as usual for Go.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache=${KUBELAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubelab}
out="$cache/bin/$KUBERNETES_VERSION"

print_dir=false
components=()
for arg in "$@"; do
  case "$arg" in
    --print-dir) print_dir=true ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    all) components+=(etcd kube-apiserver kube-controller-manager kubectl kube-scheduler kube-proxy kubelet kind coredns) ;;
    node) components+=(kube-scheduler kube-proxy kubelet coredns) ;;
    harnesses) components+=(chainsaw kubectl-kuttl) ;;
    chainsaw|kubectl-kuttl) components+=("$arg") ;;
    etcd|kube-apiserver|kube-controller-manager|kubectl|kube-scheduler|kube-proxy|kubelet|kind|coredns) components+=("$arg") ;;
    *) echo "build.sh: unknown component or flag '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
if $print_dir; then echo "$out"; exit 0; fi
[ ${#components[@]} -gt 0 ] || components=(etcd kube-apiserver kube-controller-manager kubectl kind)

check_pin() { # module file, module path, version
  grep -qE "^[[:space:]]*(require[[:space:]]+)?$2 $3\b" "$1" ||
    { echo "build.sh: $1 does not require $2 $3 (versions.env and go.mod disagree)" >&2; exit 2; }
}
check_pin "$here/kubernetes/go.mod" k8s.io/kubernetes "$KUBERNETES_VERSION"
check_pin "$here/etcd/go.mod" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
check_pin "$here/kind/go.mod" sigs.k8s.io/kind "$KIND_VERSION"
check_pin "$here/coredns/go.mod" github.com/coredns/coredns "$COREDNS_VERSION"
check_pin "$here/chainsaw/go.mod" github.com/kyverno/chainsaw "$CHAINSAW_VERSION"
check_pin "$here/kuttl/go.mod" github.com/kudobuilder/kuttl "$KUTTL_VERSION"

mkdir -p "$out"
# Half-built output of an interrupted or failed build goes away with this script.
tmp_dirs=()
trap 'rm -rf "${tmp_dirs[@]}"' EXIT
# A stamp beside each binary records the version it was built from; a binary without a
# matching stamp (missing, interrupted, or built from another pin) is built again.
stamp_ok() { [ -x "$out/$1" ] && [ "$(cat "$out/.$1.version" 2>/dev/null)" = "$2" ]; }

export CGO_ENABLED=0
build_flags=(-trimpath -tags selinux,notest,grpcnotrace)

kube_pkgs=()
own_module=() # components built from a module of their own: "name|version|dir|package|ldflags|toolchain"
for c in "${components[@]}"; do
  case "$c" in
    etcd) stamp_ok etcd "$ETCD_VERSION" ||
      own_module+=("etcd|$ETCD_VERSION|etcd|go.etcd.io/etcd/server/v3|-X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION") ;;
    kind) stamp_ok kind "$KIND_VERSION" ||
      own_module+=("kind|$KIND_VERSION|kind|sigs.k8s.io/kind|") ;;
    coredns) stamp_ok coredns "$COREDNS_VERSION" ||
      own_module+=("coredns|$COREDNS_VERSION|coredns|github.com/coredns/coredns|") ;;
    # Go 1.26 cannot build Chainsaw v0.2.12 (its TestDeps lacks ModulePath()): both
    # harnesses are built with the Go release they were made with, from the module proxy.
    chainsaw) stamp_ok chainsaw "$CHAINSAW_VERSION" ||
      own_module+=("chainsaw|$CHAINSAW_VERSION|chainsaw|github.com/kyverno/chainsaw||$HARNESS_GO") ;;
    kubectl-kuttl) stamp_ok kubectl-kuttl "$KUTTL_VERSION" ||
      own_module+=("kubectl-kuttl|$KUTTL_VERSION|kuttl|github.com/kudobuilder/kuttl/cmd/kubectl-kuttl||$HARNESS_GO") ;;
    *) stamp_ok "$c" "$KUBERNETES_VERSION" || kube_pkgs+=("k8s.io/kubernetes/cmd/$c") ;;
  esac
done

if [ ${#own_module[@]} -eq 0 ] && [ ${#kube_pkgs[@]} -eq 0 ]; then
  echo "$out"   # everything is cached
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: Go is not installed. Install Go >= 1.25 (https://go.dev/dl/), or point" >&2
  echo "KUBELAB_ASSETS at a directory holding etcd, kube-apiserver, kube-controller-manager, kubectl." >&2
  exit 3
fi

for entry in "${own_module[@]}"; do
  IFS='|' read -r name version dir pkg ldflags toolchain <<<"$entry"
  echo "building $name $version ..." >&2
  start=$SECONDS
  tmp=$(mktemp -d "$out/.build.XXXXXX"); tmp_dirs+=("$tmp")
  (cd "$here/$dir" && GOTOOLCHAIN=${toolchain:-$(go env GOTOOLCHAIN)} go build "${build_flags[@]}" -ldflags "-s -w $ldflags" -o "$tmp/$name" "$pkg")
  mv "$tmp/$name" "$out/$name"
  echo "$version" > "$out/.$name.version"
  echo "✓ $name $version ($((SECONDS - start))s)" >&2
done

if [ ${#kube_pkgs[@]} -gt 0 ]; then
  minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  # The same ldflags Kubernetes' hack/lib/version.sh sets; without them /version says v0.0.0.
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "building ${kube_pkgs[*]##*/} $KUBERNETES_VERSION (cold: about 6 min on 2 cores) ..." >&2
  start=$SECONDS
  tmp=$(mktemp -d "$out/.build.XXXXXX"); tmp_dirs+=("$tmp")
  (cd "$here/kubernetes" && go build "${build_flags[@]}" -ldflags "$ld" -o "$tmp/" "${kube_pkgs[@]}")
  for pkg in "${kube_pkgs[@]}"; do
    name=${pkg##*/}
    mv "$tmp/$name" "$out/$name"
    echo "$KUBERNETES_VERSION" > "$out/.$name.version"
  done
  echo "✓ ${kube_pkgs[*]##*/} $KUBERNETES_VERSION ($((SECONDS - start))s)" >&2
fi

echo "$out"
