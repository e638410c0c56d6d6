package resume

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/internal/resume/kernel"
	"github.com/shiftlock/shiftlock/tcg/discovery"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/session"
	"github.com/shiftlock/shiftlock/tcg/transport"
)

// KernelOpal is the kernel's sed-opal facility for one block device; see
// package kernel. The CLI adapts tcg/transport/sedioctl to it.
type KernelOpal = kernel.Opal

// KernelOpener returns the kernel handle for a device, or an error wrapping
// kernel.ErrUnsupported where there is none (a sedsim socket, a kernel
// without sed-opal). The handle is closed by the caller if it is an
// io.Closer.
type KernelOpener func(ctx context.Context, device string) (KernelOpal, error)

// EnableOptions are sedctl resume enable's.
type EnableOptions struct {
	Device string // as given: "/dev/nvme0n1", "sim:/path/to.sock"
	Open   Opener
	// Kernel opens the kernel path for Device; nil means there is none.
	Kernel KernelOpener

	Ranges    []uint32 // ranges to unlock (0 = global) ...
	All       bool     // ... or every range with locking enabled
	Authority method.UID
	Password  PasswordSource
	Hash      *hash.Scheme // nil: hash.Default()

	// Path forces PathKernel or PathDaemon; "" picks the kernel path
	// where the device answers the sed-opal ioctls.
	Path string
	// Storage is where the derived PIN is kept for the next boot:
	// StoragePrompt (default), StorageFile or StorageCredential.
	Storage string
	// KeyFile is the key file for StorageFile (default
	// DefaultKeyDir/<device>.<authority>.key).
	KeyFile string
	// Credential is the credential name for StorageCredential (default
	// sedctl-resume.<device>.<authority>); EncryptCredential stores it
	// (default SystemdCredsEncrypt).
	Credential        string
	EncryptCredential func(ctx context.Context, name string, pin hash.PIN) (file string, err error)

	Socket string // DefaultSocket
	Config string // DefaultConfig
	RunDir string // DefaultRunDir: what the kernel path armed this boot
	// KernelRelease overrides uname -r (tests).
	KernelRelease string
}

func (o *EnableOptions) defaults() {
	if o.Hash == nil {
		o.Hash = hash.Default()
	}
	if o.Authority.IsZero() {
		o.Authority = method.Admin(1)
	}
	if o.Storage == "" {
		o.Storage = StoragePrompt
	}
	if o.Socket == "" {
		o.Socket = DefaultSocket
	}
	if o.Config == "" {
		o.Config = DefaultConfig
	}
	if o.RunDir == "" {
		o.RunDir = DefaultRunDir
	}
	if o.EncryptCredential == nil {
		o.EncryptCredential = SystemdCredsEncrypt
	}
}

