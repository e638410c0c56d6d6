package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shiftlock/shiftlock/container"
	"github.com/shiftlock/shiftlock/idmap"
	"github.com/shiftlock/shiftlock/idmapfs"
)

// DefaultMap is the mapping used when no mapping flag is given: container
// root is host uid 100000, the first range /etc/subuid hands out.
const DefaultMap = "0:100000:65536"

type mountFlags struct {
	mapAll, uidMap, gidMap, userns string
	ro, suid, dev, allowOther      bool
	writeback, directIO, noPT      bool
	entry, attr, negative          time.Duration
	debug, daemon                  bool
	hostname                       string
	verify, verifyFile             string
	lower, upper, work             string
	userXattr                      bool
}

func (m *mountFlags) register(fs *flag.FlagSet, forRun bool) {
	fs.StringVar(&m.mapAll, "map", "", "uid and gid map, disk:host:count[,...] (default "+DefaultMap+")")
	fs.StringVar(&m.uidMap, "uid-map", "", "uid map, disk:host:count[,...]")
	fs.StringVar(&m.gidMap, "gid-map", "", "gid map, disk:host:count[,...]")
	fs.StringVar(&m.userns, "userns", "", "copy the maps of a process: PID or /proc/PID/ns/user")
	fs.BoolVar(&m.ro, "ro", false, "read-only mount")
	fs.BoolVar(&m.suid, "suid", false, "honour setuid/setgid bits")
	fs.BoolVar(&m.dev, "dev", false, "honour device nodes")
	fs.BoolVar(&m.allowOther, "allow-other", true, "let every user use the mount")
	fs.BoolVar(&m.writeback, "writeback", false, "kernel writeback cache (turns passthrough off)")
	fs.BoolVar(&m.directIO, "direct-io", false, "bypass the page cache (turns passthrough off)")
	fs.BoolVar(&m.noPT, "no-passthrough", false, "serve regular-file I/O from the daemon")
	fs.DurationVar(&m.entry, "entry-timeout", idmapfs.DefaultTimeout, "kernel entry cache lifetime")
	fs.DurationVar(&m.attr, "attr-timeout", idmapfs.DefaultTimeout, "kernel attribute cache lifetime")
	fs.DurationVar(&m.negative, "negative-timeout", idmapfs.DefaultTimeout, "kernel negative-entry cache lifetime")
	fs.BoolVar(&m.debug, "debug", false, "log every FUSE request")
	fs.StringVar(&m.lower, "lower", "", "overlay mode: lower layers L1:L2:... (top first), directories or image files; read-only without an upper")
	fs.StringVar(&m.upper, "upper", "", "overlay mode: writable upper directory (kernel overlayfs format, disk ids)")
	fs.StringVar(&m.work, "work", "", "overlay mode: work directory on the upper's filesystem (default: .UPPER.idmapfs-work next to the upper)")
	fs.StringVar(&m.verify, "verify", "", "check the image lower's checksum first: sha256:HEX")
	fs.StringVar(&m.verifyFile, "verify-file", "", "check every image lower against this sha256sum-style file")
	fs.BoolVar(&m.userXattr, "userxattr", false, "overlay mode: opaque dirs as user.overlay.opaque (overlayfs userxattr) instead of trusted.overlay.opaque")
	if forRun {
		fs.StringVar(&m.hostname, "hostname", "", "container hostname")
	} else {
		fs.BoolVar(&m.daemon, "daemon", false, "return once mounted and serve in the background")
	}
}

// ids resolves the mapping flags (and checks the flags that only make
// sense together).
func (m *mountFlags) ids() (idmap.IDMap, error) {
	if (m.upper != "" || m.work != "") && m.lower == "" {
		return idmap.IDMap{}, usagef("--upper and --work are for overlay mode: use them with --lower")
	}
	if m.work != "" && m.upper == "" {
		return idmap.IDMap{}, usagef("--work needs --upper")
	}
	if m.userXattr && m.upper == "" {
		return idmap.IDMap{}, usagef("--userxattr sets where an upper keeps its opaque directories: use it with --lower and --upper")
	}
	if (m.verify != "" || m.verifyFile != "") && m.lower == "" {
		return idmap.IDMap{}, usagef("--verify and --verify-file check image lowers: use them with --lower")
	}
	if err := m.checkLowers(); err != nil {
		return idmap.IDMap{}, err
	}
	if m.userns != "" {
		if m.mapAll != "" || m.uidMap != "" || m.gidMap != "" {
			return idmap.IDMap{}, usagef("--userns cannot be combined with --map, --uid-map or --gid-map")
		}
		return usernsMap(m.userns)
	}
	all := m.mapAll
	if all == "" && m.uidMap == "" && m.gidMap == "" {
		all = DefaultMap
	}
	ids, err := idmap.ParseFlags(all, m.uidMap, m.gidMap)
	if err != nil {
		return idmap.IDMap{}, usageError{err}
	}
	return ids, nil
}

