#!/usr/bin/env bash
# make bench: idmapfs side by side with the source directory itself, a kernel
# idmapped mount, bindfs and fuse-overlayfs, in one run on one backing store.
# Prints min/median/max seconds per workload and target, then speed ratios,
# and writes both tables to bench-results.txt.
#
# Environment (defaults are the sizes of issue 2):
#   BENCH_RUNS=3            runs per cell
#   BENCH_FILE_MB=1024      sequential write/read file size
#   BENCH_CREATE=20000      small files created
#   BENCH_STAT=100000       files stat'ed (cold, then warm)
#   BENCH_READDIR=10000     entries in the readdir directory
#   BENCH_STORE=ramext4     the backing store: ramext4 = a fresh ext4 on a loop device whose
#                           image lives in RAM (/dev/shm): real ext4 code paths without the
#                           virtual disk's noise, which swamps metadata timings on this machine
#                           class; disk = a directory under BENCH_DIR on the machine's disk
#   BENCH_DIR=/var/tmp      where the work directory lives
#   BENCH_TARGETS="native kernel idmapfs idmapfs-wb bindfs fuse-overlayfs"
#   BENCH_OUT=bench-results.txt
set -euo pipefail

cd "$(dirname "$0")/.."
repo="$PWD"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

runs="${BENCH_RUNS:-3}"
file_mb="${BENCH_FILE_MB:-1024}"
n_create="${BENCH_CREATE:-20000}"
n_stat="${BENCH_STAT:-100000}"
n_readdir="${BENCH_READDIR:-10000}"
parent="${BENCH_DIR:-/var/tmp}"
targets=(${BENCH_TARGETS:-native kernel idmapfs idmapfs-wb bindfs fuse-overlayfs})
out="${BENCH_OUT:-$repo/bench-results.txt}"
map=0:100000:65536
workloads=(write read create stat-cold stat-warm readdir-cold readdir-warm untar)

if [ "$(id -u)" != 0 ]; then
	echo "bench: must run as root" >&2
	exit 1
fi

./scripts/deps.sh
tarball="$repo/.cache/rootfs-busybox.tar"
./scripts/rootfs.sh >/dev/null
[ -x bin/idmapfs ] || go build -o bin/ ./cmd/...
go build -o bin/ ./internal/cmd/...
idmapfs="$repo/bin/idmapfs"
fsbench="$repo/bin/fsbench"
idmapped_mount="$repo/bin/idmapped-mount"

store="${BENCH_STORE:-ramext4}"
work="$(mktemp -d "$parent/idmapfs-bench.XXXXXX")"
src="$work/src"          # the backing directory every target shows
mnt="$work/mnt"          # where the target under test is mounted
upper="$work/ovl-upper"  # fuse-overlayfs upper and work directories
ovlwork="$work/ovl-work"
chmod 0755 "$work" # container root (host uid 100000) walks through it

log() { printf '%s\n' "$*" >&2; }

unmount_all() {
	local m
	# Deepest first; anything this script mounted lives under $work.
	while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done < <(awk -v w="$work" '$5 == w || index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
}
cleanup() {
	local rc=$?
	unmount_all
	rm -rf --one-file-system "$work"
	[ -z "$image" ] || rm -f "$image"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

image=""
case "$store" in
ramext4)
	image="$(mktemp /dev/shm/idmapfs-bench.XXXXXX.img)"
	truncate -s $(( file_mb * 3 + 3072 ))M "$image"
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$image"
	mkdir -p "$src"
	mount -o loop "$image" "$src"
	;;
disk) mkdir -p "$src" ;;
*) echo "bench: BENCH_STORE must be ramext4 or disk" >&2; exit 2 ;;
esac
mkdir -p "$mnt" "$upper" "$ovlwork"

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

mount_target() {
	case "$1" in
	native) ;;
	kernel) "$idmapped_mount" "$map" "$src" "$mnt" ;;
	idmapfs) "$idmapfs" mount --daemon --map "$map" "$src" "$mnt" >/dev/null ;;
	idmapfs-wb) "$idmapfs" mount --daemon --writeback --map "$map" "$src" "$mnt" >/dev/null ;;
	bindfs) bindfs --map=0/100000:@0/@100000 "$src" "$mnt" ;;
	fuse-overlayfs)
		# (it warns that it ignores the lazytime option /etc/fuse.conf or mount adds)
		fuse-overlayfs -o "lowerdir=$src,upperdir=$upper,workdir=$ovlwork,uidmapping=$map,gidmapping=$map,allow_other" "$mnt" \
			2> >(grep -v 'unknown argument ignored: lazytime' >&2) ;;
	*) echo "bench: unknown target $1" >&2; return 1 ;;
	esac
}
unmount_target() {
	[ "$1" = native ] && return 0
	umount "$mnt"
	# A FUSE daemon exits after the kernel lets go; wait for the mount to be gone.
	local i
	for i in $(seq 50); do mountpoint -q "$mnt" || return 0; sleep 0.1; done
	echo "bench: $mnt still mounted after umount" >&2
	return 1
}
remount() { unmount_target "$1"; drop_caches; mount_target "$1"; }

