package idmapfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/idmap"
)

// Options configure one idmapfs mount.
type Options struct {
	IDs idmap.IDMap

	ReadOnly      bool
	AllowOther    bool // let every user (the container) use the mount
	Suid          bool // honour setuid/setgid bits (default: nosuid)
	Dev           bool // honour device nodes (default: nodev)
	Writeback     bool // kernel writeback cache; turns passthrough off
	DirectIO      bool // no page cache for regular files; turns passthrough off
	NoPassthrough bool

	EntryTimeout    time.Duration
	AttrTimeout     time.Duration
	NegativeTimeout time.Duration

	// MaxFds caps the O_PATH descriptors held for cached inodes; 0 means
	// three quarters of RLIMIT_NOFILE (raised as far as it goes).
	MaxFds int

	// AllowTrusted passes trusted.* xattrs through (overlay mode keeps its
	// own metadata there; by default they are hidden and refused).
	AllowTrusted bool

	// Lowers switches to overlay mode: the merged view of these layers,
	// the top one first (as overlayfs lowerdir=), instead of one SOURCE.
	// Each is a directory or a squashfs, erofs or ext4 image file (attached
	// read-only and detached when the FS is closed). Without an upper the
	// mount is read-only: every change fails with EROFS.
	Lowers []string
	// Upper makes the overlay writable: changes go to this directory, in
	// the kernel overlayfs format with disk ids (overlay_upper_linux.go).
	// Work is a directory on the upper's filesystem, outside the upper,
	// where copy-ups are prepared; "" means DefaultWork(Upper).
	Upper, Work string
	// Verify ("sha256:HEX") checks the one image file among Lowers before
	// it is attached; VerifyFile names a sha256sum-style SUMS file that
	// every image lower is checked against. A mismatch refuses the mount.
	Verify, VerifyFile string
	// UserXattr keeps the overlay's own metadata (opaque directories) in
	// user.overlay.* instead of trusted.overlay.*, as overlayfs userxattr.
	UserXattr bool
	// Progress, if a terminal, shows a progress bar while images are
	// verified.
	Progress io.Writer

	Debug  bool
	Logger *slog.Logger
}

// DefaultTimeout is the kernel entry and attribute cache lifetime. idmapfs
// assumes it is the only writer of SOURCE while mounted, which is what lets
// the kernel answer stat and lookup from its caches.
const DefaultTimeout = 60 * time.Second

// FS is the state shared by every node of one mount.
type FS struct {
	opts    Options
	ids     idmap.IDMap
	log     *slog.Logger
	creds   *creds
	rootDev uint64

	overflowUID, overflowGID uint32

	umaskMu sync.Mutex
	root    *Node
	ov      *overlayState // overlay mode only (overlay_linux.go)

	mu    sync.Mutex
	nodes map[devIno]*Node // newest node per backing inode, for generations

	openFds         atomic.Int64 // node descriptors open
	fdHigh, fdLow   int64        // eviction starts above fdHigh and stops at fdLow
	sweeping        atomic.Bool
	server          *fuse.Server
	passthrough     bool
	passthroughOnce sync.Once
}

type devIno struct{ dev, ino uint64 }

// Node is one backing inode, held open as an O_PATH descriptor. All
// operations act on that descriptor or on names relative to it, so the
// container's renames and symlinks cannot move the daemon outside SOURCE.
type Node struct {
	fs.Inode
	fsys  *FS
	key   devIno
	gen   uint64
	isDir bool
	typ   uint32 // st_mode & S_IFMT
	birth int64  // birth time in ns, 0 if unknown: with key, the inode's identity

	// The descriptor lifecycle is in fd_linux.go.
	fd        int          // valid while refs > 0
	refs      atomic.Int64 // 1 while the node holds its descriptor, +1 per operation in flight
	used      atomic.Bool  // used since the last eviction sweep
	fdMu      sync.Mutex   // serialises hasFd changes: revive, evict, forget
	hasFd     bool
	forgotten bool

	ioState
}

