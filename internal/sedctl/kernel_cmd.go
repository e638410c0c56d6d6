package sedctl

// --via kernel: the commands that the kernel's sed-opal ioctls cover, run
// through tcg/transport/sedioctl instead of a byte transport. The kernel
// runs whole Opal operations itself (it opens the session, authenticates,
// sets the columns and closes, PROTOCOL.md 3.4), so there is no
// transport.Transport to hand the normal commands: each command the ioctls
// cover has its kernel implementation here, and reuses the normal path's
// password reading, PIN derivation, authority parsing, output and exit
// codes. Every other command refuses --via kernel.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/shiftlock/shiftlock/tcg/discovery"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/transport"
	"github.com/shiftlock/shiftlock/tcg/transport/sedioctl"
)

// kernelCommands are the commands --via kernel runs, by path, with the
// ioctls they use.
var kernelCommands = map[string]func(e *env, args []string) error{
	"query":           kernelQuery,                                  // GET_STATUS, DISCOVERY, GET_GEOMETRY
	"is-valid":        kernelIsValid,                                // GET_STATUS, DISCOVERY
	"setup":           kernelSetup,                                  // TAKE_OWNERSHIP, ACTIVATE_LSP, LR_SETUP, LOCK_UNLOCK (ENABLE_DISABLE_MBR)
	"take-ownership":  kernelTakeOwnership,                          // TAKE_OWNERSHIP
	"activate":        kernelActivate,                               // ACTIVATE_LSP
	"password set":    kernelPasswordSet,                            // SET_PW, SET_SID_PW
	"user enable":     kernelUserEnable,                             // ACTIVATE_USR
	"range list":      kernelRangeList,                              // GET_LR_STATUS
	"range setup":     kernelRangeSetup,                             // LR_SETUP, LOCK_UNLOCK, SECURE_ERASE_LR
	"range enable":    kernelRangeLockEnabled(true, true, "enable"), // ENABLE_DISABLE_LR (or GET_LR_STATUS + LR_SETUP)
	"range disable":   kernelRangeLockEnabled(false, false, "disable"),
	"range readonly":  kernelRangeLockEnabled(false, true, "readonly"),
	"range lock":      kernelRangeSet(&lockedState),    // LOCK_UNLOCK LK
	"range unlock":    kernelRangeSet(&readWriteState), // LOCK_UNLOCK RW
	"range set":       kernelRangeSet(nil),             // LOCK_UNLOCK RW/RO/LK
	"range erase":     kernelRangeErase,                // SECURE_ERASE_LR
	"range add-user":  kernelRangeAddUser,              // ADD_USR_TO_LR (RO, then RW)
	"mbr enable":      kernelMBREnable(true),           // ENABLE_DISABLE_MBR
	"mbr disable":     kernelMBREnable(false),          // ENABLE_DISABLE_MBR
	"mbr done":        kernelMBRDone,                   // MBR_DONE
	"mbr load":        kernelMBRLoad,                   // WRITE_SHADOW_MBR, GENERIC_TABLE_RW (read back)
	"datastore read":  kernelDataStoreRead,             // GENERIC_TABLE_RW
	"datastore write": kernelDataStoreWrite,            // GENERIC_TABLE_RW
	"revert":          kernelRevert,                    // REVERT_TPR, REVERT_LSP
	"psid-revert":     kernelPSIDRevert,                // PSID_REVERT_TPR
	"reset":           kernelReset,                     // STACK_RESET
}

