#!/usr/bin/env bash
# Builds the container images the local node runs, without any registry: OCI image
# archives made with umoci from files on this machine, cached outside the repository.
#
#   controlplane/images.sh [--print-dir]
#
#   pause    a static pause program (images/pause.c) for pod sandboxes
#   curl     Debian's curl with the libraries it links, CA certificates, busybox (sh,
#            sleep, test, cat, hostname, ...): what the labs' probe pods need
#   kubectl  the kubectl that controlplane/build.sh built, and CA certificates
#
# Each archive is imported into the node's containerd under the name the lab pods use
# (images.list: archive and name), so no pod ever pulls. Needs: gcc, umoci,
# busybox-static, curl, ca-certificates (Debian packages), and kubectl (`kubelab setup`, or KUBECTL=).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/versions.env"
cache=${KUBELAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubelab}
out="$cache/images/$KUBERNETES_VERSION"
if [ "${1:-}" = "--print-dir" ]; then echo "$out"; exit 0; fi

# The names lab pods use (keep in step with src/images.rs and the lab manifests).
PAUSE_IMAGE=kubelab.local/pause:1.0
CURL_IMAGE=docker.io/curlimages/curl:8.11.1
KUBECTL_IMAGE=registry.k8s.io/kubectl:$KUBERNETES_VERSION

for tool in gcc umoci busybox curl; do
  command -v "$tool" >/dev/null || { echo "images.sh: $tool is missing (apt-get install gcc umoci busybox-static curl)" >&2; exit 3; }
done
kubectl=${KUBECTL:-$("$here/build.sh" --print-dir)/kubectl}
[ -x "$kubectl" ] || { echo "images.sh: no kubectl at $kubectl: run \`kubelab setup kubectl\` first" >&2; exit 3; }

# Rebuild when any input changes: this script, pause.c, curl, busybox, kubectl.
stamp=$(cat "$0" "$here/images/pause.c" "$(command -v curl)" "$(command -v busybox)" "$kubectl" | sha256sum | cut -c1-16)
if [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ] && [ -f "$out/images.list" ]; then
  echo "$out"
  exit 0
fi

mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# image ARCHIVE REFERENCE ENTRYPOINT: packs $work/rootfs into $out/ARCHIVE.tar, an OCI
# layout whose tag is REFERENCE's (containerd imports it under base name + that tag).
image() {
  local name=$1 tag=${2##*:} entrypoint=$3 layout="$work/oci-$1"
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci unpack --image "$layout:$tag" "$work/bundle"
  cp -a "$work/rootfs/." "$work/bundle/rootfs/"
  umoci repack --image "$layout:$tag" "$work/bundle"
  umoci config --image "$layout:$tag" \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.entrypoint "$entrypoint"
  umoci gc --layout "$layout"
  tar -C "$layout" -cf "$out/$name.tar.tmp" . && mv "$out/$name.tar.tmp" "$out/$name.tar"
  rm -rf "$work/bundle" "$work/rootfs"
}

start=$SECONDS
mkdir -p "$work/rootfs"
gcc -static -Os -o "$work/rootfs/pause" "$here/images/pause.c"
strip "$work/rootfs/pause"
image pause "$PAUSE_IMAGE" /pause

# curl and every library it loads, at the same paths; busybox for the shell tools.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc/ssl/certs" "$work/rootfs/tmp"
chmod 1777 "$work/rootfs/tmp"
cp -L --parents "$(command -v curl)" "$work/rootfs/"
ldd "$(command -v curl)" | grep -o '/[^ ]*' | sort -u | while read -r lib; do cp -L --parents "$lib" "$work/rootfs/"; done
cp /etc/ssl/certs/ca-certificates.crt "$work/rootfs/etc/ssl/certs/"
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for tool in sh sleep test cat ls hostname env echo id grep head tail wc stat printf sed tr base64 mkdir rm; do ln -s busybox "$work/rootfs/bin/$tool"; done
image curl "$CURL_IMAGE" /bin/sh

mkdir -p "$work/rootfs/usr/local/bin" "$work/rootfs/etc/ssl/certs" "$work/rootfs/tmp"
chmod 1777 "$work/rootfs/tmp"
cp "$kubectl" "$work/rootfs/usr/local/bin/kubectl"
cp /etc/ssl/certs/ca-certificates.crt "$work/rootfs/etc/ssl/certs/"
image kubectl "$KUBECTL_IMAGE" /usr/local/bin/kubectl

printf '%s %s\n' pause.tar "$PAUSE_IMAGE" curl.tar "$CURL_IMAGE" kubectl.tar "$KUBECTL_IMAGE" > "$out/images.list"
echo "$stamp" > "$out/.stamp"
echo "✓ images pause, curl, kubectl in $out ($((SECONDS - start))s)" >&2
echo "$out"