// safeName turns a device and an authority into a file name part.
func safeName(device string, a method.UID) string {
	var b strings.Builder
	for _, r := range strings.TrimPrefix(strings.TrimPrefix(device, "sim:"), "/dev/") {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return strings.Trim(b.String(), "_") + "." + authName(a)
}

// Enable arms unlock on resume for opts.Device: it derives the PIN from the
// password and the drive's serial, checks it with a real session (nothing
// is stored when that fails), arms the kernel path where the device answers
// the sed-opal ioctls and the daemon path otherwise, then keeps the key as
// opts.Storage says and records the entry in the configuration. w gets what
// was done and every warning.
func Enable(ctx context.Context, opts EnableOptions, w io.Writer) error {
	opts.defaults()
	switch {
	case opts.Device == "" || opts.Open == nil:
		return errors.New("resume enable: no device")
	case opts.All && len(opts.Ranges) > 0:
		return errors.New("resume enable: give ranges or all, not both")
	case !opts.All && len(opts.Ranges) == 0:
		return errors.New("resume enable: which ranges? give --range N (0 is the global range) or --range all")
	case opts.Path != "" && opts.Path != PathKernel && opts.Path != PathDaemon:
		return fmt.Errorf("resume enable: path %q: want kernel or daemon", opts.Path)
	case opts.Storage != StoragePrompt && opts.Storage != StorageFile && opts.Storage != StorageCredential:
		return fmt.Errorf("resume enable: key storage %q: want prompt, file or credential", opts.Storage)
	}
	if err := validateRegistration(opts.Device, opts.Ranges, opts.All, []byte{0}); err != nil {
		return fmt.Errorf("resume enable: %w", err)
	}
	if opts.Storage == StorageFile && opts.KeyFile != "" {
		// The daemon and the boot unit run in /: a relative name would
		// name another file there.
		abs, err := filepath.Abs(opts.KeyFile)
		if err != nil {
			return fmt.Errorf("resume enable: key file: %w", err)
		}
		opts.KeyFile = abs
	}
	// A configuration that cannot be updated stops Enable before anything
	// is armed, not after.
	cfg, err := LoadConfig(opts.Config, uint32(os.Geteuid()))
	if err != nil {
		return err
	}
	t, err := opts.Open(ctx, opts.Device)
	if err != nil {
		return fmt.Errorf("resume enable: %w", err)
	}
	defer t.Close()
	c := session.NewClient(t, nil)
	l0, err := c.Discover(ctx)
	if err != nil {
		return fmt.Errorf("resume enable: level 0 discovery on %s: %w", opts.Device, err)
	}
	if !l0.LockingEnabled() {
		return fmt.Errorf("resume enable: %s has locking off (Locking SP not activated): there is nothing to unlock on resume", opts.Device)
	}
	id, err := t.Identify(ctx)
	if err != nil {
		return fmt.Errorf("resume enable: identify %s: %w", opts.Device, err)
	}
	pw, err := opts.Password.read()
	if err != nil {
		return fmt.Errorf("resume enable: %w", err)
	}
	pin, err := opts.Hash.Derive(pw, id.Serial[:])
	clear(pw)
	if err != nil {
		return fmt.Errorf("resume enable: %w", err)
	}
	defer pin.Wipe()
	auth := opal.Auth{Authority: opts.Authority, PIN: pin}

	// Verify before anything is stored or armed.
	if err := Verify(ctx, c, auth); err != nil {
		return fmt.Errorf("resume enable %s: nothing was armed: %w", opts.Device, err)
	}
	ranges := slices.Clone(opts.Ranges)
	if !opts.All {
		if err := CheckRangesExist(ctx, c, ranges); err != nil {
			return fmt.Errorf("resume enable %s: nothing was armed: %w", opts.Device, err)
		}
	}
	if opts.All {
		if ranges, err = LockingRanges(ctx, c, auth); err != nil {
			return fmt.Errorf("resume enable %s: %w", opts.Device, err)
		}
	}
	slices.Sort(ranges)
	ranges = slices.Compact(ranges)
	fmt.Fprintf(w, "%s: the password for %s is correct (checked with a session)\n", opts.Device, auth)

	path, kop, err := choosePath(ctx, &opts, l0, len(pin), ranges, w)
	if err != nil {
		return err
	}
	if c, ok := kop.(io.Closer); ok {
		defer c.Close()
	}
	mbrWarnings(l0, opts.Authority, path, w)

	switch path {
	case PathKernel:
		if err := armKernel(ctx, kop, opts, id, ranges, pin, w); err != nil {
			return err
		}
	default:
		req := Request{Op: OpRegister, Device: opts.Device, Ranges: ranges, All: false,
			Authority: opts.Authority.Hex(), PIN: pin, Source: opts.Storage}
		if _, err := call(ctx, opts.Socket, req); err != nil {
			return fmt.Errorf("resume enable %s: %w", opts.Device, err)
		}
		fmt.Fprintf(w, "%s: daemon path armed: the resume daemon unlocks range(s) %s as %s after each resume\n",
			opts.Device, rangeList(ranges), auth)
	}

	// Keep the key for the next boot, and record the entry.
	e := ConfigEntry{Device: opts.Device, Authority: opts.Authority.Hex(), Ranges: ranges, All: opts.All,
		Path: path, Storage: opts.Storage, Hash: opts.Hash.Name()}
	if opts.All {
		e.Ranges = nil
	}
	switch opts.Storage {
	case StorageFile:
		e.KeyFile = opts.KeyFile
		if e.KeyFile == "" {
			e.KeyFile = DefaultKeyDir + "/" + safeName(opts.Device, opts.Authority) + ".key"
		}
		if err := WriteKeyFile(e.KeyFile, pin); err != nil {
			return fmt.Errorf("resume enable %s: armed for this boot, but: %w", opts.Device, err)
		}
		fmt.Fprintf(w, "%s: derived key stored in %s (mode 0400): re-armed at boot and when the daemon restarts\n", opts.Device, e.KeyFile)
	case StorageCredential:
		e.Credential = opts.Credential
		if e.Credential == "" {
			e.Credential = CredentialBase + safeName(opts.Device, opts.Authority)
		}
		if err := validCredentialName(e.Credential); err != nil {
			return fmt.Errorf("resume enable %s: %w", opts.Device, err)
		}
		file, err := opts.EncryptCredential(ctx, e.Credential, pin)
		if err != nil {
			return fmt.Errorf("resume enable %s: armed for this boot, but the credential: %w", opts.Device, err)
		}
		e.CredentialFile = file
		fmt.Fprintf(w, "%s: derived key stored as the encrypted credential %s: re-armed at boot and when the daemon restarts\n", opts.Device, e.Credential)
	default:
		fmt.Fprintf(w, "%s: the key is kept in memory only: run 'sedctl resume enable' again after each boot\n", opts.Device)
	}
	if old := cfg.upsert(e); old != nil {
		// A key stored before in another place is no longer named by the
		// configuration, so disable would never remove it.
		for _, f := range []string{old.KeyFile, old.CredentialFile} {
			// A relative name (written by an older sedctl) may be the
			// file just written: leave it.
			if f == "" || !filepath.IsAbs(f) || f == e.KeyFile || f == e.CredentialFile {
				continue
			}
			if err := os.Remove(f); err == nil {
				fmt.Fprintf(w, "%s: removed %s, where the key was stored before\n", opts.Device, f)
			} else if !errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(w, "warning: the key stored before is still in %s: %v\n", f, err)
			}
		}
	}
	return cfg.Save(opts.Config)
}

