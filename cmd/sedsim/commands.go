package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/shiftlock/shiftlock/sim"
	"github.com/shiftlock/shiftlock/sim/expose"
	simwire "github.com/shiftlock/shiftlock/sim/wire"
)

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitCode reports err on stderr and returns the exit status for it.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "sedsim: %v\nRun 'sedsim help' for usage.\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "sedsim: %v\n", err)
	return 1
}

const usage = `sedsim: a software TCG Opal drive with real encryption at rest

Usage:
  sedsim create --state DIR --size SIZE [flags]   make a new drive in DIR; prints its PSID once
  sedsim serve --state DIR --socket PATH [--expose MNT]
                                                  serve the drive over opalwire on a Unix
                                                  socket; --expose shows its media as MNT/disk
  sedsim power-cycle --socket PATH | --state DIR  remove and restore the drive's power
  sedsim info --state DIR | --socket PATH [--json]
                                                  profile, geometry, owner, ranges and locks
  sedsim help [COMMAND]                           this text, or a command's flags and examples

Sizes are a whole number of bytes or take a unit K, M, G or T, which are powers
of 1024 (KiB, MiB, GiB, TiB): 64M is 67108864 bytes.

Exit status: 0 success, 1 failure, 2 bad usage.

Example: a 1 GiB drive, served, its media on a loop device:
  sedsim create --state /var/lib/sedsim/d1 --size 1G --psid-file /root/d1.psid
  sedsim serve --state /var/lib/sedsim/d1 --socket /run/sedsim-d1.sock --expose /mnt/sedsim-d1 &
  losetup --find --show /mnt/sedsim-d1/disk
`

type command struct {
	name, summary, help string
	run                 func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"create", "make a new drive", createHelp, cmdCreate},
		{"serve", "serve a drive over opalwire", serveHelp, cmdServe},
		{"power-cycle", "power-cycle a drive", powerCycleHelp, cmdPowerCycle},
		{"info", "describe a drive", infoHelp, cmdInfo},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			for _, c := range commands() {
				if c.name == args[1] {
					fmt.Fprint(stdout, c.help)
					return nil
				}
			}
			return usagef("help: unknown command %q", args[1])
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	return usagef("unknown command %q", args[0])
}

// newFlags returns a flag set whose errors come back as usage errors and
// whose --help prints help to stdout.
func newFlags(name string) *flag.FlagSet {
	fl := flag.NewFlagSet(name, flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	return fl
}

// parse parses args; it returns done when --help was asked for (and
// printed).
func parse(fl *flag.FlagSet, args []string, help string, stdout io.Writer) (done bool, err error) {
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, help)
			return true, nil
		}
		return false, usageError{fmt.Errorf("%s: %w", fl.Name(), err)}
	}
	if fl.NArg() > 0 {
		return false, usagef("%s: unexpected argument %q (every value is given with a flag; see sedsim help %s)", fl.Name(), fl.Arg(0), fl.Name())
	}
	return false, nil
}

