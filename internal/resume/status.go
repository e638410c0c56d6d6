package resume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shiftlock/shiftlock/internal/resume/kernel"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/session"
)

// StatusOptions are sedctl resume status's.
type StatusOptions struct {
	Socket string
	Config string
	RunDir string
	JSON   bool
}

// StatusReport is everything status knows; it never holds a key.
type StatusReport struct {
	Config      []ConfigEntry `json:"config"`
	ConfigError string        `json:"config_error,omitempty"`
	Kernel      []KernelArmed `json:"kernel"`
	Daemon      *DaemonStatus `json:"daemon,omitempty"`
	DaemonError string        `json:"daemon_error,omitempty"`
}

// GetStatus gathers the configuration, what the kernel path armed this boot
// and what the daemon holds.
func GetStatus(ctx context.Context, opts StatusOptions) *StatusReport {
	if opts.Socket == "" {
		opts.Socket = DefaultSocket
	}
	if opts.Config == "" {
		opts.Config = DefaultConfig
	}
	if opts.RunDir == "" {
		opts.RunDir = DefaultRunDir
	}
	r := &StatusReport{Kernel: loadKernelState(opts.RunDir).Entries}
	if cfg, err := LoadConfig(opts.Config, uint32(os.Geteuid())); err != nil {
		r.ConfigError = err.Error()
	} else {
		r.Config = cfg.Entries
	}
	resp, err := call(ctx, opts.Socket, Request{Op: OpStatus})
	if err != nil {
		r.DaemonError = err.Error()
	} else {
		r.Daemon = resp.Status
	}
	// Lists, never null, in the JSON.
	if r.Config == nil {
		r.Config = []ConfigEntry{}
	}
	if r.Kernel == nil {
		r.Kernel = []KernelArmed{}
	}
	if r.Daemon != nil && r.Daemon.Entries == nil {
		r.Daemon.Entries = []EntryStatus{}
	}
	return r
}

// Status prints GetStatus, as text or JSON.
func Status(ctx context.Context, opts StatusOptions, w io.Writer) error {
	r := GetStatus(ctx, opts)
	if opts.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	name := func(hexUID string) string {
		if u, err := parseAuthority(hexUID); err == nil {
			return authName(u)
		}
		return hexUID
	}
	fmt.Fprintln(w, "Configured:")
	if r.ConfigError != "" {
		fmt.Fprintf(w, "  error: %s\n", r.ConfigError)
	}
	if len(r.Config) == 0 && r.ConfigError == "" {
		fmt.Fprintln(w, "  nothing")
	}
	for _, e := range r.Config {
		rs := rangeList(e.Ranges)
		if e.All {
			rs = "all"
		}
		where := e.Storage + " (kept nowhere: enable again after each boot)"
		switch e.Storage {
		case StorageFile:
			where = e.Storage + " " + e.KeyFile + " (re-armed at boot)"
		case StorageCredential:
			where = e.Storage + " " + e.Credential + " (re-armed at boot)"
		}
		fmt.Fprintf(w, "  %s as %s, ranges %s: %s path, key: %s\n", e.Device, name(e.Authority), rs, e.Path, where)
	}
	fmt.Fprintln(w, "Kernel path, armed this boot:")
	if len(r.Kernel) == 0 {
		fmt.Fprintln(w, "  nothing")
	}
	for _, k := range r.Kernel {
		fmt.Fprintf(w, "  %s as %s, ranges %s (since %s)\n", k.Device, name(k.Authority), rangeList(k.Ranges), k.Armed.Format(time.DateTime))
	}
	fmt.Fprintln(w, "Resume daemon:")
	if r.Daemon == nil {
		fmt.Fprintf(w, "  not reachable: %s\n", r.DaemonError)
		return nil
	}
	d := r.Daemon
	fmt.Fprintf(w, "  running, pid %d, keys in %s memory, all memory locked: %v\n", d.PID, d.KeyMemory, d.LockedAll)
	for _, e := range d.Entries {
		fmt.Fprintf(w, "  %s as %s, ranges %s: %s (key from %s)", e.Device, e.Authority, rangeList(e.Ranges), e.State, e.Source)
		if !e.LastOK.IsZero() {
			fmt.Fprintf(w, ", last unlocked %s", e.LastOK.Format(time.DateTime))
		}
		if e.Error != "" {
			fmt.Fprintf(w, "\n    error: %s", e.Error)
		}
		fmt.Fprintln(w)
	}
	for _, u := range d.Unarmed {
		fmt.Fprintf(w, "  %s as %s: NOT ARMED: %s\n", u.Device, u.Authority, u.Reason)
	}
	switch {
	case d.LastRun == nil:
	case len(d.LastRun.Drives) == 0:
		fmt.Fprintf(w, "  last resume: %s by %s, nothing armed to unlock\n", d.LastRun.Start.Format(time.DateTime), d.LastRun.Trigger)
	default:
		// Configured entries it holds no key for stayed locked too.
		fmt.Fprintf(w, "  last resume unlock: %s by %s, %s, %d exchanges, ok: %v\n", d.LastRun.Start.Format(time.DateTime),
			d.LastRun.Trigger, d.LastRun.Duration.Round(time.Microsecond), d.LastRun.Exchanges(), d.LastRun.OK() && len(d.Unarmed) == 0)
	}
	return nil
}

