#!/usr/bin/env bash
# Everything the tests need on a fresh Debian machine: the Debian packages (when run
# as root, or with sudo), then `kubelab setup --node`: every upstream binary and the
# local node's images (cached by version).
#
#   controlplane/setup.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Program -> Debian package, for what the local node and the probes run.
packages=()
need() { command -v "$1" >/dev/null 2>&1 || packages+=("$2"); }
need curl curl
need containerd containerd
need runc runc
need iptables iptables
need ip iproute2
need conntrack conntrack
need umoci umoci
need busybox busybox-static
need gcc gcc
[ -x /usr/lib/cni/bridge ] || packages+=(containernetworking-plugins)
[ -f /etc/ssl/certs/ca-certificates.crt ] || packages+=(ca-certificates)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ ! -d /usr/lib/x86_64-linux-gnu ] || packages+=(libc6-dev)
if [ ${#packages[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing ${packages[*]} ..." >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi

cargo run --quiet --release --locked --manifest-path "$here/../Cargo.toml" -- setup --node