var (
	_ fs.NodeLookuper       = (*Node)(nil)
	_ fs.NodeGetattrer      = (*Node)(nil)
	_ fs.NodeSetattrer      = (*Node)(nil)
	_ fs.NodeOpener         = (*Node)(nil)
	_ fs.NodeCreater        = (*Node)(nil)
	_ fs.NodeTmpfiler       = (*Node)(nil)
	_ fs.NodeMkdirer        = (*Node)(nil)
	_ fs.NodeMknoder        = (*Node)(nil)
	_ fs.NodeSymlinker      = (*Node)(nil)
	_ fs.NodeLinker         = (*Node)(nil)
	_ fs.NodeReadlinker     = (*Node)(nil)
	_ fs.NodeUnlinker       = (*Node)(nil)
	_ fs.NodeRmdirer        = (*Node)(nil)
	_ fs.NodeRenamer        = (*Node)(nil)
	_ fs.NodeOpendirHandler = (*Node)(nil)
	_ fs.NodeStatfser       = (*Node)(nil)
	_ fs.NodeGetxattrer     = (*Node)(nil)
	_ fs.NodeSetxattrer     = (*Node)(nil)
	_ fs.NodeListxattrer    = (*Node)(nil)
	_ fs.NodeRemovexattrer  = (*Node)(nil)
	_ fs.NodeCopyFileRanger = (*Node)(nil)
	_ fs.NodeOnForgetter    = (*Node)(nil)
	_ fs.NodeAllocater      = (*Node)(nil)
	_ fs.NodeLseeker        = (*Node)(nil)
)

// New opens SOURCE and returns the root node of a filesystem over it.
func New(source string, opts Options) (*Node, *FS, error) {
	if err := checkOptions(&opts); err != nil {
		return nil, nil, err
	}
	fd, err := unix.Open(source, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) {
			return nil, nil, fmt.Errorf("source %s is not a directory: idmapfs shows a directory tree (for an image file, mount it first or use overlay mode)", source)
		}
		return nil, nil, &os.PathError{Op: "open source", Path: source, Err: err}
	}
	var st unix.Stat_t
	if err := fstatPath(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nil, &os.PathError{Op: "stat source", Path: source, Err: err}
	}
	f, err := newFS(opts, st.Dev)
	if err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	root := f.newNode(fd, &st, 1)
	f.root = root
	return root, f, nil
}

// checkOptions fills in defaults and refuses options no mount can use.
func checkOptions(opts *Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if opts.IDs.UID.Empty() || opts.IDs.GID.Empty() {
		return errors.New("no id mapping: pass --map (e.g. --map 0:100000:65536)")
	}
	return nil
}

// newFS builds the state shared by every node of one mount whose root is
// on the device rootDev.
func newFS(opts Options, rootDev uint64) (*FS, error) {
	c, err := newCreds()
	if err != nil {
		return nil, err
	}
	return &FS{
		opts:        opts,
		ids:         opts.IDs,
		log:         opts.Logger,
		creds:       c,
		rootDev:     rootDev,
		overflowUID: readOverflow("/proc/sys/fs/overflowuid"),
		overflowGID: readOverflow("/proc/sys/fs/overflowgid"),
		nodes:       make(map[devIno]*Node),
		passthrough: !opts.NoPassthrough && !opts.Writeback && !opts.DirectIO,
	}, nil
}

func readOverflow(path string) uint32 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 65534
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 65534
	}
	return uint32(v)
}

// Close releases the descriptors into SOURCE that the filesystem still
// holds. Call it once the server has stopped (after Wait).
func (f *FS) Close() {
	f.mu.Lock()
	nodes := make([]*Node, 0, len(f.nodes)+1)
	for k, n := range f.nodes {
		nodes = append(nodes, n)
		delete(f.nodes, k)
	}
	f.mu.Unlock()
	if f.root != nil {
		nodes = append(nodes, f.root)
	}
	for _, n := range nodes {
		n.dropFd(true)
	}
	if f.ov != nil {
		f.ov.close(f.log)
	}
}

// OpenFds is the number of node descriptors open now.
func (f *FS) OpenFds() int64 { return f.openFds.Load() }

// Passthrough reports whether regular-file I/O goes straight to the backing
// files (FUSE passthrough) rather than through the daemon.
func (f *FS) Passthrough() bool { return f.passthrough }