// checkLowers refuses a --lower layer that is not there before anything
// is attached or mounted.
func (m *mountFlags) checkLowers() error {
	for _, l := range m.lowers() {
		if l == "" {
			return usagef("--lower %q has an empty layer (a doubled or trailing ':')", m.lower)
		}
		if _, err := os.Stat(l); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("lower layer %s does not exist: --lower takes existing directories or squashfs, erofs or ext4 image files, top layer first", l)
		}
	}
	return nil
}

// usernsMap reads the uid_map and gid_map of a process (PID or
// /proc/PID/ns/user).
func usernsMap(arg string) (idmap.IDMap, error) {
	pid := arg
	if strings.HasPrefix(arg, "/proc/") {
		rest := strings.TrimPrefix(arg, "/proc/")
		p, tail, _ := strings.Cut(rest, "/")
		if tail != "ns/user" {
			return idmap.IDMap{}, usagef("--userns %q: want a PID or /proc/PID/ns/user", arg)
		}
		pid = p
	}
	if _, err := strconv.ParseUint(pid, 10, 31); err != nil {
		return idmap.IDMap{}, usagef("--userns %q: want a PID or /proc/PID/ns/user", arg)
	}
	read := func(kind string) (idmap.Map, error) {
		b, err := os.ReadFile("/proc/" + pid + "/" + kind)
		if err != nil {
			return idmap.Map{}, fmt.Errorf("--userns %s: %w (is the process running?)", arg, err)
		}
		m, err := idmap.ParseProcMap(b)
		if err != nil {
			return idmap.Map{}, fmt.Errorf("--userns %s: %s: %w", arg, kind, err)
		}
		return m, nil
	}
	u, err := read("uid_map")
	if err != nil {
		return idmap.IDMap{}, err
	}
	g, err := read("gid_map")
	if err != nil {
		return idmap.IDMap{}, err
	}
	return idmap.IDMap{UID: u, GID: g}, nil
}

func (m *mountFlags) options(ids idmap.IDMap, log *slog.Logger) idmapfs.Options {
	return idmapfs.Options{
		IDs:             ids,
		ReadOnly:        m.ro,
		AllowOther:      m.allowOther,
		Suid:            m.suid,
		Dev:             m.dev,
		Writeback:       m.writeback,
		DirectIO:        m.directIO,
		NoPassthrough:   m.noPT,
		EntryTimeout:    m.entry,
		AttrTimeout:     m.attr,
		NegativeTimeout: m.negative,
		Debug:           m.debug,
		Logger:          log,
		Lowers:          m.lowers(),
		Upper:           m.upper,
		Work:            m.work,
		Verify:          m.verify,
		UserXattr:       m.userXattr,
		VerifyFile:      m.verifyFile,
		Progress:        os.Stderr,
	}
}

// lowers splits --lower; nil without it.
func (m *mountFlags) lowers() []string {
	if m.lower == "" {
		return nil
	}
	return strings.Split(m.lower, ":")
}

