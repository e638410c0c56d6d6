package resume

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/session"
	"github.com/shiftlock/shiftlock/tcg/transport"
)

// Defaults of the installed system.
const (
	DefaultSocket  = "/run/sedctl/resume.sock"
	DefaultConfig  = "/etc/sedctl/resume.conf"
	DefaultRunDir  = "/run/sedctl"
	DefaultKeyDir  = "/etc/sedctl/keys"
	DefaultSedctl  = "/usr/local/bin/sedctl" // where make install puts it
	CredentialBase = "sedctl-resume."        // credential names start so (ImportCredential=sedctl-resume.*)
)

// Opener opens a device for the daemon and for Enable: the CLI's device
// argument ("/dev/nvme0n1", "sim:/run/sedsim.sock") to a Transport.
type Opener func(ctx context.Context, device string) (transport.Transport, error)

// Clock tells the time spent suspended: CLOCK_BOOTTIME - CLOCK_MONOTONIC in
// nanoseconds on Linux. It only grows, and only across a suspend.
type Clock interface {
	Suspended() (int64, error)
}

// SystemClock is the kernel's clocks.
func SystemClock() Clock { return sysClock{} }

// DaemonOptions configure RunDaemon. Open is required.
type DaemonOptions struct {
	Socket string // DefaultSocket if empty
	Open   Opener
	// Config is the file to re-arm from at start; "" means
	// DefaultConfig, "-" none.
	Config string
	// CredentialsDir holds systemd credentials; "" means
	// $CREDENTIALS_DIRECTORY.
	CredentialsDir string
	// KeyFileOwner is the uid key files must belong to (root: 0).
	KeyFileOwner uint32
	// AllowUID is the only uid admitted on the socket (root: 0).
	AllowUID uint32
	// Harden locks all memory, disables core dumps and ptrace (Harden).
	// The CLI sets it; tests check Harden in a child process.
	Harden bool
	Logger *slog.Logger // nil: text on stderr (the journal)

	// Clock is the suspend detector's clock; nil is SystemClock.
	Clock Clock
	// DetectInterval is how often the clock is read (default 500 ms;
	// negative: no self-detection). DetectThreshold is how much the
	// suspended time must grow to count as a suspend (default 1 s).
	DetectInterval  time.Duration
	DetectThreshold time.Duration
	// Debounce: a "notify post" within this time of the last unlock,
	// with no suspend seen in between, joins that unlock instead of
	// starting another (default 5 s).
	Debounce time.Duration
	// UnlockTimeout bounds one resume unlock of all drives (default 30 s).
	UnlockTimeout time.Duration

	// Ready, if set, is called once the socket accepts connections and
	// the configured entries are armed.
	Ready func()
}