func (f *FS) newNode(fd int, st *unix.Stat_t, gen uint64) *Node {
	n := &Node{fsys: f, fd: fd, key: devIno{st.Dev, st.Ino}, gen: gen, isDir: st.Mode&unix.S_IFMT == unix.S_IFDIR, typ: st.Mode & unix.S_IFMT}
	if fd >= 0 {
		n.hasFd = true
		n.refs.Store(1)
		f.openFds.Add(1)
	}
	return n
}

func (f *FS) hostUID(disk uint32) uint32 {
	if h, ok := f.ids.UID.ToHost(disk); ok {
		return h
	}
	return f.overflowUID
}

func (f *FS) hostGID(disk uint32) uint32 {
	if h, ok := f.ids.GID.ToHost(disk); ok {
		return h
	}
	return f.overflowGID
}

// ino is the inode number shown for a backing inode: the backing one for
// the filesystem SOURCE is on, mixed with the device for any other.
func (f *FS) ino(st *unix.Stat_t) uint64 {
	if st.Dev == f.rootDev {
		return st.Ino
	}
	return st.Ino ^ (st.Dev * 0x9E3779B97F4A7C15)
}

// unmapped reports whether a backing inode's owner or group has no host id.
// The kernel's idmapped mounts refuse to change such an inode (it "cannot
// be written back"), and root's DAC override does not apply to it.
func (f *FS) unmapped(st *unix.Stat_t) (uid, gid bool) {
	_, okU := f.ids.UID.ToHost(st.Uid)
	_, okG := f.ids.GID.ToHost(st.Gid)
	return !okU, !okG
}

// checkVictim refuses to remove or replace name in the directory dirfd
// when its owner is unmapped, as may_delete does on an idmapped mount.
// ENOENT is passed on for the caller to act on.
func (f *FS) checkVictim(dirfd int, name string) syscall.Errno {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return toErrno(f.log, "stat", err)
	}
	if u, g := f.unmapped(&st); u || g {
		return syscall.EOVERFLOW
	}
	return 0
}

// otherAccess is the kernel's verdict for an inode with an unmapped owner,
// where only the "other" permission bits apply, to everyone.
func otherAccess(st *unix.Stat_t, write bool) syscall.Errno {
	bit := uint32(0o004)
	if write {
		bit = 0o002
	}
	if st.Mode&bit == 0 {
		return syscall.EACCES
	}
	return 0
}

func (f *FS) fillAttr(st *unix.Stat_t, out *fuse.Attr) {
	out.Ino = f.ino(st)
	out.Size = uint64(st.Size)
	out.Blocks = uint64(st.Blocks)
	out.Atime = uint64(st.Atim.Sec)
	out.Atimensec = uint32(st.Atim.Nsec)
	out.Mtime = uint64(st.Mtim.Sec)
	out.Mtimensec = uint32(st.Mtim.Nsec)
	out.Ctime = uint64(st.Ctim.Sec)
	out.Ctimensec = uint32(st.Ctim.Nsec)
	out.Mode = st.Mode
	out.Nlink = uint32(st.Nlink)
	out.Uid = f.hostUID(st.Uid)
	out.Gid = f.hostGID(st.Gid)
	out.Rdev = uint32(unix.Mkdev(unix.Major(st.Rdev), unix.Minor(st.Rdev)))
	out.Blksize = uint32(st.Blksize)
}

func (f *FS) fillEntry(st *unix.Stat_t, out *fuse.EntryOut) {
	f.fillAttr(st, &out.Attr)
	out.SetEntryTimeout(f.opts.EntryTimeout)
	out.SetAttrTimeout(f.opts.AttrTimeout)
}

// caller returns the disk ids a request runs as; ok is false when the
// caller has no disk id (rule 2: such a caller cannot store its id).
func (f *FS) caller(ctx context.Context) (uid, gid uint32, errno syscall.Errno) {
	c, ok := fuse.FromContext(ctx)
	if !ok {
		return 0, 0, syscall.EIO
	}
	u, ok1 := f.ids.UID.ToDisk(c.Uid)
	g, ok2 := f.ids.GID.ToDisk(c.Gid)
	if !ok1 || !ok2 {
		return 0, 0, syscall.EOVERFLOW
	}
	return u, g, 0
}

