package overlay

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// workSubdir is this package's private directory inside the Work layer. The
// kernel uses "work" and "index" there; a different name keeps the two from
// cleaning up each other's temporaries when they share a workdir.
const workSubdir = "idmapfs-work"

// indexSubdir, beside workSubdir, holds the hard-link index: one more link
// to the upper copy of every lower regular file with several names, named
// after the lower file (see indexName), so that its other names find that
// copy instead of the lower file, and a change through them links it rather
// than copying again. Unlike workSubdir it survives remounts.
const indexSubdir = "idmapfs-index"

// Config describes the layers of an overlay.
type Config struct {
	// Upper is the writable layer; nil makes a read-only overlay.
	Upper *Layer
	// Work is a directory on the same mount as Upper where copy-ups and
	// whiteouts are prepared (like overlayfs workdir=). Required with Upper.
	Work *Layer
	// Lowers are the read-only layers, the top one first (like overlayfs
	// lowerdir=). Open them with OpenLowerLayer.
	Lowers []*Layer
	// UserXattr uses the "user.overlay." xattr namespace instead of
	// "trusted.overlay." (overlayfs "userxattr").
	UserXattr bool
}

// A Stack is an overlay: layers and the rules that merge them. Layer indexes
// count from the top: 0 is the upper when there is one, then the lowers in
// the order given. A Stack does not own its layers: close them after the
// Stack. Its methods are safe for concurrent use on distinct entries; the
// caller serialises changes (copy-up, whiteout) to one name.
type Stack struct {
	cfg     Config
	layers  []*Layer
	workFd  int // O_PATH of Work/workSubdir, -1 without an upper
	indexFd int // O_PATH of Work/indexSubdir, -1 without an upper
}

// NewStack checks cfg and prepares the private work directory, removing
// whatever an interrupted copy-up left there.
func NewStack(cfg Config) (*Stack, error) {
	s := &Stack{cfg: cfg, workFd: -1, indexFd: -1}
	if cfg.Upper != nil {
		if cfg.Work == nil {
			return nil, errors.New("overlay: an upper layer needs a work layer on the same filesystem")
		}
		if cfg.Upper.readOnly {
			return nil, fmt.Errorf("overlay: upper %s was opened read-only; use OpenLayer", cfg.Upper.path)
		}
		var ust, wst unix.Stat_t
		if err := fstat(cfg.Upper.fd, &ust); err != nil {
			return nil, fmt.Errorf("overlay: upper %s: %w", cfg.Upper.path, err)
		}
		if err := fstat(cfg.Work.fd, &wst); err != nil {
			return nil, fmt.Errorf("overlay: work %s: %w", cfg.Work.path, err)
		}
		if ust.Dev != wst.Dev {
			return nil, fmt.Errorf("overlay: work %s is not on the filesystem of upper %s", cfg.Work.path, cfg.Upper.path)
		}
		s.layers = append(s.layers, cfg.Upper)
	}
	if len(cfg.Lowers) == 0 && cfg.Upper == nil {
		return nil, errors.New("overlay: no layers")
	}
	s.layers = append(s.layers, cfg.Lowers...)
	if cfg.Upper != nil {
		err := unix.Mkdirat(cfg.Work.fd, workSubdir, 0o700)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("overlay: work %s: %w", cfg.Work.path, &os.PathError{Op: "mkdirat", Path: workSubdir, Err: err})
		}
		fd, err := openat(cfg.Work.fd, workSubdir, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return nil, fmt.Errorf("overlay: work %s: %w", cfg.Work.path, err)
		}
		if err := clearDir(fd); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("overlay: clean work %s/%s: %w", cfg.Work.path, workSubdir, err)
		}
		s.workFd = fd
		err = unix.Mkdirat(cfg.Work.fd, indexSubdir, 0o700)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			s.Close()
			return nil, fmt.Errorf("overlay: work %s: %w", cfg.Work.path, &os.PathError{Op: "mkdirat", Path: indexSubdir, Err: err})
		}
		fd, err = openat(cfg.Work.fd, indexSubdir, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("overlay: work %s: %w", cfg.Work.path, err)
		}
		s.indexFd = fd
	}
	return s, nil
}