// KernelCommands lists the commands --via kernel covers, sorted.
func KernelCommands() []string {
	var out []string
	for p := range kernelCommands {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// deviceless are the commands that send a drive no Opal operation.
var deviceless = []string{"scan", "hash", "version", "help"}

// viaKernel returns what runs cmd with --via: its kernel implementation,
// or an error saying why there is none.
func viaKernel(e *env, cmd *command, args []string) (func(e *env, args []string) error, error) {
	via := e.opts.get("via")
	if via != "kernel" {
		return nil, usageError(fmt.Errorf("--via %q: the only alternative path is 'kernel'", via))
	}
	if slices.Contains(deviceless, cmd.path) {
		return nil, usageError(fmt.Errorf("--via kernel does not apply to 'sedctl %s': it sends the drive no Opal operation; leave out --via kernel", cmd.path))
	}
	if len(args) > 0 && strings.HasPrefix(args[len(args)-1], "sim:") {
		return nil, usageError(errors.New("--via kernel does not apply to a sedsim socket: the kernel's sed-opal knows block devices only; leave out --via kernel"))
	}
	run, ok := kernelCommands[cmd.path]
	if !ok {
		return nil, withCode(ExitUnsupported, fmt.Errorf("'sedctl %s' has no kernel sed-opal ioctl, so it cannot run --via kernel", cmd.path),
			"leave out --via kernel to reach the drive directly (Security Send/Receive); --via kernel covers: "+strings.Join(KernelCommands(), ", "))
	}
	if e.opts.bool("trace") {
		return nil, usageError(errors.New("--trace decodes IF-SEND/IF-RECV, which the kernel sends itself with --via kernel; leave out one of them"))
	}
	return run, nil
}

// identifyKernelDevice reads the identity of a device used --via kernel:
// its serial salts the password hashes. It uses the direct
// transport's identify command (NVMe Identify, SCSI INQUIRY or ATA
// IDENTIFY), which works where the security commands may not (libata
// without allow_tpm). A variable so that tests can put a drive behind it.
var identifyKernelDevice = func(ctx context.Context, spec string) (transport.Identity, error) {
	t, err := openTransport(ctx, spec, "")
	if err != nil {
		return transport.Identity{}, err
	}
	defer t.Close()
	return t.Identify(ctx)
}

// noSerialError is a --via kernel device whose serial number cannot be
// read: it names the --hash schemes that need none.
func noSerialError(spec string, err error) error {
	var names []string
	for _, s := range hash.Schemes() {
		if !s.UsesSerial() {
			names = append(names, s.Name())
		}
	}
	return withCode(ExitUsage, fmt.Errorf("read the serial number of %s, which salts the password hash: %w", spec, err),
		fmt.Sprintf("with --via kernel sedctl reads the serial with the drive's identify command, which failed here; pass --hash with a scheme that needs no serial (%s), "+
			"if the drive was set up with one, or leave out --via kernel", strings.Join(names, ", ")))
}

// openKernel opens spec's sed-opal ioctls as a device.
func (e *env) openKernel(spec string) (*device, error) {
	if fi, err := os.Stat(spec); err == nil && fi.Mode().Type() == fs.ModeSocket {
		return nil, usageError(fmt.Errorf("--via kernel does not apply to a sedsim socket (%s): the kernel's sed-opal knows block devices only; leave out --via kernel", spec))
	}
	k, err := openSedIoctlKernel(spec)
	if err != nil {
		return nil, kernelError(err)
	}
	e.closers = append(e.closers, func() { k.Close() })
	return &device{spec: spec, k: k}, nil
}

// kernelError gives the errnos of the sed-opal ioctls their exit codes and
// advice: no kernel support (ENOTTY) and no Opal drive (EOPNOTSUPP) are
// unsupported, no CAP_SYS_ADMIN (EACCES) is what the direct path makes of
// a permission error, an I/O error.
func kernelError(err error) error {
	switch {
	case errors.Is(err, sedioctl.ErrNoKernelSupport):
		return withCode(ExitUnsupported, err, "this kernel cannot do it through sed-opal (it needs CONFIG_BLK_SED_OPAL, a block device such as /dev/nvme0n1 or /dev/sda, "+
			"and a kernel recent enough for this ioctl); leave out --via kernel to reach the drive directly")
	case errors.Is(err, sedioctl.ErrNotOpal):
		return withCode(ExitUnsupported, err, "leave out --via kernel: sedctl reaches Pyrite, Opalite and Ruby drives, and Opal drives the kernel did not register, directly")
	case errors.Is(err, errors.ErrUnsupported):
		return withCode(ExitUnsupported, err, "the sed-opal ioctls exist on Linux only; leave out --via kernel")
	case errors.Is(err, sedioctl.ErrNeedsRoot):
		return withCode(ExitIO, err, "security commands need root (CAP_SYS_ADMIN): run sedctl as root, outside a user namespace")
	case errors.Is(err, fs.ErrNotExist):
		return withCode(ExitIO, err, "give a block device such as /dev/nvme0n1 or /dev/sda; 'sedctl scan' lists the drives")
	}
	var st method.MethodStatus
	if errors.As(err, &st) {
		return err
	}
	if ExitCode(err) == ExitSoftware {
		return withCode(ExitIO, err, "")
	}
	return err
}

// kernelFailed is explain for the kernel path: errnos get kernelError's
// codes, a method status the normal path's explanations.
func (e *env) kernelFailed(d *device, a opal.Auth, err error) error {
	if err == nil {
		return nil
	}
	var st method.MethodStatus
	if errors.As(err, &st) {
		return e.explain(d, a, err)
	}
	return kernelError(err)
}

// kernelWho is the kernel's name for a Locking SP authority: Admin1 or
// User1..User9 (enum opal_user); the kernel authenticates as no other.
func (e *env) kernelWho(u method.UID, opt string) (sedioctl.User, error) {
	if u == method.Admin(1) {
		return sedioctl.Admin1, nil
	}
	if hi, lo := u.Halves(); hi == 0x9 && lo > 0x30000 && lo <= 0x30009 {
		return sedioctl.UserN(int(lo - 0x30000))
	}
	name := authName(u)
	if u.IsZero() {
		name = "anybody"
	}
	return 0, usageError(fmt.Errorf("%s %s: with --via kernel 'sedctl %s' authenticates as admin1 or user1..user9 only (the kernel's enum opal_user); leave out --via kernel", opt, name, e.cmd.path))
}

// kernelKey is a PIN as struct opal_key for range lr.
func kernelKey(lr uint32, pin hash.PIN) (sedioctl.Key, error) {
	if lr >= sedioctl.MaxLRs {
		return sedioctl.Key{}, kernelRangeError(lr)
	}
	k, err := sedioctl.NewKey(uint8(lr), pin)
	if err != nil {
		return sedioctl.Key{}, withCode(ExitData, fmt.Errorf("the PIN: %w", err), "")
	}
	return k, nil
}

func kernelRangeError(n uint32) error {
	return withCode(ExitUnsupported, fmt.Errorf("range %d: the kernel's sed-opal knows ranges 0 to %d only", n, sedioctl.MaxLRs-1), "leave out --via kernel for higher ranges")
}

// kernelLogin reads --as (default def, which must be one the kernel knows)
// and the password, and returns the Auth (for explanations) and the
// struct opal_session_info for range lr.
func (e *env) kernelLogin(d *device, def method.UID, lr uint32) (opal.Auth, sedioctl.SessionInfo, error) {
	if lr >= sedioctl.MaxLRs {
		return opal.Auth{}, sedioctl.SessionInfo{}, kernelRangeError(lr)
	}
	who, err := e.authorityOpt(def)
	if err != nil {
		return opal.Auth{}, sedioctl.SessionInfo{}, err
	}
	kw, err := e.kernelWho(who, "--as")
	if err != nil {
		return opal.Auth{}, sedioctl.SessionInfo{}, err
	}
	a, err := e.login(d, who)
	if err != nil {
		return opal.Auth{}, sedioctl.SessionInfo{}, err
	}
	key, err := kernelKey(lr, a.PIN)
	if err != nil {
		return opal.Auth{}, sedioctl.SessionInfo{}, err
	}
	return a, sedioctl.SessionInfo{Who: kw, Key: key}, nil
}

// kernelAdmin1 is kernelLogin for the ioctls that always authenticate as
// Admin1 (ACTIVATE_USR, ADD_USR_TO_LR, REVERT_LSP, the MBR and table
// ioctls): --as, if given, must say admin1.
func (e *env) kernelAdmin1(d *device, lr uint32) (opal.Auth, sedioctl.Key, error) {
	if who, err := e.authorityOpt(method.Admin(1)); err != nil {
		return opal.Auth{}, sedioctl.Key{}, err
	} else if who != method.Admin(1) {
		return opal.Auth{}, sedioctl.Key{}, usageError(fmt.Errorf("--as %s: with --via kernel 'sedctl %s' authenticates as admin1 only (the kernel's ioctl does); leave out --via kernel", e.opts.get("as"), e.cmd.path))
	}
	a, si, err := e.kernelLogin(d, method.Admin(1), lr)
	return a, si.Key, err
}

// kernelLevel0 reads Level 0 discovery with IOC_OPAL_DISCOVERY; nil (and
// no error) on a kernel before 6.6, which lacks it.
func kernelLevel0(e *env, d *device) (*discovery.Discovery, error) {
	buf := make([]byte, 4096)
	n, err := d.k.Discovery(e.ctx, buf)
	if errors.Is(err, sedioctl.ErrNoKernelSupport) {
		return nil, nil
	}
	if err != nil {
		return nil, kernelError(err)
	}
	l0, err := discovery.Parse(buf[:n])
	if err != nil {
		return nil, fmt.Errorf("level 0 discovery from IOC_OPAL_DISCOVERY on %s: %w", d.spec, err)
	}
	return l0, nil
}

// ---- query, is-valid

type kernelStatusJSON struct {
	Flags            uint32 `json:"flags"`
	Supported        bool   `json:"supported"`
	LockingSupported bool   `json:"locking_supported"`
	LockingEnabled   bool   `json:"locking_enabled"`
	Locked           bool   `json:"locked"`
	MBREnabled       bool   `json:"mbr_enabled"`
	MBRDone          bool   `json:"mbr_done"`
	SUMSupported     bool   `json:"sum_supported"`
}

func kernelStatusOf(s sedioctl.Status) kernelStatusJSON {
	return kernelStatusJSON{Flags: uint32(s.Flags), Supported: s.Has(sedioctl.FlSupported), LockingSupported: s.Has(sedioctl.FlLockingSupported),
		LockingEnabled: s.Has(sedioctl.FlLockingEnabled), Locked: s.Has(sedioctl.FlLocked), MBREnabled: s.Has(sedioctl.FlMBREnabled),
		MBRDone: s.Has(sedioctl.FlMBRDone), SUMSupported: s.Has(sedioctl.FlSUMSupported)}
}

type geometryJSON struct {
	Align                bool   `json:"align"`
	LogicalBlockSize     uint32 `json:"logical_block_size"`
	AlignmentGranularity uint64 `json:"alignment_granularity"`
	LowestAlignedLBA     uint64 `json:"lowest_aligned_lba"`
}

// kernelQuery is query through the kernel: its status flags
// (IOC_OPAL_GET_STATUS), a fresh Level 0 decoded as the normal query
// decodes it (IOC_OPAL_DISCOVERY, 6.6) and the cached Geometry
// (IOC_OPAL_GET_GEOMETRY, 6.4). There are no session properties: the
// kernel never exchanges them.
func kernelQuery(e *env, args []string) error {
	d, err := e.openKernel(args[0])
	if err != nil {
		return err
	}
	st, err := d.k.Status(e.ctx)
	if err != nil {
		return kernelError(err)
	}
	var notes []string
	l0, err := kernelLevel0(e, d)
	if err != nil {
		return err
	}
	if l0 == nil {
		notes = append(notes, "this kernel has no IOC_OPAL_DISCOVERY (Linux 6.6): Level 0 discovery is not shown")
	}
	var geo *geometryJSON
	switch g, err := d.k.Geometry(e.ctx); {
	case err == nil:
		geo = &geometryJSON{g.Align != 0, g.LogicalBlockSize, g.AlignmentGranularity, g.LowestAlignedLBA}
	case errors.Is(err, sedioctl.ErrNoKernelSupport):
		notes = append(notes, "this kernel has no IOC_OPAL_GET_GEOMETRY (Linux 6.4): geometry is not shown")
	default:
		return kernelError(err)
	}
	var idj *identityJSON
	if id, err := d.identity(e.ctx); err == nil {
		j := identityOf(d.spec, id)
		idj = &j
	} else {
		notes = append(notes, "identity not read: "+err.Error())
	}
	out := struct {
		Identity *identityJSON        `json:"identity,omitempty"`
		Device   string               `json:"device"`
		Via      string               `json:"via"`
		SSC      *discovery.SSC       `json:"ssc,omitempty"`
		Kernel   kernelStatusJSON     `json:"kernel_status"`
		Geometry *geometryJSON        `json:"geometry,omitempty"`
		Level0   *discovery.Discovery `json:"level0,omitempty"`
		Notes    []string             `json:"notes,omitempty"`
	}{Identity: idj, Device: d.spec, Via: "kernel", Kernel: kernelStatusOf(st), Geometry: geo, Level0: l0, Notes: notes}
	if l0 != nil {
		ssc := l0.SSC()
		out.SSC = &ssc
	}
	return e.emit(out, func(w io.Writer) error {
		kv := &keyValues{}
		kv.add("Device", d.spec+" (kernel sed-opal ioctls)")
		if idj != nil {
			kv.add("Model", idj.Model)
			kv.add("Serial", fmt.Sprintf("%q", idj.Serial))
			kv.add("Firmware", idj.Firmware)
		}
		if out.SSC != nil {
			kv.add("SSC", out.SSC.String())
		}
		k := out.Kernel
		kv.add("Kernel status", fmt.Sprintf("0x%02x: supported %v, locking supported %v, locking enabled %v, locked %v, MBR enabled %v, MBR done %v, SUM supported %v",
			k.Flags, k.Supported, k.LockingSupported, k.LockingEnabled, k.Locked, k.MBREnabled, k.MBRDone, k.SUMSupported))
		if geo != nil {
			kv.add("Geometry", fmt.Sprintf("align %v, %d-byte blocks, granularity %d blocks, lowest aligned LBA %d", geo.Align, geo.LogicalBlockSize, geo.AlignmentGranularity, geo.LowestAlignedLBA))
		}
		kv.write(w, "")
		if l0 != nil {
			fmt.Fprintf(w, "\nLevel 0 discovery (data structure %d.%d):\n", l0.MajorVersion, l0.MinorVersion)
			if err := writeFeatures(w, l0); err != nil {
				return err
			}
		}
		for _, n := range notes {
			fmt.Fprintf(w, "\nNote: %s\n", n)
		}
		return nil
	})
}

// kernelIsValid: a device the kernel drives with sed-opal is an Opal drive
// (the kernel registers Opal 1 and 2 only); Level 0 names the SSCs.
func kernelIsValid(e *env, args []string) error {
	d, err := e.openKernel(args[0])
	if err != nil {
		return err
	}
	l0, err := kernelLevel0(e, d)
	if err != nil {
		return err
	}
	var s scanEntry
	names := []string{"Opal"}
	if l0 != nil {
		fillLevel0(&s, l0)
		names = nil
		for _, c := range l0.SSCs() {
			names = append(names, c.String())
		}
	}
	return e.emit(struct {
		Device string   `json:"device"`
		SED    bool     `json:"sed"`
		SSC    string   `json:"ssc"`
		SSCs   []string `json:"sscs"`
	}{d.spec, true, s.SSC, s.SSCs}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s is a self-encrypting drive: %s\n", d.spec, strings.Join(names, ", "))
		return err
	})
}

// ---- setup, ownership, activation

// kernelSetup is setup through the kernel: IOC_OPAL_TAKE_OWNERSHIP,
// IOC_OPAL_ACTIVATE_LSP, then the global range as the kernel sets ranges
// up (IOC_OPAL_LR_SETUP with locking disabled, IOC_OPAL_LOCK_UNLOCK RW),
// and with --mbr IOC_OPAL_ENABLE_DISABLE_MBR (Done, then Enable). It
// refuses a drive set up or owned before asking for the password.
func kernelSetup(e *env, args []string) error {
	d, err := e.openKernel(args[0])
	if err != nil {
		return err
	}
	l0, err := kernelRefuseIfOwned(e, d)
	if err != nil {
		return err
	}
	src, err := e.currentSource()
	if err != nil {
		return err
	}
	sid, err := e.newPassword(d, "SID", src)
	if err != nil {
		return err
	}
	defer sid.Wipe()
	var steps []string
	if err := kernelTakeOwnershipWith(e, d, sid); err != nil {
		return err
	}
	steps = append(steps, "took ownership: the SID password is set")
	if err := kernelActivateWith(e, d, sid); err != nil {
		return err
	}
	steps = append(steps, "activated the Locking SP: Admin1's password is the SID password")
	admin1 := opal.Auth{Authority: method.Admin(1), PIN: sid}
	key, err := kernelKey(0, sid)
	if err != nil {
		return err
	}
	si := sedioctl.SessionInfo{Who: sedioctl.Admin1, Key: key}
	if err := d.k.SetupRange(e.ctx, sedioctl.UserLRSetup{Session: si}); err != nil {
		return e.kernelFailed(d, admin1, err)
	}
	if err := d.k.LockUnlock(e.ctx, sedioctl.LockUnlock{Session: si, LState: sedioctl.ReadWrite}); err != nil {
		return e.kernelFailed(d, admin1, err)
	}
	steps = append(steps, "global range: unlocked, locking disabled (enable it with 'sedctl range enable 0')")
	mbr := false
	if e.opts.bool("mbr") {
		if l0 == nil || (l0.Locking != nil && !l0.Locking.MBRShadowingNotSupported) {
			if err := d.k.EnableDisableMBR(e.ctx, sedioctl.MBRData{Key: key, EnableDisable: sedioctl.MBREnable}); err != nil {
				return e.kernelFailed(d, admin1, err)
			}
			mbr = true
			steps = append(steps, "shadow MBR: enabled, done (load a PBA with 'sedctl mbr load')")
		} else {
			steps = append(steps, "shadow MBR: this drive has none; skipped")
		}
	}
	return e.setupDone(d, mbr, steps)
}

// kernelRefuseIfOwned is refuseIfOwned from the kernel's status flags and,
// where the kernel has IOC_OPAL_DISCOVERY, Level 0's Block SID feature. It
// returns Level 0 (nil without the ioctl).
func kernelRefuseIfOwned(e *env, d *device) (*discovery.Discovery, error) {
	st, err := d.k.Status(e.ctx)
	if err != nil {
		return nil, kernelError(err)
	}
	l0, err := kernelLevel0(e, d)
	if err != nil {
		return nil, err
	}
	if st.Has(sedioctl.FlLockingEnabled) || l0.LockingEnabled() {
		return nil, withCode(ExitRefused, fmt.Errorf("%s is already set up: its Locking SP is active; nothing was changed", d.spec),
			fmt.Sprintf("manage it with its passwords ('sedctl range list %s'), or start over with 'sedctl revert --tper %s' (needs the SID password) or 'sedctl psid-revert %s' (erases everything)", d.spec, d.spec, d.spec))
	}
	if l0 != nil && l0.BlockSID != nil && l0.BlockSID.SIDValueState {
		return nil, ownedError(d, opal.ErrOwned)
	}
	return l0, nil
}

// kernelTakeOwnershipWith sets the SID PIN (IOC_OPAL_TAKE_OWNERSHIP: the
// kernel reads the MSID and logs in as SID with it). NOT_AUTHORIZED means
// the MSID no longer opens SID: the drive has an owner.
func kernelTakeOwnershipWith(e *env, d *device, sid hash.PIN) error {
	key, err := kernelKey(0, sid)
	if err != nil {
		return err
	}
	err = d.k.TakeOwnership(e.ctx, key)
	if errors.Is(err, method.StatusNotAuthorized) {
		return ownedError(d, fmt.Errorf("take ownership: %w: %w", opal.ErrOwned, err))
	}
	return e.kernelFailed(d, opal.Auth{Authority: method.SID, PIN: sid}, err)
}

// kernelActivateWith activates the Locking SP as SID
// (IOC_OPAL_ACTIVATE_LSP). The kernel answers ENODEV when the Locking SP
// is not Manufactured-Inactive.
func kernelActivateWith(e *env, d *device, sid hash.PIN) error {
	key, err := kernelKey(0, sid)
	if err != nil {
		return err
	}
	err = d.k.ActivateLSP(e.ctx, sedioctl.LRAct{Key: key})
	if errors.Is(err, unix.ENODEV) {
		return withCode(ExitRefused, fmt.Errorf("%s: %w (the kernel found it not Manufactured-Inactive: %w); nothing was changed", d.spec, opal.ErrActive, err), "")
	}
	return e.kernelFailed(d, opal.Auth{Authority: method.SID, PIN: sid}, err)
}

func kernelTakeOwnership(e *env, args []string) error {
	d, err := e.openKernel(args[0])
	if err != nil {
		return err
	}
	src, err := e.currentSource()
	if err != nil {
		return err
	}
	sid, err := e.newPassword(d, "SID", src)
	if err != nil {
		return err
	}
	defer sid.Wipe()
	if err := kernelTakeOwnershipWith(e, d, sid); err != nil {
		return err
	}
	return e.done(d, "take-ownership", nil, "took ownership: the SID password is set")
}

func kernelActivate(e *env, args []string) error {
	d, err := e.openKernel(args[0])
	if err != nil {
		return err
	}
	a, err := e.login(d, method.SID)
	if err != nil {
		return err
	}
	if err := kernelActivateWith(e, d, a.PIN); err != nil {
		return err
	}
	return e.done(d, "activate", nil, "activated the Locking SP: Admin1's password is the SID password")
}

// ---- passwords, users

// kernelPasswordSet: SID's with IOC_OPAL_SET_SID_PW (6.13), Admin1's and
// UserN's with IOC_OPAL_SET_PW, as --as (Admin1 by default; a user may set
// its own).
func kernelPasswordSet(e *env, args []string) error {
	if !e.opts.has("authority") {
		return usageError(errors.New("password set needs --authority (sid, admin1, userN)"))
	}
	target, err := parseAuthority(e.opts.get("authority"))
	if err != nil {
		return err
	}
	if target.IsZero() || target == method.PSID {
		return usageError(fmt.Errorf("%s has no password sedctl can set", e.opts.get("authority")))
	}
	var targetWho sedioctl.User
	if target != method.SID {
		if targetWho, err = e.kernelWho(target, "--authority"); err != nil {
			return err
		}
	} else if who, err := e.authorityOpt(method.SID); err != nil {
		return err
	} else if who != method.SID {
		return usageError(fmt.Errorf("--as %s: the SID password is set as SID", e.opts.get("as")))
	}
	d, err := e.openKernel(args[0])
	if err != nil {
		return err
	}
	var a opal.Auth
	var si sedioctl.SessionInfo
	if target == method.SID {
		if a, err = e.login(d, method.SID); err != nil {
			return err
		}
		if si.Key, err = kernelKey(0, a.PIN); err != nil {
			return err
		}
	} else if a, si, err = e.kernelLogin(d, method.Admin(1), 0); err != nil {
		return err
	}
	src, err := e.newSource()
	if err != nil {
		return err
	}
	pin, err := e.newPassword(d, authName(target), src)
	if err != nil {
		return err
	}
	defer pin.Wipe()
	newKey, err := kernelKey(0, pin)
	if err != nil {
		return err
	}
	p := sedioctl.NewPW{Session: si, NewUserPW: sedioctl.SessionInfo{Who: targetWho, Key: newKey}}
	if target == method.SID {
		err = d.k.SetSIDPassword(e.ctx, p)
	} else {
		err = d.k.SetPassword(e.ctx, p)
	}
	if err != nil {
		return e.kernelFailed(d, a, err)
	}
	return e.done(d, "password set", nil, fmt.Sprintf("the password of %s is set (as %s)", authName(target), authName(a.Authority)))
}

// kernelUserEnable enables UserN as Admin1 (IOC_OPAL_ACTIVATE_USR).
func kernelUserEnable(e *env, args []string) error {
	user, err := parseUser(args[0])
	if err != nil {
		return err
	}
	who, err := e.kernelWho(user, "user")
	if err != nil {
		return err
	}
	if who == sedioctl.Admin1 {
		return usageError(fmt.Errorf("%s: the kernel enables users (user1..user9) only", args[0]))
	}
	d, err := e.openKernel(args[1])
	if err != nil {
		return err
	}
	a, key, err := e.kernelAdmin1(d, 0)
	if err != nil {
		return err
	}
	if err := d.k.ActivateUser(e.ctx, sedioctl.SessionInfo{Who: who, Key: key}); err != nil {
		return e.kernelFailed(d, a, err)
	}
	return e.done(d, "user enable", nil, fmt.Sprintf("%s enabled", authName(user)))
}

// ---- ranges

// kernelRangeStatus is one range as IOC_OPAL_GET_LR_STATUS reports it:
// no LockOnReset or ActiveKey, which the kernel does not read.
func kernelRangeStatus(n uint32, s sedioctl.LRStatus) rangeJSON {
	return rangeJSON{Range: n, Start: s.RangeStart, Length: s.RangeLength, ReadLockEnabled: s.RLE != 0, WriteLockEnabled: s.WLE != 0,
		ReadLocked: s.LState == sedioctl.Locked, WriteLocked: s.LState == sedioctl.Locked || s.LState == sedioctl.ReadOnly,
		LockOnReset: []string{}, Readable: true}
}

// kernelRangeList reads ranges 0..8 (or one) with IOC_OPAL_GET_LR_STATUS,
// one session each, as --as (Admin1). The list ends at the first range
// the drive does not have; a range the authority may not read is marked.
// A refused password stops it at range 0, after one try.
func kernelRangeList(e *env, args []string) error {
	var one *uint32
	if len(args) == 2 {
		n, err := parseRange(args[0])
		if err != nil {
			return err
		}
		one = &n
	}
	first, last := uint32(0), uint32(sedioctl.MaxLRs-1)
	if one != nil {
		first, last = *one, *one
	}
	d, err := e.openKernel(args[len(args)-1])
	if err != nil {
		return err
	}
	a, si, err := e.kernelLogin(d, method.Admin(1), first)
	if err != nil {
		return err
	}
	var out []rangeJSON
ranges:
	for n := first; n <= last; n++ {
		si.Key.LR = uint8(n)
		st, err := d.k.RangeStatus(e.ctx, si)
		switch {
		case err == nil:
			out = append(out, kernelRangeStatus(n, st))
		case one == nil && n > 0 && errors.Is(err, method.StatusInvalidParameter):
			break ranges // the drive has no range n
		case one == nil && n > 0 && errors.Is(err, method.StatusNotAuthorized):
			out = append(out, rangeJSON{Range: n, LockOnReset: []string{}})
		default:
			return e.kernelFailed(d, a, fmt.Errorf("range %d: %w", n, err))
		}
	}
	si.Key.Wipe()
	return e.emit(struct {
		Device string      `json:"device"`
		Ranges []rangeJSON `json:"ranges"`
	}{d.spec, out}, func(w io.Writer) error {
		t := newTable("RANGE", "START", "LENGTH", "READ LOCK", "WRITE LOCK", "STATE")
		for _, r := range out {
			name := fmt.Sprint(r.Range)
			if r.Range == 0 {
				name = "0 (global)"
			}
			if !r.Readable {
				t.add(name, "?", "?", "?", "?", "not readable as "+authName(a.Authority))
				continue
			}
			t.add(name, r.Start, r.Length, enabledWord(r.ReadLockEnabled, r.ReadLocked), enabledWord(r.WriteLockEnabled, r.WriteLocked), lockWord(r))
		}
		return t.write(w)
	})
}

// kernelRangeSetup is range setup through the kernel: IOC_OPAL_LR_SETUP
// (start, length, locking disabled), IOC_OPAL_LOCK_UNLOCK RW, then
// IOC_OPAL_SECURE_ERASE_LR for the new key, as the normal path does.
func kernelRangeSetup(e *env, args []string) error {
	n, start, length, err := rangeSetupArgs(args)
	if err != nil {
		return err
	}
	d, err := e.openKernel(args[3])
	if err != nil {
		return err
	}
	a, si, err := e.kernelLogin(d, method.Admin(1), n)
	if err != nil {
		return err
	}
	defer si.Key.Wipe()
	if err := d.k.SetupRange(e.ctx, sedioctl.UserLRSetup{RangeStart: start, RangeLength: length, Session: si}); err != nil {
		return e.kernelFailed(d, a, kernelAlignmentHint(e, d, start, length, err))
	}
	if err := d.k.LockUnlock(e.ctx, sedioctl.LockUnlock{Session: si, LState: sedioctl.ReadWrite}); err != nil {
		return e.kernelFailed(d, a, err)
	}
	if err := d.k.SecureEraseRange(e.ctx, si); err != nil {
		return e.kernelFailed(d, a, err)
	}
	return e.done(d, "range setup", u32(n), fmt.Sprintf("range %d: blocks %d..%d (%d blocks), new key, locking disabled", n, start, start+length-1, length))
}

// kernelAlignmentHint is alignmentHint with the geometry the kernel cached.
func kernelAlignmentHint(e *env, d *device, start, length uint64, err error) error {
	if !errors.Is(err, method.StatusInvalidParameter) {
		return err
	}
	if g, gerr := d.k.Geometry(e.ctx); gerr == nil && g.Align != 0 && g.AlignmentGranularity > 1 {
		gr, low := g.AlignmentGranularity, g.LowestAlignedLBA
		if start%gr != low%gr || length%gr != 0 {
			return withHint(err, fmt.Sprintf("this drive needs range start and length in multiples of %d blocks (alignment granularity), starting at LBA %d plus a multiple of it; start %d and length %d are not",
				gr, low, start, length))
		}
	}
	return withHint(err, "the drive refused the range: ranges may not overlap each other, must be aligned to the drive's Geometry ('sedctl query') and must lie within the drive")
}

// kernelRangeLockEnabled sets RLE and WLE with IOC_OPAL_ENABLE_DISABLE_LR
// (2026 kernels) or, before, with IOC_OPAL_LR_SETUP, keeping the start and
// length IOC_OPAL_GET_LR_STATUS reads (the global range has none).
func kernelRangeLockEnabled(read, write bool, action string) func(e *env, args []string) error {
	return func(e *env, args []string) error {
		n, err := parseRange(args[0])
		if err != nil {
			return err
		}
		d, err := e.openKernel(args[1])
		if err != nil {
			return err
		}
		a, si, err := e.kernelLogin(d, method.Admin(1), n)
		if err != nil {
			return err
		}
		defer si.Key.Wipe()
		u := sedioctl.UserLRSetup{RLE: b32(read), WLE: b32(write), Session: si}
		err = d.k.EnableDisableRange(e.ctx, u)
		if errors.Is(err, sedioctl.ErrNoKernelSupport) {
			if n > 0 {
				st, err := d.k.RangeStatus(e.ctx, si)
				if err != nil {
					return e.kernelFailed(d, a, err)
				}
				u.RangeStart, u.RangeLength = st.RangeStart, st.RangeLength
			}
			err = d.k.SetupRange(e.ctx, u)
		}
		if err != nil {
			return e.kernelFailed(d, a, err)
		}
		return e.done(d, "range "+action, u32(n), fmt.Sprintf("range %d: read locking %s, write locking %s", n, onOff(read), onOff(write)))
	}
}

func b32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

var kernelLockStates = map[opal.LockState]sedioctl.LockState{opal.ReadWrite: sedioctl.ReadWrite, opal.ReadOnly: sedioctl.ReadOnly, opal.Locked: sedioctl.Locked}

// kernelRangeSet sets RW/RO/LK with IOC_OPAL_LOCK_UNLOCK as --as (Admin1,
// or a user the range was given to).
func kernelRangeSet(fixed *opal.LockState) func(e *env, args []string) error {
	return func(e *env, args []string) error {
		n, err := parseRange(args[0])
		if err != nil {
			return err
		}
		st := opal.ReadWrite
		if fixed != nil {
			st = *fixed
		} else if st, err = parseLockState(args[1]); err != nil {
			return err
		}
		d, err := e.openKernel(args[len(args)-1])
		if err != nil {
			return err
		}
		a, si, err := e.kernelLogin(d, method.Admin(1), n)
		if err != nil {
			return err
		}
		defer si.Key.Wipe()
		if err := d.k.LockUnlock(e.ctx, sedioctl.LockUnlock{Session: si, LState: kernelLockStates[st]}); err != nil {
			return e.kernelFailed(d, a, err)
		}
		word := map[opal.LockState]string{opal.ReadWrite: "unlocked (RW)", opal.ReadOnly: "read-only (RO)", opal.Locked: "locked (LK)"}[st]
		detail := fmt.Sprintf("range %d %s", n, word)
		if st == opal.Locked {
			if r, err := d.k.RangeStatus(e.ctx, si); err == nil && r.RLE == 0 && r.WLE == 0 {
				detail += fmt.Sprintf("; note: locking is disabled on this range, so it stays readable and writable until 'sedctl range enable %d %s'", n, d.spec)
			}
		}
		return e.done(d, "range set", u32(n), detail)
	}
}

// kernelRangeErase gives range n a new key (IOC_OPAL_SECURE_ERASE_LR:
// GenKey on its ActiveKey).
func kernelRangeErase(e *env, args []string) error {
	n, err := parseRange(args[0])
	if err != nil {
		return err
	}
	d, err := e.openKernel(args[1])
	if err != nil {
		return err
	}
	if n >= sedioctl.MaxLRs {
		return kernelRangeError(n)
	}
	if err := e.confirm(d, fmt.Sprintf("This gives range %d a new key: everything stored in it becomes unreadable.", n)); err != nil {
		return err
	}
	a, si, err := e.kernelLogin(d, method.Admin(1), n)
	if err != nil {
		return err
	}
	if err := d.k.SecureEraseRange(e.ctx, si); err != nil {
		return e.kernelFailed(d, a, err)
	}
	return e.done(d, "range erase", u32(n), fmt.Sprintf("range %d has a new key: its data is erased", n))
}

// kernelRangeAddUser lets USER set range n's read lock and write lock:
// IOC_OPAL_ADD_USR_TO_LR twice, RO then RW, as cryptsetup does. Older
// kernels replace Admin1 in those ACEs by the user; newer ones add it.
func kernelRangeAddUser(e *env, args []string) error {
	n, err := parseRange(args[0])
	if err != nil {
		return err
	}
	user, err := parseUser(args[1])
	if err != nil {
		return err
	}
	if _, lo := user.Halves(); lo <= 0x30000 {
		return usageError(fmt.Errorf("%s is not a user; admins may lock every range already", args[1]))
	}
	who, err := e.kernelWho(user, "user")
	if err != nil {
		return err
	}
	d, err := e.openKernel(args[2])
	if err != nil {
		return err
	}
	a, key, err := e.kernelAdmin1(d, n)
	if err != nil {
		return err
	}
	defer key.Wipe()
	for _, st := range []sedioctl.LockState{sedioctl.ReadOnly, sedioctl.ReadWrite} {
		if err := d.k.AddUserToRange(e.ctx, sedioctl.LockUnlock{Session: sedioctl.SessionInfo{Who: who, Key: key}, LState: st}); err != nil {
			return e.kernelFailed(d, a, err)
		}
	}
	return e.done(d, "range add-user", u32(n), fmt.Sprintf("%s may now lock and unlock range %d (enable it with 'sedctl user enable %s', give it a password with 'sedctl password set --authority %s')",
		authName(user), n, strings.ToLower(authName(user)), strings.ToLower(authName(user))))
}

// ---- shadow MBR, DataStore

// kernelRequireMBR refuses shadow MBR commands on a drive whose Level 0
// says it has none (without IOC_OPAL_DISCOVERY, the drive answers).
func kernelRequireMBR(e *env, d *device) error {
	l0, err := kernelLevel0(e, d)
	if err != nil {
		return err
	}
	if l0 != nil && (l0.Locking == nil || l0.Locking.MBRShadowingNotSupported) {
		return withCode(ExitUnsupported, fmt.Errorf("%s (%v) has no shadow MBR", d.spec, l0.SSC()), "")
	}
	return nil
}

// kernelMBREnable is IOC_OPAL_ENABLE_DISABLE_MBR: the kernel sets Done,
// then Enable, to the same value.
func kernelMBREnable(on bool) func(e *env, args []string) error {
	return func(e *env, args []string) error {
		d, err := e.openKernel(args[0])
		if err != nil {
			return err
		}
		if err := kernelRequireMBR(e, d); err != nil {
			return err
		}
		a, key, err := e.kernelAdmin1(d, 0)
		if err != nil {
			return err
		}
		m := sedioctl.MBRData{Key: key, EnableDisable: sedioctl.MBRDisable}
		if on {
			m.EnableDisable = sedioctl.MBREnable
		}
		if err := d.k.EnableDisableMBR(e.ctx, m); err != nil {
			return e.kernelFailed(d, a, err)
		}
		if on {
			return e.done(d, "mbr enable", nil, "shadow MBR enabled (Done is set: it shows after the next power cycle)")
		}
		return e.done(d, "mbr disable", nil, "shadow MBR disabled")
	}
}

func kernelMBRDone(e *env, args []string) error {
	on, err := parseOnOff(args[0])
	if err != nil {
		return err
	}
	d, err := e.openKernel(args[1])
	if err != nil {
		return err
	}
	if err := kernelRequireMBR(e, d); err != nil {
		return err
	}
	a, key, err := e.kernelAdmin1(d, 0)
	if err != nil {
		return err
	}
	m := sedioctl.MBRDoneArg{Key: key, DoneFlag: sedioctl.MBRNotDone}
	if on {
		m.DoneFlag = sedioctl.MBRIsDone
	}
	if err := d.k.MBRDone(e.ctx, m); err != nil {
		return e.kernelFailed(d, a, err)
	}
	if on {
		return e.done(d, "mbr done", nil, "shadow MBR done: the drive shows its real first blocks until the next power cycle")
	}
	return e.done(d, "mbr done", nil, "shadow MBR not done: the drive shows the shadow MBR (if enabled)")
}

// kernelTableChunk is how much one table ioctl carries: the kernel splits
// it into ComPackets itself; the chunks only pace the progress bar.
const kernelTableChunk = 1 << 20

// maxKernelTable caps what sedctl reads into memory for a table it cannot
// learn the size of through the kernel.
const maxKernelTable = 256 << 20

// tableTooSmall explains the kernel's EINVAL for a table transfer: the
// kernel checks offset + size against the table's Rows before it sends
// anything.
func tableTooSmall(what string, err error) error {
	if errors.Is(err, unix.EINVAL) {
		return withCode(ExitData, fmt.Errorf("%s: %w", what, err), "the data do not fit the table at that offset (the kernel checks before writing anything); the normal path ('sedctl mbr status' or 'datastore read' without --via kernel) shows the table's size")
	}
	return err
}

// kernelMBRLoad is mbr load through the kernel: IOC_OPAL_WRITE_SHADOW_MBR
// in chunks and, unless --no-verify, a read back with
// IOC_OPAL_GENERIC_TABLE_RW (5.5). Before writing, a read of the image's
// last byte proves that the image fits the table.
func kernelMBRLoad(e *env, args []string) error {
	image, spec := args[0], args[1]
	f, err := os.Open(image)
	if err != nil {
		return withCode(ExitNoInput, fmt.Errorf("PBA image: %w", err), "")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKernelTable+1))
	if err != nil {
		return withCode(ExitNoInput, fmt.Errorf("read PBA image %s: %w", image, err), "")
	}
	if len(data) > maxKernelTable || len(data) == 0 {
		return withCode(ExitData, fmt.Errorf("PBA image %s is %d bytes; a shadow MBR image is 1 byte to %s", image, len(data), humanBytes(maxKernelTable)), "")
	}
	d, err := e.openKernel(spec)
	if err != nil {
		return err
	}
	if err := kernelRequireMBR(e, d); err != nil {
		return err
	}
	a, key, err := e.kernelAdmin1(d, 0)
	if err != nil {
		return err
	}
	defer key.Wipe()
	canRead := true
	var probe [1]byte
	switch err := d.k.ReadTable(e.ctx, key, method.MBR, uint64(len(data)-1), probe[:]); {
	case errors.Is(err, sedioctl.ErrNoKernelSupport):
		canRead = false
	case err != nil:
		return e.kernelFailed(d, a, tableTooSmall(fmt.Sprintf("PBA image %s (%d bytes) is larger than the drive's shadow MBR table; nothing was written", image, len(data)), err))
	}
	bar := e.progress("loading "+image, len(data))
	for off := 0; off < len(data); off += kernelTableChunk {
		end := min(off+kernelTableChunk, len(data))
		if err := d.k.WriteShadowMBR(e.ctx, key, uint64(off), data[off:end]); err != nil {
			bar.finish()
			return e.kernelFailed(d, a, tableTooSmall("write the shadow MBR", err))
		}
		bar.update(end)
	}
	bar.finish()
	verified := false
	if !e.opts.bool("no-verify") && canRead {
		back := make([]byte, len(data))
		if err := d.k.ReadTable(e.ctx, key, method.MBR, 0, back); err != nil {
			return e.kernelFailed(d, a, fmt.Errorf("read back the shadow MBR: %w", err))
		}
		if i := firstDiff(data, back); i >= 0 {
			return withCode(ExitIO, fmt.Errorf("shadow MBR read back differs from %s at byte %d", image, i), "load the image again")
		}
		verified = true
	}
	out := struct {
		Device   string `json:"device"`
		Image    string `json:"image"`
		Bytes    int    `json:"bytes"`
		Verified bool   `json:"verified"`
	}{d.spec, image, len(data), verified}
	return e.emit(out, func(w io.Writer) error {
		v := ""
		switch {
		case verified:
			v = ", read back and verified"
		case !canRead && !e.opts.bool("no-verify"):
			v = " (not verified: this kernel has no IOC_OPAL_GENERIC_TABLE_RW to read it back)"
		}
		_, err := fmt.Fprintf(w, "%s: loaded %d bytes of %s into the shadow MBR%s\n", d.spec, len(data), image, v)
		return err
	})
}