// child turns a freshly opened O_PATH descriptor of name into the node the
// kernel will know. It takes ownership of fd.
func (n *Node) child(ctx context.Context, fd int, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	var st unix.Stat_t
	birth, err := statAt(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, &st)
	if err != nil {
		unix.Close(fd)
		return nil, toErrno(n.fsys.log, "stat", err)
	}
	return n.childOf(ctx, fd, &st, birth, out)
}

// childOf turns a backing inode, with attributes st and birth time birth,
// opened as fd (or -1: the node opens it by name when first needed), into
// the node the kernel will know. It takes ownership of fd.
func (n *Node) childOf(ctx context.Context, fd int, stp *unix.Stat_t, birth int64, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	st := *stp
	key := devIno{st.Dev, st.Ino}
	f.mu.Lock()
	gen := uint64(1)
	if prev := f.nodes[key]; prev != nil {
		gen = prev.gen + 1
		if prev.adopt(fd, &st, birth) {
			// The kernel knows this inode already (another name, or a
			// lookup after its entry expired).
			f.mu.Unlock()
			f.fillEntry(&st, out)
			return prev.EmbeddedInode(), 0
		}
		// Otherwise the inode number was reused by a new file.
	}
	node := f.newNode(fd, &st, gen)
	node.birth = birth
	// Initialise the inode before publishing the node: a concurrent lookup
	// may hand it to go-fuse as soon as it is in the map.
	ch := n.NewInode(ctx, node, fs.StableAttr{Mode: st.Mode & unix.S_IFMT, Ino: f.ino(&st), Gen: gen})
	f.nodes[key] = node
	f.mu.Unlock()
	f.maybeEvict()
	f.fillEntry(&st, out)
	return ch, 0
}

func validName(name string) syscall.Errno {
	if name == "" || name == "." || name == ".." || strings.IndexByte(name, '/') >= 0 {
		return syscall.EINVAL
	}
	return 0
}

func (n *Node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := validName(name); e != 0 {
		return nil, e
	}
	pfd, e := n.get()
	if e != 0 {
		return nil, e
	}
	defer n.put()
	// A stat is all a lookup needs: a file's node opens its descriptor by
	// name on first use (fd_linux.go), which most lookups (stat, ls -l)
	// never need. A directory's is opened now: its children need it.
	var st unix.Stat_t
	birth, err := statAt(pfd, name, unix.AT_SYMLINK_NOFOLLOW, &st)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			out.SetEntryTimeout(n.fsys.opts.NegativeTimeout)
			return nil, syscall.ENOENT
		}
		return nil, toErrno(n.fsys.log, "lookup", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return n.childOf(ctx, -1, &st, birth, out)
	}
	fd, err := n.fsys.retryEMFILE(func() (int, error) { return openBeneath(pfd, name, unix.O_PATH|unix.O_DIRECTORY, 0) })
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil, syscall.ESTALE // replaced since the stat
		}
		return nil, toErrno(n.fsys.log, "lookup", err)
	}
	return n.child(ctx, fd, out)
}

func (n *Node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	var st unix.Stat_t
	if h := fileOf(fh); h != nil {
		if err := unix.Fstat(h.fd, &st); err != nil {
			return toErrno(n.fsys.log, "fstat", err)
		}
	} else {
		fd, e := n.get()
		if e != 0 {
			return e
		}
		err := fstatPath(fd, &st)
		n.put()
		if err != nil {
			return toErrno(n.fsys.log, "stat", err)
		}
	}
	n.fsys.fillAttr(&st, &out.Attr)
	out.SetTimeout(n.fsys.opts.AttrTimeout)
	return 0
}

func (n *Node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	f := n.fsys
	if f.opts.ReadOnly {
		return syscall.EROFS
	}
	// An open file serves as well as the node's own descriptor (which a
	// new file's node may not have opened yet).
	h := fileOf(fh)
	var fd int
	if h != nil {
		fd = h.fd
	} else {
		var e syscall.Errno
		if fd, e = n.get(); e != 0 {
			return e
		}
		defer n.put()
	}
	return f.setattrFd(fd, h, in, out)
}

