#!/usr/bin/env bash
# make bench: idmapfs side by side with the source directory itself, a kernel
# idmapped mount, bindfs and fuse-overlayfs (the plain suite), and idmapfs'
# overlay mode side by side with the kernel's overlayfs over idmapped layers
# and fuse-overlayfs (the overlay suite), in one run on one backing store.
# Prints min/median/max seconds per workload and target, then speed ratios,
# and writes the tables to bench-results.txt.
#
# Environment (defaults are the sizes of issues 2 and 3):
#   BENCH_SUITES="plain overlay sed"  which suites run (sed: the Go benchmarks of sedsim,
#                           the TCG library and unlock on resume, go test -bench)
#   BENCH_GO_TIME=2s        -benchtime of the sed suite
#   BENCH_RUNS=3            runs per cell
#   BENCH_FILE_MB=1024      sequential write/read file size; the overlay's large lower file
#   BENCH_CREATE=20000      small files created
#   BENCH_STAT=100000       files stat'ed (cold, then warm)
#   BENCH_READDIR=10000     entries in the readdir directory
#   BENCH_STORE=ramext4     the backing store: ramext4 = a fresh ext4 on a loop device whose
#                           image lives in RAM (/dev/shm): real ext4 code paths without the
#                           virtual disk's noise, which swamps metadata timings on this machine
#                           class; disk = a directory under BENCH_DIR on the machine's disk
#   BENCH_DIR=/var/tmp      where the work directory lives
#   BENCH_TARGETS="native kernel idmapfs idmapfs-wb bindfs fuse-overlayfs"
#   BENCH_OVL_TARGETS="ovl-kernel ovl-idmapfs ovl-fuse-overlayfs ovl-kernel-sqfs ovl-idmapfs-sqfs"
#                           (*-sqfs: over squashfs images of the same lowers)
#   BENCH_OVL_PROFILE=DIR   write a pprof CPU profile of every ovl-idmapfs* daemon to
#                           DIR/TARGET-WORKLOAD-rRUN.pprof (one mount per workload group)
#   BENCH_OUT=bench-results.txt
#
# A quick run of the overlay suite alone:
#   BENCH_SUITES=overlay BENCH_RUNS=1 BENCH_FILE_MB=128 BENCH_CREATE=2000 BENCH_STAT=10000 \
#   BENCH_READDIR=2000 ./scripts/bench.sh
set -euo pipefail

cd "$(dirname "$0")/.."
repo="$PWD"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

suites=(${BENCH_SUITES:-plain overlay sed})
go_time="${BENCH_GO_TIME:-2s}"
# The sed suite: every package with benchmarks of the drive side (sedsim's
# media, socket and exposed file, each beside its plain reference) and of
# unlocking (exchanges and time, one and two ranges, resume).
sed_pkgs=(./sim/ ./sim/wire/ ./cmd/sedsim/ ./tcg/opal/)
[ -d internal/resume ] && sed_pkgs+=(./internal/resume/)
runs="${BENCH_RUNS:-3}"
file_mb="${BENCH_FILE_MB:-1024}"
n_create="${BENCH_CREATE:-20000}"
n_stat="${BENCH_STAT:-100000}"
n_readdir="${BENCH_READDIR:-10000}"
parent="${BENCH_DIR:-/var/tmp}"
targets=(${BENCH_TARGETS:-native kernel idmapfs idmapfs-wb bindfs fuse-overlayfs})
ovl_targets=(${BENCH_OVL_TARGETS:-ovl-kernel ovl-idmapfs ovl-fuse-overlayfs ovl-kernel-sqfs ovl-idmapfs-sqfs})
profile_dir="${BENCH_OVL_PROFILE:-}"
out="${BENCH_OUT:-$repo/bench-results.txt}"
map=0:100000:65536
workloads=(write read create stat-cold stat-warm readdir-cold readdir-warm untar)
ovl_workloads=(untar create stat-cold stat-warm readdir-cold readdir-warm read-lower copyup copyup-fsync)

if [ "$(id -u)" != 0 ]; then
	echo "bench: must run as root" >&2
	exit 1