// kernelDataStoreRead reads --length bytes (required: the kernel does not
// tell a table's size) of a DataStore table at --offset
// (IOC_OPAL_GENERIC_TABLE_RW).
func kernelDataStoreRead(e *env, args []string) error {
	table, offset, err := dataStoreArgs(e)
	if err != nil {
		return err
	}
	if !e.opts.has("length") {
		return usageError(errors.New("with --via kernel, datastore read needs --length: the kernel does not tell a table's size"))
	}
	length, err := parseUint("--length", e.opts.get("length"), 64)
	if err != nil {
		return err
	}
	if length > maxKernelTable {
		return withCode(ExitData, fmt.Errorf("--length %d: with --via kernel sedctl reads at most %d bytes at once", length, maxKernelTable), "")
	}
	d, err := e.openKernel(args[0])
	if err != nil {
		return err
	}
	a, key, err := e.kernelAdmin1(d, 0)
	if err != nil {
		return err
	}
	defer key.Wipe()
	buf := make([]byte, length)
	for off := uint64(0); off < length; off += kernelTableChunk {
		end := min(off+kernelTableChunk, length)
		if err := d.k.ReadTable(e.ctx, key, method.DataStoreTable(table), offset+off, buf[off:end]); err != nil {
			return e.kernelFailed(d, a, tableTooSmall(fmt.Sprintf("offset %d + length %d runs past DataStore table %d", offset, length, table), err))
		}
	}
	if out := e.opts.get("out"); out != "" {
		if err := os.WriteFile(out, buf, 0o600); err != nil {
			return withCode(ExitIO, fmt.Errorf("write %s: %w", out, err), "")
		}
	}
	if e.json {
		j := struct {
			Device  string `json:"device"`
			Table   uint32 `json:"table"`
			Offset  uint64 `json:"offset"`
			Length  uint64 `json:"length"`
			DataHex string `json:"data_hex,omitempty"`
			Out     string `json:"out,omitempty"`
		}{d.spec, table, offset, length, "", e.opts.get("out")}
		if j.Out == "" {
			j.DataHex = fmt.Sprintf("%x", buf)
		}
		e.emitted = true
		return writeJSON(e.stdout, j)
	}
	if e.opts.get("out") != "" {
		_, err := fmt.Fprintf(e.stderr, "%s: read %d bytes of DataStore table %d into %s\n", d.spec, length, table, e.opts.get("out"))
		return err
	}
	_, err = e.stdout.Write(buf)
	return err
}