# measure TARGET WORKLOAD ARGS...: run a workload through fsbench on the
# target, as the host uid container root is (or as host root on the source
# itself), and record its seconds. A failure is recorded, not fatal: the
# cell reports it and the other cells still run.
declare -A times fails
declare -a errors=()
measure() {
	local t="$1" w="$2"
	shift 2
	local as=()
	[ "$t" = native ] || as=(--as "$map")
	local s
	if s="$("$fsbench" "${as[@]}" "$@" 2>"$work/err")"; then
		times["$t|$w"]+="$s "
		printf ' %s=%.3f' "$w" "$s" >&2
	else
		fails["$t|$w"]=$((${fails["$t|$w"]:-0} + 1))
		errors+=("$t $w (run $r): $(grep -v '^fsbench: exit status' "$work/err" | tail -n 2 | tr '\n' ' ')")
		printf ' %s=FAILED' "$w" >&2
	fi
}

# The trees the read-only workloads use, made once on the backing store.
log "bench: preparing $n_stat files to stat and a $n_readdir-entry directory in $src"
"$fsbench" create "$n_stat" "$src/stat" 0 >/dev/null
"$fsbench" create "$n_readdir" "$src/readdir" 0 >/dev/null
sync

started=$(date +%s)
for ((r = 1; r <= runs; r++)); do
	for t in "${targets[@]}"; do
		d="$src"
		[ "$t" = native ] || d="$mnt"
		printf '[run %d/%d] %-14s' "$r" "$runs" "$t" >&2
		mkdir "$src/untar"
		# Each group gets a fresh mount and cold caches, so that what one
		# workload leaves cached does not help or hinder the next.
		drop_caches
		mount_target "$t"
		measure "$t" write exec dd if=/dev/zero of="$d/big" bs=1M count="$file_mb" conv=fsync status=none
		drop_caches
		measure "$t" read exec dd if="$d/big" of=/dev/null bs=1M status=none
		remount "$t"
		measure "$t" create create "$n_create" "$d/create"
		remount "$t"
		measure "$t" untar exec tar -xf "$tarball" -C "$d/untar"
		remount "$t"
		measure "$t" stat-cold stat "$n_stat" "$d/stat"
		measure "$t" stat-warm stat "$n_stat" "$d/stat"
		remount "$t"
		measure "$t" readdir-cold readdir "$d/readdir"
		measure "$t" readdir-warm readdir "$d/readdir"
		unmount_target "$t"
		rm -rf "$src/big" "$src/create" "$src/untar"
		find "$upper" "$ovlwork" -mindepth 1 -delete
		echo >&2
	done
done
elapsed=$(($(date +%s) - started))

# stats "v1 v2 ...": prints "min median max".
stats() {
	tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk '
		{ v[NR] = $1 }
		END {
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%s %s %s\n", v[1], m, v[NR]
		}'
}
declare -A med
for t in "${targets[@]}"; do
	for w in "${workloads[@]}"; do
		m=-
		if [ -z "${fails[$t|$w]:-}" ] && [ -n "${times[$t|$w]:-}" ]; then
			read -r _ m _ < <(stats "${times[$t|$w]}")
		fi
		med["$t|$w"]=$m
	done
done
has() { local x; for x in "${targets[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }
# ratio A B: how many times faster A is than B (B's median / A's median).
ratio() { awk -v a="${med[$1|$3]}" -v b="${med[$2|$3]}" 'BEGIN { if (a != "-" && b != "-" && a > 0) printf "%.2f", b / a; else print "-" }'; }

# secs S: seconds, to 3 or 4 significant places.
secs() { awk -v v="$1" 'BEGIN { f = v >= 10 ? "%.1f" : v >= 1 ? "%.2f" : v >= 0.01 ? "%.3f" : "%.4f"; printf f, v }'; }
# ratio_table REF T...: a row per workload, a column per target T, REF's
# median over T's: how fast T is relative to REF.
ratio_table() {
	local ref="$1" w t
	shift
	printf '%-13s' workload
	for t in "$@"; do printf ' %14s' "$t"; done
	echo
	for w in "${workloads[@]}"; do
		printf '%-13s' "$w"
		for t in "$@"; do printf ' %14s' "$(ratio "$t" "$ref" "$w")"; done
		echo
	done
}
# ratio_table_rev SUBJECT T...: how fast SUBJECT is relative to each T.
ratio_table_rev() {
	local subj="$1" w t
	shift
	printf '%-13s' workload
	for t in "$@"; do printf ' %14s' "vs $t"; done
	echo
	for w in "${workloads[@]}"; do
		printf '%-13s' "$w"
		for t in "$@"; do printf ' %14s' "$(ratio "$subj" "$t" "$w")"; done
		echo
	done
}

fuse_kind() {
	case "$1" in
	idmapfs) echo "FUSE passthrough for file I/O" ;;
	idmapfs-wb) echo "--writeback: kernel writeback cache, no passthrough" ;;
	bindfs) echo "--map=0/100000:@0/@100000, its defaults (allow_other as root)" ;;
	fuse-overlayfs) echo "lowerdir=source, upper/work beside it, uidmapping/gidmapping=$map" ;;
	kernel) echo "mount_setattr(MOUNT_ATTR_IDMAP), bin/idmapped-mount" ;;
	native) echo "the backing directory itself, as host root" ;;
	esac
}

