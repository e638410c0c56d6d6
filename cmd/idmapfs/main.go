// Command idmapfs shows a directory tree with its uids and gids shifted
// through a mapping, so that a user-namespaced container can use a
// root-owned image as its root filesystem.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/shiftlock/shiftlock/container"
)

func main() {
	container.MaybeInit()
	args := os.Args[1:]
	ctx := context.Background()
	if len(args) == 0 || args[0] != "run" {
		// run relays these signals to the container's command instead.
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		defer stop()
	}
	if filepath.Base(os.Args[0]) == "mount.fuse.idmapfs" || filepath.Base(os.Args[0]) == "mount.idmapfs" {
		args = append([]string{"mount-helper"}, args...)
	}
	code, err := run(ctx, args, os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "idmapfs: %v\nRun 'idmapfs help' for usage.\n", err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "idmapfs: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

const usage = `idmapfs: id-shifting FUSE filesystem for user-namespaced containers

Usage:
  idmapfs mount [flags] SOURCE MOUNTPOINT   show SOURCE on MOUNTPOINT with ids shifted
  idmapfs umount [--lazy] MOUNTPOINT        unmount (also a mount whose daemon died)
  idmapfs run [flags] SOURCE -- CMD [ARG...]
                                            run CMD as root of a new user namespace
                                            with SOURCE (a directory or an idmapfs
                                            mount) as its root filesystem
  idmapfs mount --lower L1:L2:... [--upper U [--work W]] [flags] MOUNTPOINT
                                            overlay mode: the merged view of the lower
                                            layers (top first; directories or squashfs,
                                            erofs, ext4 images); changes go to the upper
                                            U (kernel overlayfs format, disk ids);
                                            read-only without --upper. W defaults to
                                            .U.idmapfs-work next to U
  idmapfs run --lower L1:L2:... [--upper U [--work W]] [flags] -- CMD [ARG...]
                                            run CMD on an overlay of the lowers
  idmapfs help

Id mapping (the /proc/PID/uid_map form, disk:host:count, ranges comma-separated):
  --map 0:100000:65536      uids and gids alike (default)
  --uid-map R / --gid-map R one side only; overrides --map for that side
  --userns PID|/proc/PID/ns/user
                            copy a running process's uid_map and gid_map

Mount flags:
  --ro                      read-only
  --suid / --dev            honour setuid bits / device nodes (default nosuid,nodev)
  --allow-other=false       only root may use the mount (default: everyone may)
  --writeback               kernel writeback cache (turns FUSE passthrough off)
  --direct-io               bypass the page cache (turns FUSE passthrough off)
  --no-passthrough          daemon-side I/O for regular files
  --entry-timeout D, --attr-timeout D, --negative-timeout D
                            kernel cache lifetimes (default 60s; use 0 if SOURCE
                            is changed behind the mount's back)
  --daemon                  (mount) return once mounted, serve in the background
  --debug                   log every FUSE request

Overlay flags (with --lower):
  --upper U, --work W       the writable upper and its work directory (same mount)
  --verify sha256:HEX       check the image lower's checksum before attaching it
  --verify-file SUMS        check every image lower against a sha256sum file
  --userxattr               opaque directories as user.overlay.opaque (overlayfs
                            userxattr) instead of trusted.overlay.opaque
  As a mount(8) helper: mount -t fuse.idmapfs overlay MNT -o lower=L1:L2,upper=U,work=W

Run flags: all mount and mapping flags, and
  --hostname NAME           the container's hostname (default idmapfs)
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2, usagef("no command given")
	}
	switch args[0] {
	case "mount":
		return 0, cmdMount(ctx, args[1:], stdout, stderr)
	case "mount-helper":
		return 0, cmdMountHelper(ctx, args[1:], stdout, stderr)
	case "umount", "unmount":
		return 0, cmdUmount(args[1:], stdout)
	case "run":
		return cmdRun(ctx, args[1:], stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0, nil
	}
	return 2, usagef("unknown command %q", args[0])
}