// setattrFd applies a SETATTR to the inode behind fd (an O_PATH
// descriptor, or h's open file when h is not nil) and fills out.
func (f *FS) setattrFd(fd int, h *File, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	uid, hasUID := in.GetUID()
	gid, hasGID := in.GetGID()
	var cur unix.Stat_t
	if err := fstatPath(fd, &cur); err != nil {
		return toErrno(f.log, "stat", err)
	}
	badU, badG := f.unmapped(&cur)
	if _, hasSize := in.GetSize(); hasSize && h == nil && (badU || badG) {
		// truncate(2) checks write permission first (only "other" applies).
		if e := otherAccess(&cur, true); e != 0 {
			return e
		}
	}
	if (badU && !hasUID) || (badG && !hasGID) {
		// Unless the same call makes the ids valid (notify_change).
		return syscall.EOVERFLOW
	}
	if hasUID || hasGID {
		du, dg := -1, -1
		if hasUID && uid != idmap.InvalidID {
			d, ok := f.ids.UID.ToDisk(uid)
			if !ok {
				return syscall.EOVERFLOW
			}
			du = int(d)
		}
		if hasGID && gid != idmap.InvalidID {
			d, ok := f.ids.GID.ToDisk(gid)
			if !ok {
				return syscall.EOVERFLOW
			}
			dg = int(d)
		}
		if err := unix.Fchownat(fd, "", du, dg, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return toErrno(f.log, "chown", err)
		}
	}
	if mode, ok := in.GetMode(); ok {
		var err error
		if h != nil {
			err = unix.Fchmod(h.fd, mode&07777)
		} else {
			err = fchmodPath(fd, mode&07777)
		}
		if err != nil {
			return toErrno(f.log, "chmod", err)
		}
	}
	if size, ok := in.GetSize(); ok {
		var err error
		if h != nil {
			err = retryEINTR(func() error { return unix.Ftruncate(h.fd, int64(size)) })
		} else {
			err = retryEINTR(func() error { return unix.Truncate(procFd(fd), int64(size)) })
		}
		if err != nil {
			return toErrno(f.log, "truncate", err)
		}
	}
	if in.Valid&(fuse.FATTR_ATIME|fuse.FATTR_MTIME|fuse.FATTR_ATIME_NOW|fuse.FATTR_MTIME_NOW) != 0 {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		if in.Valid&fuse.FATTR_ATIME_NOW != 0 {
			ts[0].Nsec = unix.UTIME_NOW
		} else if in.Valid&fuse.FATTR_ATIME != 0 {
			ts[0] = unix.Timespec{Sec: int64(in.Atime), Nsec: int64(in.Atimensec)}
		}
		if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
			ts[1].Nsec = unix.UTIME_NOW
		} else if in.Valid&fuse.FATTR_MTIME != 0 {
			ts[1] = unix.Timespec{Sec: int64(in.Mtime), Nsec: int64(in.Mtimensec)}
		}
		if err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return toErrno(f.log, "utimens", err)
		}
	}
	var st unix.Stat_t
	if err := fstatPath(fd, &st); err != nil {
		return toErrno(f.log, "stat", err)
	}
	f.fillAttr(&st, &out.Attr)
	out.SetTimeout(f.opts.AttrTimeout)
	return 0
}

