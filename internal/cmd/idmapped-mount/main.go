// Command idmapped-mount makes a kernel idmapped bind mount, the reference
// idmapfs is measured against in scripts/bench.sh:
//
//	idmapped-mount MAP SOURCE TARGET
//	idmapped-mount --overlay MAP OPTIONS TARGET
//
// MAP is the idmapfs --map form (disk:host:count[,...]), applied to uids and
// gids alike: a file owned by disk id d on SOURCE shows as the host id d maps
// to on TARGET. It creates a user namespace with that map (a child process
// started with CLONE_NEWUSER), clones SOURCE with open_tree(OPEN_TREE_CLONE),
// sets MOUNT_ATTR_IDMAP with mount_setattr and attaches the clone on TARGET
// with move_mount. Undo it with umount TARGET. Linux 5.12+, as root.
//
// --overlay mounts the kernel's overlayfs on TARGET with mount(2) options
// OPTIONS (lowerdir=...,upperdir=...,workdir=...) as root of a new user
// namespace mapped MAP, in a mount namespace of its own: the way a container
// runtime mounts an overlay whose upper layer is an idmapped mount. (Host root
// cannot be the mounter there: overlayfs creates its work directory and
// whiteouts with the mounter's ids, and host uid 0 has no disk id through the
// upper's idmapping, so the kernel answers EOVERFLOW and mounts read-only.)
// A holder process, uid 0 in that namespace, keeps the mount; once it is
// mounted this prints "ready PID" with the holder's pid on stdout and stays
// in the foreground. Run a workload on the overlay with
// nsenter -t PID -U -m -- CMD (uid and gid 0 of the namespace, i.e. container
// root; entering a mount namespace moves the working directory to its root,
// so use absolute paths). SIGTERM or SIGINT ends the holder, and with it the
// namespace and the overlay, and returns once it is gone.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/idmap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "idmapped-mount: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) == 4 && args[0] == "--overlay" {
		return overlay(ctx, args[1], args[2], args[3], os.Stdout)
	}
	if len(args) != 3 {
		fmt.Fprintln(stderr, "usage: idmapped-mount MAP SOURCE TARGET | --overlay MAP OPTIONS TARGET   (MAP as disk:host:count[,...])")
		return fmt.Errorf("want 3 arguments, got %d", len(args))
	}
	m, err := idmap.ParseMap(args[0])
	if err != nil {
		return fmt.Errorf("map %q: %w", args[0], err)
	}
	ns, err := userns(ctx, m)
	if err != nil {
		return err
	}
	defer unix.Close(ns)
	return mountIdmapped(ns, args[1], args[2])
}

// userns returns a descriptor for a new user namespace whose uid and gid maps
// are both m (inside = disk id, outside = host id). The namespace is created
// by a child that only sleeps; the descriptor keeps the namespace alive after
// the child is killed.
func userns(ctx context.Context, m idmap.Map) (int, error) {
	var ids []syscall.SysProcIDMap
	for _, r := range m.Ranges() {
		ids = append(ids, syscall.SysProcIDMap{ContainerID: int(r.Disk), HostID: int(r.Host), Size: int(r.Count)})
	}
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{"idmapped-mount (userns holder)"}
	cmd.Env = []string{"IDMAPPED_MOUNT_HOLDER=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER,
		UidMappings:                ids,
		GidMappings:                ids,
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL,
	}
	// The maps are written before the child execs, so once Start returns
	// the namespace is complete. The child blocks reading its stdin.
	pr, pw, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer pw.Close()
	cmd.Stdin = pr
	if err := cmd.Start(); err != nil {
		pr.Close()
		return -1, fmt.Errorf("start a process in a new user namespace: %w", err)
	}
	pr.Close()
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	path := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/user"
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// mountIdmapped attaches an idmapped clone of source on target.
func mountIdmapped(ns int, source, target string) error {
	tree, err := unix.OpenTree(unix.AT_FDCWD, source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return &os.PathError{Op: "open_tree", Path: source, Err: err}
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns)}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("mount_setattr MOUNT_ATTR_IDMAP on a clone of %s (does its filesystem support idmapped mounts?): %w", source, err)
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount", Path: target, Err: err}
	}
	return nil
}

// overlay starts the holder (see the package comment), waits until it has
// mounted, prints "ready PID" on stdout and waits for ctx to end; then it
// kills the holder and reaps it, so that the namespace and the overlay are
// torn down by the time this returns.
func overlay(ctx context.Context, mapArg, options, target string, stdout io.Writer) error {
	m, err := idmap.ParseMap(mapArg)
	if err != nil {
		return fmt.Errorf("map %q: %w", mapArg, err)
	}
	var ids []syscall.SysProcIDMap
	for _, r := range m.Ranges() {
		ids = append(ids, syscall.SysProcIDMap{ContainerID: int(r.Disk), HostID: int(r.Host), Size: int(r.Count)})
	}
	// Not CommandContext: the holder is ended below, and reaped.
	cmd := exec.Command("/proc/self/exe", options, target)
	cmd.Args[0] = "idmapped-mount (overlay holder)"
	cmd.Env = []string{"IDMAPPED_MOUNT_OVERLAY=1"}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: ids,
		GidMappings: ids,
		Credential:  &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
		Pdeathsig:   syscall.SIGKILL,
	}
	ready, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start a process in a new user namespace: %w", err)
	}
	line, _ := io.ReadAll(io.LimitReader(ready, 64)) // the holder closes it once mounted
	if string(line) != "ready\n" {
		err := cmd.Wait()
		return fmt.Errorf("overlay holder did not mount (%v)", err)
	}
	fmt.Fprintf(stdout, "ready %d\n", cmd.Process.Pid)
	if f, ok := stdout.(*os.File); ok {
		f.Close() // so that a reader of our stdout sees EOF
	}
	<-ctx.Done()
	cmd.Process.Kill()
	cmd.Wait()
	return nil
}

// holdOverlay is the holder: root of its user namespace, in its own mount
// namespace. It mounts the overlay, says so, and sleeps until killed.
func holdOverlay(options, target string) {
	// Nothing mounted here is to reach the host's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		fmt.Fprintf(os.Stderr, "idmapped-mount: make / a slave in the holder's mount namespace: %v\n", err)
		os.Exit(1)
	}
	if err := unix.Mount("overlay", target, "overlay", 0, options); err != nil {
		fmt.Fprintf(os.Stderr, "idmapped-mount: mount -t overlay -o %s overlay %s as container root: %v (see dmesg)\n", options, target, err)
		os.Exit(1)
	}
	os.Stdout.WriteString("ready\n")
	os.Stdout.Close()
	for {
		unix.Pause()
	}
}

func init() {
	// The userns holder: block until the parent closes our stdin or kills us.
	if os.Getenv("IDMAPPED_MOUNT_HOLDER") == "1" {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	if os.Getenv("IDMAPPED_MOUNT_OVERLAY") == "1" && len(os.Args) == 3 {
		holdOverlay(os.Args[1], os.Args[2])
	}
}