func isSet(fl *flag.FlagSet, name string) bool {
	set := false
	fl.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// openError turns an error of sim.Open into a message saying what to do.
func openError(dir string, err error) error {
	switch {
	case errors.Is(err, sim.ErrInUse):
		return fmt.Errorf("drive %s is in use by another process (a running 'sedsim serve'?); talk to it through its socket (--socket), or stop it first", dir)
	case errors.Is(err, sim.ErrCorrupt):
		return fmt.Errorf("%w\nIf %s never held a sedsim drive, choose another --state; if it did, restore its state file from a backup, or remove it and create a new drive", err, dir)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no sedsim drive in %s; create one first: sedsim create --state %s --size SIZE", dir, dir)
	}
	return err
}

// ---- create ----

const createHelp = `Usage: sedsim create --state DIR --size SIZE [flags]

Makes a new drive in DIR (created if missing; it must hold nothing yet): a
state file and a sparse, encrypted media file. The drive starts as a new
drive leaves the factory: SID = MSID, Locking SP not activated.

It prints the drive's PSID once, on stdout, as a real drive prints it on its
label: the credential that reverts the drive to its factory state when its
passwords are lost. sedsim does not keep it. With --psid-file F the PSID goes
into F (mode 0600, must not exist) instead.

Flags:
  --state DIR             the drive's directory (required)
  --size SIZE             capacity, a multiple of the block size (required):
                          K, M, G, T are powers of 1024 (64M, 1G)
  --profile P             opal2 (default), opal1, pyrite2 (no encryption keys,
                          no ranges beyond the global one, no shadow MBR) or
                          ruby (no shadow MBR)
  --block-size N          logical block size, 512 (default) or 4096
  --ranges N              locking ranges besides the global one, 1..64 (default 8;
                          not for pyrite2)
  --users N               Locking SP users, 1..256 (default ranges+1)
  --try-limit N           wrong passwords before an authority locks out until a
                          power cycle (0 = unlimited, the default)
  --serial S              serial number, up to 20 printable ASCII characters
                          (default: random, SIM...)
  --model M               model, up to 40 characters (default "sedsim PROFILE")
  --mbr-size SIZE         shadow MBR table (opal2, opal1; default 128M, at most 1G)
  --datastore-size SIZE   DataStore table (default 10M, at most 1G)
  --psid-file F           write the PSID to F (0600) instead of stdout

Examples:
  sedsim create --state /var/lib/sedsim/d1 --size 1G
  sedsim create --state /tmp/d2 --size 256M --profile pyrite2 --block-size 4096 \
      --try-limit 5 --psid-file /root/d2.psid
`

func cmdCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlags("create")
	state := fl.String("state", "", "")
	size := fl.String("size", "", "")
	profile := fl.String("profile", "opal2", "")
	blockSize := fl.Uint("block-size", 512, "")
	ranges := fl.Int("ranges", 0, "")
	users := fl.Int("users", 0, "")
	tryLimit := fl.Uint("try-limit", 0, "")
	serial := fl.String("serial", "", "")
	model := fl.String("model", "", "")
	mbrSize := fl.String("mbr-size", "", "")
	dsSize := fl.String("datastore-size", "", "")
	psidFile := fl.String("psid-file", "", "")
	if done, err := parse(fl, args, createHelp, stdout); done || err != nil {
		return err
	}
	if *state == "" {
		return usagef("create: --state DIR is required (the directory the new drive lives in)")
	}
	if *size == "" {
		return usagef("create: --size SIZE is required (the drive's capacity, such as 1G)")
	}
	p, err := sim.ParseProfile(*profile)
	if err != nil {
		return usageError{fmt.Errorf("create: --profile: %w", err)}
	}
	cfg := sim.Config{Profile: p}
	if *blockSize != 512 && *blockSize != 4096 {
		return usagef("create: --block-size %d: want 512 or 4096", *blockSize)
	}
	cfg.BlockSize = uint32(*blockSize)
	bytes, err := parseSize(*size)
	if err != nil {
		return usageError{fmt.Errorf("create: --size: %w", err)}
	}
	if bytes < uint64(cfg.BlockSize) || bytes%uint64(cfg.BlockSize) != 0 {
		return usagef("create: --size %s (%d bytes) is not a whole, non-zero number of %d-byte blocks", *size, bytes, cfg.BlockSize)
	}
	cfg.Blocks = bytes / uint64(cfg.BlockSize)
	if isSet(fl, "ranges") {
		if p == sim.Pyrite2 {
			return usagef("create: --ranges: a pyrite2 drive has only the global range")
		}
		if *ranges < 1 || *ranges > 64 {
			return usagef("create: --ranges %d: want 1..64", *ranges)
		}
		cfg.Ranges = *ranges
	}
	if isSet(fl, "users") {
		if *users < 1 || *users > 256 {
			return usagef("create: --users %d: want 1..256", *users)
		}
		cfg.Users = *users
	}
	if *tryLimit > 1<<31 {
		return usagef("create: --try-limit %d is too large", *tryLimit)
	}
	cfg.TryLimit = uint32(*tryLimit)
	for _, t := range []struct {
		flag, v string
		max     int
	}{{"serial", *serial, 20}, {"model", *model, 40}} {
		if len(t.v) > t.max {
			return usagef("create: --%s %q is longer than %d characters", t.flag, t.v, t.max)
		}
		if strings.IndexFunc(t.v, func(r rune) bool { return r < 0x20 || r > 0x7E }) >= 0 {
			return usagef("create: --%s %q: only printable ASCII characters are allowed", t.flag, t.v)
		}
	}
	cfg.Serial, cfg.Model = *serial, *model
	for _, t := range []struct {
		flag, v string
		dst     *uint64
	}{{"mbr-size", *mbrSize, &cfg.MBRSize}, {"datastore-size", *dsSize, &cfg.DataStoreSize}} {
		if !isSet(fl, t.flag) {
			continue
		}
		n, err := parseSize(t.v)
		if err != nil {
			return usageError{fmt.Errorf("create: --%s: %w", t.flag, err)}
		}
		if n == 0 || n > 1<<30 {
			return usagef("create: --%s %s: want 1 byte to 1G", t.flag, t.v)
		}
		*t.dst = n
	}
	if isSet(fl, "mbr-size") && p != sim.Opal2 && p != sim.Opal1 {
		return usagef("create: --mbr-size: a %s drive has no shadow MBR", p)
	}
	if err := checkNewStateDir(*state); err != nil {
		return err
	}

	// The PSID file exists before the drive does, so that a PSID is never
	// made that cannot be stored.
	var pf *os.File
	if *psidFile != "" {
		pf, err = os.OpenFile(*psidFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("--psid-file %s exists; sedsim will not overwrite it: choose another file", *psidFile)
		}
		if err != nil {
			return fmt.Errorf("--psid-file: %w", err)
		}
		defer pf.Close()
	}
	d, psid, err := sim.Create(*state, cfg)
	if err != nil {
		if pf != nil {
			os.Remove(*psidFile)
		}
		if errors.Is(err, sim.ErrExists) {
			return fmt.Errorf("%w; to start over, remove the directory or choose another --state", err)
		}
		if errors.Is(err, sim.ErrInUse) {
			return fmt.Errorf("%s is in use by a running sedsim: %w", *state, err)
		}
		return err
	}
	c := d.Config()
	if err := d.Close(); err != nil {
		return fmt.Errorf("create drive %s: %w", *state, err)
	}
	fmt.Fprintf(stdout, "created a sedsim drive in %s: %s, %s, %d blocks of %d bytes, serial %s, model %q\n",
		*state, c.Profile, formatSize(c.Blocks*uint64(c.BlockSize)), c.Blocks, c.BlockSize, c.Serial, c.Model)
	if pf != nil {
		if _, err := fmt.Fprintln(pf, psid); err != nil {
			return fmt.Errorf("the drive was created, but writing its PSID to %s failed: %w; the PSID is lost, so remove %s and create the drive again", *psidFile, err, *state)
		}
		if err := pf.Close(); err != nil {
			return fmt.Errorf("the drive was created, but writing its PSID to %s failed: %w; the PSID is lost, so remove %s and create the drive again", *psidFile, err, *state)
		}
		fmt.Fprintf(stdout, "its PSID is in %s: keep it; it reverts the drive to its factory state when the passwords are lost\n", *psidFile)
		return nil
	}
	fmt.Fprintf(stdout, "PSID: %s\n", psid)
	fmt.Fprintln(stdout, "Keep the PSID: it is shown only this once, and it reverts the drive to its factory state when the passwords are lost.")
	return nil
}

