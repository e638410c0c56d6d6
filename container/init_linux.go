package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Setup steps of the container init, as named in errors.
const (
	stepConfig    = "read configuration"
	stepPrivate   = "make mounts private"
	stepBindRoot  = "bind-mount root"
	stepMountProc = "mount proc"
	stepMountDev  = "mount dev"
	stepHostname  = "set hostname"
	stepPivotRoot = "pivot_root"
	stepChdir     = "change to working directory"
	stepCloseFDs  = "close inherited descriptors"
)

// maxConfig caps the configuration the init reads (args and environment).
const maxConfig = 8 << 20

// devices are bind-mounted from the host's /dev into the container's /dev.
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// devLinks are the usual symbolic links in /dev.
var devLinks = [][2]string{
	{"fd", "/proc/self/fd"},
	{"stdin", "/proc/self/fd/0"},
	{"stdout", "/proc/self/fd/1"},
	{"stderr", "/proc/self/fd/2"},
	{"ptmx", "pts/ptmx"},
}

// MaybeInit must be called first thing in main, and in TestMain of tests
// that use Run. In the container init that Run starts, it sets up the
// container and executes the command, never returning; everywhere else it
// returns at once.
func MaybeInit() {
	if len(os.Args) != 1 || os.Args[0] != initArg0 {
		return
	}
	runtime.LockOSThread()
	os.Exit(containerInit())
}

// containerInit runs as PID 1 and root of the new namespaces. It returns an
// exit code only if it could not execute the command.
func containerInit() int {
	status := os.NewFile(fdStatus, "status")
	fail := func(step string, err error) int {
		f := initFailure{Step: step, Err: err.Error()}
		var errno syscall.Errno
		if errors.As(err, &errno) {
			f.Errno = int(errno)
		}
		b, _ := json.Marshal(f)
		if _, werr := status.Write(b); werr != nil {
			fmt.Fprintf(os.Stderr, "idmapfs run: %s: %v\n", step, err)
		}
		return ExitSetupFailed
	}

	var ic initConfig
	config := os.NewFile(fdConfig, "config")
	err := json.NewDecoder(io.LimitReader(config, maxConfig)).Decode(&ic)
	config.Close()
	if err == nil && len(ic.Args) == 0 {
		err = errors.New("no command")
	}
	if err != nil {
		return fail(stepConfig, err)
	}

	// Mount events must not travel back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail(stepPrivate, os.NewSyscallError("mount", err))
	}
	// Run started us in the root (see startIn); make it a mount of its
	// own to pivot into.
	root, err := bindSelf(".")
	if err != nil {
		return fail(stepBindRoot, err)
	}
	// The image belongs to the container: open what we mount on without
	// following symlinks, and mount on the descriptor, not on a path.
	proc, err := unix.Openat(root, "proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(stepMountProc, &os.PathError{Op: "open", Path: "/proc", Err: err})
	}
	procMount, err := mountNew(proc, "proc", nil, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	unix.Close(proc)
	if err != nil {
		return fail(stepMountProc, err)
	}
	unix.Close(procMount)
	if dev, err := unix.Openat(root, "dev", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
		err = mountDev(dev)
		unix.Close(dev)
		if err != nil {
			return fail(stepMountDev, err)
		}
	}
	if err := unix.Sethostname([]byte(ic.Hostname)); err != nil {
		return fail(stepHostname, os.NewSyscallError("sethostname", err))
	}
	if err := pivot(root); err != nil {
		return fail(stepPivotRoot, err)
	}
	unix.Umask(int(ic.Umask))
	if err := unix.Chdir(ic.Dir); err != nil {
		return fail(stepChdir, &os.PathError{Op: "chdir", Path: ic.Dir, Err: err})
	}

	// Nothing inherited beyond stdin, stdout and stderr reaches the
	// command; the status pipe closes on exec, telling Run all went well.
	if err := unix.CloseRange(3, math.MaxUint, unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fail(stepCloseFDs, os.NewSyscallError("close_range", err))
	}
	return execCommand(ic.Args, ic.Env)
}

// bindSelf bind-mounts the directory dir on itself, with everything
// mounted below it, and returns a descriptor for the new mount's root.
// Bind mounts keep the locked flags of what they copy.
func bindSelf(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	tree, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.O_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	if err != nil {
		return -1, os.NewSyscallError("open_tree", err)
	}
	if err := unix.MoveMount(tree, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		unix.Close(tree)
		return -1, os.NewSyscallError("move_mount", err)
	}
	return tree, nil
}

