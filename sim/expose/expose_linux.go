package expose

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	simwire "github.com/shiftlock/shiftlock/sim/wire"
	"github.com/shiftlock/shiftlock/tcg/transport"
)

// fsName is the mount's filesystem type after "fuse.".
const fsName = "sedsim"

// maxIO is the largest read or write the kernel sends (MountOptions.MaxWrite,
// which go-fuse also uses as max_read).
const maxIO = 1 << 20

// Options tune Mount. The zero value is ready to use.
type Options struct {
	// Source is what the mount table shows as the mount's source, such as
	// "sedsim:/var/lib/sedsim/d1"; default "sedsim".
	Source string
	// AllowOther lets users other than the one who mounted open the
	// file (the file itself stays mode 0600).
	AllowOther bool
	// Logger receives refused transfers (debug), unexpected errors
	// (warning) and mount events; nil discards them.
	Logger *slog.Logger
	// Debug logs every FUSE request to the Logger.
	Debug bool
}

// Disk is a mounted exposure of a Device: the file Path on a FUSE mount.
type Disk struct {
	dir    string
	dev    Device
	syncer Syncer
	bs     int64
	size   int64
	mtime  time.Time
	uid    uint32
	gid    uint32
	log    *slog.Logger

	server *fuse.Server
	conn   uint32 // the FUSE connection number (fusectl), 0 if unknown
	done   chan struct{}

	// rmw is held exclusively by a write that reads, patches and writes
	// back a partial block, and shared by every other write, so that no
	// write lands between the read and the write-back of a patched block.
	rmw    sync.RWMutex
	closed atomic.Bool
	once   sync.Once
	bufs   sync.Pool
}

// Mount exposes dev as dir/disk: it mounts a FUSE filesystem on dir
// (created if missing) that holds that one file, and serves it until Close.
// A dead FUSE mount left on dir by a killed server is detached first;
// anything else mounted there is an error.
func Mount(dir string, dev Device, opts *Options) (*Disk, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Source == "" {
		o.Source = "sedsim"
	}
	id := dev.Info()
	bs := int64(id.BlockSize)
	if bs <= 0 || bs > maxIO || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("expose %s: drive block size %d is not usable", dir, id.BlockSize)
	}
	if id.Blocks == 0 || id.Blocks > uint64(1<<62)/uint64(bs) {
		return nil, fmt.Errorf("expose %s: drive capacity of %d blocks is not usable", dir, id.Blocks)
	}
	if err := prepareMountpoint(dir, o.Logger); err != nil {
		return nil, err
	}
	d := &Disk{
		dir:   dir,
		dev:   dev,
		bs:    bs,
		size:  int64(id.Blocks) * bs,
		mtime: time.Now(),
		uid:   uint32(os.Geteuid()),
		gid:   uint32(os.Getegid()),
		log:   o.Logger,
		done:  make(chan struct{}),
	}
	d.syncer, _ = dev.(Syncer)
	d.bufs.New = func() any {
		b := make([]byte, maxIO+2*bs)
		return &b
	}

	mo := fuse.MountOptions{
		AllowOther:    o.AllowOther,
		FsName:        o.Source,
		Name:          fsName,
		DirectMount:   true,
		MaxWrite:      maxIO,
		MaxBackground: 64,
		DisableXAttrs: true,
		Debug:         o.Debug,
		Logger:        log.New(slogWriter{o.Logger}, "", 0),
	}
	forever := time.Hour
	fo := &gofs.Options{
		MountOptions:    mo,
		EntryTimeout:    &forever,
		AttrTimeout:     &forever,
		NegativeTimeout: &forever,
		UID:             d.uid,
		GID:             d.gid,
	}
	server, err := gofs.Mount(dir, &rootNode{d: d}, fo)
	if err != nil {
		return nil, fmt.Errorf("expose %s: mount: %w", dir, err)
	}
	d.server = server
	go func() {
		server.Wait()
		close(d.done)
	}()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err == nil && unix.Major(st.Dev) == 0 {
		d.conn = unix.Minor(st.Dev)
	}
	return d, nil
}

// Path returns the path of the file that shows the media.
func (d *Disk) Path() string { return filepath.Join(d.dir, FileName) }

// Size returns the file's size: the drive's capacity in bytes.
func (d *Disk) Size() int64 { return d.size }