fi
suite() { local s; for s in "${suites[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
has() { local x; for x in "${targets[@]}" "${ovl_targets[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }
for s in "${suites[@]}"; do
	case "$s" in plain | overlay | sed) ;; *) echo "bench: BENCH_SUITES: unknown suite $s (plain, overlay, sed)" >&2; exit 2 ;; esac
done
suite plain || targets=()
suite overlay || ovl_targets=()
for t in "${targets[@]}"; do
	case "$t" in native | kernel | idmapfs | idmapfs-wb | bindfs | fuse-overlayfs) ;; *) echo "bench: BENCH_TARGETS: unknown target $t" >&2; exit 2 ;; esac
done
for t in "${ovl_targets[@]}"; do
	case "$t" in ovl-kernel | ovl-idmapfs | ovl-fuse-overlayfs | ovl-kernel-sqfs | ovl-idmapfs-sqfs) ;; *) echo "bench: BENCH_OVL_TARGETS: unknown target $t" >&2; exit 2 ;; esac
done

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
root="$work/store"       # the backing store (its root), everything measured lives on it
src="$root/src"          # the backing directory every plain target shows
fo_upper="$root/fo-upper" # plain fuse-overlayfs upper and work directories
fo_work="$root/fo-work"
lowers="$root/ovl/lowers" # the overlay suite's lower layers: $lowers/top, $lowers/base
uw="$root/ovl/uw"        # the overlay suite's $uw/upper and $uw/work, fresh per group
idl="$work/ovl-idl"      # ovl-kernel: idmapped mounts of $lowers and $uw
idu="$work/ovl-idu"
sqm="$work/ovl-sq"       # ovl-kernel-sqfs: the images mounted ($sqm/top, $sqm/base),
idsq="$work/ovl-idsq"    # and idmapped mounts of those ($idsq/top, $idsq/base)
mnt="$work/mnt"          # where the target under test is mounted
chmod 0755 "$work" # container root (host uid 100000) walks through it

log() { printf '%s\n' "$*" >&2; }

# Background mount processes (ovl-kernel's holder, the overlay suite's FUSE
# daemons, which run in the foreground of a background job so that unmounting
# can wait for them to finish).
job=""
stop_job() {
	[ -n "$job" ] || return 0
	kill "$job" 2>/dev/null || true
	wait "$job" 2>/dev/null || true
	job=""
}
unmount_all() {
	local m
	# Deepest first, the store last (image mounts use files on it); anything
	# this script mounted lives under $work.
	while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done < <(awk -v w="$work" -v r="$root" '($5 == w || index($5, w "/") == 1) && $5 != r { print $5 }' /proc/self/mountinfo | sort -r
		awk -v r="$root" '$5 == r { print $5 }' /proc/self/mountinfo)
}
cleanup() {
	local rc=$?
	stop_job
	unmount_all
	# A FUSE daemon that outlived its mount may still hold a loop device of
	# an image lower; give it a moment to detach before the image goes.
	sleep 0.2
	rm -rf --one-file-system "$work"
	[ -z "$image" ] || rm -f "$image"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The store must hold, at once: the plain suite's file and trees, the
# overlay suite's lower file, its copy-up, the squashfs images, and trees.
image=""
case "$store" in
ramext4)
	image="$(mktemp /dev/shm/idmapfs-bench.XXXXXX.img)"
	truncate -s $(( file_mb * 6 + 4096 ))M "$image"
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$image"
	mkdir -p "$root"
	mount -o loop "$image" "$root"
	;;
disk) mkdir -p "$root" ;;
*) echo "bench: BENCH_STORE must be ramext4 or disk" >&2; exit 2 ;;
esac
chmod 0755 "$root"
mkdir -p "$src" "$mnt" "$fo_upper" "$fo_work"

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
		fuse-overlayfs -o "lowerdir=$src,upperdir=$fo_upper,workdir=$fo_work,uidmapping=$map,gidmapping=$map,allow_other" "$mnt" \
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

