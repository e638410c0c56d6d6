#!/usr/bin/env bash
# The main job: a root filesystem owned by uid 0 on disk, run as an
# unprivileged user-namespaced container through idmapfs.
#
#   make demo                  busybox rootfs built from Debian's busybox-static
#   make demo ROOTFS=/path     any root-owned tree, e.g. a debootstrap tree
#
# Shows the tree on disk (uid 0), the same tree through idmapfs (uid 100000),
# then inside `idmapfs run`: id says root, / is root-owned, container root
# creates and chowns files, and on disk those files carry the container's ids
# (0, 1000), not host ids. Ends with a summary of checks computed from the
# outputs above; exits non-zero if any fails. Leaves the rootfs as it found it.
set -euo pipefail

cd "$(dirname "$0")/.."
repo="$PWD"
idmapfs="$repo/bin/idmapfs"
host_base=100000 # the default map is 0:100000:65536
start=$(date +%s.%N)

if [ "$(id -u)" != 0 ]; then
	echo "demo: must run as root" >&2
	exit 1
fi
umask 022

if [ -t 1 ]; then
	B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'
else
	B='' G='' R='' N=''
fi
heading() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
show() { printf '+ %s\n' "$*"; }
run() { show "$*"; "$@"; }

./scripts/deps.sh
[ -x "$idmapfs" ] || make -s build

if [ -n "${ROOTFS:-}" ]; then
	rootfs="$(realpath "$ROOTFS")"
	[ -d "$rootfs" ] || { echo "demo: ROOTFS=$ROOTFS is not a directory" >&2; exit 1; }
	own_rootfs=false
else
	rootfs="$(./scripts/rootfs.sh)"
	own_rootfs=true
fi
for d in bin/sh proc tmp root; do
	[ -e "$rootfs/$d" ] || { echo "demo: $rootfs has no /$d; not a root filesystem?" >&2; exit 1; }
done

demo_file=tmp/demo-file
demo_dir=root/demo-dir
for p in "$demo_file" "$demo_dir"; do
	if [ -e "$rootfs/$p" ] || [ -L "$rootfs/$p" ]; then
		if $own_rootfs; then
			rm -rf "${rootfs:?}/$p" # left by an interrupted run
		else
			echo "demo: $rootfs/$p already exists; the demo creates (and removes) it" >&2
			exit 1
		fi
	fi
done