func (o *DaemonOptions) defaults() error {
	if o.Open == nil {
		return errors.New("resume daemon: no device opener")
	}
	if o.Socket == "" {
		o.Socket = DefaultSocket
	}
	if o.Config == "" {
		o.Config = DefaultConfig
	}
	if o.CredentialsDir == "" {
		o.CredentialsDir = os.Getenv("CREDENTIALS_DIRECTORY")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Clock == nil {
		o.Clock = SystemClock()
	}
	if o.DetectInterval == 0 {
		o.DetectInterval = 500 * time.Millisecond
	}
	if o.DetectThreshold <= 0 {
		o.DetectThreshold = time.Second
	}
	if o.Debounce == 0 {
		o.Debounce = 5 * time.Second
	}
	if o.UnlockTimeout <= 0 {
		o.UnlockTimeout = 30 * time.Second
	}
	return nil
}

// Daemon holds derived PINs and unlocks the registered ranges on resume.
type Daemon struct {
	opts   DaemonOptions
	log    *slog.Logger
	vault  *Vault
	harden HardenReport

	// runMu serialises registry changes with unlock runs, so that no key
	// is freed while a run sends it.
	runMu sync.Mutex
	// mu guards the fields below, for status readers during a run.
	mu      sync.Mutex
	drives  map[string]*drive
	unarmed []UnarmedEntry
	lastRun *RunReport

	// handled: the suspended time at the last run, and when it ran.
	handledGap int64
	handledAt  time.Time
	haveRun    bool

	triggers chan *trigger
}

// drive is one registered device: its handle, kept open from registration
// on so that the resume path opens nothing and reads nothing from disk.
type drive struct {
	device string
	t      transport.Transport
	c      *session.Client
	auths  map[method.UID]*entry
}

// entry is one authority's key and ranges on a drive.
type entry struct {
	authority method.UID
	ranges    []uint32
	slot      Slot
	state     string
	err       string
	source    string
	since     time.Time
	lastOK    time.Time
}

type trigger struct {
	source string // "notify" or "detect"
	gap    int64
	gapOK  bool
	done   chan *RunReport
}

// RunDaemon runs the resume daemon until ctx ends: it hardens the process
// (if asked), maps the key memory, listens on the socket (mode 0600, uid
// checked), re-arms from the configuration, and unlocks on every resume
// event. On return every key is zeroised and every device handle closed.
func RunDaemon(ctx context.Context, opts DaemonOptions) error {
	d, err := NewDaemon(opts)
	if err != nil {
		return err
	}
	defer d.Close()
	l, err := ListenSocket(d.opts.Socket)
	if err != nil {
		return err
	}
	return d.Serve(ctx, l)
}

// NewDaemon prepares a daemon: hardening and key memory.
func NewDaemon(opts DaemonOptions) (*Daemon, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	d := &Daemon{opts: opts, log: opts.Logger, drives: map[string]*drive{}, triggers: make(chan *trigger, 16)}
	if opts.Harden {
		r, err := Harden()
		if err != nil {
			return nil, fmt.Errorf("resume daemon: %w", err)
		}
		d.harden = r
		if r.LockErr != nil {
			d.log.Warn("memory not locked; keys are still kept in locked key memory", "err", r.LockErr)
		}
	}
	v, err := NewVault()
	if err != nil {
		return nil, fmt.Errorf("resume daemon: %w", err)
	}
	d.vault = v
	return d, nil
}

// Close zeroises every key and closes every device handle.
func (d *Daemon) Close() error {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, drv := range d.drives {
		drv.t.Close()
	}
	d.drives = map[string]*drive{}
	return d.vault.Close()
}

// ListenSocket creates the daemon's Unix socket, mode 0600, in a directory
// it creates mode 0700 if missing. A stale socket (nobody answering) is
// replaced; a live one means a daemon already runs.
func ListenSocket(path string) (net.Listener, error) {
	if err := os.MkdirAll(dirOf(path), 0o700); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket; remove it", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("a resume daemon already answers on %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("stale socket: %w", err)
		}
	}
	l, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, nil
}

func dirOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	switch {
	case i < 0:
		return "."
	case i == 0:
		return "/"
	}
	return p[:i]
}

// Serve answers on l until ctx ends, then closes l and waits for every
// goroutine it started.
func (d *Daemon) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer l.Close()

	d.log.Info("resume daemon starting", "socket", d.opts.Socket, "key_memory", d.vault.Backend(),
		"locked_all", d.harden.LockedAll)
	d.rearm(ctx)

	wg.Go(func() { d.worker(ctx) })
	if d.opts.DetectInterval > 0 {
		wg.Go(func() { d.detect(ctx) })
	}
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	if d.opts.Ready != nil {
		d.opts.Ready()
	}
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				d.log.Info("resume daemon stopping; keys zeroised")
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		conns.Go(func() { d.serveConn(ctx, c) })
	}
}