# The overlay suite. Each target is mounted by a background job: ovl-kernel's
# holder (bin/idmapped-mount --overlay) says "ready PID" once the overlay is
# up in its namespace; the FUSE daemons run in the foreground of the job, so
# that unmounting waits for them to exit (and write a CPU profile).
holder="" # ovl-kernel: the pid whose namespaces hold the overlay
ovl_lower_spec() {
	case "$1" in
	ovl-idmapfs-sqfs) echo "$root/ovl/top.sqfs:$root/ovl/base.sqfs" ;;
	ovl-kernel) echo "$idl/top:$idl/base" ;;
	ovl-kernel-sqfs) echo "$idsq/top:$idsq/base" ;;
	*) echo "$lowers/top:$lowers/base" ;;
	esac
}
ovl_fresh_upper() { rm -rf --one-file-system "$uw"; mkdir -p "$uw/upper" "$uw/work"; }
# ovl_mount TARGET LABEL: mount TARGET on $mnt over a fresh upper; LABEL
# names the workload group (for CPU profiles).
ovl_mount() {
	local t="$1" label="$2" lower i prof=()
	lower="$(ovl_lower_spec "$t")"
	: >"$work/job.out"
	case "$t" in
	ovl-kernel | ovl-kernel-sqfs)
		# Lower and upper each through an idmapped bind mount with the map; the
		# upper's mount is of the directory that holds upper/ and work/.
		if [ "$t" = ovl-kernel ]; then
			"$idmapped_mount" "$map" "$lowers" "$idl"
		else
			for i in top base; do
				mount -t squashfs -o loop,ro "$root/ovl/$i.sqfs" "$sqm/$i"
				"$idmapped_mount" "$map" "$sqm/$i" "$idsq/$i"
			done
		fi
		"$idmapped_mount" "$map" "$uw" "$idu"
		"$idmapped_mount" --overlay "$map" "lowerdir=$lower,upperdir=$idu/upper,workdir=$idu/work,userxattr" "$mnt" >"$work/job.out" &
		job=$!
		;;
	ovl-idmapfs | ovl-idmapfs-sqfs)
		[ -z "$profile_dir" ] || prof=(env "IDMAPFS_CPUPROFILE=$profile_dir/$t-$label-r$r.pprof")
		"${prof[@]}" "$idmapfs" mount --map "$map" --lower "$lower" --upper "$uw/upper" --work "$uw/work" "$mnt" >"$work/job.out" &
		job=$!
		;;
	ovl-fuse-overlayfs)
		fuse-overlayfs -f -o "lowerdir=$lower,upperdir=$uw/upper,workdir=$uw/work,uidmapping=$map,gidmapping=$map,allow_other" "$mnt" \
			2> >(grep -v 'unknown argument ignored: lazytime' >&2) &
		job=$!
		;;
	esac
	for i in $(seq 1000); do
		case "$t" in
		ovl-kernel | ovl-kernel-sqfs) read -r _ holder <"$work/job.out" 2>/dev/null && [ -n "$holder" ] && return 0 ;;
		*) mountpoint -q "$mnt" && return 0 ;;
		esac
		kill -0 "$job" 2>/dev/null || break
		sleep 0.01
	done
	echo "bench: $t did not mount" >&2
	stop_job
	return 1
}
ovl_unmount() {
	case "$1" in
	ovl-kernel | ovl-kernel-sqfs)
		stop_job # kills the holder and reaps it: its namespace and the overlay are gone
		holder=""
		umount "$idu"
		if [ "$1" = ovl-kernel ]; then
			umount "$idl"
		else
			umount "$idsq/top" "$idsq/base" "$sqm/top" "$sqm/base" # (mount's loop devices autoclear)
		fi
		;;
	*)
		umount "$mnt"
		wait "$job" || { echo "bench: $1 exited with status $?" >&2; }
		job=""
		;;
	esac
}
ovl_remount() { ovl_unmount "$1"; ovl_fresh_upper; drop_caches; ovl_mount "$1" "$2"; }

# measure TARGET WORKLOAD ARGS...: run a workload through fsbench on the
# target, as the host uid container root is (or as host root on the source
# itself), and record its seconds. A failure is recorded, not fatal: the
# cell reports it and the other cells still run.
declare -A times fails
declare -a errors=()
measure() {
	local t="$1" w="$2"
	shift 2
	local run=("$fsbench" --as "$map")
	case "$t" in
	native) run=("$fsbench") ;;
	# Container root of the holder's user namespace, in its mount namespace.
	ovl-kernel | ovl-kernel-sqfs) run=(nsenter -t "$holder" -U -m -- "$fsbench") ;;
	esac
	local s
	if s="$("${run[@]}" "$@" 2>"$work/err")"; then
		times["$t|$w"]+="$s "
		printf ' %s=%.3f' "$w" "$s" >&2
	else
		fail "$t" "$w" "$(grep -v '^fsbench: exit status' "$work/err" | tail -n 2 | tr '\n' ' ')"
	fi
}
fail() {
	fails["$1|$2"]=$((${fails["$1|$2"]:-0} + 1))
	errors+=("$1 $2 (run $r): $3")
	printf ' %s=FAILED' "$2" >&2
}