// checkNewStateDir refuses a --state that exists and is not an empty
// directory.
func checkNewStateDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create: --state: %w", err)
	}
	if !fi.IsDir() {
		return usagef("create: --state %s is not a directory", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("create: --state: %w", err)
	}
	if len(ents) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); err == nil {
		return fmt.Errorf("%s already holds a sedsim drive; sedsim will not replace it: remove the directory to start over, or choose another --state", dir)
	}
	return fmt.Errorf("%s exists and is not empty; give a new or empty directory as --state", dir)
}

// ---- serve ----

const serveHelp = `Usage: sedsim serve --state DIR --socket PATH [--expose MNT] [--log-level L]

Powers on the drive in DIR (a power cycle: ranges with LockOnReset lock, the
shadow MBR shows again) and serves it over opalwire on the Unix socket PATH
(mode 0600), many connections at once. Host tools reach it as a drive:
sedctl takes sim:PATH.

With --expose MNT, the drive's media is also the file MNT/disk on a small
FUSE mount (MNT is created if missing): reads and writes go through the drive,
so a locked range gives EIO as a locked disk does, and losetup(8) turns the
file into a block device that takes mkfs and mount.

When everything is up, sedsim prints one line starting with "ready" on stdout;
the socket exists only from then on. SIGINT or SIGTERM stop it: the socket is
removed, MNT unmounted (lazily if a loop device still holds the file: its I/O
then fails), the drive saved and closed. Stopping and serving again is a power
cycle; the drive's state persists.

Flags:
  --state DIR         the drive's directory (from sedsim create; required)
  --socket PATH       the Unix socket to serve on (required)
  --expose MNT        show the media as MNT/disk
  --log-level L       debug, info (default), warn or error; logs go to stderr

Examples:
  sedsim serve --state /var/lib/sedsim/d1 --socket /run/sedsim-d1.sock
  sedsim serve --state /var/lib/sedsim/d1 --socket /run/sedsim-d1.sock \
      --expose /mnt/sedsim-d1 &
  losetup --find --show /mnt/sedsim-d1/disk
`

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlags("serve")
	state := fl.String("state", "", "")
	socket := fl.String("socket", "", "")
	exposeDir := fl.String("expose", "", "")
	level := fl.String("log-level", "info", "")
	if done, err := parse(fl, args, serveHelp, stdout); done || err != nil {
		return err
	}
	if *state == "" || *socket == "" {
		return usagef("serve: --state DIR and --socket PATH are required")
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return usagef("serve: --log-level %q: want debug, info, warn or error", *level)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	d, err := sim.Open(*state)
	if err != nil {
		return openError(*state, err)
	}
	d.SetLogger(log)
	defer func() {
		if cerr := d.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the drive: %w", cerr)
		}
	}()

	var disk *expose.Disk
	if *exposeDir != "" {
		src := *state
		if abs, err := filepath.Abs(src); err == nil {
			src = abs
		}
		disk, err = expose.Mount(*exposeDir, d, &expose.Options{Source: "sedsim:" + src, Logger: log})
		if err != nil {
			return err
		}
		defer func() {
			if cerr := disk.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
		// Runs before disk.Close (deferred above), so that only an
		// unmount by someone else is reported.
		watch, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		go func() {
			select {
			case <-disk.Unmounted():
				if watch.Err() == nil {
					log.Warn("the exposed disk was unmounted by someone else; the socket still serves", "dir", *exposeDir)
				}
			case <-watch.Done():
			}
		}()
	}

	l, err := simwire.Listen(*socket)
	if err != nil {
		if errors.Is(err, simwire.ErrSocketInUse) {
			return fmt.Errorf("%w (another sedsim serve?); stop it or choose another --socket", err)
		}
		return err
	}
	id := d.Info()
	msg := fmt.Sprintf("ready: drive %s (%s, %s, serial %s) on %s", *state, d.Config().Profile,
		formatSize(id.Blocks*uint64(id.BlockSize)), id.SerialString(), *socket)
	if disk != nil {
		msg += ", media at " + disk.Path()
	}
	fmt.Fprintln(stdout, msg)
	log.Info("serving", "state", *state, "socket", *socket, "expose", *exposeDir)
	if err := simwire.Serve(ctx, l, d, log); err != nil {
		return err
	}
	log.Info("stopping", "state", *state)
	return nil
}

