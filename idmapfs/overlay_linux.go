package idmapfs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/internal/image"
	"github.com/shiftlock/shiftlock/overlay"
)

// Overlay mode (Options.Lowers) shows the merged view of read-only layers
// with ids shifted as in passthrough mode. The layer logic (lookups across
// layers, whiteouts, opaque directories, merged listings) is package
// overlay's; this file turns it into FUSE nodes.
//
// Without an upper layer the mount is read-only (MS_RDONLY, and every
// changing operation answers EROFS as well). Since nothing can change the
// merged tree while it is mounted (changing a lower behind the mount is
// undefined, as with the kernel's overlayfs), a node keeps the attributes
// found at lookup; with an upper, the attributes of a node in the upper are
// read again on getattr (overlay_upper_linux.go has the changes). A directory node holds the descriptors of its layers'
// directories (an overlay.Entry) from its first use until the kernel
// forgets it; any other node holds none and is found again by name in its
// parent when it is opened, read or its xattrs are asked for.

// overlayState is the part of FS that overlay mode adds.
type overlayState struct {
	stack  *overlay.Stack
	layers []*overlay.Layer
	images []*image.Image
	root   *overlayNode

	// With an upper (overlay_upper_linux.go): the upper and work layers,
	// the upper's device, and wmu, which serialises every change to the
	// merged tree (copy-up, create, whiteout, rename).
	upper, work *overlay.Layer
	upperDev    uint64
	wmu         sync.Mutex

	mu    sync.Mutex
	nodes map[devIno]*overlayNode // live nodes by topmost object, so hard links share one

	cmu    sync.Mutex
	copied map[devIno]uint64 // upper copies made by this mount -> inode number shown before copy-up
}

// overlayNode is one object of the merged tree.
type overlayNode struct {
	fs.Inode
	fsys *FS
	ino  uint64 // the inode number shown, kept across copy-up

	// stMu guards key, st and merged, which change on copy-up.
	stMu   sync.Mutex
	key    devIno
	st     unix.Stat_t // the topmost object at lookup (or last change), ids as on disk
	merged bool        // a directory merged from more than one layer

	mu    sync.RWMutex
	entry *overlay.Entry // directories only, from first use to forget

	ioState // regular files: the I/O mode of the open handles
}

var (
	_ fs.NodeLookuper       = (*overlayNode)(nil)
	_ fs.NodeGetattrer      = (*overlayNode)(nil)
	_ fs.NodeSetattrer      = (*overlayNode)(nil)
	_ fs.NodeOpener         = (*overlayNode)(nil)
	_ fs.NodeCreater        = (*overlayNode)(nil)
	_ fs.NodeMkdirer        = (*overlayNode)(nil)
	_ fs.NodeMknoder        = (*overlayNode)(nil)
	_ fs.NodeSymlinker      = (*overlayNode)(nil)
	_ fs.NodeLinker         = (*overlayNode)(nil)
	_ fs.NodeReadlinker     = (*overlayNode)(nil)
	_ fs.NodeUnlinker       = (*overlayNode)(nil)
	_ fs.NodeRmdirer        = (*overlayNode)(nil)
	_ fs.NodeRenamer        = (*overlayNode)(nil)
	_ fs.NodeOpendirHandler = (*overlayNode)(nil)
	_ fs.NodeStatfser       = (*overlayNode)(nil)
	_ fs.NodeGetxattrer     = (*overlayNode)(nil)
	_ fs.NodeSetxattrer     = (*overlayNode)(nil)
	_ fs.NodeListxattrer    = (*overlayNode)(nil)
	_ fs.NodeRemovexattrer  = (*overlayNode)(nil)
	_ fs.NodeLseeker        = (*overlayNode)(nil)
	_ fs.NodeAllocater      = (*overlayNode)(nil)
	_ fs.NodeCopyFileRanger = (*overlayNode)(nil)
	_ fs.NodeOnForgetter    = (*overlayNode)(nil)
)