// Unmounted is closed once the mount is gone, by Close or by someone
// unmounting it.
func (d *Disk) Unmounted() <-chan struct{} { return d.done }

// Close unmounts the file. If it is busy (a loop device still uses it), the
// mount is detached lazily, every later transfer fails with EIO as if the
// drive had been pulled, and the FUSE connection is aborted where fusectl
// allows it. Close waits for requests in progress when the unmount is
// clean.
func (d *Disk) Close() error {
	var err error
	d.once.Do(func() { err = d.close() })
	return err
}

func (d *Disk) close() error {
	select {
	case <-d.done:
		d.closed.Store(true)
		return nil
	default:
	}
	uerr := d.server.Unmount()
	if uerr == nil {
		<-d.done
		d.closed.Store(true)
		return nil
	}
	// Busy: whoever holds the file open (a loop device) keeps the FUSE
	// connection alive after a lazy unmount. From here on it gets EIO.
	d.closed.Store(true)
	d.log.Warn("exposed disk is still in use (a loop device?); detaching it: its I/O fails from now on",
		"path", d.Path(), "err", uerr)
	if err := unmountDetach(d.dir); err != nil {
		return fmt.Errorf("expose %s: unmount: %w (lazy unmount: %v)", d.dir, uerr, err)
	}
	if d.conn != 0 {
		abort := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", d.conn)
		if err := os.WriteFile(abort, []byte("1"), 0); err == nil {
			select {
			case <-d.done:
			case <-time.After(5 * time.Second):
			}
		}
	}
	return nil
}

// prepareMountpoint makes sure dir is a directory nothing is mounted on,
// creating it if needed and detaching a dead FUSE mount.
func prepareMountpoint(dir string, lg *slog.Logger) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, syscall.ENOTCONN) {
		// The server of a FUSE mount here died (kill -9): the mount
		// answers nothing but ENOTCONN until it is detached.
		lg.Warn("detaching a dead FUSE mount left by a server that is gone", "dir", dir)
		if err := unmountDetach(dir); err != nil {
			return fmt.Errorf("expose %s: a dead FUSE mount is in the way and cannot be detached (umount -l %s): %w", dir, dir, err)
		}
		fi, err = os.Stat(dir)
	}
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("expose: %w", err)
		}
		fi, err = os.Stat(dir)
	}
	if err != nil {
		return fmt.Errorf("expose: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("expose %s: not a directory: --expose takes a directory to mount on", dir)
	}
	fstype, err := mountedAt(dir)
	if err != nil {
		return fmt.Errorf("expose %s: %w", dir, err)
	}
	if fstype == "fuse."+fsName && deadFUSE(dir) {
		// A killed server's mount whose root the kernel still has
		// cached attributes for, so that stat works but nothing else.
		lg.Warn("detaching a dead sedsim mount left by a server that is gone", "dir", dir)
		if err := unmountDetach(dir); err != nil {
			return fmt.Errorf("expose %s: a dead sedsim mount is in the way and cannot be detached (umount -l %s): %w", dir, dir, err)
		}
		fstype, err = mountedAt(dir)
		if err != nil {
			return fmt.Errorf("expose %s: %w", dir, err)
		}
	}
	switch {
	case fstype == "fuse."+fsName:
		return fmt.Errorf("expose %s: another sedsim already exposes a drive there; stop it or choose another directory", dir)
	case fstype != "":
		return fmt.Errorf("expose %s: a %s filesystem is mounted there; unmount it or choose another directory", dir, fstype)
	}
	return nil
}

// deadFUSE reports whether the FUSE mount on dir has lost its server:
// listing the directory needs the server and gives ENOTCONN without one.
func deadFUSE(dir string) bool {
	f, err := os.Open(dir)
	if err == nil {
		_, err = f.Readdirnames(1)
		f.Close()
	}
	return errors.Is(err, syscall.ENOTCONN)
}

func unmountDetach(dir string) error {
	for {
		err := unix.Unmount(dir, unix.MNT_DETACH)
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return &os.PathError{Op: "umount2", Path: dir, Err: err}
			}
			return nil
		}
	}
}