// kernelDataStoreWrite writes FILE into a DataStore table at --offset
// (IOC_OPAL_GENERIC_TABLE_RW); the kernel refuses data that do not fit
// before writing any.
func kernelDataStoreWrite(e *env, args []string) error {
	table, offset, err := dataStoreArgs(e)
	if err != nil {
		return err
	}
	file := args[0]
	in, closeIn, err := e.openInput(file)
	if err != nil {
		return err
	}
	defer closeIn()
	data, err := io.ReadAll(io.LimitReader(in, maxKernelTable+1))
	if err != nil {
		return withCode(ExitNoInput, fmt.Errorf("read %s: %w", file, err), "")
	}
	if len(data) > maxKernelTable {
		return withCode(ExitData, fmt.Errorf("%s is over %d bytes, more than a DataStore table holds; nothing was written", file, maxKernelTable), "")
	}
	d, err := e.openKernel(args[1])
	if err != nil {
		return err
	}
	a, key, err := e.kernelAdmin1(d, 0)
	if err != nil {
		return err
	}
	defer key.Wipe()
	if err := d.k.WriteTable(e.ctx, key, method.DataStoreTable(table), offset, data); err != nil {
		return e.kernelFailed(d, a, tableTooSmall(fmt.Sprintf("the data of %s do not fit DataStore table %d at offset %d; nothing was written", file, table, offset), err))
	}
	return e.emit(struct {
		Device string `json:"device"`
		Table  uint32 `json:"table"`
		Offset uint64 `json:"offset"`
		Bytes  int    `json:"bytes"`
	}{d.spec, table, offset, len(data)}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s: wrote %d bytes to DataStore table %d at offset %d\n", d.spec, len(data), table, offset)
		return err
	})
}