// fchmodPath changes the mode of the inode behind an O_PATH descriptor.
func fchmodPath(fd int, mode uint32) error {
	_, _, e := unix.Syscall6(unix.SYS_FCHMODAT2, uintptr(fd), uintptr(ptr(emptyPath)), uintptr(mode),
		unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

const writeFlags = unix.O_WRONLY | unix.O_RDWR | unix.O_TRUNC | unix.O_APPEND

// backingFlags returns the flags to open the backing file with for an open
// with flags. With --writeback the kernel's page cache reads to fill a page
// that a write-only handle only partly writes, and it appends by itself, at
// the end of file it knows: O_APPEND on the backing file would make every
// write back of a page land at the end (pwrite appends on an O_APPEND file).
func (f *FS) backingFlags(flags uint32) int {
	fl := int(flags)
	if f.opts.Writeback {
		if fl&unix.O_ACCMODE == unix.O_WRONLY {
			fl = fl&^unix.O_ACCMODE | unix.O_RDWR
		}
		fl &^= unix.O_APPEND
	}
	return fl
}

func (n *Node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	if f.opts.ReadOnly && flags&writeFlags != 0 {
		return nil, 0, syscall.EROFS
	}
	fd, e := n.get()
	if e != 0 {
		return nil, 0, e
	}
	defer n.put()
	var st unix.Stat_t
	if err := fstatPath(fd, &st); err != nil {
		return nil, 0, toErrno(f.log, "stat", err)
	}
	if u, g := f.unmapped(&st); u || g {
		acc := flags & unix.O_ACCMODE
		if acc != unix.O_WRONLY {
			if e := otherAccess(&st, false); e != 0 {
				return nil, 0, e
			}
		}
		if acc != unix.O_RDONLY || flags&unix.O_TRUNC != 0 {
			if e := otherAccess(&st, true); e != 0 {
				return nil, 0, e
			}
		}
	}
	ffd, err := f.retryEMFILE(func() (int, error) {
		return reopen(fd, f.backingFlags(flags)&^(unix.O_CREAT|unix.O_EXCL|unix.O_NOCTTY))
	})
	if err != nil {
		return nil, 0, toErrno(f.log, "open", err)
	}
	return n.newFile(ffd, flags, true)
}

func (n *Node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if e := validName(name); e != 0 {
		return nil, nil, 0, e
	}
	return n.createOpen(ctx, "create", name, mode, flags, out, func(pfd int, mode uint32) (int, error) {
		return n.fsys.retryEMFILE(func() (int, error) {
			return openBeneath(pfd, name, n.fsys.backingFlags(flags)|unix.O_CREAT, mode&07777)
		})
	})
}

func (n *Node) Tmpfile(ctx context.Context, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return n.createOpen(ctx, "tmpfile", "", mode, flags, out, func(pfd int, mode uint32) (int, error) {
		return unix.Openat(pfd, ".", n.fsys.backingFlags(flags)|unix.O_TMPFILE|unix.O_CLOEXEC, mode&07777)
	})
}

// createOpen creates and opens a file in n as the caller, with the caller's
// umask, through open, and builds its node and file handle. name is "" for
// an O_TMPFILE.
func (n *Node) createOpen(ctx context.Context, op, name string, mode, flags uint32, out *fuse.EntryOut, open func(pfd int, mode uint32) (int, error)) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	if f.opts.ReadOnly {
		return nil, nil, 0, syscall.EROFS
	}
	uid, gid, e := f.caller(ctx)
	if e != 0 {
		return nil, nil, 0, e
	}
	pfd, e := n.get()
	if e != 0 {
		return nil, nil, 0, e
	}
	defer n.put()
	var ffd int
	err := f.withUmask(mode, func(mode uint32) error {
		return f.creds.as(uid, gid, func() error {
			var err error
			ffd, err = open(pfd, mode)
			return err
		})
	})
	if err != nil {
		return nil, nil, 0, toErrno(f.log, op, err)
	}
	return n.openedChild(ctx, ffd, name, flags, out)
}

// openedChild builds the node and file handle for a file just created in n
// and opened as ffd. name is "" for an O_TMPFILE.
func (n *Node) openedChild(ctx context.Context, ffd int, name string, flags uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	var ch *fs.Inode
	var e syscall.Errno
	if name == "" {
		// An O_TMPFILE has no name to reopen it by.
		pathFd, err := reopen(ffd, unix.O_PATH)
		if err != nil {
			unix.Close(ffd)
			return nil, nil, 0, toErrno(f.log, "reopen", err)
		}
		ch, e = n.child(ctx, pathFd, out)
	} else {
		// The node opens its own descriptor by name when first needed;
		// until then the open file serves.
		var st unix.Stat_t
		birth, err := statAt(ffd, "", unix.AT_EMPTY_PATH, &st)
		if err != nil {
			unix.Close(ffd)
			return nil, nil, 0, toErrno(f.log, "fstat", err)
		}
		ch, e = n.childOf(ctx, -1, &st, birth, out)
	}
	if e != 0 {
		unix.Close(ffd)
		return nil, nil, 0, e
	}
	// Passthrough from the start: measured on ext4, registering the
	// backing file costs a small create nothing visible, while writing a
	// large new file through the daemon is several times slower.
	fh, fflags, e := ch.Operations().(*Node).newFile(ffd, flags, true)
	if e != 0 {
		return nil, nil, 0, e
	}
	return ch, fh, fflags, 0
}

// create runs mk as the caller and looks the new entry up.
func (n *Node) create(ctx context.Context, op, name string, out *fuse.EntryOut, mk func(pfd int) error) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	if e := validName(name); e != 0 {
		return nil, e
	}
	if f.opts.ReadOnly {
		return nil, syscall.EROFS
	}
	uid, gid, e := f.caller(ctx)
	if e != 0 {
		return nil, e
	}
	pfd, e := n.get()
	if e != 0 {
		return nil, e
	}
	defer n.put()
	if err := f.creds.as(uid, gid, func() error { return mk(pfd) }); err != nil {
		return nil, toErrno(f.log, op, err)
	}
	fd, err := f.retryEMFILE(func() (int, error) { return openBeneath(pfd, name, unix.O_PATH, 0) })
	if err != nil {
		return nil, toErrno(f.log, op+": open new entry", err)
	}
	return n.child(ctx, fd, out)
}