// mountedAt returns the type of the filesystem mounted on dir in this
// mount namespace (the topmost, if several are), or "" if dir is not a
// mount point.
func mountedAt(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	fstype := ""
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || unescapeMountinfo(fields[4]) != abs {
			continue
		}
		// Optional fields end with "-", then the type.
		fstype = "unknown"
		for i, fl := range fields[5:] {
			if fl == "-" && 5+i+1 < len(fields) {
				fstype = fields[5+i+1]
				break
			}
		}
	}
	return fstype, sc.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// slogWriter turns go-fuse's log.Logger output into debug records.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug(strings.TrimRight(string(p), "\n"), "component", "fuse")
	return len(p), nil
}

// rootNode is the mount's root directory, holding the one file.
type rootNode struct {
	gofs.Inode
	d *Disk
}

var _ = (gofs.NodeOnAdder)((*rootNode)(nil))

func (r *rootNode) OnAdd(ctx context.Context) {
	ch := r.NewPersistentInode(ctx, &fileNode{d: r.d}, gofs.StableAttr{Mode: fuse.S_IFREG, Ino: 2})
	r.AddChild(FileName, ch, false)
}

// fileNode is the file that shows the media.
type fileNode struct {
	gofs.Inode
	d *Disk
}

var (
	_ = (gofs.NodeGetattrer)((*fileNode)(nil))
	_ = (gofs.NodeSetattrer)((*fileNode)(nil))
	_ = (gofs.NodeOpener)((*fileNode)(nil))
	_ = (gofs.NodeReader)((*fileNode)(nil))
	_ = (gofs.NodeWriter)((*fileNode)(nil))
	_ = (gofs.NodeFlusher)((*fileNode)(nil))
	_ = (gofs.NodeFsyncer)((*fileNode)(nil))
	_ = (gofs.NodeAllocater)((*fileNode)(nil))
)

func (n *fileNode) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.d.fill(&out.Attr)
	return 0
}

// Setattr accepts time changes; the size of a drive is fixed and so are
// the file's owner and mode. As for a block device, open(O_TRUNC) changes
// nothing (the kernel asks for it as a truncation to 0 without a file
// handle, which truncate(2) to 0 also looks like), so that
// "dd of=DIR/disk" and "cp image DIR/disk" work; any other size change is
// EINVAL, what ftruncate(2) of a block device gives.
func (n *fileNode) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok && int64(sz) != n.d.size {
		if _, byHandle := in.GetFh(); sz != 0 || byHandle {
			return syscall.EINVAL
		}
	}
	if _, ok := in.GetMode(); ok {
		return syscall.EPERM
	}
	if _, ok := in.GetUID(); ok {
		return syscall.EPERM
	}
	if _, ok := in.GetGID(); ok {
		return syscall.EPERM
	}
	n.d.fill(&out.Attr)
	return 0
}

func (d *Disk) fill(a *fuse.Attr) {
	a.Mode = fuse.S_IFREG | 0o600
	a.Nlink = 1
	a.Size = uint64(d.size)
	a.Blocks = uint64(d.size) / 512
	a.Blksize = uint32(max(d.bs, 4096))
	a.Owner = fuse.Owner{Uid: d.uid, Gid: d.gid}
	a.SetTimes(nil, &d.mtime, &d.mtime)
}

// Open makes every open direct I/O: the page cache must never answer for
// a drive that may lock at any moment. Writes may run in parallel; rmw
// orders the ones that patch partial blocks.
func (n *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if n.d.closed.Load() {
		return nil, 0, syscall.EIO
	}
	return nil, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_PARALLEL_DIRECT_WRITES, 0
}

func (n *fileNode) Read(ctx context.Context, f gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	d := n.d
	if d.closed.Load() {
		return nil, syscall.EIO
	}
	if off < 0 {
		return nil, syscall.EINVAL
	}
	if off >= d.size || len(dest) == 0 {
		return fuse.ReadResultData(nil), 0
	}
	cnt := min(int64(len(dest)), d.size-off)
	if off%d.bs == 0 && cnt%d.bs == 0 {
		if err := d.dev.Read(uint64(off/d.bs), dest[:cnt]); err != nil {
			return nil, d.errno("read", off, cnt, err)
		}
		return fuse.ReadResultData(dest[:cnt]), 0
	}
	first := off / d.bs
	last := (off + cnt + d.bs - 1) / d.bs
	bp, buf := d.buffer((last - first) * d.bs)
	defer d.bufs.Put(bp)
	if err := d.dev.Read(uint64(first), buf); err != nil {
		return nil, d.errno("read", off, cnt, err)
	}
	copy(dest, buf[off-first*d.bs:][:cnt])
	return fuse.ReadResultData(dest[:cnt]), 0
}