// serveConn answers one connection's requests.
func (d *Daemon) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	peer, err := peerCred(c)
	if err == nil {
		err = checkPeer(peer, d.opts.AllowUID)
	}
	if err != nil {
		d.log.Warn("refused a connection", "err", err)
		writeResponse(c, &Response{Error: err.Error()})
		return
	}
	r := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(time.Minute))
		line, err := readLine(r)
		if err != nil {
			return
		}
		req, err := decodeRequest(line)
		clear(line)
		var resp *Response
		if err != nil {
			resp = &Response{Error: err.Error()}
		} else {
			resp = d.handle(ctx, req)
			clear(req.PIN)
		}
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if writeResponse(c, resp) != nil {
			return
		}
	}
}

func writeResponse(c net.Conn, r *Response) error {
	b, err := json.Marshal(r)
	if err != nil {
		b, _ = json.Marshal(&Response{Error: "internal: " + err.Error()})
	}
	_, err = c.Write(append(b, '\n'))
	return err
}

func (d *Daemon) handle(ctx context.Context, req Request) *Response {
	fail := func(err error) *Response { return &Response{Error: err.Error()} }
	switch req.Op {
	case OpPing:
		return &Response{OK: true}
	case OpStatus:
		st := d.Status()
		return &Response{OK: true, Status: &st}
	case OpRegister:
		a, err := parseAuthority(req.Authority)
		if err != nil {
			return fail(err)
		}
		src := req.Source
		if src == "" {
			src = "socket"
		}
		if err := d.Register(ctx, req.Device, a, req.Ranges, req.All, req.PIN, src, false); err != nil {
			return fail(err)
		}
		return &Response{OK: true}
	case OpUnregister:
		var a method.UID
		if req.Authority != "" {
			var err error
			if a, err = parseAuthority(req.Authority); err != nil {
				return fail(err)
			}
		}
		if err := d.Unregister(req.Device, a, req.Ranges); err != nil {
			return fail(err)
		}
		return &Response{OK: true}
	case OpNotify:
		switch req.Event {
		case EventPost:
			rep, err := d.Notify(ctx)
			if err != nil {
				return fail(err)
			}
			resp := &Response{OK: rep.OK(), Run: rep}
			if !resp.OK {
				resp.Error = "not every registered range could be unlocked; see the daemon's log"
			}
			return resp
		case EventPre:
			d.log.Info("suspend announced")
			return &Response{OK: true}
		}
		return fail(fmt.Errorf("notify event %q: want post or pre", req.Event))
	}
	return fail(fmt.Errorf("unknown op %q", req.Op))
}

// validateRegistration checks a registration's fields before anything is
// opened.
func validateRegistration(device string, ranges []uint32, all bool, pin []byte) error {
	switch {
	case device == "" || len(device) > 4096 || strings.ContainsRune(device, 0):
		return errors.New("register: device missing or malformed")
	case len(pin) == 0:
		return errors.New("register: no key")
	case len(pin) > slotSize:
		return fmt.Errorf("register: key of %d bytes, at most %d", len(pin), slotSize)
	case all && len(ranges) > 0:
		return errors.New("register: give ranges or all, not both")
	case !all && len(ranges) == 0:
		return errors.New("register: no ranges")
	case len(ranges) > 64:
		return errors.New("register: more than 64 ranges")
	}
	for _, n := range ranges {
		if n > 0xFFFF {
			return fmt.Errorf("register: range %d does not exist", n)
		}
	}
	return nil
}

