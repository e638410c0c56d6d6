package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/idmap"
)

// initArg0 is the argv[0] by which MaybeInit recognises the container init.
// The init gets no other arguments and no environment: everything else
// travels through the descriptors below.
const initArg0 = "idmapfs-container-init"

// Descriptors the container init inherits (Cmd.ExtraFiles start at 3).
const (
	fdExe    = 3 // the calling binary, executed through /proc/self/fd
	fdConfig = 4 // read end of a pipe carrying initConfig as JSON
	fdStatus = 5 // write end of a pipe for an initFailure; closes on exec
)

// maxStatus caps what Run reads back from a failing init.
const maxStatus = 64 << 10

// forwarded are the signals Run relays to the container while it runs.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// Run starts cfg.Args in a new container rooted at cfg.Root and waits for it.
// It returns the command's exit status (0-255; 128+n when killed by signal
// n). It returns an error, with ExitSetupFailed, only when the container
// could not be started; that error is a *SetupError when a step inside the
// new namespaces failed. If ctx is cancelled the container is killed and Run
// returns its status with the context's error.
//
// While Run waits, SIGINT, SIGTERM and SIGHUP sent to the calling process are
// relayed to the command. The command is the container's PID 1, which the
// kernel shields from signals it installed no handler for (SIGKILL aside).
func Run(ctx context.Context, cfg Config) (int, error) {
	ic, err := initSettings(&cfg)
	if err != nil {
		return ExitSetupFailed, err
	}
	if err := checkMap("uid", cfg.IDs.UID); err != nil {
		return ExitSetupFailed, err
	}
	if err := checkMap("gid", cfg.IDs.GID); err != nil {
		return ExitSetupFailed, err
	}
	root, err := openRoot(cfg.Root)
	if err != nil {
		return ExitSetupFailed, err
	}
	defer root.Close()

	// The init runs as host uid ToHost(0), which may not be allowed to
	// reach this binary by path; executing it through an inherited
	// descriptor checks only the file's own execute bit.
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return ExitSetupFailed, fmt.Errorf("open own executable to start the container init: %w", err)
	}
	defer exe.Close()
	configR, configW, err := os.Pipe()
	if err != nil {
		return ExitSetupFailed, fmt.Errorf("start container: %w", err)
	}
	defer configR.Close()
	defer configW.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return ExitSetupFailed, fmt.Errorf("start container: %w", err)
	}
	defer statusR.Close()
	defer statusW.Close()

	cmd := exec.CommandContext(ctx, "/proc/self/fd/"+strconv.Itoa(fdExe))
	cmd.Args = []string{initArg0}
	cmd.Env = []string{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = cfg.Stdin, cfg.Stdout, cfg.Stderr
	// os/exec would copy a Stdin that is not an *os.File itself, and Wait
	// would wait for that copy to reach EOF even after the container has
	// exited, which an interactive reader never does. Copy it here
	// instead; closing the pipe once the container is gone ends the copy
	// at its next Write.
	var stdinR, stdinW *os.File
	if _, isFile := cfg.Stdin.(*os.File); cfg.Stdin != nil && !isFile {
		if stdinR, stdinW, err = os.Pipe(); err != nil {
			return ExitSetupFailed, fmt.Errorf("start container: %w", err)
		}
		defer stdinR.Close()
		defer stdinW.Close()
		cmd.Stdin = stdinR
	}
	cmd.ExtraFiles = []*os.File{exe, configR, statusW} // fdExe, fdConfig, fdStatus
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID |
			syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
		UidMappings:                procMappings(cfg.IDs.UID),
		GidMappings:                procMappings(cfg.IDs.GID),
		GidMappingsEnableSetgroups: true,
		// Become container root before exec so that the init starts with
		// the full capability set of the new user namespace.
		Credential: &syscall.Credential{Uid: 0, Gid: 0},
		// The death signal belongs to the thread that forks; see
		// startIn.
		Pdeathsig: syscall.SIGKILL,
	}

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	release := make(chan struct{})
	defer close(release)
	if err := startIn(root, cmd, release); err != nil {
		return ExitSetupFailed, err
	}
	configR.Close()
	statusW.Close()
	if stdinW != nil {
		stdinR.Close()
		go func() {
			_, _ = io.Copy(stdinW, cfg.Stdin)
			stdinW.Close() // EOF for the container
		}()
	}
	root.Close()
	exe.Close()

	done := make(chan struct{})
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s) // fails only once the child is gone
			case <-done:
				return
			}
		}
	}()

	// A failed write means the init died; its status or exit tells why.
	writeErr := json.NewEncoder(configW).Encode(ic)
	configW.Close()
	status, _ := io.ReadAll(io.LimitReader(statusR, maxStatus))
	waitErr := cmd.Wait()
	close(done)
	<-relayed

	if len(status) > 0 {
		return ExitSetupFailed, decodeFailure(cfg.Root, status)
	}
	if cmd.ProcessState == nil {
		return ExitSetupFailed, fmt.Errorf("container in %s: %w", cfg.Root, waitErr)
	}
	code := exitCode(cmd.ProcessState)
	if ctx.Err() != nil {
		return code, fmt.Errorf("container in %s killed: %w", cfg.Root, context.Cause(ctx))
	}
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		// The command ran, but copying its stdin/stdout/stderr failed.
		return code, fmt.Errorf("container in %s: %w", cfg.Root, waitErr)
	}
	if writeErr != nil && code == ExitSetupFailed {
		return code, &SetupError{Root: cfg.Root, Step: "send configuration to the container init", Err: writeErr}
	}
	return code, nil
}