// newOverlay opens opts.Lowers (attaching image files) and returns the root
// node of their merged, read-only view.
func newOverlay(ctx context.Context, opts Options) (_ *overlayNode, _ *FS, err error) {
	if err := checkOptions(&opts); err != nil {
		return nil, nil, err
	}
	if len(opts.Lowers) == 0 {
		return nil, nil, errors.New("overlay mode needs at least one lower layer")
	}
	if opts.Upper == "" {
		if opts.Work != "" {
			return nil, nil, errors.New("--work is the upper's work directory: give it with --upper")
		}
		opts.ReadOnly = true
	}
	if opts.ReadOnly && opts.Upper != "" {
		// A read-only mount writes nothing, not even in a work
		// directory: the upper is shown as the top lower.
		if _, err := realDir("upper", opts.Upper); err != nil {
			return nil, nil, err
		}
		opts.Lowers = append([]string{opts.Upper}, opts.Lowers...)
		opts.Upper, opts.Work = "", ""
	}
	ov := &overlayState{nodes: make(map[devIno]*overlayNode), copied: make(map[devIno]uint64)}
	defer func() {
		if err != nil {
			ov.close(opts.Logger)
		}
	}()
	if err := verifyLowers(ctx, opts); err != nil {
		return nil, nil, err
	}
	for _, path := range opts.Lowers {
		l, im, err := openLower(ctx, path)
		if err != nil {
			return nil, nil, err
		}
		if im != nil {
			ov.images = append(ov.images, im)
		}
		ov.layers = append(ov.layers, l)
	}
	cfg := overlay.Config{Lowers: ov.layers, UserXattr: opts.UserXattr}
	if opts.Upper != "" {
		if err := ov.openUpper(&opts); err != nil {
			return nil, nil, err
		}
		cfg.Upper, cfg.Work = ov.upper, ov.work
	}
	ov.stack, err = overlay.NewStack(cfg)
	if err != nil {
		return nil, nil, err
	}
	e, err := ov.stack.Root()
	if err != nil {
		return nil, nil, err
	}
	f, err := newFS(opts, e.Stat.Dev)
	if err != nil {
		e.Close()
		return nil, nil, err
	}
	f.ov = ov
	if ov.upper != nil {
		ov.upperDev = e.Stat.Dev
	}
	ov.root = &overlayNode{fsys: f, key: devIno{e.Stat.Dev, e.Stat.Ino}, ino: f.ino(&e.Stat), st: e.Stat, merged: len(e.Dirs) > 1, entry: e}
	return ov.root, f, nil
}

// verifyLowers checks the image lowers against opts.Verify or
// opts.VerifyFile before anything is attached.
func verifyLowers(ctx context.Context, opts Options) error {
	if opts.Verify == "" && opts.VerifyFile == "" {
		return nil
	}
	if opts.Verify != "" && opts.VerifyFile != "" {
		return errors.New("give --verify or --verify-file, not both")
	}
	var images []string
	for _, path := range opts.Lowers {
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
			images = append(images, path)
		}
	}
	if len(images) == 0 {
		return errors.New("--verify and --verify-file check image files, and no lower is one")
	}
	if opts.Verify != "" {
		if len(images) > 1 {
			return fmt.Errorf("--verify checks one image, and %d lowers are images: list their sums in a file and pass --verify-file", len(images))
		}
		return image.Verify(ctx, images[0], opts.Verify, opts.Progress)
	}
	for _, path := range images {
		if err := image.VerifyFile(ctx, path, opts.VerifyFile, opts.Progress); err != nil {
			return err
		}
	}
	return nil
}

// openLower opens one lower layer: a directory, or an image file attached
// read-only.
func openLower(ctx context.Context, path string) (*overlay.Layer, *image.Image, error) {
	if path == "" {
		return nil, nil, errors.New("empty lower layer path (check --lower for a doubled or trailing ':')")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("lower layer: %w", err)
	}
	if fi.IsDir() {
		l, err := overlay.OpenLowerLayer(path)
		return l, nil, err
	}
	im, err := image.Attach(ctx, path, image.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("lower layer %s: %w", path, err)
	}
	l, err := overlay.OpenLowerLayer(im.Path())
	if err != nil {
		im.Close()
		return nil, nil, fmt.Errorf("lower layer %s: %w", path, err)
	}
	return l, im, nil
}