func (n *fileNode) Write(ctx context.Context, f gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	d := n.d
	if d.closed.Load() {
		return 0, syscall.EIO
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if len(data) == 0 {
		return 0, 0
	}
	if off >= d.size {
		return 0, syscall.ENOSPC // the end of the drive, as for a block device
	}
	cnt := min(int64(len(data)), d.size-off)
	if off%d.bs == 0 && cnt%d.bs == 0 {
		d.rmw.RLock()
		err := d.dev.Write(uint64(off/d.bs), data[:cnt])
		d.rmw.RUnlock()
		if err != nil {
			return 0, d.errno("write", off, cnt, err)
		}
		return uint32(cnt), 0
	}
	first := off / d.bs
	last := (off + cnt + d.bs - 1) / d.bs
	bp, buf := d.buffer((last - first) * d.bs)
	defer d.bufs.Put(bp)
	d.rmw.Lock()
	defer d.rmw.Unlock()
	if off%d.bs != 0 {
		if err := d.dev.Read(uint64(first), buf[:d.bs]); err != nil {
			return 0, d.errno("write (reading a partial block)", off, cnt, err)
		}
	}
	if end := off + cnt; end%d.bs != 0 && (last-1 != first || off%d.bs == 0) {
		if err := d.dev.Read(uint64(last-1), buf[len(buf)-int(d.bs):]); err != nil {
			return 0, d.errno("write (reading a partial block)", off, cnt, err)
		}
	}
	copy(buf[off-first*d.bs:], data[:cnt])
	if err := d.dev.Write(uint64(first), buf); err != nil {
		return 0, d.errno("write", off, cnt, err)
	}
	return uint32(cnt), 0
}

func (n *fileNode) Flush(ctx context.Context, f gofs.FileHandle) syscall.Errno { return 0 }

func (n *fileNode) Fsync(ctx context.Context, f gofs.FileHandle, flags uint32) syscall.Errno {
	d := n.d
	if d.closed.Load() {
		return syscall.EIO
	}
	if d.syncer == nil {
		return 0
	}
	if err := d.syncer.Sync(); err != nil {
		return d.errno("fsync", 0, 0, err)
	}
	return 0
}

// Allocate refuses every mode: the drive has no TRIM, and writing zeros
// over a whole discard (mkfs discards the device) would write the entire
// sparse media. The loop driver passes EOPNOTSUPP on, and the block layer
// then writes zeros itself where it needs them.
func (n *fileNode) Allocate(ctx context.Context, f gofs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	return syscall.EOPNOTSUPP
}

// buffer returns a pooled buffer of n bytes (n <= maxIO + 2 blocks) and
// its pool handle.
func (d *Disk) buffer(n int64) (*[]byte, []byte) {
	bp := d.bufs.Get().(*[]byte)
	if int64(cap(*bp)) < n {
		b := make([]byte, n)
		bp = &b
	}
	return bp, (*bp)[:n]
}

// errno turns a Device error into the errno the FUSE request returns. A
// refused transfer (locked range, shadow MBR) is EIO, as a locked drive
// gives the block layer; an errno from the media passes through; anything
// else is logged and becomes EIO.
func (d *Disk) errno(op string, off, n int64, err error) syscall.Errno {
	switch {
	case errors.Is(err, simwire.ErrAccessDenied):
		d.log.Debug("drive refused the transfer", "op", op, "offset", off, "bytes", n, "err", err)
		return syscall.EIO
	case errors.Is(err, transport.ErrInvalidField):
		d.log.Warn("drive rejected the transfer", "op", op, "offset", off, "bytes", n, "err", err)
		return syscall.EIO
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && errno != 0 {
		d.log.Warn("media I/O failed", "op", op, "offset", off, "bytes", n, "err", err)
		return errno
	}
	d.log.Warn("transfer failed", "op", op, "offset", off, "bytes", n, "err", err)
	return syscall.EIO
}