// ---- power-cycle ----

const powerCycleHelp = `Usage: sedsim power-cycle --socket PATH | --state DIR

Removes and restores the drive's power: sessions end, ranges whose LockOnReset
lists PowerCycle lock, the shadow MBR shows again (DoneOnReset), wrong-password
counters reset and authorities locked out by TryLimit come back.

--socket PATH sends the opalwire RESET to a served drive. --state DIR power-
cycles a drive nobody serves (a served one refuses: use its socket).

Examples:
  sedsim power-cycle --socket /run/sedsim-d1.sock
  sedsim power-cycle --state /var/lib/sedsim/d1
`

func cmdPowerCycle(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlags("power-cycle")
	state := fl.String("state", "", "")
	socket := fl.String("socket", "", "")
	if done, err := parse(fl, args, powerCycleHelp, stdout); done || err != nil {
		return err
	}
	if (*state == "") == (*socket == "") {
		return usagef("power-cycle: give exactly one of --socket PATH (a served drive) and --state DIR (a drive nobody serves)")
	}
	if *socket != "" {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		c, err := dial(ctx, *socket)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.Reset(ctx); err != nil {
			return fmt.Errorf("power-cycle through %s: %w", *socket, err)
		}
		fmt.Fprintf(stdout, "power-cycled the drive on %s\n", *socket)
		return nil
	}
	// Opening a drive powers it on, which is the power cycle; Close saves
	// the result.
	d, err := sim.Open(*state)
	if err != nil {
		if errors.Is(err, sim.ErrInUse) {
			return fmt.Errorf("drive %s is being served; power-cycle it through its socket: sedsim power-cycle --socket PATH", *state)
		}
		return openError(*state, err)
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("power-cycle %s: %w", *state, err)
	}
	fmt.Fprintf(stdout, "power-cycled the drive in %s\n", *state)
	return nil
}

// wrapSocketError says what to do when nobody answers on a socket.
func wrapSocketError(socket string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("no sedsim answers on %s: %w; start one with: sedsim serve --state DIR --socket %s", socket, err, socket)
	}
	return fmt.Errorf("sedsim socket %s: %w", socket, err)
}