// NotifyOptions are sedctl resume notify's.
type NotifyOptions struct {
	Socket string
	Event  string // EventPost or EventPre
	// Timeout bounds the wait for the unlock (default 60 s).
	Timeout time.Duration
}

// Notify tells the daemon of a suspend ("pre") or resume ("post"); for
// "post" it waits until the daemon has unlocked and prints what happened.
// It fails if any registered range is still locked.
func Notify(ctx context.Context, opts NotifyOptions, w io.Writer) error {
	if opts.Socket == "" {
		opts.Socket = DefaultSocket
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	if opts.Event != EventPost && opts.Event != EventPre {
		return fmt.Errorf("resume notify: event %q: want post or pre", opts.Event)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	resp, err := call(ctx, opts.Socket, Request{Op: OpNotify, Event: opts.Event})
	if resp != nil && resp.Run != nil {
		writeRun(w, resp.Run)
	}
	if err != nil {
		return fmt.Errorf("resume notify %s: %w", opts.Event, err)
	}
	return nil
}

func writeRun(w io.Writer, r *RunReport) {
	how := "unlocked"
	if r.Coalesced {
		how = "already handled by the unlock"
	}
	sessions := "sessions"
	if len(r.Drives) == 1 {
		sessions = "session"
	}
	if len(r.Drives) == 0 {
		fmt.Fprintln(w, "nothing armed to unlock")
		return
	}
	fmt.Fprintf(w, "%s in %s (%d %s, %d exchanges)\n", how, r.Duration.Round(time.Microsecond), len(r.Drives), sessions, r.Exchanges())
	for _, d := range r.Drives {
		state := "unlocked"
		switch {
		case d.Skipped:
			state = "SKIPPED (failed earlier; register again)"
		case d.Error != "":
			state = "FAILED: " + d.Error
		case d.MBRDone:
			state += ", MBR Done set"
		}
		fmt.Fprintf(w, "  %s as %s, ranges %s: %s\n", d.Device, d.Authority, rangeList(d.Ranges), state)
	}
}

// RearmOptions are for the boot unit (sedctl resume enable --from-config):
// arm the kernel-path entries of the configuration from their stored keys.
type RearmOptions struct {
	Open           Opener
	Kernel         KernelOpener
	Config         string
	RunDir         string
	CredentialsDir string // "" = $CREDENTIALS_DIRECTORY
	KeyFileOwner   uint32
	KernelRelease  string
}

// Rearm arms the kernel path again after a boot, for every configured
// kernel-path entry whose key is stored (prompt-mode entries are listed as
// needing 'sedctl resume enable'). Each key is verified with a session
// before it is saved. Daemon-path entries are the daemon's own business.
func Rearm(ctx context.Context, opts RearmOptions, w io.Writer) error {
	if opts.Config == "" {
		opts.Config = DefaultConfig
	}
	if opts.RunDir == "" {
		opts.RunDir = DefaultRunDir
	}
	if opts.CredentialsDir == "" {
		opts.CredentialsDir = os.Getenv("CREDENTIALS_DIRECTORY")
	}
	cfg, err := LoadConfig(opts.Config, opts.KeyFileOwner)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range cfg.Entries {
		if e.Path != PathKernel {
			continue
		}
		if err := rearmKernel(ctx, opts, e, w); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.Device, err))
			fmt.Fprintf(w, "%s: NOT ARMED: %v\n", e.Device, err)
		}
	}
	return errors.Join(errs...)
}

func rearmKernel(ctx context.Context, opts RearmOptions, e ConfigEntry, w io.Writer) error {
	a, err := parseAuthority(e.Authority)
	if err != nil {
		return err
	}
	if opts.Open == nil || opts.Kernel == nil {
		return errors.New("no device access")
	}
	pin, err := loadKey(e, opts.KeyFileOwner, opts.CredentialsDir)
	if err != nil {
		return err
	}
	defer pin.Wipe()
	t, err := opts.Open(ctx, e.Device)
	if err != nil {
		return err
	}
	defer t.Close()
	c := session.NewClient(t, nil)
	auth := opal.Auth{Authority: a, PIN: pin}
	if err := Verify(ctx, c, auth); err != nil {
		return err
	}
	ranges := e.Ranges
	if e.All {
		if ranges, err = LockingRanges(ctx, c, auth); err != nil {
			return err
		}
	}
	id, err := t.Identify(ctx)
	if err != nil {
		return err
	}
	k, err := opts.Kernel(ctx, e.Device)
	if err != nil {
		return err
	}
	if c, ok := k.(io.Closer); ok {
		defer c.Close()
	}
	if st, err := k.Probe(ctx); err != nil {
		return err
	} else if !st.Supported() {
		return kernel.ErrUnsupported
	}
	eo := EnableOptions{Device: e.Device, Authority: a, RunDir: opts.RunDir, KernelRelease: opts.KernelRelease}
	return armKernel(ctx, k, eo, id, ranges, pin, w)
}