func (n *Node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.create(ctx, "mkdir", name, out, func(pfd int) error {
		return n.fsys.withUmask(mode, func(mode uint32) error {
			return unix.Mkdirat(pfd, name, mode&07777)
		})
	})
}

func (n *Node) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.create(ctx, "mknod", name, out, func(pfd int) error {
		return n.fsys.withUmask(mode, func(mode uint32) error {
			return unix.Mknodat(pfd, name, mode, int(dev))
		})
	})
}

func (n *Node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.create(ctx, "symlink", name, out, func(pfd int) error {
		return unix.Symlinkat(target, pfd, name)
	})
}

func (n *Node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	if e := validName(name); e != 0 {
		return nil, e
	}
	if f.opts.ReadOnly {
		return nil, syscall.EROFS
	}
	if _, _, e := f.caller(ctx); e != 0 {
		return nil, e
	}
	t, ok := target.(*Node)
	if !ok {
		return nil, syscall.EXDEV
	}
	tfd, e := t.get()
	if e != 0 {
		return nil, e
	}
	defer t.put()
	var tst unix.Stat_t
	if err := fstatPath(tfd, &tst); err != nil {
		return nil, toErrno(f.log, "stat", err)
	}
	if u, g := f.unmapped(&tst); u || g {
		return nil, syscall.EPERM // vfs_link: no hard link to an unmapped inode
	}
	pfd, e := n.get()
	if e != 0 {
		return nil, e
	}
	defer n.put()
	// linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH, so it runs as the
	// daemon; a link stores no owner.
	if err := unix.Linkat(tfd, "", pfd, name, unix.AT_EMPTY_PATH); err != nil {
		return nil, toErrno(f.log, "link", err)
	}
	fd, err := openBeneath(pfd, name, unix.O_PATH, 0)
	if err != nil {
		return nil, toErrno(f.log, "link: open new entry", err)
	}
	return n.child(ctx, fd, out)
}

func (n *Node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	fd, e := n.get()
	if e != 0 {
		return nil, e
	}
	defer n.put()
	return readlinkFd(n.fsys.log, fd)
}

// readlinkFd reads the target of the symlink behind an O_PATH descriptor.
func readlinkFd(log *slog.Logger, fd int) ([]byte, syscall.Errno) {
	buf := make([]byte, 256)
	for {
		m, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return nil, toErrno(log, "readlink", err)
		}
		if m < len(buf) {
			return buf[:m], 0
		}
		if len(buf) >= 1<<16 {
			return nil, syscall.ENAMETOOLONG
		}
		buf = make([]byte, 2*len(buf))
	}
}

func (n *Node) remove(name string, flags int) syscall.Errno {
	if e := validName(name); e != 0 {
		return e
	}
	if n.fsys.opts.ReadOnly {
		return syscall.EROFS
	}
	pfd, e := n.get()
	if e != 0 {
		return e
	}
	defer n.put()
	if e := n.fsys.checkVictim(pfd, name); e != 0 {
		return e
	}
	if err := unix.Unlinkat(pfd, name, flags); err != nil {
		return toErrno(n.fsys.log, "unlink", err)
	}
	return 0
}

func (n *Node) Unlink(ctx context.Context, name string) syscall.Errno { return n.remove(name, 0) }

func (n *Node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.remove(name, unix.AT_REMOVEDIR)
}