// pivot makes the mount at root the root of the mount namespace and
// detaches the old root, without creating anything in the image: the old
// root is stacked on the new one and unmounted from there (pivot_root(2)).
func pivot(root int) error {
	if err := unix.Fchdir(root); err != nil {
		return os.NewSyscallError("fchdir", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return os.NewSyscallError("pivot_root", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return os.NewSyscallError("umount old root", err)
	}
	return os.NewSyscallError("chdir", unix.Chdir("/"))
}

// mountNew mounts a new filesystem of type fstype on the directory open as
// target and returns a descriptor for the new mount's root.
func mountNew(target int, fstype string, opts [][2]string, attrs int) (int, error) {
	fs, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, os.NewSyscallError("fsopen "+fstype, err)
	}
	defer unix.Close(fs)
	for _, o := range opts {
		if err := unix.FsconfigSetString(fs, o[0], o[1]); err != nil {
			return -1, os.NewSyscallError("fsconfig "+fstype+" "+o[0]+"="+o[1], err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, os.NewSyscallError("fsconfig create "+fstype, err)
	}
	m, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return -1, os.NewSyscallError("fsmount "+fstype, err)
	}
	if err := unix.MoveMount(m, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		unix.Close(m)
		return -1, os.NewSyscallError("move_mount "+fstype, err)
	}
	return m, nil
}

// mountDev mounts a tmpfs on the directory open as dev and fills it with
// the usual devices, bind-mounted from the host's /dev (device nodes made
// inside a user namespace would not open, and the image may be nodev), plus
// a private devpts. A device or link that cannot be made is left out.
func mountDev(dev int) error {
	m, err := mountNew(dev, "tmpfs", [][2]string{{"mode", "755"}, {"size", "1m"}}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(m)
	for _, name := range devices {
		_ = bindDevice(m, name)
	}
	for _, l := range devLinks {
		_ = unix.Symlinkat(l[1], m, l[0])
	}
	if unix.Mkdirat(m, "shm", 0o755) == nil {
		_ = unix.Fchmodat(m, "shm", 0o1777, 0)
	}
	if unix.Mkdirat(m, "pts", 0o755) == nil {
		if pts, err := unix.Openat(m, "pts", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
			if pm, err := mountNew(pts, "devpts", [][2]string{{"ptmxmode", "0666"}, {"mode", "0620"}}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC); err == nil {
				unix.Close(pm)
			}
			unix.Close(pts)
		}
	}
	return nil
}

// bindDevice creates an empty file name in the directory open as dir and
// bind-mounts the host's /dev/name on it.
func bindDevice(dir int, name string) error {
	f, err := unix.Openat(dir, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o666)
	if err != nil {
		return err
	}
	unix.Close(f)
	src, err := unix.OpenTree(unix.AT_FDCWD, "/dev/"+name, unix.OPEN_TREE_CLONE|unix.O_CLOEXEC)
	if err != nil {
		_ = unix.Unlinkat(dir, name, 0)
		return err
	}
	defer unix.Close(src)
	if err := unix.MoveMount(src, "", dir, name, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		_ = unix.Unlinkat(dir, name, 0)
		return err
	}
	return nil
}

// execCommand executes args like execvp(3) does, searching the container's
// PATH, and returns a shell's exit code if it could not.
func execCommand(args, env []string) int {
	var denied error
	for _, p := range candidates(args[0], searchPath(env)) {
		err := syscall.Exec(p, args, env)
		switch {
		case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR):
			continue
		case errors.Is(err, syscall.EACCES):
			// execvp keeps looking, and reports this if nothing else runs.
			if denied == nil {
				denied = &os.PathError{Op: "exec", Path: p, Err: err}
			}
			continue
		}
		fmt.Fprintf(os.Stderr, "idmapfs run: %v\n", &os.PathError{Op: "exec", Path: p, Err: err})
		return ExitCannotExecute
	}
	if denied != nil {
		fmt.Fprintf(os.Stderr, "idmapfs run: %v\n", denied)
		return ExitCannotExecute
	}
	fmt.Fprintf(os.Stderr, "idmapfs run: %s: command not found in the container\n", args[0])
	return ExitNotFound
}
