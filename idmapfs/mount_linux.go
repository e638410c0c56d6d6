package idmapfs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

const overlayfsMagic = 0x794c7630

// Mount mounts an idmapfs of source on mountpoint and starts serving it.
// The caller waits on the returned server (Wait) and unmounts it, then
// calls Close on the FS. In overlay mode (opts.Lowers set) source must be
// "": the mount shows the merged lowers, read-only unless opts.Upper is set.
func Mount(source, mountpoint string, opts Options) (*fuse.Server, *FS, error) {
	if err := CheckMountpoint(mountpoint); err != nil {
		return nil, nil, err
	}
	if err := checkFUSE(); err != nil {
		return nil, nil, err
	}
	if os.Geteuid() != 0 {
		return nil, nil, errors.New("idmapfs must run as root: it stores files with ids other than its own")
	}
	if opts.EntryTimeout < 0 || opts.AttrTimeout < 0 || opts.NegativeTimeout < 0 {
		return nil, nil, errors.New("cache timeouts must not be negative")
	}
	var (
		root    fs.InodeEmbedder
		f       *FS
		rootIno uint64
		err     error
		depth   = 1
	)
	if len(opts.Lowers) > 0 {
		if source != "" {
			return nil, nil, errors.New("overlay mode shows its lower layers: pass no SOURCE with lowers")
		}
		var ovRoot *overlayNode
		ovRoot, f, err = newOverlay(context.Background(), opts)
		if err != nil {
			return nil, nil, err
		}
		root, rootIno, opts = ovRoot, f.ino(&ovRoot.st), f.opts
		source = lowersName(opts.Lowers)
		for _, l := range f.ov.layers {
			var sfs unix.Statfs_t
			if err := unix.Fstatfs(l.Fd(), &sfs); err == nil && sfs.Type == overlayfsMagic {
				depth = 2 // the backing files are themselves stacked
			}
		}
	} else {
		var n *Node
		n, f, err = New(source, opts)
		if err != nil {
			return nil, nil, err
		}
		root = n
		var st unix.Stat_t
		if err := fstatPath(n.fd, &st); err == nil {
			rootIno = st.Ino
		}
		var sfs unix.Statfs_t
		if err := unix.Statfs(source, &sfs); err == nil && sfs.Type == overlayfsMagic {
			depth = 2 // the backing files are themselves stacked
		}
	}
	// Modes come from the request, already masked by the kernel: the
	// daemon's own umask must not mask them again.
	syscall.Umask(0)
	limit := raiseNofile()
	if opts.MaxFds > 0 {
		limit = int64(opts.MaxFds) * 4 / 3
	}
	f.setFdLimits(limit)

	flags := uintptr(0)
	if !opts.Suid {
		flags |= syscall.MS_NOSUID
	}
	if !opts.Dev {
		flags |= syscall.MS_NODEV
	}
	if opts.ReadOnly {
		flags |= syscall.MS_RDONLY
	}
	if flags == 0 {
		flags = syscall.MS_MGC_VAL
	}
	mo := fuse.MountOptions{
		AllowOther:           opts.AllowOther,
		Options:              []string{"default_permissions"},
		EnableAcl:            true,
		FsName:               source,
		Name:                 "idmapfs",
		DirectMountStrict:    true,
		DirectMountFlags:     flags,
		MaxWrite:             1 << 20,
		MaxBackground:        64,
		MaxStackDepth:        depth,
		EnableSymlinkCaching: true,
		Debug:                opts.Debug,
	}
	// Unmasked modes and the umask: see umask_linux.go.
	mo.ExtraCapabilities |= fuse.CAP_DONT_MASK
	// READDIRPLUS only when the reader goes on to stat the entries (ls -l),
	// plain READDIR otherwise (ls, find): a lookup per entry is the
	// expensive part of a cold listing.
	mo.ExtraCapabilities |= fuse.CAP_READDIRPLUS_AUTO
	if opts.Writeback {
		mo.ExtraCapabilities |= fuse.CAP_WRITEBACK_CACHE
	}
	if !f.passthrough {
		mo.DisabledCapabilities |= fuse.CAP_PASSTHROUGH
	}
	if opts.Debug {
		mo.Logger = log.New(os.Stderr, "fuse: ", 0)
	}
	entry, attr, neg := opts.EntryTimeout, opts.AttrTimeout, opts.NegativeTimeout
	fo := &fs.Options{
		MountOptions:    mo,
		EntryTimeout:    &entry,
		AttrTimeout:     &attr,
		NegativeTimeout: &neg,
		NullPermissions: true,
	}
	if rootIno != 0 {
		fo.RootStableAttr = &fs.StableAttr{Ino: rootIno, Gen: 1}
	}
	server, err := fuse.NewServer(rawFS{fs.NewNodeFS(root, fo)}, mountpoint, &fo.MountOptions)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("mount %s on %s: %w", source, mountpoint, err)
	}
	f.server = server
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		server.Unmount()
		f.Close()
		return nil, nil, fmt.Errorf("mount %s on %s: %w", source, mountpoint, err)
	}
	return server, f, nil
}