report() {
	local fs
	if [ "$store" = ramext4 ]; then
		fs="a fresh ext4 on a loop device whose image is in RAM (/dev/shm)"
	else
		fs="a directory under $parent on the machine's disk ($(findmnt -n -o FSTYPE,SOURCE --target "$parent" | tr -s ' '))"
	fi
	echo "idmapfs benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || true)"
	echo "machine: $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r)"
	echo "backing store: $fs"
	echo "runs: $runs per cell; each workload group on a fresh mount with caches dropped; ${elapsed}s in all"
	echo "open-file limit here: $(ulimit -Sn) soft, $(ulimit -Hn) hard"
	echo "workloads run as container root (host uid 100000, a user namespace mapped $map) on every"
	echo "mapped target, as host root on native. Map $map (bindfs: uid/gid 0 only, as in the issue)."
	echo
	echo "targets:"
	for t in "${targets[@]}"; do printf '  %-15s %s\n' "$t" "$(fuse_kind "$t")"; done
	echo
	echo "workloads:"
	echo "  write         dd if=/dev/zero of=big bs=1M count=$file_mb conv=fsync"
	echo "  read          dd if=big of=/dev/null bs=1M, caches dropped first"
	echo "  create        $n_create files of 1 KiB, open(O_CREAT|O_EXCL)+write+close each (bin/fsbench)"
	echo "  stat-cold     lstat of $n_stat files by name, fresh mount and caches dropped (bin/fsbench)"
	echo "  stat-warm     the same again, same mount"
	echo "  readdir-cold  all names of a $n_readdir-entry directory (getdents), fresh mount, caches dropped"
	echo "  readdir-warm  the same again"
	echo "  untar         tar -xf .cache/rootfs-busybox.tar ($(tar -tf "$tarball" | wc -l) entries, $(($(stat -c %s "$tarball") / 1024)) KiB)"
	echo
	echo "seconds, min/median/max of $runs runs:"
	printf '%-13s' workload
	for t in "${targets[@]}"; do printf ' %20s' "$t"; done
	echo
	for w in "${workloads[@]}"; do
		printf '%-13s' "$w"
		for t in "${targets[@]}"; do
			if [ -n "${fails[$t|$w]:-}" ]; then
				printf ' %20s' "FAILED ${fails[$t|$w]}/$runs"
			else
				read -r lo m hi < <(stats "${times[$t|$w]}")
				printf ' %20s' "$(secs "$lo")/$(secs "$m")/$(secs "$hi")"
			fi
		done
		echo
	done
	if [ ${#errors[@]} -gt 0 ]; then
		echo
		echo "failures (a FAILED cell has no median; its ratios show -):"
		printf '  %s\n' "${errors[@]}" | sort -u -k1,2 | head -n 20
	fi
	local cols=() i o
	if has native; then
		for t in "${targets[@]}"; do [ "$t" = native ] || cols+=("$t"); done
		echo
		echo "speed vs native (native median / target median; 1.00 = native speed, 0.50 = half):"
		ratio_table native "${cols[@]}"
	fi
	for i in idmapfs idmapfs-wb; do
		has "$i" || continue
		cols=()
		for o in kernel bindfs fuse-overlayfs idmapfs idmapfs-wb; do [ "$o" != "$i" ] && has "$o" && cols+=("$o"); done
		[ ${#cols[@]} -gt 0 ] || continue
		echo
		echo "speed of $i vs each (other's median / $i median; > 1.00: $i is faster):"
		ratio_table_rev "$i" "${cols[@]}"
	done
	targets_check
}

# The issue's targets, judged from the medians above.
targets_check() {
	local i
	for i in idmapfs idmapfs-wb; do
		has "$i" || continue
		echo
		echo "issue 2 targets for $i:"
		verdict() { awk -v v="$2" -v min="$3" 'BEGIN { exit !(v != "-" && v + 0 >= min) }' && s=ok || s=MISS; printf '  %-4s %-58s %s\n' "$s" "$1" "$2"; }
		local w
		if has kernel; then
			for w in write read; do verdict "$w: >= 0.9x kernel idmapped" "$(ratio "$i" kernel "$w")" 0.9; done
		fi
		if has native; then
			for w in stat-warm readdir-warm; do verdict "$w: >= 0.7x native" "$(ratio "$i" native "$w")" 0.7; done
			for w in untar create; do verdict "$w: >= 0.15x native" "$(ratio "$i" native "$w")" 0.15; done
		fi
		if has fuse-overlayfs; then
			for w in untar create; do verdict "$w: ahead of fuse-overlayfs" "$(ratio "$i" fuse-overlayfs "$w")" 1.0; done
		fi
		if has bindfs; then
			for w in "${workloads[@]}"; do verdict "$w: faster than bindfs" "$(ratio "$i" bindfs "$w")" 1.0; done
		fi
	done
}

echo >&2
report | tee "$out"
log "bench: written to $out"