// choosePath picks the kernel path where possible (or as forced).
func choosePath(ctx context.Context, opts *EnableOptions, l0 *discovery.Discovery, keyLen int, ranges []uint32, w io.Writer) (string, KernelOpal, error) {
	if opts.Path == PathDaemon {
		return PathDaemon, nil, nil
	}
	why := ""
	var kop KernelOpal
	switch {
	case opts.Kernel == nil:
		why = "no kernel sed-opal access for this device"
	case l0.OpalV1 == nil && l0.OpalV2 == nil:
		why = fmt.Sprintf("the kernel supports Opal 1 and 2 drives only, this is %v", l0.SSC())
	case keyLen > kernel.MaxKeyLen:
		why = "the key is too long for the kernel"
	}
	if why == "" {
		if _, err := kernel.Who(opts.Authority); err != nil {
			why = err.Error()
		}
	}
	if why == "" {
		for _, n := range ranges {
			if n > kernel.MaxLR {
				why = fmt.Sprintf("range %d is beyond the kernel's ranges 0..%d", n, kernel.MaxLR)
			}
		}
	}
	if why == "" {
		k, err := opts.Kernel(ctx, opts.Device)
		if err == nil {
			var st kernel.Status
			if st, err = k.Probe(ctx); err == nil && !st.Supported() {
				err = kernel.ErrUnsupported
			}
		}
		if err != nil {
			if c, ok := k.(io.Closer); ok && k != nil {
				c.Close()
			}
			why = err.Error()
		} else {
			kop = k
		}
	}
	if why == "" {
		return PathKernel, kop, nil
	}
	if opts.Path == PathKernel {
		return "", nil, fmt.Errorf("resume enable %s: the kernel path is not available: %s", opts.Device, why)
	}
	fmt.Fprintf(w, "%s: using the daemon path (%s)\n", opts.Device, why)
	return PathDaemon, nil, nil
}

// mbrWarnings explains the shadow MBR's interaction with the authority.
func mbrWarnings(l0 *discovery.Discovery, a method.UID, path string, w io.Writer) {
	if !l0.MBREnabled() || a == method.Admin(1) {
		return
	}
	if path == PathKernel {
		fmt.Fprintf(w, "warning: the shadow MBR is enabled and the key is %s's: on resume the kernel sets MBR Done as Admin1 "+
			"with this key, which fails unless %s is in ACE_MBRControl_Set_DoneToDOR; until MBR Done is set the drive shows the "+
			"shadow MBR at LBA 0 onwards. Arm Admin1's key instead, or disable the shadow MBR\n", authName(a), authName(a))
		return
	}
	if !isAdmin(a) {
		fmt.Fprintf(w, "warning: the shadow MBR is enabled; %s may not be allowed to set MBR Done after a resume "+
			"(admins may by default): also arm an admin's key, or disable the shadow MBR\n", authName(a))
	}
}