// CheckMountpoint refuses a mountpoint that does not exist, is not a
// directory, or already has something mounted on it.
func CheckMountpoint(mountpoint string) error {
	st, err := os.Stat(mountpoint)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("mountpoint %s does not exist: create it with mkdir -p %s", mountpoint, mountpoint)
		}
		if errors.Is(err, syscall.ENOTCONN) {
			return fmt.Errorf("mountpoint %s is a dead FUSE mount: run idmapfs umount %s first", mountpoint, mountpoint)
		}
		return fmt.Errorf("mountpoint: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("mountpoint %s is not a directory", mountpoint)
	}
	if mounted, err := IsMountpoint(mountpoint); err == nil && mounted {
		return fmt.Errorf("mountpoint %s is busy: something is already mounted there (idmapfs umount %s to clear it)", mountpoint, mountpoint)
	}
	return nil
}

// IsMountpoint reports whether path is the mount point of a mount in this
// mount namespace.
func IsMountpoint(path string) (bool, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false, err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	mf, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer mf.Close()
	sc := bufio.NewScanner(mf)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == abs {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMount undoes the octal escapes of /proc/self/mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for j := 1; j <= 3; j++ {
				c := s[i+j]
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + (c - '0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func checkFUSE() error {
	const hint = "load the fuse module (modprobe fuse) or, in a container, pass the device through"
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot open /dev/fuse (%w): %s", err, hint)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat /dev/fuse: %w", err)
	}
	// The FUSE device is character device 10:229 (misc, FUSE_MINOR).
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 10 || unix.Minor(st.Rdev) != 229 {
		return fmt.Errorf("/dev/fuse is not the FUSE device (want character device 10:229): %s", hint)
	}
	return nil
}

// raiseNofile lifts the descriptor limit as far as it goes and returns it:
// idmapfs holds one O_PATH descriptor per inode the kernel has cached, up to
// a share of this limit (see fd_linux.go).
func raiseNofile() int64 {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	want := uint64(1 << 20)
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		var v uint64
		if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &v); err == nil && v > 0 {
			want = v
		}
	}
	raised := lim
	if raised.Max < want {
		raised.Max = want
	}
	raised.Cur = raised.Max
	if unix.Setrlimit(unix.RLIMIT_NOFILE, &raised) != nil {
		// Without CAP_SYS_RESOURCE the hard limit stays; use all of it.
		raised = lim
		raised.Cur = raised.Max
		if unix.Setrlimit(unix.RLIMIT_NOFILE, &raised) != nil {
			raised = lim
		}
	}
	if raised.Cur > 1<<40 {
		return 1 << 40
	}
	return int64(raised.Cur)
}

// Unmount unmounts an idmapfs mount, including one whose daemon died
// (the kernel then answers ENOTCONN for every access). lazy detaches a busy
// mount instead of failing.
func Unmount(mountpoint string, lazy bool) error {
	flags := 0
	if lazy {
		flags = unix.MNT_DETACH
	}
	err := unix.Unmount(mountpoint, flags)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("%s is busy (a process has files open or its cwd there): stop it, or pass --lazy to detach now", mountpoint)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("%s is not a mount point", mountpoint)
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%s does not exist", mountpoint)
	}
	return fmt.Errorf("unmount %s: %w", mountpoint, err)
}
