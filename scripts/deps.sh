#!/usr/bin/env bash
# Installs the Debian packages that idmapfs' demo, tests and benchmarks use.
set -euo pipefail
pkgs=(fuse3 uidmap bindfs attr acl libcap2-bin busybox-static fuse-overlayfs squashfs-tools erofs-utils e2fsprogs)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}"
fi