// ---- revert, reset

// kernelRevert: --tper is IOC_OPAL_REVERT_TPR as SID; --locking-sp is
// IOC_OPAL_REVERT_LSP (6.6) as Admin1, with OPAL_PRESERVE for --keep-data.
func kernelRevert(e *env, args []string) error {
	tper, lsp := e.opts.bool("tper"), e.opts.bool("locking-sp")
	if tper == lsp {
		return usageError(errors.New("revert needs --tper (the whole drive) or --locking-sp (the Locking SP only)"))
	}
	if tper && e.opts.bool("keep-data") {
		return usageError(errors.New("--keep-data applies to --locking-sp only: a TPer revert always erases"))
	}
	def := method.SID
	what := "This reverts the whole drive to its factory state: every locking range's key is replaced, so ALL DATA IS ERASED, and every password is reset."
	if lsp {
		def = method.Admin(1)
		what = "This reverts the Locking SP: locking is switched off, ranges and users are reset, and the data in every range is erased."
		if e.opts.bool("keep-data") {
			what = "This reverts the Locking SP: locking is switched off, ranges and users are reset and the data of ranges 1..n is erased; the global range's data is kept."
		}
	}
	who, err := e.authorityOpt(def)
	if err != nil {
		return err
	}
	if who != def {
		return usageError(fmt.Errorf("--as %s: with --via kernel, revert %s authenticates as %s only (the kernel's ioctl does); leave out --via kernel", e.opts.get("as"), map[bool]string{true: "--tper", false: "--locking-sp"}[tper], authName(def)))
	}
	d, err := e.openKernel(args[0])
	if err != nil {
		return err
	}
	if err := e.confirm(d, what); err != nil {
		return err
	}
	a, err := e.login(d, who)
	if err != nil {
		return err
	}
	key, err := kernelKey(0, a.PIN)
	if err != nil {
		return err
	}
	if tper {
		err = d.k.RevertTPer(e.ctx, key)
	} else {
		r := sedioctl.RevertLSP{Key: key}
		if e.opts.bool("keep-data") {
			r.Options = sedioctl.Preserve
		}
		err = d.k.RevertLSP(e.ctx, r)
	}
	if err != nil {
		return e.kernelFailed(d, a, err)
	}
	return e.revertDone(d, tper)
}

