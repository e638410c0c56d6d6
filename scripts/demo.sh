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
# (0, 1000), not host ids. Then overlay mode: a read-only squashfs image of
# the rootfs under a writable upper; the container changes /etc, /root, /tmp,
# installs a file with capabilities, deletes a file and replaces a directory;
# afterwards the image's sha256 is unchanged, the upper holds exactly those
# changes in the kernel overlayfs format with disk ids, and the kernel's
# overlayfs shows the same tree from it as idmapfs. Then a self-encrypting
# drive (sedsim) with ext4 on a locking range, unlock on resume armed: a
# power cycle, as in suspend-to-RAM, locks it; the resume notification
# unlocks it and the data is intact. Ends with a summary of
# checks computed from the outputs above; exits non-zero if any fails. Leaves
# the rootfs as it found it, and nothing mounted or attached.
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
img=""      # the squashfs image of the rootfs (overlay part)
ovl_mnts=() # its mounts, innermost first
cleanup() {
	local rc=$? m
	sed_cleanup
	for m in "$mnt" "${ovl_mnts[@]}"; do
		if [ -n "$m" ] && mountpoint -q "$m" 2>/dev/null; then
			"$idmapfs" umount --lazy "$m" >/dev/null 2>&1 || umount -l "$m" 2>/dev/null || true
		fi
	done
	if [ -n "$img" ] && [ -e "$img" ]; then # loop devices left on the image
		losetup -n -O NAME -j "$img" 2>/dev/null | xargs -r -n1 losetup -d 2>/dev/null || true
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
# The SED scene's daemons, filesystem and loop device (part 11).
sed_fs="" sed_loop="" sed_daemon_pid="" sed_sim_pid="" sed_expose=""
sed_cleanup() {
	if [ -n "$sed_fs" ] && mountpoint -q "$sed_fs" 2>/dev/null; then
		umount "$sed_fs" 2>/dev/null || umount -l "$sed_fs" 2>/dev/null || true
	fi
	if [ -n "$sed_loop" ]; then
		losetup -d "$sed_loop" 2>/dev/null || true
	fi
	for m in "$sed_daemon_pid" "$sed_sim_pid"; do
		if [ -n "$m" ] && kill "$m" 2>/dev/null; then
			wait "$m" 2>/dev/null || true
		fi
	done
	if [ -n "$sed_expose" ] && mountpoint -q "$sed_expose" 2>/dev/null; then
		umount -l "$sed_expose" 2>/dev/null || true
	fi
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

# Overlay mode needs a few things in the rootfs (scripts/rootfs.sh puts
# them in the busybox one); another ROOTFS without them skips it.
ovl_missing=""
command -v mksquashfs >/dev/null || ovl_missing+=" mksquashfs (on the host)"
for p in etc/motd etc/passwd usr/share/doc bin/cp; do
	[ -e "$rootfs/$p" ] || ovl_missing+=" /$p"
done
for t in setcap getcap; do
	found=false
	for d in usr/local/sbin usr/local/bin usr/sbin usr/bin sbin bin; do
		[ -e "$rootfs/$d/$t" ] && found=true
	done
	$found || ovl_missing+=" $t"
done
ovl=true
[ -z "$ovl_missing" ] || ovl=false

# (g)
if $ovl; then
	heading "6. Overlay mode: a read-only squashfs image of the rootfs"
	img="$work/rootfs.sqfs"
	# Every timestamp fixed (busybox's own), so the same tree gives the same image.
	sqtime=$(stat -L -c %Y "$rootfs/bin/sh")
	run mksquashfs "$rootfs" "$img" -noappend -quiet -no-progress -all-time "$sqtime" -mkfs-time "$sqtime"
	run ls -l "$img"
	show sha256sum "$img"
	sha256sum "$img" | tee "$work/sum-before"
	sum_before=$(awk '{ print $1 }' "$work/sum-before")
fi

# (h)
if $ovl; then
	heading "7. Inside 'idmapfs run --lower IMAGE --upper UPPER': the container changes the read-only image"
	upper="$work/upper"
	mkdir "$upper"
	ovl_script='set -ex
id
echo "demo:x:1001:1001:added in the container:/home/demo:/bin/sh" >>/etc/passwd
tail -n 2 /etc/passwd
echo "written by container root" >/root/notes
echo scratch >/tmp/scratch
mkdir -p /usr/local/bin
cp /bin/busybox /usr/local/bin/ping
setcap cap_net_raw+ep /usr/local/bin/ping
getcap /usr/local/bin/ping
rm /etc/motd
rm -r /usr/share/doc
mkdir /usr/share/doc
echo "docs removed in this container" >/usr/share/doc/README
ls -ln /root/notes /tmp/scratch /usr/local/bin/ping
echo "/etc now: $(ls /etc | tr "\n" " ")"
echo "/usr/share/doc now: $(ls /usr/share/doc | tr "\n" " ")"'
	show "$idmapfs run --lower $img --verify sha256:$sum_before --upper $upper -- /bin/sh -c '$ovl_script'"
	set +e
	"$idmapfs" run --lower "$img" --verify "sha256:$sum_before" --upper "$upper" -- /bin/sh -c "$ovl_script" 2>&1 |
		tee "$work/ovl-out"
	ovl_rc=${PIPESTATUS[0]}
	set -e
	echo "(exit status $ovl_rc)"
fi

# (i)
if $ovl; then
	heading "8. Back on the host: the image is unchanged; the upper holds exactly the changes, with disk ids"
	show sha256sum "$img"
	sha256sum "$img" | tee "$work/sum-after" || true
	sum_after=$(awk '{ print $1 }' "$work/sum-after")
	show "cd $work && find upper -printf '%U:%G %M %6s %p\n'"
	(cd "$work" && find upper -printf '%U:%G %M %6s %p\n' | LC_ALL=C sort -k4) | tee "$work/upper-find" || true
	show "stat -c '%F %t,%T %n' $upper/etc/motd"
	LC_ALL=C stat -c '%F %t,%T %n' "$upper/etc/motd" 2>&1 | tee "$work/whiteout" || true
	run getfattr --absolute-names -n trusted.overlay.opaque "$upper/usr/share/doc" 2>&1 | tee "$work/opaque" || true
	run getfattr --absolute-names -e hex -n security.capability "$upper/usr/local/bin/ping" 2>&1 |
		tee "$work/capxattr" || true
	cap_hex=$(sed -n 's/^security.capability=0x//p' "$work/capxattr")
	# struct vfs_ns_cap_data: le32 magic_etc (revision in the top byte),
	# {permitted, inheritable} x 2, and in v3 a le32 rootid.
	le32() { echo $((16#${1:6:2}${1:4:2}${1:2:2}${1:0:2})); }
	cap_rev=""
	if [ -n "$cap_hex" ]; then
		cap_rev=$(($(le32 "${cap_hex:0:8}") >> 24))
		if [ "$cap_rev" = 3 ]; then
			echo "(VFS_CAP_REVISION_3: rootid $(le32 "${cap_hex:40:8}"))"
		else
			echo "(VFS_CAP_REVISION_$cap_rev: no rootid, the capabilities belong to disk root; portable)"
		fi
	fi
	run getcap -n "$upper/usr/local/bin/ping" 2>&1 | tee "$work/getcap-upper" || true
	show "diff $rootfs/etc/passwd $upper/etc/passwd   # copied up, then appended to"
	diff "$rootfs/etc/passwd" "$upper/etc/passwd" || true
	passwd_ok=false
	if { cat "$rootfs/etc/passwd"; echo "demo:x:1001:1001:added in the container:/home/demo:/bin/sh"; } |
		cmp -s - "$upper/etc/passwd"; then
		passwd_ok=true
	fi
	run stat -c '%a %u:%g %n' "$rootfs/root" "$upper/root" "$rootfs/tmp" "$upper/tmp" 2>&1 | tee "$work/modes" || true

	# What the upper must hold: each change (type, path) and the parent
	# directories it needs, nothing else.
	changes=(
		"f etc/passwd"           # copied up, appended to
		"c etc/motd"             # whiteout
		"f root/notes"           # new, in a copied-up directory
		"f tmp/scratch"
		"f usr/local/bin/ping"   # new, with security.capability
		"d usr/share/doc"        # opaque: replaces the lower directory
		"f usr/share/doc/README"
	)
	for c in "${changes[@]}"; do
		echo "$c"
		p="${c#? }"
		while [ "$p" != "${p%/*}" ]; do
			p="${p%/*}"
			echo "d $p"
		done
	done | LC_ALL=C sort -u >"$work/upper-expected"
	(cd "$upper" && find . -mindepth 1 -printf '%y %P\n') | LC_ALL=C sort >"$work/upper-actual"
	show "diff <(the changes and their parent directories) <(cd upper && find . -printf '%y %P\n')"
	upper_exact=true
	diff "$work/upper-expected" "$work/upper-actual" || upper_exact=false
	$upper_exact && echo "(identical: $(wc -l <"$work/upper-actual") entries)"
fi

# (j)
if $ovl; then
	heading "9. The kernel's overlayfs reads the same upper: the same tree as idmapfs shows"
	sqmnt="$work/image"
	kmnt="$work/kernel-overlay"
	imnt="$work/idmapfs-overlay"
	mkdir "$sqmnt" "$kmnt" "$imnt"
	ovl_mnts=("$kmnt" "$imnt" "$sqmnt")
	kernel_ok=false
	if run mount -t squashfs -o ro,loop "$img" "$sqmnt" &&
		run mount -t overlay overlay -o "ro,lowerdir=$upper:$sqmnt" "$kmnt"; then
		kernel_ok=true
	fi
	run "$idmapfs" mount --daemon --ro --map 0:0:65536 --lower "$img" --upper "$upper" "$imnt" || true
	run ls -ln "$kmnt/etc" "$kmnt/usr/share/doc" "$kmnt/usr/local/bin" 2>&1 | tee "$work/kernel-ls" || true
	run getcap "$kmnt/usr/local/bin/ping" 2>&1 | tee "$work/kernel-getcap" || true
	run tail -n 1 "$kmnt/etc/passwd" 2>&1 | tee "$work/kernel-passwd" || true
	# Every entry: type, mode, ids, size, mtime, links, symlink target;
	# every file's sha256; every file capability.
	view() { # view DIR
		(cd "$1" && find . -printf '%y %m %U:%G %s %T@ %n %p -> %l\n' | LC_ALL=C sort -k7 &&
			find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2 &&
			getcap -r . | LC_ALL=C sort)
	}
	view "$kmnt" >"$work/view-kernel" 2>&1 || true
	view "$imnt" >"$work/view-idmapfs" 2>&1 || true
	show "diff <(every entry, sha256 and capability under the kernel's overlayfs) <(... under idmapfs --map 0:0:65536)"
	views_same=false
	if $kernel_ok && diff "$work/view-kernel" "$work/view-idmapfs"; then
		views_same=true
		echo "(identical: $(grep -c ' -> ' "$work/view-kernel") entries)"
	fi
fi

# (k)
if $ovl; then
	heading "10. Clean up: unmount; nothing left mounted, no loop device on the image"
	run umount "$kmnt" || true
	run umount "$sqmnt" || true
	run "$idmapfs" umount "$imnt" || true
	ovl_mounts_left="$(grep -c " $work" /proc/self/mountinfo || true)"
	show "grep -c ' $work' /proc/self/mountinfo   # mounts left behind"
	echo "$ovl_mounts_left"
	loops_left="$(losetup -a | grep -cF "($img)" || true)"
	show "losetup -a | grep -cF '($img)'   # loop devices left on the image"
	echo "$loops_left"
else
	heading "6-10. Overlay mode: skipped"
	echo "ROOTFS lacks:$ovl_missing (the default busybox rootfs has them)"
fi

# (l)
heading "11. A self-encrypting drive locks in suspend-to-RAM; the resume daemon unlocks it"
sedsim="$repo/bin/sedsim" sedctl="$repo/bin/sedctl"
sw="$work/sed"
mkdir -p "$sw/fs"
sed_expose="$sw/expose"
# A software Opal drive (sedsim), served with its media exposed as a file.
run "$sedsim" create --state "$sw/drive" --size 64M --psid-file "$sw/psid"
show "$sedsim serve --state $sw/drive --socket $sw/sim.sock --expose $sed_expose &"
"$sedsim" serve --state "$sw/drive" --socket "$sw/sim.sock" --expose "$sed_expose" >"$sw/serve.out" 2>"$sw/serve.log" &
sed_sim_pid=$!
timeout 30 sh -c "until grep -q '^ready' '$sw/serve.out'; do sleep 0.05; done"
dev="sim:$sw/sim.sock"
(umask 077 && printf 'demo drive password\n' >"$sw/admin1.pw")
# Take ownership, and range 1 (all but the first MiB) locked at power loss.
run "$sedctl" setup --password-file "$sw/admin1.pw" "$dev"
run "$sedctl" range setup 1 2048 129024 --password-file "$sw/admin1.pw" "$dev"
run "$sedctl" range enable 1 --password-file "$sw/admin1.pw" "$dev"
sed_loop="$(losetup --find --show --direct-io=on "$sed_expose/disk")"
show "losetup --find --show --direct-io=on $sed_expose/disk   # $sed_loop"
run mkfs.ext4 -q -E nodiscard "$sed_loop"
run mount "$sed_loop" "$sw/fs"
for i in 1 2 3 4; do head -c $((i * 300000)) /dev/urandom >"$sw/fs/file$i"; done
(cd "$sw/fs" && sha256sum file* >"$sw/sums")
show "4 files written, 1.7 MB; sha256sum file* > sums"
# The resume daemon holds the derived key (never the password).
show "$sedctl resume daemon --socket $sw/resume.sock --config $sw/resume.conf &"
"$sedctl" resume daemon --socket "$sw/resume.sock" --config "$sw/resume.conf" >"$sw/daemon.out" 2>"$sw/daemon.log" &
sed_daemon_pid=$!
timeout 30 sh -c "until grep -q '^ready' '$sw/daemon.out'; do sleep 0.05; done"
resume_loc=(--socket "$sw/resume.sock" --config "$sw/resume.conf" --run-dir "$sw/run")
run "$sedctl" resume enable --range 1 --password-file "$sw/admin1.pw" "${resume_loc[@]}" "$dev"
# Suspend: the kernel syncs and freezes I/O, the drive loses power.
run sync
run "$sedsim" power-cycle --socket "$sw/sim.sock"
sed_locked="$("$sedsim" info --socket "$sw/sim.sock" | awk '$1 == "locked" { print $2 }')"
show "$sedsim info --socket $sw/sim.sock | grep ^locked"
echo "locked           $sed_locked"
show "dd if=$sed_loop bs=4096 skip=1024 count=1 iflag=direct   # a block in range 1"
if dd if="$sed_loop" of=/dev/null bs=4096 skip=1024 count=1 iflag=direct 2>"$sw/dd-locked"; then
	sed_locked_io=readable
else
	sed_locked_io=EIO
fi
sed 's/^/  /' "$sw/dd-locked" | head -n 1
# Resume: the system-sleep hook tells the daemon, which unlocks before answering.
run "$sedctl" resume notify post --socket "$sw/resume.sock" | tee "$sw/notify"
sed_unlocked_io=EIO
if dd if="$sed_loop" of=/dev/null bs=4096 skip=1024 count=1 iflag=direct 2>/dev/null; then
	sed_unlocked_io=readable
fi
show "the same dd: $sed_unlocked_io"
show "cd $sw/fs && sha256sum -c $sw/sums"
sed_sums=ok
(cd "$sw/fs" && sha256sum -c "$sw/sums") || sed_sums=bad
echo "written after the resume" >"$sw/fs/after" && sync
run umount "$sw/fs"
sed_fsck=bad
show "fsck.ext4 -n -f $sed_loop"
if fsck.ext4 -n -f "$sed_loop" >"$sw/fsck" 2>&1; then sed_fsck=clean; fi
tail -n 1 "$sw/fsck"
run "$sedctl" resume disable "${resume_loc[@]}" "$dev"
sed_plaintext="$({ grep -rlaF 'demo drive password' "$sw/drive" || true; } | wc -l)"
losetup -d "$sed_loop" && sed_loop=""
kill "$sed_daemon_pid" && wait "$sed_daemon_pid" || true
sed_daemon_pid=""
kill "$sed_sim_pid" && wait "$sed_sim_pid" || true
sed_sim_pid=""

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
if $ovl; then
	cat <<EOF
           overlay mode: a squashfs image of the rootfs as read-only lower, an upper
           directory; the container's changes; the image's sha256 before and after; the
           upper on disk (ids, whiteout, opaque directory, capability); the kernel's
           overlayfs on the same layers; nothing left mounted or attached
EOF
else
	echo "           overlay mode: skipped (ROOTFS lacks:$ovl_missing)"
fi
cat <<EOF
           a sedsim drive with ext4 on range 1, resume armed; a power cycle locks it
           (EIO); 'sedctl resume notify post' unlocks it; checksums and fsck
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
if $ovl; then
	in_ovl() { grep -E "$1" "$work/ovl-out"; }
	check "overlay: idmapfs run --lower IMAGE --verify --upper exited 0" test "$ovl_rc" = 0
	check "overlay: inside, id says uid=0(root) gid=0(root)" in_ovl '^uid=0\(root\) gid=0\(root\)'
	check "overlay: inside, getcap shows cap_net_raw=ep on /usr/local/bin/ping" in_ovl '^/usr/local/bin/ping cap_net_raw=ep$'
	check "overlay: inside, /root/notes, /tmp/scratch, ping are owned 0 0" \
		test "$(grep -cE '^-.* 0 +0 .* (/root/notes|/tmp/scratch|/usr/local/bin/ping)$' "$work/ovl-out")" = 3
	check "overlay: inside, /etc has passwd and no motd after rm" \
		eval "in_ovl '^/etc now: .*passwd' && ! in_ovl '^/etc now: .*motd'"
	check "overlay: inside, /usr/share/doc holds only README" in_ovl '^/usr/share/doc now: README $'
	check "the image's sha256 is unchanged" test -n "$sum_before" -a "$sum_before" = "$sum_after"
	check "on disk, every upper entry is 0:0 (not $host_base)" \
		test "$(awk '{ print $1 }' "$work/upper-find" | sort -u)" = "0:0"
	check "the upper holds exactly the changes and their parent directories" $upper_exact
	check "upper /etc/passwd is the lower one plus the appended line" $passwd_ok
	check "copy-up kept the modes of /root (700) and /tmp (1777)" \
		eval "grep -qx '700 0:0 $upper/root' '$work/modes' && grep -qx '1777 0:0 $upper/tmp' '$work/modes'"
	check "the deleted /etc/motd is a whiteout (char device 0,0)" grep -qx "character special file 0,0 $upper/etc/motd" "$work/whiteout"
	check "the replaced /usr/share/doc is opaque (trusted.overlay.opaque=y)" grep -qx 'trusted.overlay.opaque="y"' "$work/opaque"
	check "ping's capability is stored as v2 (disk root's), cap_net_raw=ep" \
		eval "test '$cap_rev' = 2 && grep -qx '$upper/usr/local/bin/ping cap_net_raw=ep' '$work/getcap-upper'"
	check "the kernel's overlayfs mounts the upper over the image" $kernel_ok
	# The names ls -ln listed under the kernel's /etc and /usr/share/doc.
	kernel_names() { awk -v d="$kmnt/$1:" '$0 == d { on = 1; next } /^$/ { on = 0 } on && !/^total / { print $NF }' "$work/kernel-ls"; }
	check "under the kernel: /etc has passwd and no motd, /usr/share/doc holds only README" \
		eval "kernel_names etc | grep -qx passwd && ! kernel_names etc | grep -qx motd &&
			test \"\$(kernel_names usr/share/doc)\" = README"
	check "under the kernel: the line appended to passwd, ping's cap_net_raw=ep" \
		eval "grep -qx 'demo:x:1001:1001:added in the container:/home/demo:/bin/sh' '$work/kernel-passwd' &&
			grep -qx '$kmnt/usr/local/bin/ping cap_net_raw=ep' '$work/kernel-getcap'"
	check "kernel overlayfs and idmapfs show the same tree (entries, ids, data, capabilities)" $views_same
	check "overlay: nothing left mounted" test "$ovl_mounts_left" = 0
	check "overlay: no loop device left on the image" test "$loops_left" = 0
fi
check "sed: after the power cycle sedsim reports the drive locked" test "$sed_locked" = yes
check "sed: a direct read of range 1 fails while locked (EIO)" test "$sed_locked_io" = EIO
check "sed: 'resume notify post' unlocked range 1 in one session" grep -q '^unlocked in .*(1 session' "$sw/notify"
check "sed: after the resume the same read works" test "$sed_unlocked_io" = readable
check "sed: every checksum written before the suspend matches" test "$sed_sums" = ok
check "sed: fsck.ext4 -n -f is clean" test "$sed_fsck" = clean
check "sed: the password is in neither the media nor the state file" test "$sed_plaintext" = 0
printf '  %d checks failed; %.1fs\n' "$fails" "$elapsed"
[ "$fails" = 0 ]