// close releases the layers and detaches the images. Call it once the
// server has stopped.
func (ov *overlayState) close(log *slog.Logger) {
	ov.mu.Lock()
	nodes := make([]*overlayNode, 0, len(ov.nodes)+1)
	for k, n := range ov.nodes {
		nodes = append(nodes, n)
		delete(ov.nodes, k)
	}
	ov.mu.Unlock()
	if ov.root != nil {
		nodes = append(nodes, ov.root)
	}
	for _, n := range nodes {
		n.forget()
	}
	if ov.stack != nil {
		ov.stack.Close()
	}
	for _, l := range ov.layers {
		if err := l.Close(); err != nil {
			log.Warn("close lower layer", "error", err)
		}
	}
	ov.layers = nil
	for _, l := range []*overlay.Layer{ov.upper, ov.work} {
		if l != nil {
			l.Close()
		}
	}
	ov.upper, ov.work = nil, nil
	for _, im := range ov.images {
		if err := im.Close(); err != nil {
			log.Warn("detach image", "error", err)
		}
	}
	ov.images = nil
}

// isDir never changes: a copy-up keeps the type.
func (n *overlayNode) isDir() bool { return n.StableAttr().Mode&unix.S_IFMT == unix.S_IFDIR }

// getKey returns the topmost object's device and inode number.
func (n *overlayNode) getKey() devIno {
	n.stMu.Lock()
	defer n.stMu.Unlock()
	return n.key
}

// stat returns the attributes last seen.
func (n *overlayNode) stat() unix.Stat_t {
	n.stMu.Lock()
	defer n.stMu.Unlock()
	return n.st
}

// dir pins the directory's entry for one operation, finding it again by
// name in the parent on first use (or after a forget).
func (n *overlayNode) dir() (*overlay.Entry, func(), syscall.Errno) {
	if !n.isDir() {
		return nil, nil, syscall.ENOTDIR
	}
	for {
		n.mu.RLock()
		if n.entry != nil {
			return n.entry, n.mu.RUnlock, 0
		}
		n.mu.RUnlock()
		n.mu.Lock()
		if n.entry == nil {
			if n == n.fsys.ov.root {
				n.mu.Unlock()
				return nil, nil, syscall.ESTALE
			}
			e, _, release, errno := n.refind()
			if errno != 0 {
				n.mu.Unlock()
				return nil, nil, errno
			}
			release() // keeps e: it becomes the node's
			n.entry = e
		}
		n.mu.Unlock()
	}
}

// refind looks the node up again in its parent. It returns the new entry
// and the parent's, both pinned until release, which also closes the new
// entry unless the caller took it over (dir).
func (n *overlayNode) refind() (e, parent *overlay.Entry, release func(), errno syscall.Errno) {
	name, pin := n.Parent()
	p, ok := overlayParent(pin)
	if !ok || p == n {
		return nil, nil, nil, syscall.ESTALE
	}
	pe, prelease, errno := p.dir()
	if errno != 0 {
		return nil, nil, nil, errno
	}
	e, err := n.fsys.ov.stack.Lookup(pe, name)
	if err != nil {
		prelease()
		if errors.Is(err, unix.ENOENT) {
			return nil, nil, nil, syscall.ESTALE
		}
		return nil, nil, nil, toErrno(n.fsys.log, "lookup", err)
	}
	if (devIno{e.Stat.Dev, e.Stat.Ino}) != n.getKey() {
		e.Close()
		prelease()
		return nil, nil, nil, syscall.ESTALE // a lower changed behind the mount
	}
	return e, pe, prelease, 0
}

func overlayParent(in *fs.Inode) (*overlayNode, bool) {
	if in == nil {
		return nil, false
	}
	p, ok := in.Operations().(*overlayNode)
	return p, ok
}

// pin returns the node's topmost entry and, for a non-directory, its
// parent's entry, pinned until release.
func (n *overlayNode) pin() (e, parent *overlay.Entry, release func(), errno syscall.Errno) {
	if n.isDir() {
		e, release, errno := n.dir()
		return e, nil, release, errno
	}
	e, pe, prelease, errno := n.refind()
	if errno != 0 {
		return nil, nil, nil, errno
	}
	return e, pe, func() { e.Close(); prelease() }, 0
}