// kernelPSIDRevert is IOC_OPAL_PSID_REVERT_TPR with the PSID as typed.
func kernelPSIDRevert(e *env, args []string) error {
	d, err := e.openKernel(args[0])
	if err != nil {
		return err
	}
	if err := e.confirm(d, "This reverts the whole drive to its factory state with the PSID: ALL DATA IS ERASED and every password is reset."); err != nil {
		return err
	}
	a, err := e.login(d, method.PSID)
	if err != nil {
		return err
	}
	key, err := kernelKey(0, a.PIN)
	if err != nil {
		return err
	}
	if err := d.k.PSIDRevert(e.ctx, key); err != nil {
		if errors.Is(err, method.StatusNotAuthorized) {
			return withHint(err, "the drive refused the PSID: check it against the label (32 characters, no spaces; it is sent as typed, never hashed)")
		}
		return e.kernelFailed(d, a, err)
	}
	return e.done(d, "psid-revert", nil, "reverted to the factory state with the PSID: all data is erased")
}

// kernelReset is IOC_OPAL_STACK_RESET (2026 kernels); the kernel has no
// TPer reset or power cycle.
func kernelReset(e *env, args []string) error {
	for _, o := range []string{"tper", "power-cycle"} {
		if e.opts.bool(o) {
			return withCode(ExitUnsupported, fmt.Errorf("'sedctl reset --%s' has no kernel sed-opal ioctl, so it cannot run --via kernel", o), "leave out --via kernel")
		}
	}
	d, err := e.openKernel(args[0])
	if err != nil {
		return err
	}
	if err := d.k.StackReset(e.ctx); err != nil {
		return kernelError(fmt.Errorf("stack reset of %s: %w", d.spec, err))
	}
	return e.done(d, "reset stack", nil, "ComID reset (STACK_RESET): every session on it ended")
}