// armKernel saves one entry per range with IOC_OPAL_SAVE and records it.
func armKernel(ctx context.Context, k KernelOpal, opts EnableOptions, id transport.Identity, ranges []uint32, pin hash.PIN, w io.Writer) error {
	rel := opts.KernelRelease
	if rel == "" {
		var u unix.Utsname
		if err := unix.Uname(&u); err == nil {
			rel = unix.ByteSliceToString(u.Release[:])
		}
	}
	r, rerr := kernel.ParseRelease(rel)
	who, _ := kernel.Who(opts.Authority) // checked by choosePath
	var flags uint16
	if rerr == nil && r.HasSaveForLock() {
		flags = kernel.SaveForLock
	}
	if rerr == nil && (id.Kind == transport.KindSCSI || id.Kind == transport.KindATA) {
		if warn := r.SATAResumeRisk(); warn != "" {
			fmt.Fprintf(w, "warning: %s\n", warn)
		}
	}
	for _, n := range ranges {
		lu := kernel.LockUnlock{Who: who, LR: uint8(n), Key: pin, State: kernel.RW, Flags: flags}
		if err := k.Save(ctx, lu); err != nil {
			return fmt.Errorf("resume enable %s: IOC_OPAL_SAVE range %d: %w", opts.Device, n, err)
		}
	}
	st := loadKernelState(opts.RunDir)
	st.upsert(KernelArmed{Device: opts.Device, Authority: opts.Authority.Hex(), Ranges: ranges, SaveForLock: flags != 0, Armed: time.Now()})
	if err := st.save(opts.RunDir); err != nil {
		fmt.Fprintf(w, "warning: armed, but not recorded for 'sedctl resume status': %v\n", err)
	}
	fmt.Fprintf(w, "%s: kernel path armed: the kernel unlocks range(s) %s as %s when the drive resumes (IOC_OPAL_SAVE%s); "+
		"the kernel forgets this at reboot\n", opts.Device, rangeList(ranges), authName(opts.Authority),
		map[bool]string{true: ", OPAL_SAVE_FOR_LOCK", false: ""}[flags != 0])
	return nil
}