// Register arms the daemon for device: on resume, a session as authority
// with pin unlocks ranges (or, with all, every range whose locking is
// enabled now). pin is copied into key memory; the caller wipes its own.
// With verify, a session as authority checks the key first (re-arming from
// a key file); otherwise the caller has verified it (Enable). Registering
// an authority again replaces its key, adds the ranges and clears a failed
// state.
func (d *Daemon) Register(ctx context.Context, device string, a method.UID, ranges []uint32, all bool, pin []byte, source string, verify bool) error {
	if err := validateRegistration(device, ranges, all, pin); err != nil {
		return err
	}
	d.runMu.Lock()
	defer d.runMu.Unlock()
	d.mu.Lock()
	drv, had := d.drives[device]
	d.mu.Unlock()
	if !had {
		t, err := d.opts.Open(ctx, device)
		if err != nil {
			return fmt.Errorf("register %s: %w", device, err)
		}
		drv = &drive{device: device, t: t, c: session.NewClient(t, &session.Options{Logger: d.log}), auths: map[method.UID]*entry{}}
	}
	abandon := func() {
		if !had {
			drv.t.Close()
		}
	}
	auth := opal.Auth{Authority: a, PIN: pin}
	if verify {
		if err := Verify(ctx, drv.c, auth); err != nil {
			abandon()
			return fmt.Errorf("register %s as %s: %w", device, authName(a), err)
		}
	}
	if all {
		var err error
		if ranges, err = LockingRanges(ctx, drv.c, auth); err != nil {
			abandon()
			return fmt.Errorf("register %s as %s: %w", device, authName(a), err)
		}
	}
	slot, err := d.vault.Put(pin)
	if err != nil {
		abandon()
		return fmt.Errorf("register %s: %w", device, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.drives[device] = drv
	e := drv.auths[a]
	if e == nil {
		e = &entry{authority: a}
		drv.auths[a] = e
	} else {
		d.vault.Free(e.slot)
	}
	e.slot = slot
	e.ranges = mergeRanges(e.ranges, ranges)
	e.state, e.err, e.source, e.since = StateArmed, "", source, time.Now()
	d.unarmed = slices.DeleteFunc(d.unarmed, func(u UnarmedEntry) bool {
		return u.Device == device && u.Authority == authName(a)
	})
	d.log.Info("armed", "device", device, "authority", authName(a), "ranges", e.ranges, "source", source)
	return nil
}

func mergeRanges(a, b []uint32) []uint32 {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// Unregister forgets the keys for device: for the given ranges only (the
// rest stay armed), or all of them; only authority's when it is non-zero.
// Keys whose ranges are all gone are zeroised.
func (d *Daemon) Unregister(device string, a method.UID, ranges []uint32) error {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	drv := d.drives[device]
	if drv == nil {
		return fmt.Errorf("unregister: %s is not armed", device)
	}
	changed := false
	for u, e := range drv.auths {
		if !a.IsZero() && u != a {
			continue
		}
		before := len(e.ranges)
		if len(ranges) > 0 {
			e.ranges = slices.DeleteFunc(e.ranges, func(n uint32) bool { return slices.Contains(ranges, n) })
		} else {
			e.ranges = nil
		}
		changed = changed || len(e.ranges) != before
		if len(e.ranges) == 0 {
			d.vault.Free(e.slot)
			delete(drv.auths, u)
		}
	}
	if len(drv.auths) == 0 {
		drv.t.Close()
		delete(d.drives, device)
	}
	if !changed {
		// Nothing held matches: say so rather than "zeroised".
		return fmt.Errorf("unregister: %s is not armed for that authority or those ranges", device)
	}
	d.log.Info("disarmed", "device", device, "ranges", ranges)
	return nil
}

// Status describes what is armed; it never includes a key.
func (d *Daemon) Status() DaemonStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := DaemonStatus{PID: os.Getpid(), KeyMemory: d.vault.Backend(), LockedAll: d.harden.LockedAll,
		Unarmed: slices.Clone(d.unarmed), LastRun: d.lastRun}
	for _, drv := range d.drives {
		for _, e := range drv.auths {
			st.Entries = append(st.Entries, EntryStatus{
				Device: drv.device, Authority: authName(e.authority), Ranges: slices.Clone(e.ranges),
				State: e.state, Error: e.err, Source: e.source, Since: e.since, LastOK: e.lastOK,
			})
		}
	}
	sort.Slice(st.Entries, func(i, j int) bool {
		return cmp.Or(cmp.Compare(st.Entries[i].Device, st.Entries[j].Device),
			cmp.Compare(st.Entries[i].Authority, st.Entries[j].Authority)) < 0
	})
	return st
}

// Notify is "notify post": unlock now, unless this resume was already
// handled (see DaemonOptions.Debounce). It returns the run's report.
func (d *Daemon) Notify(ctx context.Context) (*RunReport, error) {
	tr := &trigger{source: "notify", done: make(chan *RunReport, 1)}
	tr.gap, tr.gapOK = d.sample()
	select {
	case d.triggers <- tr:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case rep := <-tr.done:
		if rep == nil {
			return nil, errors.New("the daemon is stopping")
		}
		return rep, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (d *Daemon) sample() (int64, bool) {
	g, err := d.opts.Clock.Suspended()
	return g, err == nil
}

// worker runs unlocks one at a time, coalescing triggers of one resume.
func (d *Daemon) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case tr := <-d.triggers:
					if tr.done != nil {
						tr.done <- nil
					}
				default:
					return
				}
			}
		case tr := <-d.triggers:
			rep := d.handleTrigger(ctx, tr)
			if tr.done != nil {
				tr.done <- rep
			}
		}
	}
}