// forget closes the directory's descriptors; it finds them again if go-fuse
// hands the node back to the kernel.
func (n *overlayNode) forget() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.entry != nil {
		n.entry.Close()
		n.entry = nil
	}
}

// OnForget runs when the kernel has dropped every reference to the node.
func (n *overlayNode) OnForget() {
	ov := n.fsys.ov
	ov.mu.Lock()
	key := n.getKey()
	if ov.nodes[key] == n {
		delete(ov.nodes, key)
	}
	ov.mu.Unlock()
	n.forget()
}

// attr fills out from the node's topmost object. A merged directory has
// link count 1, as on the kernel's overlayfs (counting its subdirectories
// across the layers is not worth it; find and friends accept 1).
func (n *overlayNode) attr(out *fuse.Attr) {
	n.stMu.Lock()
	st, merged := n.st, n.merged
	n.stMu.Unlock()
	n.fsys.fillAttr(&st, out)
	out.Ino = n.ino
	if merged {
		out.Nlink = 1
	}
}

func (n *overlayNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := validName(name); e != 0 {
		return nil, e
	}
	f := n.fsys
	pe, release, errno := n.dir()
	if errno != 0 {
		return nil, errno
	}
	// No descriptors are kept from a lookup: a directory node finds its
	// own on first use. (go-fuse may drop the node returned here in favour
	// of one a concurrent lookup registered, and would never forget it.)
	st, merged, err := f.ov.stack.LookupStat(pe, name)
	release()
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			out.SetEntryTimeout(f.opts.NegativeTimeout)
			return nil, syscall.ENOENT
		}
		return nil, toErrno(f.log, "lookup", err)
	}
	return n.childNode(ctx, &st, merged, out), 0
}

// childNode returns the node of the object st (the one already live for
// it, or a new one) and fills out.
func (n *overlayNode) childNode(ctx context.Context, st *unix.Stat_t, merged bool, out *fuse.EntryOut) *fs.Inode {
	f := n.fsys
	key := devIno{st.Dev, st.Ino}
	f.ov.mu.Lock()
	defer f.ov.mu.Unlock()
	node := f.ov.nodes[key]
	if node == nil {
		node = &overlayNode{fsys: f, key: key, ino: f.ov.showIno(f, st), st: *st, merged: merged}
		n.NewInode(ctx, node, fs.StableAttr{Mode: st.Mode & unix.S_IFMT, Ino: node.ino, Gen: 1})
		f.ov.nodes[key] = node
	} else {
		node.stMu.Lock()
		node.st, node.merged = *st, merged
		node.stMu.Unlock()
	}
	node.attr(&out.Attr)
	out.SetEntryTimeout(f.opts.EntryTimeout)
	out.SetAttrTimeout(f.opts.AttrTimeout)
	return node.EmbeddedInode()
}

func (n *overlayNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h := fileOf(fh); h != nil && n.fsys.ov.upper != nil {
		// An open file may be unlinked or renamed over: its descriptor
		// still names it, where its name may not.
		var st unix.Stat_t
		if err := unix.Fstat(h.fd, &st); err != nil {
			return toErrno(n.fsys.log, "fstat", err)
		}
		n.stMu.Lock()
		if (devIno{st.Dev, st.Ino}) == n.key {
			n.st = st
		}
		n.stMu.Unlock()
		n.fsys.fillAttr(&st, &out.Attr)
		out.Attr.Ino = n.ino
		out.SetTimeout(n.fsys.opts.AttrTimeout)
		return 0
	} else if e := n.refresh(); e != 0 {
		return e
	}
	n.attr(&out.Attr)
	out.SetTimeout(n.fsys.opts.AttrTimeout)
	return 0
}

func (n *overlayNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	e, _, release, errno := n.pin()
	if errno != 0 {
		return nil, errno
	}
	defer release()
	return readlinkFd(n.fsys.log, e.Fd)
}