work=""
mnt=""
created=false
cleanup() {
	local rc=$?
	if [ -n "$mnt" ] && mountpoint -q "$mnt" 2>/dev/null; then
		"$idmapfs" umount --lazy "$mnt" >/dev/null 2>&1 || umount -l "$mnt" 2>/dev/null || true
	fi
	if $created; then
		rm -rf "${rootfs:?}/$demo_file" "${rootfs:?}/$demo_dir"
	fi
	if [ -n "$work" ]; then
		rmdir "$mnt" 2>/dev/null || true
		rm -rf --one-file-system "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
work="$(mktemp -d /tmp/idmapfs-demo.XXXXXX)"
mnt="$work/mnt"
mkdir "$mnt"

# Ownership and mode of every entry, to prove the demo changed nothing.
tree_listing() { (cd "$rootfs" && find . -xdev -printf '%U:%G %m %y %p\n' | LC_ALL=C sort); }
tree_listing >"$work/tree-before"

printf '%sidmapfs demo%s: rootfs %s (%s entries)\n' "$B" "$N" "$rootfs" "$(wc -l <"$work/tree-before")"

# (a)
heading "1. The tree on disk: owned by uid 0, as the image ships it"
run ls -ln "$rootfs" | tee "$work/ls-disk"

# (b)
heading "2. The same tree through idmapfs: ids shifted to the host range (map 0:$host_base:65536)"
run "$idmapfs" mount --daemon "$rootfs" "$mnt" | tee "$work/mount-out"
run ls -ln "$mnt" | tee "$work/ls-mnt"
run "$idmapfs" umount "$mnt"

# (c)
heading "3. Inside 'idmapfs run': host uid $host_base is root of a new user namespace"
script='set -x
id
cat /proc/self/uid_map
ls -l /
touch /tmp/demo-file && chown 1000:1000 /tmp/demo-file && mkdir /root/demo-dir && ls -ln /tmp/demo-file
hostname'
show "$idmapfs run $rootfs -- /bin/sh -c '$script'"
created=true
set +e
"$idmapfs" run "$rootfs" -- /bin/sh -c "$script" 2>&1 | tee "$work/run-out"
run_rc=${PIPESTATUS[0]}
set -e
echo "(exit status $run_rc)"
show "$idmapfs run $rootfs -- /bin/sh -c 'exit 7'; echo \$?"
set +e
"$idmapfs" run "$rootfs" -- /bin/sh -c 'exit 7'
exit_rc=$?
set -e
echo "$exit_rc"

# (d)
heading "4. Back on the host: what container root wrote carries the container's ids on disk"
run stat -c '%u:%g %n' "$rootfs/$demo_file" "$rootfs/$demo_dir" | tee "$work/stat-disk" || true
mounts_left="$(grep -c " $work" /proc/self/mountinfo || true)"
show "grep -c ' $work' /proc/self/mountinfo   # mounts left behind"
echo "$mounts_left"

# (e)
heading "5. Clean up: remove what the demo created; the rootfs is as it was"
run rm -rf "$rootfs/$demo_file" "$rootfs/$demo_dir"
created=false
tree_listing >"$work/tree-after"
show "diff <(ownership and mode of every entry before) <(... after)"
tree_same=true
diff "$work/tree-before" "$work/tree-after" || tree_same=false
$tree_same && echo "(identical)"

# (f)
fails=0
check() { # check DESCRIPTION COMMAND...
	local what="$1"
	shift
	if "$@" >/dev/null 2>&1; then
		printf '  %sPASS%s  %s\n' "$G" "$N" "$what"
	else
		printf '  %sFAIL%s  %s\n' "$R" "$N" "$what"
		fails=$((fails + 1))
	fi
}
# Owner columns of `ls -ln` for the named top-level entries.
owners() { awk -v want="$2" '$9 ~ want { print $3 ":" $4 }' "$1" | sort -u; }
in_run() { grep -E "$1" "$work/run-out"; }
elapsed=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { print a - b }')

heading "Summary"
cat <<EOF
  rootfs   $rootfs
  shown    the tree on disk (uid 0); the same tree through 'idmapfs mount' (uid $host_base);
           'idmapfs run' as container root: id, uid_map, ls -l /, create + chown, hostname;
           the created files' ids on disk; cleanup
EOF
check "on disk, /bin /etc /tmp are owned 0:0" \
	test "$(owners "$work/ls-disk" '^(bin|etc|tmp)$')" = "0:0"
check "idmapfs mount --daemon printed its 'mounted' line" grep -q '^mounted ' "$work/mount-out"
check "through idmapfs, /bin /etc /tmp are owned $host_base:$host_base" \
	test "$(owners "$work/ls-mnt" '^(bin|etc|tmp)$')" = "$host_base:$host_base"
check "idmapfs run exited 0" test "$run_rc" = 0
check "inside, id says uid=0(root) gid=0(root)" in_run '^uid=0\(root\) gid=0\(root\)'
check "inside, uid_map is 0 $host_base 65536" in_run "^ +0 +$host_base +65536$"
check "inside, ls -l / shows bin, etc, tmp owned root root" \
	test "$(grep -cE ' root +root .* (bin|etc|tmp)( -> .*)?$' "$work/run-out")" = 3
check "inside, container root chowned /tmp/demo-file to 1000:1000" in_run '^-.* 1000 +1000 .*/tmp/demo-file$'
check "inside, hostname is the container's (idmapfs)" in_run '^idmapfs$'
check "the container's exit status passes through (exit 7 -> 7)" test "$exit_rc" = 7
check "on disk, /tmp/demo-file is 1000:1000 (not $((host_base + 1000)))" grep -qx "1000:1000 $rootfs/$demo_file" "$work/stat-disk"
check "on disk, /root/demo-dir is 0:0 (not $host_base)" grep -qx "0:0 $rootfs/$demo_dir" "$work/stat-disk"
check "nothing left mounted" test "$mounts_left" = 0
check "rootfs left exactly as it was (owner, mode of every entry)" $tree_same
printf '  %d checks failed; %.1fs\n' "$fails" "$elapsed"
[ "$fails" = 0 ]