started=$(date +%s)
if [ ${#targets[@]} -gt 0 ]; then
	# The trees the read-only workloads use, made once on the backing store.
	log "bench: preparing $n_stat files to stat and a $n_readdir-entry directory in $src"
	"$fsbench" create "$n_stat" "$src/stat" 0 >/dev/null
	"$fsbench" create "$n_readdir" "$src/readdir" 0 >/dev/null
fi
n_top=$(( n_readdir / 100 > 0 ? n_readdir / 100 : 1 ))
if [ ${#ovl_targets[@]} -gt 0 ]; then
	# Two lower layers. base holds the trees and the large file; top holds
	# stat/ (empty) and readdir/ with 1% of the names (shadowing base's), so
	# every lookup passes through two layers and readdir merges two.
	log "bench: preparing the overlay lowers in $lowers: $n_stat files to stat, a $n_readdir-entry directory, ${file_mb} MiB of random data"
	mkdir -p "$lowers/top/stat" "$lowers/base/untar"
	"$fsbench" create "$n_stat" "$lowers/base/stat" 0 >/dev/null
	"$fsbench" create "$n_readdir" "$lowers/base/readdir" 0 >/dev/null
	"$fsbench" create "$n_top" "$lowers/top/readdir" 0 >/dev/null
	head -c "${file_mb}M" /dev/urandom >"$lowers/base/big"
	chmod 0755 "$lowers" "$lowers/top" "$lowers/base"
	mkdir -p "$idl" "$idu" "$sqm/top" "$sqm/base" "$idsq/top" "$idsq/base"
	if has ovl-idmapfs-sqfs || has ovl-kernel-sqfs; then
		# Data blocks uncompressed (random data does not compress); metadata
		# compressed, as in any image.
		log "bench: making squashfs images of the lowers"
		mksquashfs "$lowers/top" "$root/ovl/top.sqfs" -noappend -quiet -no-progress >/dev/null
		mksquashfs "$lowers/base" "$root/ovl/base.sqfs" -noappend -quiet -no-progress -noD -noF >/dev/null
	fi
	[ -z "$profile_dir" ] || mkdir -p "$profile_dir"
	ovl_fresh_upper
fi
sync
prepared=$(date +%s)

for ((r = 1; r <= runs; r++)); do
	for t in "${targets[@]}"; do
		d="$src"
		[ "$t" = native ] || d="$mnt"
		printf '[run %d/%d] %-18s' "$r" "$runs" "$t" >&2
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
		find "$fo_upper" "$fo_work" -mindepth 1 -delete
		echo >&2
	done
	for t in "${ovl_targets[@]}"; do
		printf '[run %d/%d] %-18s' "$r" "$runs" "$t" >&2
		# Every workload group on a fresh mount over a fresh, empty upper,
		# caches dropped.
		ovl_fresh_upper
		drop_caches
		ovl_mount "$t" untar
		measure "$t" untar exec tar -xf "$tarball" -C "$mnt/untar"
		ovl_remount "$t" create
		measure "$t" create create "$n_create" "$mnt/create"
		ovl_remount "$t" stat
		measure "$t" stat-cold stat "$n_stat" "$mnt/stat"
		measure "$t" stat-warm stat "$n_stat" "$mnt/stat"
		ovl_remount "$t" readdir
		measure "$t" readdir-cold readdir "$mnt/readdir"
		measure "$t" readdir-warm readdir "$mnt/readdir"
		ovl_remount "$t" read-lower
		measure "$t" read-lower exec dd if="$mnt/big" of=/dev/null bs=1M status=none
		ovl_unmount "$t"
		for w in copyup copyup-fsync; do
			ovl_fresh_upper
			drop_caches
			ovl_mount "$t" "$w"
			measure "$t" "$w" "$w" "$mnt/big"
			ovl_unmount "$t"
			# The copy-up must be real: the whole file in the upper, one byte changed.
			if [ -z "${fails[$t|$w]:-}" ] &&
				! { [ "$(stat -c %s "$uw/upper/big" 2>/dev/null)" = "$(stat -c %s "$lowers/base/big")" ] &&
					[ "$(head -c 1 "$uw/upper/big")" = x ] &&
					cmp -s -i 1 "$uw/upper/big" "$lowers/base/big"; }; then
				fail "$t" "$w" "the upper does not hold the lower file with its first byte changed"
			fi
		done
		ovl_fresh_upper
		echo >&2
	done
done
finished=$(date +%s)
elapsed=$((finished - started))

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
for t in "${targets[@]}" "${ovl_targets[@]}"; do
	for w in "${workloads[@]}" "${ovl_workloads[@]}"; do
		m=-
		if [ -z "${fails[$t|$w]:-}" ] && [ -n "${times[$t|$w]:-}" ]; then
			read -r _ m _ < <(stats "${times[$t|$w]}")
		fi
		med["$t|$w"]=$m
	done
done
# ratio A B W: how many times faster A is than B at W (B's median / A's median).
ratio() { awk -v a="${med[$1|$3]}" -v b="${med[$2|$3]}" 'BEGIN { if (a != "-" && b != "-" && a > 0) printf "%.2f", b / a; else print "-" }'; }

# secs S: seconds, to 3 or 4 significant places.
secs() { awk -v v="$1" 'BEGIN { f = v >= 10 ? "%.1f" : v >= 1 ? "%.2f" : v >= 0.01 ? "%.3f" : "%.4f"; printf f, v }'; }
# The tables below take the name of an array of workloads first.
# times_table WLS T...: min/median/max seconds, a row per workload, a column per target.
times_table() {
	local -n wls="$1"
	shift
	local w t lo m hi
	printf '%-13s' workload
	for t in "$@"; do printf ' %20s' "$t"; done
	echo
	for w in "${wls[@]}"; do
		printf '%-13s' "$w"
		for t in "$@"; do
			if [ -n "${fails[$t|$w]:-}" ]; then
				printf ' %20s' "FAILED ${fails[$t|$w]}/$runs"
			else
				read -r lo m hi < <(stats "${times[$t|$w]}")
				printf ' %20s' "$(secs "$lo")/$(secs "$m")/$(secs "$hi")"
			fi
		done
		echo
	done
}
# ratio_table WLS REF T...: a row per workload, a column per target T, REF's
# median over T's: how fast T is relative to REF.
ratio_table() {
	local -n wls="$1"
	local ref="$2" w t
	shift 2
	printf '%-13s' workload
	for t in "$@"; do printf ' %14s' "$t"; done
	echo
	for w in "${wls[@]}"; do
		printf '%-13s' "$w"
		for t in "$@"; do printf ' %14s' "$(ratio "$t" "$ref" "$w")"; done
		echo
	done
}
# ratio_table_rev WLS SUBJECT T...: how fast SUBJECT is relative to each T.
ratio_table_rev() {
	local -n wls="$1"
	local subj="$2" w t n=14
	shift 2
	for t in "$@"; do [ $((${#t} + 3)) -le "$n" ] || n=$((${#t} + 3)); done
	printf '%-13s' workload
	for t in "$@"; do printf ' %*s' "$n" "vs $t"; done
	echo
	for w in "${wls[@]}"; do
		printf '%-13s' "$w"
		for t in "$@"; do printf ' %*s' "$n" "$(ratio "$subj" "$t" "$w")"; done
		echo
	done
}

fuse_kind() {
	case "$1" in
	idmapfs) echo "FUSE passthrough for file I/O" ;;
	idmapfs-wb) echo "--writeback: kernel writeback cache, no passthrough" ;;
	bindfs) echo "--map=0/100000:@0/@100000, its defaults (allow_other as root)" ;;
	fuse-overlayfs) echo "lowerdir=source, upper/work beside it on the store, uidmapping/gidmapping=$map" ;;
	kernel) echo "mount_setattr(MOUNT_ATTR_IDMAP), bin/idmapped-mount" ;;
	native) echo "the backing directory itself, as host root" ;;
	ovl-kernel) echo "the kernel's overlayfs over idmapped bind mounts (bin/idmapped-mount, map $map)" ;;
	ovl-kernel-sqfs) echo "the same over squashfs images of top and base (mount -o loop, then idmapped mounts)" ;;
	ovl-idmapfs) echo "idmapfs mount --lower top:base --upper U --work W --map $map (defaults)" ;;
	ovl-idmapfs-sqfs) echo "the same over squashfs images of top and base, attached by idmapfs" ;;
	ovl-fuse-overlayfs) echo "fuse-overlayfs -o lowerdir=top:base,upperdir=U,workdir=W,uidmapping=M,gidmapping=M,allow_other" ;;
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
	echo "suites: ${suites[*]}; runs: $runs per cell, targets interleaved within each run; each workload group on a fresh mount with caches dropped"
	echo "time: ${elapsed}s in all ($((prepared - started))s preparing the trees)"
	echo "open-file limit here: $(ulimit -Sn) soft, $(ulimit -Hn) hard"
	echo "workloads run as container root (host uid 100000, a user namespace mapped $map) on every"
	echo "mapped target, as host root on native. Map $map (bindfs: uid/gid 0 only, as in the issue)."
	[ ${#targets[@]} -gt 0 ] && report_plain
	[ ${#ovl_targets[@]} -gt 0 ] && report_overlay
	if [ ${#errors[@]} -gt 0 ]; then
		echo
		echo "failures (a FAILED cell has no median; its ratios show -):"
		printf '  %s\n' "${errors[@]}" | sort -u -k1,2 | head -n 20
	fi
	return 0
}

report_plain() {
	local t cols=() i o
	echo
	echo "== plain: one directory, shifted =="
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
	times_table workloads "${targets[@]}"
	if has native; then
		for t in "${targets[@]}"; do [ "$t" = native ] || cols+=("$t"); done
		echo
		echo "speed vs native (native median / target median; 1.00 = native speed, 0.50 = half):"
		ratio_table workloads native "${cols[@]}"
	fi
	for i in idmapfs idmapfs-wb; do
		has "$i" || continue
		cols=()
		for o in kernel bindfs fuse-overlayfs idmapfs idmapfs-wb; do [ "$o" != "$i" ] && has "$o" && cols+=("$o"); done
		[ ${#cols[@]} -gt 0 ] || continue
		echo
		echo "speed of $i vs each (other's median / $i median; > 1.00: $i is faster):"
		ratio_table_rev workloads "$i" "${cols[@]}"
	done
	targets_check
}

# verdict TEXT RATIO MIN: a line of the targets check.
verdict() {
	local s=MISS
	awk -v v="$2" -v min="$3" 'BEGIN { exit !(v != "-" && v + 0 >= min) }' && s=ok
	printf '  %-4s %-58s %s\n' "$s" "$1" "$2"
}

# The issue's targets, judged from the medians above.
targets_check() {
	local i w
	for i in idmapfs idmapfs-wb; do
		has "$i" || continue
		echo
		echo "issue 2 targets for $i:"
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

report_overlay() {
	local t i o cols
	echo
	echo "== overlay: two lower layers and an upper, shifted =="
	echo
	echo "layers, on the same store: lowers top and base (directories, first is top); a fresh empty"
	echo "upper and work directory for every workload group. base holds stat/ ($n_stat files),"
	echo "readdir/ ($n_readdir entries), untar/ (empty) and big ($file_mb MiB of random data); top holds"
	echo "stat/ (empty) and readdir/ ($n_top of base's names), so lookups pass two layers and readdir merges two."
	echo
	echo "targets:"
	for t in "${ovl_targets[@]}"; do printf '  %-19s %s\n' "$t" "$(fuse_kind "$t")"; done
	if has ovl-kernel; then
		echo "  ovl-kernel: lowerdir= is an idmapped mount of the lowers' directory, upperdir= and workdir= are"
		echo "    in one idmapped mount of the directory holding both. It is mounted by container root in a"
		echo "    user and mount namespace of its own (bin/idmapped-mount --overlay), as a runtime does: host"
		echo "    root cannot be the mounter, for overlayfs creates its work directory with the mounter's ids"
		echo "    and host uid 0 has no disk id through the upper's idmapping (EOVERFLOW, mounted read-only)."
		echo "    A mount in a user namespace may not use trusted.* xattrs, hence userxattr; else defaults."
	fi
	if has ovl-idmapfs-sqfs || has ovl-kernel-sqfs; then
		echo "  *-sqfs: squashfs images of top and base made by mksquashfs (metadata gzip, data uncompressed),"
		echo "    on the same store"
	fi
	echo
	echo "workloads (each group on a fresh mount over a fresh upper, caches dropped):"
	echo "  untar         tar -xf .cache/rootfs-busybox.tar into untar/, a directory of the lower"
	echo "  create        $n_create files of 1 KiB in a new directory, open(O_CREAT|O_EXCL)+write+close each"
	echo "  stat-cold     lstat of the $n_stat lower files by name"
	echo "  stat-warm     the same again, same mount"
	echo "  readdir-cold  all names of readdir/ (getdents), merged from both lowers"
	echo "  readdir-warm  the same again"
	echo "  read-lower    dd if=big of=/dev/null bs=1M: the $file_mb MiB lower file"
	echo "  copyup        open(O_WRONLY)+write 1 byte+close on big: the copy-up of $file_mb MiB (bin/fsbench copyup;"
	echo "                checked after: the upper holds the whole file with its first byte changed)"
	echo "  copyup-fsync  the same with fsync before close: a durable copy-up whether or not the overlay"
	echo "                syncs copy-ups itself (the kernel's overlayfs and idmapfs do; fuse-overlayfs does not)"
	echo
	echo "seconds, min/median/max of $runs runs:"
	times_table ovl_workloads "${ovl_targets[@]}"
	# ovl-idmapfs against the kernel and fuse-overlayfs on directories;
	# ovl-idmapfs-sqfs against the kernel on the same images, and against
	# itself on directories.
	for i in ovl-idmapfs ovl-idmapfs-sqfs; do
		has "$i" || continue
		cols=()
		case "$i" in
		ovl-idmapfs) for o in ovl-kernel ovl-fuse-overlayfs; do has "$o" && cols+=("$o"); done ;;
		*) for o in ovl-kernel-sqfs ovl-idmapfs; do has "$o" && cols+=("$o"); done ;;
		esac
		[ ${#cols[@]} -gt 0 ] || continue
		echo
		echo "speed of $i vs each (other's median / $i median; > 1.00: $i is faster):"
		ratio_table_rev ovl_workloads "$i" "${cols[@]}"
	done
	local w i k
	for i in ovl-idmapfs ovl-idmapfs-sqfs; do
		k=ovl-kernel
		[ "$i" = ovl-idmapfs ] || k=ovl-kernel-sqfs
		has "$i" && { has "$k" || { [ "$i" = ovl-idmapfs ] && has ovl-fuse-overlayfs; }; } || continue
		echo
		echo "issue 3 targets for $i:"
		if has "$k"; then
			for w in copyup read-lower; do verdict "$w: within 1.5x of $k (>= 0.67)" "$(ratio "$i" "$k" "$w")" 0.6667; done
		fi
		# (fuse-overlayfs cannot use images: it is the reference on directories only)
		if [ "$i" = ovl-idmapfs ] && has ovl-fuse-overlayfs; then
			for w in "${ovl_workloads[@]}"; do verdict "$w: ahead of ovl-fuse-overlayfs" "$(ratio "$i" ovl-fuse-overlayfs "$w")" 1.0; done
		fi
	done
	return 0
}

# report_sed: the Go benchmarks, run now (after the file system suites, so
# that they do not share the machine with them). Each benchmark reports its
# reference beside it (a plain file, the media alone) and the ratio.
report_sed() {
	echo
	echo "== sed: sedsim, the TCG library, unlock on resume (go test -bench, -benchtime $go_time) =="
	echo
	go test -run '^$' -bench . -benchtime "$go_time" -count 1 -timeout 20m "${sed_pkgs[@]}" 2>&1 |
		grep -E '^(Benchmark|ok|FAIL|---|pkg:|panic)' | sed -e 's/^ok  */ok  /'
}

echo >&2
{
	report
	if suite sed; then report_sed; fi
} | tee "$out"
log "bench: written to $out"