// startIn starts cmd with its working directory at root, and keeps the
// thread that forked it alive until release is closed.
//
// The container init finds its root through its working directory: when
// clone(2) creates the mount namespace, the kernel moves the child's root
// and working directory to the copies of their mounts, and those copies,
// made for the new user namespace, carry locked flags (container root
// cannot lift nosuid or nodev from them). A root handed over as a
// descriptor or a detached mount would not be locked; a path would have to
// be walked as the container's root uid, which may not reach it.
//
// The working directory is set on a thread of its own (unshare CLONE_FS),
// which is never returned to the Go scheduler: it ends when its goroutine
// does. That goroutine waits for release because the child's Pdeathsig
// fires when the forking thread exits.
func startIn(root *os.File, cmd *exec.Cmd, release <-chan struct{}) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		started <- func() error {
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return fmt.Errorf("start container: %w", os.NewSyscallError("unshare CLONE_FS", err))
			}
			// Leave the root again once the child has started: the Go
			// runtime may never end this thread (if it is the main one),
			// and a working directory on the root keeps it busy, so that
			// it cannot be unmounted.
			defer unix.Chdir("/")
			if err := unix.Fchdir(int(root.Fd())); err != nil {
				return fmt.Errorf("start container: %w", &os.PathError{Op: "chdir", Path: root.Name(), Err: err})
			}
			if err := cmd.Start(); err != nil {
				return &SetupError{Root: root.Name(), Step: "create namespaces", Err: err, Hint: startHint(err)}
			}
			return nil
		}()
		<-release
	}()
	return <-started
}

// openRoot checks that dir can serve as a container root and opens it.
func openRoot(dir string) (*os.File, error) {
	if dir == "" {
		return nil, errors.New("no root directory given")
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("container root %s: %w", dir, &os.PathError{Op: "open", Path: dir, Err: err})
	}
	// The init mounts a new /proc there; the image must provide the
	// directory (the launcher never writes into the image).
	pfd, err := unix.Openat(fd, "proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(pfd)
		return os.NewFile(uintptr(fd), dir), nil
	}
	unix.Close(fd)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, fmt.Errorf("container root %s has no proc directory; create it (mkdir %s/proc) so the container gets its own /proc", dir, dir)
	case errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("container root %s: proc is not a directory; replace it with an empty directory so the container gets its own /proc", dir)
	}
	return nil, fmt.Errorf("container root %s: %w", dir, &os.PathError{Op: "open", Path: dir + "/proc", Err: err})
}

func procMappings(m idmap.Map) []syscall.SysProcIDMap {
	var out []syscall.SysProcIDMap
	for _, r := range m.Ranges() {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(r.Disk), HostID: int(r.Host), Size: int(r.Count)})
	}
	return out
}

// startHint says what to do when the kernel refuses to create the
// namespaces or to run the init.
func startHint(err error) string {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EINVAL):
		return "the kernel refused the user namespace: run as root, check that /proc/sys/user/max_user_namespaces is not 0, and that the maps do not overlap"
	case errors.Is(err, unix.EACCES):
		return "the container's root uid must be able to execute this program: make it executable by others (chmod o+x)"
	}
	return ""
}

// decodeFailure turns what a failing init reported into a *SetupError.
func decodeFailure(root string, status []byte) error {
	var f initFailure
	if err := json.Unmarshal(status, &f); err != nil || f.Step == "" {
		return &SetupError{Root: root, Step: "set up", Err: fmt.Errorf("container init sent an unreadable report %q", status)}
	}
	cause := &initError{msg: f.Err, errno: syscall.Errno(f.Errno)}
	return &SetupError{Root: root, Step: f.Step, Err: cause, Hint: failureHint(f.Step, syscall.Errno(f.Errno))}
}

// initError is an error reported by the container init: its text, and the
// errno behind it so that errors.Is still works.
type initError struct {
	msg   string
	errno syscall.Errno
}

func (e *initError) Error() string { return e.msg }

func (e *initError) Unwrap() error {
	if e.errno == 0 {
		return nil
	}
	return e.errno
}

func failureHint(step string, errno syscall.Errno) string {
	switch {
	case step == stepMountProc && (errno == unix.EPERM || errno == unix.EACCES):
		return "the kernel allows a new /proc only where the host's /proc is fully visible; run on the host, not inside another container that masks /proc"
	case step == stepPivotRoot && errno == unix.EINVAL:
		return "the host's / must be a mount point; pivot_root does not work from an initramfs"
	case step == stepBindRoot:
		return "open_tree and move_mount need Linux 5.2 or later"
	}
	return ""
}

// exitCode returns what a shell would report: the exit status, or 128+n
// after signal n.
func exitCode(ps *os.ProcessState) int {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return ps.ExitCode()
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