func (d *Daemon) handleTrigger(ctx context.Context, tr *trigger) *RunReport {
	thr := d.opts.DetectThreshold.Nanoseconds()
	d.mu.Lock()
	seen := d.haveRun && tr.gapOK && tr.gap-d.handledGap < thr
	recent := time.Since(d.handledAt) < d.opts.Debounce
	last := d.lastRun
	d.mu.Unlock()
	// A detected suspend already covered by a run, or a notification
	// right after a successful run with no suspend in between, is that
	// run. After a failed run a notification tries again: the drive may
	// have come back since (a refused key is not retried either way).
	if seen && last != nil && (tr.source == "detect" || (recent && last.OK())) {
		rep := *last
		rep.Coalesced, rep.Trigger = true, tr.source
		d.log.Debug("resume event joins the previous unlock", "trigger", tr.source)
		return &rep
	}
	gap, ok := d.sample()
	start := time.Now()
	rep := d.run(ctx, tr.source)
	d.mu.Lock()
	if ok {
		d.handledGap = max(gap, tr.gap)
	} else {
		d.handledGap = tr.gap
	}
	d.handledAt, d.haveRun, d.lastRun = start, true, rep
	d.mu.Unlock()
	return rep
}

// detect watches the suspended time and triggers an unlock when it grows.
func (d *Daemon) detect(ctx context.Context) {
	last, err := d.opts.Clock.Suspended()
	reported := false
	if err != nil {
		d.log.Warn("cannot watch for suspends; relying on notify post", "err", err)
		reported = true
	}
	tick := time.NewTicker(d.opts.DetectInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		g, err := d.opts.Clock.Suspended()
		if err != nil {
			if !reported {
				d.log.Warn("cannot watch for suspends; relying on notify post", "err", err)
				reported = true
			}
			continue
		}
		if g-last >= d.opts.DetectThreshold.Nanoseconds() {
			d.log.Info("resume detected", "suspended", time.Duration(g-last).Round(time.Millisecond))
			select {
			case d.triggers <- &trigger{source: "detect", gap: g, gapOK: true}:
			case <-ctx.Done():
				return
			}
		}
		last = g
	}
}

// job is one session of a run.
type job struct {
	e      *entry
	ranges []uint32
	key    []byte
	keep   bool // leave the shadow MBR to an admin's session
}