// Close releases the Stack's own descriptors (not the layers).
func (s *Stack) Close() error {
	if s.workFd >= 0 {
		unix.Close(s.workFd)
		s.workFd = -1
	}
	if s.indexFd >= 0 {
		unix.Close(s.indexFd)
		s.indexFd = -1
	}
	return nil
}

// NumLayers returns the number of layers, upper included.
func (s *Stack) NumLayers() int { return len(s.layers) }

// Layer returns the layer at index i (0 = top).
func (s *Stack) Layer(i int) *Layer { return s.layers[i] }

// IsUpper reports whether layer index i is the writable upper.
func (s *Stack) IsUpper(i int) bool { return i == 0 && s.cfg.Upper != nil }

// xattr returns the name of the overlay-private xattr suffix, e.g. "opaque".
func (s *Stack) xattr(suffix string) string {
	if s.cfg.UserXattr {
		return "user.overlay." + suffix
	}
	return "trusted.overlay." + suffix
}

// LayerDir is one layer's directory that contributes to a merged directory.
type LayerDir struct {
	Layer int // layer index, 0 = top
	Fd    int // O_PATH|O_DIRECTORY descriptor, owned by the Entry
}

// An Entry is what a name resolves to across the layers: the topmost object
// and, for a directory, every layer's directory that merges into it, top
// first, down to and including the first opaque one. An Entry owns its
// descriptors; Close releases them.
type Entry struct {
	// Name is the entry's name in its parent; "" for the root.
	Name string
	// Layer is the index of the layer holding the topmost object.
	Layer int
	// Fd is an O_PATH|O_NOFOLLOW descriptor of the topmost object. For a
	// directory it equals Dirs[0].Fd.
	Fd int
	// Stat is the topmost object's stat, ids as on disk.
	Stat unix.Stat_t
	// Dirs lists, for a directory, the layers' directories merged into it.
	Dirs []LayerDir
	// Opaque reports that the topmost directory carries overlay.opaque=y.
	Opaque bool
	// Indexed reports a lower regular file with hard links whose upper
	// copy another of its names made: Fd and Stat describe that copy
	// (kept in the index), while Layer is still the lower's. A copy-up
	// links the copy into place.
	Indexed bool
	index   string // the index name of an Indexed entry
}

// IsDir reports whether the entry is a directory.
func (e *Entry) IsDir() bool { return e.Stat.Mode&unix.S_IFMT == unix.S_IFDIR }

// Close releases the entry's descriptors.
func (e *Entry) Close() error {
	for _, d := range e.Dirs {
		if d.Fd != e.Fd {
			unix.Close(d.Fd)
		}
	}
	if e.Fd >= 0 {
		unix.Close(e.Fd)
	}
	e.Fd = -1
	e.Dirs = nil
	return nil
}

// InUpper reports whether the entry's topmost object is in the upper layer.
func (s *Stack) InUpper(e *Entry) bool { return s.IsUpper(e.Layer) }

// Root returns the merged root directory: the roots of all layers.
func (s *Stack) Root() (*Entry, error) {
	e := &Entry{Fd: -1}
	for i, l := range s.layers {
		fd, err := openat(l.fd, ".", unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("overlay: root of layer %s: %w", l.path, err)
		}
		e.Dirs = append(e.Dirs, LayerDir{Layer: i, Fd: fd})
	}
	e.Fd = e.Dirs[0].Fd
	if err := fstat(e.Fd, &e.Stat); err != nil {
		e.Close()
		return nil, fmt.Errorf("overlay: root: %w", err)
	}
	return e, nil
}

// checkName accepts exactly one path component.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return unix.EINVAL
	}
	return nil
}

// isOpaque reports whether the directory behind fd is opaque
// (overlay.opaque = "y").
func (s *Stack) isOpaque(fd int) (bool, error) {
	v, err := getxattr(fd, s.xattr("opaque"))
	if err != nil {
		if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP) {
			return false, nil
		}
		return false, err
	}
	return string(v) == "y", nil
}