// parseInterspersed parses flags anywhere among the positional arguments,
// up to a "--".
func parseInterspersed(fs *flag.FlagSet, args []string) (pos, rest []string, err error) {
	for i, a := range args {
		if a == "--" {
			rest = args[i+1:]
			args = args[:i]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, rest, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func cmdMount(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var mf mountFlags
	fs := newFlagSet("mount", stderr)
	mf.register(fs, false)
	pos, _, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	var source, mountpoint string
	switch {
	case mf.lower != "" && len(pos) == 1:
		mountpoint = pos[0]
	case mf.lower != "":
		return usagef("mount --lower L1:L2:... takes only MOUNTPOINT, got %d arguments", len(pos))
	case len(pos) == 2:
		source, mountpoint = pos[0], pos[1]
	default:
		return usagef("mount takes SOURCE and MOUNTPOINT, got %d arguments", len(pos))
	}
	ids, err := mf.ids()
	if err != nil {
		return err
	}
	if mf.daemon && os.Getenv(daemonEnv) == "" {
		return daemonize(args, stdout)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if path := os.Getenv("IDMAPFS_CPUPROFILE"); path != "" {
		// For performance work: a pprof CPU profile of the whole mount.
		pf, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	server, fsys, err := idmapfs.Mount(source, mountpoint, mf.options(ids, log))
	if err != nil {
		if os.Getenv(daemonEnv) != "" {
			notify("error " + err.Error())
		}
		return err
	}
	mode := "passthrough I/O"
	switch {
	case mf.writeback:
		mode = "writeback cache (passthrough off)"
	case mf.directIO:
		mode = "direct I/O (passthrough off)"
	case !fsys.Passthrough():
		mode = "daemon I/O (passthrough off)"
	}
	what := source
	if mf.lower != "" {
		what = "overlay of lowers " + mf.lower
		switch {
		case mf.upper != "" && mf.ro:
			mode += "; upper " + mf.upper + " shown read-only (--ro)"
		case mf.upper != "":
			mode += "; upper " + mf.upper
		default:
			mode += "; read-only: no --upper, every change fails with EROFS"
		}
	}
	msg := fmt.Sprintf("mounted %s on %s (uid map %s, gid map %s, %s)", what, mountpoint, ids.UID, ids.GID, mode)
	if os.Getenv(daemonEnv) != "" {
		notifyReady(msg)
	} else {
		fmt.Fprintln(stdout, msg)
	}
	defer fsys.Close()
	return serveUntilDone(ctx, server, mountpoint, log)
}

type waitUnmounter interface {
	Wait()
	Unmount() error
}

// serveUntilDone serves until the mount goes away or a signal asks us to
// unmount; a busy mount is then detached lazily and served until its last
// user is gone.
func serveUntilDone(ctx context.Context, server waitUnmounter, mountpoint string, log *slog.Logger) error {
	done := make(chan struct{})
	go func() { server.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	if err := server.Unmount(); err != nil {
		log.Warn("mount busy; detaching it lazily", "mountpoint", mountpoint, "error", err)
		if err := idmapfs.Unmount(mountpoint, true); err != nil {
			return err
		}
	}
	<-done
	return nil
}

func cmdUmount(args []string, stdout io.Writer) error {
	fs := newFlagSet("umount", io.Discard)
	lazy := fs.Bool("lazy", false, "detach a busy mount now")
	pos, _, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("umount takes one MOUNTPOINT")
	}
	return idmapfs.Unmount(pos[0], *lazy)
}

func cmdRun(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	var mf mountFlags
	fs := newFlagSet("run", stderr)
	mf.register(fs, true)
	pos, cmd, err := parseInterspersed(fs, args)
	if err != nil {
		return 2, err
	}
	switch {
	case mf.lower != "" && len(pos) != 0:
		return 2, usagef("run --lower L1:L2:... takes no SOURCE, only -- and the command")
	case mf.lower == "" && len(pos) != 1:
		return 2, usagef("run takes one SOURCE, then -- and the command")
	}
	if len(cmd) == 0 {
		return 2, usagef("run needs a command after --, e.g. idmapfs run ROOTFS -- /bin/sh")
	}
	ids, err := mf.ids()
	if err != nil {
		return 2, err
	}
	var source, root string
	mounted := false
	if mf.lower == "" {
		source = pos[0]
		root = source
		mounted, _ = isIdmapfsMount(source)
	}
	if !mounted {
		mp, err := os.MkdirTemp("", "idmapfs-run-")
		if err != nil {
			return 1, err
		}
		defer os.Remove(mp)
		log := slog.New(slog.NewTextHandler(stderr, nil))
		opts := mf.options(ids, log)
		opts.AllowOther = true
		server, fsys, err := idmapfs.Mount(source, mp, opts)
		if err != nil {
			return 1, err
		}
		defer func() {
			if err := server.Unmount(); err != nil {
				idmapfs.Unmount(mp, true)
			}
			server.Wait()
			fsys.Close()
		}()
		root = mp
	}
	code, err := container.Run(ctx, container.Config{
		Root:     root,
		IDs:      ids,
		Args:     cmd,
		Hostname: mf.hostname,
		Stdin:    stdin,
		Stdout:   stdout,
		Stderr:   stderr,
	})
	return code, err
}

// isIdmapfsMount reports whether path is the mount point of an idmapfs.
func isIdmapfsMount(path string) (bool, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, fl := range fields {
			if fl == "-" && i+1 < len(fields) && len(fields) > 4 {
				if fields[i+1] == "fuse.idmapfs" && fields[4] == abs {
					return true, nil
				}
			}
		}
	}
	return false, sc.Err()
}

const daemonEnv = "IDMAPFS_DAEMON_READY_FD"

// daemonize starts this command again in the background and returns once it
// reports the mount ready (or failed).
func daemonize(args []string, stdout io.Writer) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	cmd := exec.Command(exe, append([]string{"mount"}, args...)...)
	cmd.Env = append(os.Environ(), daemonEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Errors before the mount is ready come back through the pipe.
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	w.Close()
	msg, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	text := strings.TrimSpace(string(msg))
	if ok, found := strings.CutPrefix(text, "ok "); found {
		fmt.Fprintln(stdout, ok)
		cmd.Process.Release()
		return nil
	}
	cmd.Wait()
	if text == "" {
		text = "the background daemon exited before the mount was ready"
	}
	return errors.New(strings.TrimPrefix(text, "error "))
}

// notifyReady tells the waiting parent that the mount is up.
func notifyReady(msg string) { notify("ok " + msg) }

func notify(line string) {
	f := os.NewFile(3, "ready")
	fmt.Fprintln(f, line)
	f.Close()
}

// cmdMountHelper is the mount(8) helper: mount -t fuse.idmapfs SOURCE DIR -o
// map=0:100000:65536,ro,... (and the same in fstab).
func cmdMountHelper(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var pos, opts []string
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "-o" && i+1 < len(args):
			opts = append(opts, strings.Split(args[i+1], ",")...)
			i++
		case strings.HasPrefix(args[i], "-o"):
			opts = append(opts, strings.Split(args[i][2:], ",")...)
		case args[i] == "-n" || args[i] == "-s" || args[i] == "-f" || args[i] == "-v":
		default:
			pos = append(pos, args[i])
		}
	}
	if len(pos) != 2 {
		return usagef("mount helper takes SOURCE MOUNTPOINT [-o options]")
	}
	margs := []string{"--daemon"}
	overlayMode := false
	for _, o := range opts {
		k, v, hasV := strings.Cut(o, "=")
		switch k {
		case "", "rw", "defaults", "auto", "noauto", "user", "nouser", "nofail", "_netdev", "nosuid", "nodev", "exec", "noexec", "atime", "noatime", "relatime":
		case "ro", "suid", "dev", "writeback", "direct-io", "no-passthrough", "debug", "userxattr":
			margs = append(margs, "--"+k)
		case "allow-suid", "allow-dev":
			// mount(8) keeps suid and dev to itself (they are its
			// defaults) and never passes them on: these names reach us.
			margs = append(margs, "--"+strings.TrimPrefix(k, "allow-"))
		case "lower", "lowerdir":
			if !hasV {
				return usagef("mount option %s needs a value", k)
			}
			margs = append(margs, "--lower="+v)
			overlayMode = true
		case "upper", "upperdir", "work", "workdir", "verify", "verify-file":
			if !hasV {
				return usagef("mount option %s needs a value", k)
			}
			margs = append(margs, "--"+strings.TrimSuffix(k, "dir")+"="+v)
		case "map", "uid-map", "gid-map", "userns", "entry-timeout", "attr-timeout", "negative-timeout":
			if !hasV {
				return usagef("mount option %s needs a value", k)
			}
			margs = append(margs, "--"+k+"="+v)
		case "uidmap", "gidmap":
			margs = append(margs, "--"+k[:3]+"-map="+v)
		case "allow_other":
			margs = append(margs, "--allow-other=true")
		default:
			if strings.HasPrefix(k, "x-") {
				continue
			}
			return usagef("unknown mount option %q", o)
		}
	}
	if overlayMode {
		// mount -t fuse.idmapfs NAME MOUNTPOINT -o lower=...: NAME only
		// names the mount, as "overlay" does for the kernel's overlayfs.
		margs = append(margs, pos[1])
	} else {
		margs = append(margs, pos[0], pos[1])
	}
	return cmdMount(ctx, margs, stdout, stderr)
}
