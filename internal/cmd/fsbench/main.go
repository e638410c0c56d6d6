// Command fsbench runs the metadata workloads of scripts/bench.sh in a tight
// loop and prints the elapsed wall time in seconds on stdout, so that process
// start-up does not dominate what is measured:
//
//	fsbench [--as MAP] create N DIR [SIZE]   mkdir DIR, create N files of SIZE bytes (default 1024)
//	fsbench [--as MAP] stat N DIR            lstat DIR/f0000000 ... the first N files create made
//	fsbench [--as MAP] readdir DIR           read every name in DIR (getdents, no stat)
//	fsbench [--as MAP] copyup FILE           open FILE O_WRONLY, write its first byte, close:
//	                                         on an overlay, the whole copy-up of a lower file
//	fsbench [--as MAP] copyup-fsync FILE     the same with an fsync before the close
//	fsbench [--as MAP] exec CMD [ARG...]     run CMD (its stdout goes to stderr)
//
// --as MAP runs the workload as root of a new user namespace whose uid and
// gid maps are MAP (disk:host:count[,...], e.g. 0:100000:65536), i.e. as the
// host uid that container root is, the way a container uses a shifted tree.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/idmap"
)

const usage = `usage: fsbench [--as MAP] create N DIR [SIZE] | stat N DIR | readdir DIR | copyup FILE | copyup-fsync FILE | exec CMD [ARG...]`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fsbench: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	if len(args) >= 2 && args[0] == "--as" {
		return runAs(ctx, args[1], args[2:], stdout, stderr)
	}
	if len(args) == 0 {
		return 2, errors.New(usage)
	}
	start := time.Now()
	var err error
	switch cmd, rest := args[0], args[1:]; {
	case cmd == "create" && (len(rest) == 2 || len(rest) == 3):
		size := 1024
		if len(rest) == 3 {
			if size, err = strconv.Atoi(rest[2]); err != nil {
				return 2, fmt.Errorf("size %q: %w", rest[2], err)
			}
		}
		var n int
		if n, err = strconv.Atoi(rest[0]); err != nil {
			return 2, fmt.Errorf("count %q: %w", rest[0], err)
		}
		err = create(n, rest[1], size)
	case cmd == "stat" && len(rest) == 2:
		var n int
		if n, err = strconv.Atoi(rest[0]); err != nil {
			return 2, fmt.Errorf("count %q: %w", rest[0], err)
		}
		err = stat(n, rest[1])
	case cmd == "readdir" && len(rest) == 1:
		err = readdir(rest[0])
	case cmd == "copyup" && len(rest) == 1:
		err = copyup(rest[0], false)
	case cmd == "copyup-fsync" && len(rest) == 1:
		err = copyup(rest[0], true)
	case cmd == "exec" && len(rest) >= 1:
		c := exec.CommandContext(ctx, rest[0], rest[1:]...)
		c.Stdin, c.Stdout, c.Stderr = os.Stdin, stderr, stderr
		err = c.Run()
	default:
		return 2, errors.New(usage)
	}
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(stdout, "%.6f\n", time.Since(start).Seconds())
	return 0, nil
}

func name(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf("f%07d", i)) }

// create makes dir and n files of size bytes in it, one open-write-close
// each, the way tar or a package manager does.
func create(n int, dir string, size int) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	for i := 0; i < n; i++ {
		p := name(dir, i)
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return &os.PathError{Op: "create", Path: p, Err: err}
		}
		if size > 0 {
			if _, err := unix.Write(fd, buf); err != nil {
				unix.Close(fd)
				return &os.PathError{Op: "write", Path: p, Err: err}
			}
		}
		if err := unix.Close(fd); err != nil {
			return &os.PathError{Op: "close", Path: p, Err: err}
		}
	}
	return nil
}

func stat(n int, dir string) error {
	var st unix.Stat_t
	for i := 0; i < n; i++ {
		p := name(dir, i)
		if err := unix.Lstat(p, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
	}
	return nil
}

func readdir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	n := 0
	for {
		names, err := f.Readdirnames(4096)
		n += len(names)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if n == 0 {
		return fmt.Errorf("%s: empty directory", dir)
	}
	return nil
}

// copyup writes one byte over the first byte of file, without truncating it:
// on an overlay whose file is in a lower layer, open copies the whole file up
// (the kernel's overlayfs does it in open; a FUSE overlay may in open or in
// the first write), so the time is that of the copy-up. With sync, it calls
// fsync before close: the copy is then durable whether or not the overlay
// syncs its copy-ups itself.
func copyup(file string, sync bool) error {
	fd, err := unix.Open(file, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: file, Err: err}
	}
	if n, err := unix.Write(fd, []byte{'x'}); err != nil || n != 1 {
		unix.Close(fd)
		if err == nil {
			err = io.ErrShortWrite
		}
		return &os.PathError{Op: "write", Path: file, Err: err}
	}
	if sync {
		if err := unix.Fsync(fd); err != nil {
			unix.Close(fd)
			return &os.PathError{Op: "fsync", Path: file, Err: err}
		}
	}
	if err := unix.Close(fd); err != nil {
		return &os.PathError{Op: "close", Path: file, Err: err}
	}
	return nil
}

// runAs re-executes fsbench with args as uid and gid 0 of a new user
// namespace mapped through m, and passes its output and exit status on.
func runAs(ctx context.Context, m string, args []string, stdout, stderr io.Writer) (int, error) {
	parsed, err := idmap.ParseMap(m)
	if err != nil {
		return 2, fmt.Errorf("--as %q: %w", m, err)
	}
	var ids []syscall.SysProcIDMap
	for _, r := range parsed.Ranges() {
		ids = append(ids, syscall.SysProcIDMap{ContainerID: int(r.Disk), HostID: int(r.Host), Size: int(r.Count)})
	}
	c := exec.CommandContext(ctx, "/proc/self/exe", args...)
	c.Args[0] = "fsbench"
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, stdout, stderr
	c.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: ids,
		GidMappings: ids,
		Credential:  &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
		Pdeathsig:   syscall.SIGKILL,
	}
	err = c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if code := ee.ExitCode(); code > 0 {
			return code, nil // the child has said why
		}
		return 1, fmt.Errorf("workload: %w", err)
	}
	if err != nil {
		return 1, fmt.Errorf("start in a user namespace mapped %s: %w", m, err)
	}
	return 0, nil
}