// run unlocks every registered range: drives in parallel, one session per
// (drive, authority), admins first.
func (d *Daemon) run(ctx context.Context, source string) *RunReport {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, d.opts.UnlockTimeout)
	defer cancel()
	rep := &RunReport{Trigger: source, Start: time.Now()}

	d.mu.Lock()
	type plan struct {
		drv  *drive
		jobs []job
		skip []DriveReport
	}
	plans := make([]*plan, 0, len(d.drives))
	for _, drv := range d.drives {
		p := &plan{drv: drv}
		es := make([]*entry, 0, len(drv.auths))
		for _, e := range drv.auths {
			es = append(es, e)
		}
		sort.Slice(es, func(i, j int) bool {
			ai, aj := isAdmin(es[i].authority), isAdmin(es[j].authority)
			if ai != aj {
				return ai
			}
			return es[i].authority.Hex() < es[j].authority.Hex()
		})
		hasAdmin := false
		for _, e := range es {
			if e.state == StateFailed {
				p.skip = append(p.skip, DriveReport{Device: drv.device, Authority: authName(e.authority),
					Ranges: slices.Clone(e.ranges), Skipped: true, Error: "not tried: " + e.err})
				continue
			}
			p.jobs = append(p.jobs, job{e: e, ranges: slices.Clone(e.ranges), key: d.vault.Key(e.slot), keep: hasAdmin && !isAdmin(e.authority)})
			hasAdmin = hasAdmin || isAdmin(e.authority)
		}
		plans = append(plans, p)
	}
	d.mu.Unlock()
	sort.Slice(plans, func(i, j int) bool { return plans[i].drv.device < plans[j].drv.device })

	results := make([][]DriveReport, len(plans))
	var wg sync.WaitGroup
	for i, p := range plans {
		wg.Go(func() {
			var out []DriveReport
			for _, j := range p.jobs {
				out = append(out, d.unlockOne(ctx, p.drv, j))
			}
			results[i] = append(out, p.skip...)
		})
	}
	wg.Wait()
	for _, r := range results {
		rep.Drives = append(rep.Drives, r...)
	}
	rep.Duration = time.Since(rep.Start)
	if len(rep.Drives) > 0 {
		d.log.Info("resume unlock done", "trigger", source, "sessions", len(rep.Drives), "ok", rep.OK(),
			"exchanges", rep.Exchanges(), "took", rep.Duration.Round(time.Microsecond))
	}
	return rep
}

func isAdmin(a method.UID) bool {
	_, lo := a.Halves()
	return lo > 0x00010000 && lo < 0x00010100
}

// unlockOne runs one session. Authentication failures mark the entry
// failed for good; a broken handle is re-opened and tried once more.
func (d *Daemon) unlockOne(ctx context.Context, drv *drive, j job) DriveReport {
	r := DriveReport{Device: drv.device, Authority: authName(j.e.authority), Ranges: j.ranges}
	auth := opal.Auth{Authority: j.e.authority, PIN: j.key}
	try := func() error {
		drv.c.Renegotiate() // the drive forgot the host's properties at power-off
		res, err := opal.Unlock(ctx, drv.c, auth, j.ranges, &opal.UnlockOptions{KeepShadowMBR: j.keep})
		r.Exchanges += res.Exchanges
		r.MBRDone = res.SetMBRDone
		return err
	}
	err := try()
	var st method.MethodStatus
	if err != nil && !errors.As(err, &st) && ctx.Err() == nil {
		d.log.Warn("device handle failed; re-opening it", "device", drv.device, "err", err)
		if t, oerr := d.opts.Open(ctx, drv.device); oerr == nil {
			d.mu.Lock()
			drv.t.Close()
			drv.t, drv.c = t, session.NewClient(t, &session.Options{Logger: d.log})
			d.mu.Unlock()
			err = try()
		} else {
			err = fmt.Errorf("%w; re-open: %w", err, oerr)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		j.e.lastOK = time.Now()
		j.e.err = ""
		return r
	}
	r.Error = err.Error()
	if errors.Is(err, method.StatusNotAuthorized) || errors.Is(err, method.StatusAuthorityLockedOut) {
		j.e.state, j.e.err = StateFailed, err.Error()
		d.log.Error("RESUME UNLOCK REFUSED: the drive did not accept the stored key (or the authority may not unlock these ranges); "+
			"they stay locked. It will not be tried again, so the drive's TryLimit is not used up: "+
			"register the right key with 'sedctl resume enable'",
			"device", drv.device, "authority", r.Authority, "ranges", j.ranges, "err", err)
		return r
	}
	j.e.err = err.Error()
	d.log.Error("resume unlock failed", "device", drv.device, "authority", r.Authority, "ranges", j.ranges, "err", err)
	return r
}
