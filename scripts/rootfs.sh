#!/usr/bin/env bash
# Builds a root-owned busybox root filesystem from Debian's busybox-static
# package and caches it, with a tarball of it for the benchmarks:
#
#   .cache/rootfs-busybox/          the tree (owned 0:0 on disk)
#   .cache/rootfs-busybox.tar       the same tree as a tarball (numeric ids)
#   .cache/rootfs-busybox.version   what it was built from (the cache key)
#
# busybox has no setcap/getcap, so the host's (libcap2-bin) are copied in at
# their paths, with the shared libraries and dynamic loader ldd names, for
# the demo's file-capability part. The cache is rebuilt when the
# busybox-static version apt offers changes, when any of those host files
# changes, or when this script's layout revision below changes.
#
# Usage: scripts/rootfs.sh [DEST]
#   Without DEST, prints the cached tree's path. With DEST (a path that does
#   not exist yet), copies the cached tree there and prints DEST.
set -euo pipefail

cd "$(dirname "$0")/.."
cache="$PWD/.cache"
tree="$cache/rootfs-busybox"
tarball="$cache/rootfs-busybox.tar"
stamp="$cache/rootfs-busybox.version"

log() { echo "rootfs: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
	echo "rootfs: must run as root (the tree is owned by uid 0 on disk)" >&2
	exit 1
fi

# Bump when the tree's layout changes, so that old caches are rebuilt.
layout=2

# The version apt would download; empty when apt has no lists yet.
candidate() {
	apt-cache policy busybox-static 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'
}

# The host files copied into the tree: setcap and getcap, then the shared
# libraries and the dynamic loader they need, as ldd names them (each once).
host_files() {
	local tool
	for tool in setcap getcap; do
		tool="$(PATH=/usr/sbin:/sbin:/usr/bin:/bin command -v "$tool")" ||
			{ echo "rootfs: no $tool on the host (apt-get install libcap2-bin)" >&2; return 1; }
		echo "$tool"
		{ ldd "$tool" 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
	done | awk '!seen[$0]++'
}

# The cache key: busybox-static version, layout revision, and the checksum
# of every host file copied in.
stamp_of() { # stamp_of BUSYBOX_VERSION
	echo "busybox-static $1"
	echo "layout $layout"
	xargs -d '\n' sha256sum <<<"$files"
}

files="$(host_files)"
version="$(candidate)"
want=""
[ -n "$version" ] && want="$(stamp_of "$version")"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ -n "$want" ] && [ "$want" = "$have" ] && [ -x "$tree/bin/busybox" ] && [ -f "$tarball" ]; then
	log "cached: $tree (busybox-static $version)"
else
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	log "building from Debian's busybox-static package"
	# apt-get download writes into the current directory; as root it may
	# warn that the sandbox user cannot write there, which is harmless.
	if ! (cd "$tmp" && apt-get download -q busybox-static >/dev/null 2>&1); then
		log "apt-get download failed; running apt-get update first"
		apt-get update -qq
		(cd "$tmp" && apt-get download -q busybox-static >/dev/null)
	fi
	deb="$(ls "$tmp"/busybox-static_*.deb)"
	version="$(dpkg-deb -f "$deb" Version)"
	root="$tmp/root"
	mkdir "$root"
	dpkg -x "$deb" "$root"
	[ -x "$root/bin/busybox" ] || { echo "rootfs: $deb has no bin/busybox" >&2; exit 1; }

	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,dev,sys,home,var/tmp,run}
	chmod 0700 "$root/root"
	chmod 1777 "$root/tmp" "$root/var/tmp"
	# One symbolic link per applet, all in /bin (on PATH for every user).
	n=0
	for applet in $("$root/bin/busybox" --list); do
		[ "$applet" = busybox ] && continue
		[ -e "$root/bin/$applet" ] || [ -L "$root/bin/$applet" ] && continue
		ln -s busybox "$root/bin/$applet"
		n=$((n + 1))
	done
	cat >"$root/etc/passwd" <<-'EOF'
	root:x:0:0:root:/root:/bin/sh
	user:x:1000:1000:user:/home/user:/bin/sh
	nobody:x:65534:65534:nobody:/nonexistent:/bin/false
	EOF
	cat >"$root/etc/group" <<-'EOF'
	root:x:0:
	user:x:1000:
	nogroup:x:65534:
	EOF
	echo idmapfs >"$root/etc/hostname"
	echo "busybox $version, a shiftlock demo rootfs" >"$root/etc/motd"
	chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/hostname" "$root/etc/motd"
	# setcap, getcap and what they load, at the same paths as on the host
	# (file contents; symbolic links on the way are not reproduced).
	while IFS= read -r f; do
		mkdir -p "$root$(dirname "$f")"
		cp -L --preserve=mode,timestamps "$f" "$root$f"
	done <<<"$files"
	for tool in $(grep -E '/(setcap|getcap)$' <<<"$files"); do
		chroot "$root" "$tool" -h >/dev/null 2>&1 ||
			{ echo "rootfs: the copied $tool does not run in the tree" >&2; exit 1; }
	done
	chown -R -h 0:0 "$root"

	tar -C "$root" --numeric-owner -cf "$tmp/rootfs.tar" .
	mkdir -p "$cache"
	rm -rf "$tree" "$tarball" "$stamp"
	mv "$root" "$tree"
	mv "$tmp/rootfs.tar" "$tarball"
	stamp_of "$version" >"$stamp"
	log "built $tree (busybox-static $version, $n applet links, setcap/getcap) and $tarball"
fi

dest="${1:-}"
if [ -z "$dest" ] || [ "$(realpath -m "$dest")" = "$tree" ]; then
	echo "$tree"
	exit 0
fi
if [ -e "$dest" ]; then
	echo "rootfs: $dest already exists; give a new path" >&2
	exit 1
fi
mkdir -p "$(dirname "$dest")"
cp -a "$tree" "$dest"
echo "$(realpath "$dest")"