func (n *Node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if e := validName(name); e != 0 {
		return e
	}
	if e := validName(newName); e != 0 {
		return e
	}
	if n.fsys.opts.ReadOnly {
		return syscall.EROFS
	}
	np, ok := newParent.(*Node)
	if !ok {
		return syscall.EXDEV
	}
	pfd, e := n.get()
	if e != 0 {
		return e
	}
	defer n.put()
	npfd, e := np.get()
	if e != 0 {
		return e
	}
	defer np.put()
	f := n.fsys
	if e := f.checkVictim(pfd, name); e != 0 {
		return e
	}
	_, _, callerErr := f.caller(ctx)
	if flags&unix.RENAME_WHITEOUT != 0 && callerErr != 0 {
		return callerErr // a whiteout is a device node owned by the caller
	}
	switch e := f.checkVictim(npfd, newName); e {
	case 0:
	case syscall.ENOENT:
		// A new name: may_create refuses a caller with no disk id.
		if callerErr != 0 {
			return callerErr
		}
	default:
		return e
	}
	rename := func() error { return unix.Renameat2(pfd, name, npfd, newName, uint(flags)) }
	var err error
	if flags&unix.RENAME_WHITEOUT != 0 {
		// The whiteout left behind is a new inode: the caller's.
		uid, gid, _ := f.caller(ctx)
		err = f.creds.as(uid, gid, rename)
	} else {
		err = rename()
	}
	if err != nil {
		return toErrno(f.log, "rename", err)
	}
	return 0
}

func (n *Node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fd, e := n.get()
	if e != 0 {
		return nil, 0, e
	}
	defer n.put()
	dfd, err := n.fsys.retryEMFILE(func() (int, error) { return reopen(fd, unix.O_RDONLY|unix.O_DIRECTORY) })
	if err != nil {
		return nil, 0, toErrno(n.fsys.log, "opendir", err)
	}
	ds, errno := fs.NewLoopbackDirStreamFd(dfd)
	if errno != 0 {
		unix.Close(dfd)
		return nil, 0, errno
	}
	return ds, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

func (n *Node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	fd, e := n.get()
	if e != 0 {
		return e
	}
	defer n.put()
	var s syscall.Statfs_t
	if err := syscall.Fstatfs(fd, &s); err != nil {
		return toErrno(n.fsys.log, "statfs", err)
	}
	out.FromStatfsT(&s)
	return 0
}

func (n *Node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return n.fsys.copyFileRange(fhIn, offIn, fhOut, offOut, length, flags)
}

func (f *FS) copyFileRange(fhIn fs.FileHandle, offIn uint64, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	in, o := fileOf(fhIn), fileOf(fhOut)
	if in == nil || o == nil {
		return 0, syscall.EBADF
	}
	if f.readOnly() {
		return 0, syscall.EROFS
	}
	if length > 1<<30 {
		length = 1 << 30
	}
	ri, wo := int64(offIn), int64(offOut)
	m, err := unix.CopyFileRange(in.fd, &ri, o.fd, &wo, int(length), int(flags))
	if err != nil {
		return 0, toErrno(f.log, "copy_file_range", err)
	}
	return uint32(m), 0
}

func (n *Node) Allocate(ctx context.Context, fh fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	return n.fsys.allocate(fh, off, size, mode)
}

func (f *FS) allocate(fh fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	h := fileOf(fh)
	if h == nil {
		return syscall.EBADF
	}
	if f.readOnly() {
		return syscall.EROFS
	}
	if err := retryEINTR(func() error { return unix.Fallocate(h.fd, mode, int64(off), int64(size)) }); err != nil {
		return toErrno(f.log, "fallocate", err)
	}
	return 0
}

// readOnly reports whether nothing may change the tree: --ro, or overlay
// mode without an upper.
func (f *FS) readOnly() bool {
	return f.opts.ReadOnly || (f.ov != nil && f.ov.upper == nil)
}

func (n *Node) Lseek(ctx context.Context, fh fs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
	h := fileOf(fh)
	if h == nil {
		return 0, syscall.EBADF
	}
	r, err := unix.Seek(h.fd, int64(off), int(whence))
	if err != nil {
		return 0, toErrno(n.fsys.log, "lseek", err)
	}
	return uint64(r), 0
}