func (n *overlayNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	if flags&writeFlags != 0 {
		if f.ov.upper == nil {
			return nil, 0, syscall.EROFS
		}
		return n.openWrite(flags)
	}
	e, _, release, errno := n.pin()
	if errno == syscall.ESTALE && !n.isDir() {
		// The name now holds another object, or none: the node's object
		// was removed or renamed over through the mount after the kernel
		// looked it up (a race, or a reopen through /proc/PID/fd).
		return nil, 0, syscall.ENOENT
	}
	if errno != 0 {
		return nil, 0, errno
	}
	defer release()
	if u, g := f.unmapped(&e.Stat); u || g {
		if errno := otherAccess(&e.Stat, false); errno != 0 {
			return nil, 0, errno
		}
	}
	// overlay.Open adds O_NOATIME and refuses any write to a lower.
	file, err := f.ov.stack.Open(e, unix.O_RDONLY)
	if err != nil {
		return nil, 0, toErrno(f.log, "open", err)
	}
	fd, err := unix.FcntlInt(file.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	file.Close()
	if err != nil {
		return nil, 0, toErrno(f.log, "open", err)
	}
	return f.newHandle(&n.ioState, fd, flags, true, !f.ov.stack.InUpper(e) && !e.Indexed)
}

func (n *overlayNode) Allocate(ctx context.Context, fh fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	return n.fsys.allocate(fh, off, size, mode)
}

func (n *overlayNode) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return n.fsys.copyFileRange(fhIn, offIn, fhOut, offOut, length, flags)
}