func rangeList(rs []uint32) string {
	s := make([]string, len(rs))
	for i, n := range rs {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

// KernelArmed is what the kernel path armed this boot (the kernel cannot be
// asked), kept in RunDir, which is lost at reboot as the kernel's list is.
type KernelArmed struct {
	Device      string    `json:"device"`
	Authority   string    `json:"authority"`
	Ranges      []uint32  `json:"ranges"`
	SaveForLock bool      `json:"save_for_lock"`
	Armed       time.Time `json:"armed"`
}

type kernelState struct {
	Entries []KernelArmed `json:"entries"`
}

const kernelStateFile = "resume-kernel.json"

func loadKernelState(dir string) *kernelState {
	var st kernelState
	f, err := os.OpenFile(dir+"/"+kernelStateFile, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return &st
	}
	defer f.Close()
	if regularFile(f, kernelStateFile) != nil {
		return &st
	}
	b, err := readAllBounded(f, kernelStateFile)
	if err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return &st
}

func (st *kernelState) upsert(k KernelArmed) {
	for i := range st.Entries {
		e := &st.Entries[i]
		if e.Device == k.Device && e.Authority == k.Authority {
			k.Ranges = mergeRanges(e.Ranges, k.Ranges)
			*e = k
			return
		}
	}
	st.Entries = append(st.Entries, k)
}

func (st *kernelState) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".resume-kernel-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := tmp.Write(b); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dir+"/"+kernelStateFile)
}

// SystemdCredsEncrypt stores pin (in hex) as the encrypted credential name in
// /etc/credstore.encrypted, with systemd-creds (the host key and, where
// present, the TPM2), where ImportCredential=sedctl-resume.* finds it.
func SystemdCredsEncrypt(ctx context.Context, name string, pin hash.PIN) (string, error) {
	if err := validCredentialName(name); err != nil {
		return "", err
	}
	const dir = "/etc/credstore.encrypted"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	file := dir + "/" + name
	in := make([]byte, len(pin)*2+1)
	hexEncode(in, pin)
	defer clear(in)
	cmd := exec.CommandContext(ctx, "systemd-creds", "encrypt", "--name="+name, "-", file)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("systemd-creds encrypt: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return file, nil
}

func hexEncode(dst []byte, pin []byte) {
	const digits = "0123456789abcdef"
	for i, b := range pin {
		dst[2*i], dst[2*i+1] = digits[b>>4], digits[b&15]
	}
	dst[len(dst)-1] = '\n'
}

// DisableOptions are sedctl resume disable's.
type DisableOptions struct {
	Device    string
	Authority method.UID // zero: every authority
	Ranges    []uint32   // nil: every range
	Kernel    KernelOpener
	Socket    string
	Config    string
	RunDir    string
}

// Disable forgets the keys armed for opts.Device. Kernel path: each saved
// entry is overwritten with a lock (LK) entry and a random key, as
// cryptsetup does, since the kernel has no way to delete one (the next
// resume's replay then fails quietly, one refused try per resume). Daemon
// path: the daemon zeroises the keys. The configuration entry, key file and
// credential file go too.
func Disable(ctx context.Context, opts DisableOptions, w io.Writer) error {
	if opts.Device == "" {
		return errors.New("resume disable: no device")
	}
	if opts.Socket == "" {
		opts.Socket = DefaultSocket
	}
	if opts.Config == "" {
		opts.Config = DefaultConfig
	}
	if opts.RunDir == "" {
		opts.RunDir = DefaultRunDir
	}
	auth := ""
	if !opts.Authority.IsZero() {
		auth = opts.Authority.Hex()
	}
	match := func(dev, a string) bool { return dev == opts.Device && (auth == "" || a == auth) }
	var errs []error
	did := false

	// Kernel path.
	st := loadKernelState(opts.RunDir)
	var keep []KernelArmed
	for _, e := range st.Entries {
		if !match(e.Device, e.Authority) {
			keep = append(keep, e)
			continue
		}
		did = true
		if err := disarmKernel(ctx, opts, &e, w); err != nil {
			errs = append(errs, err)
		}
		if len(e.Ranges) > 0 {
			keep = append(keep, e)
		}
	}
	st.Entries = keep
	if err := st.save(opts.RunDir); err != nil && did {
		errs = append(errs, err)
	}

	// Daemon path.
	req := Request{Op: OpUnregister, Device: opts.Device, Ranges: opts.Ranges, Authority: auth}
	if _, err := call(ctx, opts.Socket, req); err == nil {
		did = true
		fmt.Fprintf(w, "%s: the resume daemon zeroised the key(s)\n", opts.Device)
	} else if !errors.Is(err, ErrNoDaemon) && !strings.Contains(err.Error(), "is not armed") {
		errs = append(errs, err)
	}

	// Configuration and stored keys.
	cfg, err := LoadConfig(opts.Config, uint32(os.Geteuid()))
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var removed []ConfigEntry
	if opts.Ranges == nil {
		removed = cfg.remove(opts.Device, auth)
	} else {
		for i := range cfg.Entries {
			e := &cfg.Entries[i]
			if match(e.Device, e.Authority) {
				e.Ranges = slices.DeleteFunc(e.Ranges, func(n uint32) bool { return slices.Contains(opts.Ranges, n) })
				if e.All {
					fmt.Fprintf(w, "%s: the entry arms all ranges; after a restart it arms them again. Disable without ranges to stop that\n", opts.Device)
				}
			}
		}
		cfg.Entries = slices.DeleteFunc(cfg.Entries, func(e ConfigEntry) bool {
			if match(e.Device, e.Authority) && !e.All && len(e.Ranges) == 0 {
				removed = append(removed, e)
				return true
			}
			return false
		})
	}
	for _, e := range removed {
		did = true
		for _, f := range []string{e.KeyFile, e.CredentialFile} {
			if f == "" {
				continue
			}
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			} else {
				fmt.Fprintf(w, "%s: removed %s\n", opts.Device, f)
			}
		}
	}
	if len(removed) > 0 || opts.Ranges != nil {
		if err := cfg.Save(opts.Config); err != nil {
			errs = append(errs, err)
		}
	}
	if !did && len(errs) == 0 {
		return fmt.Errorf("resume disable: nothing is armed for %s", opts.Device)
	}
	return errors.Join(errs...)
}

// disarmKernel overwrites the saved entries of e (those in opts.Ranges, or
// all) with LK and a random key; e.Ranges keeps the rest.
func disarmKernel(ctx context.Context, opts DisableOptions, e *KernelArmed, w io.Writer) error {
	if opts.Kernel == nil {
		return fmt.Errorf("%s: the kernel path is armed but not reachable from here", e.Device)
	}
	k, err := opts.Kernel(ctx, e.Device)
	if err != nil {
		return fmt.Errorf("%s: %w", e.Device, err)
	}
	if c, ok := k.(io.Closer); ok {
		defer c.Close()
	}
	a, err := parseAuthority(e.Authority)
	if err != nil {
		return err
	}
	who, err := kernel.Who(a)
	if err != nil {
		return err
	}
	var left []uint32
	for _, n := range e.Ranges {
		if opts.Ranges != nil && !slices.Contains(opts.Ranges, n) {
			left = append(left, n)
			continue
		}
		key := make(hash.PIN, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		err := k.Save(ctx, kernel.LockUnlock{Who: who, LR: uint8(n), Key: key, State: kernel.LK})
		key.Wipe()
		if err != nil {
			left = append(left, n)
			return fmt.Errorf("%s: overwrite the saved entry of range %d: %w", e.Device, n, err)
		}
		fmt.Fprintf(w, "%s: kernel entry for range %d overwritten (LK, random key)\n", e.Device, n)
	}
	e.Ranges = left
	return nil
}