// Lookup resolves name, a single path component, in the merged directory
// parent, as overlayfs does: the topmost object wins; a whiteout hides the
// name in the layers below; a non-directory ends the search; directories
// merge down to the first opaque one. A whiteout or absent name gives an
// error matching unix.ENOENT.
func (s *Stack) Lookup(parent *Entry, name string) (*Entry, error) {
	if err := checkName(name); err != nil {
		return nil, &os.PathError{Op: "lookup", Path: name, Err: err}
	}
	if !parent.IsDir() {
		return nil, &os.PathError{Op: "lookup", Path: name, Err: unix.ENOTDIR}
	}
	var e *Entry
	fail := func(err error) (*Entry, error) {
		if e != nil {
			e.Close()
		}
		return nil, fmt.Errorf("overlay: lookup %q: %w", name, err)
	}
	for _, d := range parent.Dirs {
		fd, err := openat(d.Fd, name, unix.O_PATH, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fail(err)
		}
		var st unix.Stat_t
		if err := fstat(fd, &st); err != nil {
			unix.Close(fd)
			return fail(err)
		}
		if isWhiteout(&st) {
			unix.Close(fd)
			break
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if e == nil {
			e = &Entry{Name: name, Layer: d.Layer, Fd: fd, Stat: st}
			if !isDir {
				break
			}
		} else if !isDir {
			unix.Close(fd)
			break
		}
		e.Dirs = append(e.Dirs, LayerDir{Layer: d.Layer, Fd: fd})
		opaque, err := s.isOpaque(fd)
		if err != nil {
			return fail(err)
		}
		if opaque {
			if len(e.Dirs) == 1 {
				e.Opaque = true
			}
			break
		}
	}
	if e == nil {
		return nil, &os.PathError{Op: "lookup", Path: name, Err: unix.ENOENT}
	}
	if s.hardLinked(e) {
		idx := s.indexName(e)
		fd, err := openat(s.indexFd, idx, unix.O_PATH, 0)
		switch {
		case err == nil:
			var st unix.Stat_t
			if err := fstat(fd, &st); err != nil {
				unix.Close(fd)
				return fail(err)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFREG {
				unix.Close(fd)
				break // not ours: ignore it
			}
			unix.Close(e.Fd)
			e.Fd, e.Stat, e.Indexed, e.index = fd, st, true, idx
		case !errors.Is(err, unix.ENOENT):
			return fail(err)
		}
	}
	return e, nil
}

// LookupStat is Lookup for a caller that needs only what name resolves to
// (its topmost object's attributes, and whether it is a directory merged
// from several layers), not descriptors: a non-directory takes one fstatat
// per layer down to it, no open and close. Directories, and lower files
// with several names (whose attributes may come from the index), are
// looked up in full.
func (s *Stack) LookupStat(parent *Entry, name string) (st unix.Stat_t, merged bool, err error) {
	if err := checkName(name); err != nil {
		return st, false, &os.PathError{Op: "lookup", Path: name, Err: err}
	}
	if !parent.IsDir() {
		return st, false, &os.PathError{Op: "lookup", Path: name, Err: unix.ENOTDIR}
	}
	for _, d := range parent.Dirs {
		if err := lstatat(d.Fd, name, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return st, false, fmt.Errorf("overlay: lookup %q: %w", name, err)
		}
		top := Entry{Layer: d.Layer, Stat: st}
		switch {
		case isWhiteout(&st):
			return st, false, &os.PathError{Op: "lookup", Path: name, Err: unix.ENOENT}
		case top.IsDir(), s.hardLinked(&top):
			e, err := s.Lookup(parent, name)
			if err != nil {
				return st, false, err
			}
			st, merged = e.Stat, len(e.Dirs) > 1
			e.Close()
			return st, merged, nil
		}
		return st, false, nil
	}
	return st, false, &os.PathError{Op: "lookup", Path: name, Err: unix.ENOENT}
}

// hardLinked reports whether e is a lower regular file with several names,
// which copy up through the index.
func (s *Stack) hardLinked(e *Entry) bool {
	return s.indexFd >= 0 && !s.IsUpper(e.Layer) && e.Stat.Mode&unix.S_IFMT == unix.S_IFREG && e.Stat.Nlink > 1
}

// indexName names the index entry of the lower file e: its layer, inode
// number and change time (which no other file of that layer shares, and
// which a change to the lower file while unmounted would alter).
func (s *Stack) indexName(e *Entry) string {
	return fmt.Sprintf("%d-%x-%x.%x", e.Layer, e.Stat.Ino, e.Stat.Ctim.Sec, e.Stat.Ctim.Nsec)
}

// Dirent is one name of a merged directory listing.
type Dirent struct {
	Name  string
	Type  uint32 // S_IFMT bits of the topmost object
	Ino   uint64 // inode number in its layer
	Layer int    // index of the layer the name comes from
}

// ReadDir lists the merged directory dir without "." and "..": the names of
// every contributing layer, the topmost one winning, names hidden by a
// whiteout above left out, whiteouts themselves never listed. The order is
// stable: by layer from the top, then in each layer's getdents order.
func (s *Stack) ReadDir(dir *Entry) ([]Dirent, error) {
	if !dir.IsDir() {
		return nil, &os.PathError{Op: "readdir", Path: dir.Name, Err: unix.ENOTDIR}
	}
	seen := make(map[string]struct{})
	var out []Dirent
	for _, d := range dir.Dirs {
		names, err := readDirNames(d.Fd, !s.IsUpper(d.Layer))
		if err != nil {
			return nil, fmt.Errorf("overlay: readdir %q in layer %s: %w", dir.Name, s.layers[d.Layer].path, err)
		}
		for _, n := range names {
			if _, dup := seen[n.name]; dup {
				continue
			}
			seen[n.name] = struct{}{}
			typ := direntType(n.typ)
			if n.typ == unix.DT_CHR || n.typ == unix.DT_UNKNOWN {
				var st unix.Stat_t
				if err := lstatat(d.Fd, n.name, &st); err != nil {
					if errors.Is(err, unix.ENOENT) {
						delete(seen, n.name)
						continue
					}
					return nil, fmt.Errorf("overlay: readdir %q: %w", dir.Name, err)
				}
				if isWhiteout(&st) {
					continue
				}
				typ = st.Mode & unix.S_IFMT
			}
			out = append(out, Dirent{Name: n.name, Type: typ, Ino: n.ino, Layer: d.Layer})
		}
	}
	return out, nil
}

// Open opens the entry's topmost object (not a symlink) with flags. A lower
// object is never opened for writing (EROFS: copy it up first) and is opened
// with O_NOATIME.
func (s *Stack) Open(e *Entry, flags int) (*os.File, error) {
	if e.Stat.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil, &os.PathError{Op: "open", Path: e.Name, Err: unix.ELOOP}
	}
	if !s.IsUpper(e.Layer) {
		if flags&(unix.O_WRONLY|unix.O_RDWR|unix.O_TRUNC|unix.O_APPEND|unix.O_CREAT) != 0 {
			return nil, &os.PathError{Op: "open", Path: e.Name, Err: unix.EROFS}
		}
		flags |= unix.O_NOATIME
	}
	fd, err := reopen(e.Fd, flags)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), e.Name), nil
}

// tempName returns a fresh name for a temporary in the work directory.
func tempName() string { return "#" + rand.Text()[:16] }

// clearDir removes everything inside the directory behind the O_PATH dirfd.
// It is only used on this package's own work directory.
func clearDir(dirfd int) error {
	names, err := readDirNames(dirfd, false)
	if err != nil {
		return err
	}
	for _, n := range names {
		err := unix.Unlinkat(dirfd, n.name, 0)
		if errors.Is(err, unix.EISDIR) {
			var sub int
			sub, err = openat(dirfd, n.name, unix.O_PATH|unix.O_DIRECTORY, 0)
			if err == nil {
				err = clearDir(sub)
				unix.Close(sub)
			}
			if err == nil {
				err = unix.Unlinkat(dirfd, n.name, unix.AT_REMOVEDIR)
			}
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return &os.PathError{Op: "remove", Path: n.name, Err: err}
		}
	}
	return nil
}