func (n *overlayNode) Lseek(ctx context.Context, fh fs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
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

// OpendirHandle opens a merged directory. Its listing is a snapshot, taken
// at the first read, in the order of its entries' offsets, which are hashes
// of their names (see mergedDir): so telldir/seekdir and a listing resumed
// in later calls are stable, across handles too, as the kernel's listing
// cache needs. Taken at the first read, not here: while the kernel serves
// the listing from its cache it opens the directory but never reads it, and
// merging the layers of a large directory is most of a cold listing's cost.
func (n *overlayNode) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	_, release, errno := n.dir() // what the open would fail with, it fails with now
	if errno != 0 {
		return nil, 0, errno
	}
	release()
	// The kernel may keep the listing: every change to it goes through this
	// mount with this directory as parent (create, unlink, rename, copy-up
	// and whiteouts alike), and the kernel drops its cached listing on each
	// of those; the lowers never change and the upper is ours alone.
	return &mergedDir{load: n.mergedListing}, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// mergedListing lists the merged directory: ".", "..", then every visible
// entry of every layer, sorted by offset.
func (n *overlayNode) mergedListing() ([]fuse.DirEntry, syscall.Errno) {
	f := n.fsys
	e, release, errno := n.dir()
	if errno != 0 {
		return nil, errno
	}
	defer release()
	ents, err := f.ov.stack.ReadDir(e)
	if err != nil {
		return nil, toErrno(f.log, "readdir", err)
	}
	// d_ino is what stat shows: the topmost object's inode number, mixed
	// with the device of the layer it comes from.
	devs := make(map[int]uint64, len(e.Dirs))
	for _, d := range e.Dirs {
		var st unix.Stat_t
		if err := fstatPath(d.Fd, &st); err != nil {
			return nil, toErrno(f.log, "stat", err)
		}
		devs[d.Layer] = st.Dev
	}
	parentIno := n.ino
	if _, p := n.Parent(); p != nil {
		parentIno = p.StableAttr().Ino
	}
	list := make([]fuse.DirEntry, 0, len(ents)+2)
	list = append(list,
		fuse.DirEntry{Name: ".", Mode: unix.S_IFDIR, Ino: n.ino, Off: 1},
		fuse.DirEntry{Name: "..", Mode: unix.S_IFDIR, Ino: parentIno, Off: 2})
	for _, d := range ents {
		st := unix.Stat_t{Dev: devs[d.Layer], Ino: d.Ino}
		list = append(list, fuse.DirEntry{Name: d.Name, Mode: d.Type, Ino: f.ov.showIno(f, &st), Off: nameOffset(d.Name)})
	}
	slices.SortFunc(list, func(a, b fuse.DirEntry) int {
		return cmp.Or(cmp.Compare(a.Off, b.Off), strings.Compare(a.Name, b.Name))
	})
	return list, 0
}

func (n *overlayNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	// The top layer's filesystem: the upper's, or the top lower's when
	// there is no upper, as overlayfs reports.
	fd := n.fsys.ov.stack.Layer(0).Fd()
	var s syscall.Statfs_t
	if err := syscall.Fstatfs(fd, &s); err != nil {
		return toErrno(n.fsys.log, "statfs", err)
	}
	out.FromStatfsT(&s)
	return 0
}

// xattrTarget pins the node's topmost object for one xattr call: a
// symlink by its name in its layer's directory, anything else through its
// descriptor's magic link.
func (n *overlayNode) xattrTarget() (xattrTarget, func(), syscall.Errno) {
	e, pe, release, errno := n.pin()
	if errno != 0 {
		return xattrTarget{}, nil, errno
	}
	if e.Stat.Mode&unix.S_IFMT != unix.S_IFLNK {
		return xattrTarget{dirfd: unix.AT_FDCWD, path: procFd(e.Fd)}, release, 0
	}
	for _, d := range pe.Dirs {
		if d.Layer == e.Layer {
			return xattrTarget{dirfd: d.Fd, path: e.Name, flags: unix.AT_SYMLINK_NOFOLLOW}, release, 0
		}
	}
	release()
	return xattrTarget{}, nil, syscall.ESTALE
}

func (n *overlayNode) Getxattr(ctx context.Context, name string, dest []byte) (uint32, syscall.Errno) {
	return n.fsys.getxattr(name, dest, n.xattrTarget)
}

func (n *overlayNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return n.fsys.listxattr(dest, n.xattrTarget)
}

// lowersName is how the mount names its source in mountinfo.
func lowersName(lowers []string) string { return "overlay:" + strings.Join(lowers, ":") }

// mergedDir is an open merged directory: a snapshot of its listing sorted
// by offset. An entry's offset is a hash of its name, as ext4's are, not its
// index: the kernel keeps one cached listing per directory for every open
// handle and may resume a handle's reading at an offset another handle's
// snapshot produced, after a change in between. With name hashes that
// offset means the same place in any snapshot, so no entry present
// throughout is skipped or repeated, and an offset past the end is simply
// the end.
type mergedDir struct {
	load func() ([]fuse.DirEntry, syscall.Errno) // the snapshot, taken at the first read or seek
	ents []fuse.DirEntry
	idx  int
}

// snapshot takes the listing if it has not been taken yet.
func (d *mergedDir) snapshot() syscall.Errno {
	if d.load == nil {
		return 0
	}
	ents, errno := d.load()
	if errno != 0 {
		return errno
	}
	d.ents, d.load = ents, nil
	return 0
}

// nameOffset is the offset of a name: 62 bits of its FNV-1a hash, above
// the 1 and 2 of "." and "..", and positive as telldir's long must be.
func nameOffset(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()>>2 + 3
}

func (d *mergedDir) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if errno := d.snapshot(); errno != 0 {
		return nil, errno
	}
	if d.idx >= len(d.ents) {
		return nil, 0
	}
	e := d.ents[d.idx]
	d.idx++
	return &e, 0
}

func (d *mergedDir) Releasedir(ctx context.Context, releaseFlags uint32) {}

// Seekdir resumes after the entry whose offset is off (or where it was).
// Two names whose hashes collide share an offset; a listing resumed at it
// may repeat the second, never skip it.
func (d *mergedDir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if errno := d.snapshot(); errno != 0 {
		return errno
	}
	i, found := slices.BinarySearchFunc(d.ents, off, func(e fuse.DirEntry, off uint64) int { return cmp.Compare(e.Off, off) })
	if found {
		i++
	}
	d.idx = i
	return 0
}

var (
	_ fs.FileReaddirenter = (*mergedDir)(nil)
	_ fs.FileSeekdirer    = (*mergedDir)(nil)
	_ fs.FileReleasedirer = (*mergedDir)(nil)
)
