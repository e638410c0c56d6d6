package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shiftlock/shiftlock/sim"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/session"
	opalwire "github.com/shiftlock/shiftlock/tcg/transport/wire"
)

const infoHelp = `Usage: sedsim info --state DIR | --socket PATH [--json]

Describes a drive.

--state DIR reads the drive's state file as last saved, without powering the
drive on; it works whether or not the drive is served, and shows everything:
owner, every range with its lock state, the shadow MBR. (A drive nobody
serves shows the state it was powered off in; ranges with LockOnReset lock
when it is next served.)

--socket PATH asks a served drive what any host may ask it without a
password: identity, Level 0 discovery (profile, whether locking is enabled,
whether any range is locked, the shadow MBR) and the Locking SP's life cycle.
Per-range lock states need an admin's password: sedctl range list sim:PATH.

Flags:
  --state DIR     the drive's directory
  --socket PATH   a served drive's socket
  --json          one JSON object instead of text

Examples:
  sedsim info --state /var/lib/sedsim/d1
  sedsim info --socket /run/sedsim-d1.sock --json
`

// infoOut is the JSON form of info. Fields that the source (state or
// socket) cannot tell are left out.
type infoOut struct {
	State     string `json:"state_dir,omitempty"`
	Socket    string `json:"socket,omitempty"`
	Profile   string `json:"profile"`
	Model     string `json:"model"`
	Serial    string `json:"serial"`
	Firmware  string `json:"firmware"`
	BlockSize uint32 `json:"block_size"`
	Blocks    uint64 `json:"blocks"`
	Capacity  uint64 `json:"capacity_bytes"`

	// From the state only.
	AlignmentGranularity *uint64 `json:"alignment_granularity,omitempty"`
	LowestAlignedLBA     *uint64 `json:"lowest_aligned_lba,omitempty"`
	TryLimit             *uint32 `json:"try_limit,omitempty"`
	Users                int     `json:"users,omitempty"`
	Owned                *bool   `json:"owned,omitempty"`

	LockingSP      string     `json:"locking_sp"` // life cycle
	LockingEnabled bool       `json:"locking_enabled"`
	Locked         bool       `json:"locked"` // some range is locked now
	MBR            *mbrOut    `json:"mbr_shadow,omitempty"`
	Ranges         []rangeOut `json:"ranges,omitempty"`
}

type mbrOut struct {
	Enable      bool     `json:"enable"`
	Done        bool     `json:"done"`
	Shown       bool     `json:"shown"`
	DoneOnReset []string `json:"done_on_reset,omitempty"`
}

type rangeOut struct {
	N                uint32   `json:"n"`
	Start            uint64   `json:"start"`
	Length           uint64   `json:"length"`
	ReadLockEnabled  bool     `json:"read_lock_enabled"`
	WriteLockEnabled bool     `json:"write_lock_enabled"`
	ReadLocked       bool     `json:"read_locked"`
	WriteLocked      bool     `json:"write_locked"`
	LockOnReset      []string `json:"lock_on_reset"`
	State            string   `json:"state"` // what I/O to the range gets now
}

func resetNames(l []uint8) []string {
	out := make([]string, 0, len(l))
	for _, r := range l {
		out = append(out, opal.ResetType(r).String())
	}
	return out
}

func cmdInfo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlags("info")
	state := fl.String("state", "", "")
	socket := fl.String("socket", "", "")
	asJSON := fl.Bool("json", false, "")
	if done, err := parse(fl, args, infoHelp, stdout); done || err != nil {
		return err
	}
	if (*state == "") == (*socket == "") {
		return usagef("info: give exactly one of --state DIR and --socket PATH")
	}
	var out *infoOut
	var err error
	if *state != "" {
		out, err = infoFromState(*state)
	} else {
		out, err = infoFromSocket(ctx, *socket)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	printInfo(stdout, out)
	return nil
}

func infoFromState(dir string) (*infoOut, error) {
	st, err := sim.Inspect(dir)
	if err != nil {
		return nil, openError(dir, err)
	}
	c := st.Config
	out := &infoOut{
		State: dir, Profile: string(c.Profile), Model: c.Model, Serial: c.Serial, Firmware: c.Firmware,
		BlockSize: c.BlockSize, Blocks: c.Blocks, Capacity: c.Blocks * uint64(c.BlockSize),
		AlignmentGranularity: &c.AlignmentGranularity, LowestAlignedLBA: &c.LowestAlignedLBA,
		TryLimit: &c.TryLimit, Users: c.Users, Owned: &st.Owned,
		LockingSP:      opal.ManufacturedInactive.String(),
		LockingEnabled: st.LockingActive,
	}
	if st.LockingActive {
		out.LockingSP = opal.Manufactured.String()
	}
	if c.Profile == sim.Opal2 || c.Profile == sim.Opal1 {
		out.MBR = &mbrOut{Enable: st.MBR.Enable, Done: st.MBR.Done, Shown: st.LockingActive && st.MBR.Shown(), DoneOnReset: resetNames(st.MBR.DoneOnReset)}
	}
	for _, r := range st.Ranges {
		ro := rangeOut{
			N: r.N, Start: r.Start, Length: r.Length,
			ReadLockEnabled: r.ReadLockEnabled, WriteLockEnabled: r.WriteLockEnabled,
			ReadLocked: r.ReadLocked, WriteLocked: r.WriteLocked,
			LockOnReset: resetNames(r.LockOnReset),
		}
		rl, wl := st.LockingActive && r.ReadLockedNow(), st.LockingActive && r.WriteLockedNow()
		switch {
		case r.N != 0 && r.Length == 0:
			ro.State = "unused"
		case rl && wl:
			ro.State = "locked"
		case wl:
			ro.State = "read-only"
		case rl:
			ro.State = "write-only"
		case !r.ReadLockEnabled && !r.WriteLockEnabled:
			ro.State = "unlocked (locking disabled)"
		default:
			ro.State = "unlocked"
		}
		if rl || wl {
			out.Locked = true
		}
		out.Ranges = append(out.Ranges, ro)
	}
	return out, nil
}

func dial(ctx context.Context, socket string) (*opalwire.Conn, error) {
	c, err := opalwire.Dial(ctx, socket)
	if err != nil {
		return nil, wrapSocketError(socket, err)
	}
	return c, nil
}

func infoFromSocket(ctx context.Context, socket string) (*infoOut, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := dial(ctx, socket)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	id, err := conn.Identify(ctx)
	if err != nil {
		return nil, fmt.Errorf("info %s: %w", socket, err)
	}
	c := session.NewClient(conn, nil)
	d, err := c.Discover(ctx)
	if err != nil {
		return nil, fmt.Errorf("info %s: Level 0 discovery: %w", socket, err)
	}
	out := &infoOut{
		Socket: socket, Model: id.Model, Serial: id.SerialString(), Firmware: id.Firmware,
		BlockSize: id.BlockSize, Blocks: id.Blocks, Capacity: id.Blocks * uint64(id.BlockSize),
		LockingEnabled: d.LockingEnabled(), Locked: d.Locked(),
	}
	if b, err := d.SSC().MarshalText(); err == nil {
		out.Profile = string(b)
	}
	if d.Locking != nil && !d.Locking.MBRShadowingNotSupported {
		out.MBR = &mbrOut{Enable: d.MBREnabled(), Done: d.MBRDone(), Shown: d.MBRShadowActive()}
	}
	lc, err := opal.LockingSPState(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("info %s: %w", socket, err)
	}
	out.LockingSP = lc.String()
	return out, nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func printInfo(w io.Writer, o *infoOut) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	if o.State != "" {
		fmt.Fprintf(tw, "drive\t%s\n", o.State)
	} else {
		fmt.Fprintf(tw, "socket\t%s\n", o.Socket)
	}
	fmt.Fprintf(tw, "profile\t%s\n", o.Profile)
	fmt.Fprintf(tw, "model\t%s\n", o.Model)
	fmt.Fprintf(tw, "serial\t%s\n", o.Serial)
	fmt.Fprintf(tw, "firmware\t%s\n", o.Firmware)
	fmt.Fprintf(tw, "capacity\t%s: %d blocks of %d bytes\n", formatSize(o.Capacity), o.Blocks, o.BlockSize)
	if o.AlignmentGranularity != nil {
		fmt.Fprintf(tw, "range alignment\t%d blocks, lowest aligned LBA %d\n", *o.AlignmentGranularity, *o.LowestAlignedLBA)
	}
	if o.TryLimit != nil {
		lim := fmt.Sprint(*o.TryLimit)
		if *o.TryLimit == 0 {
			lim = "unlimited"
		}
		fmt.Fprintf(tw, "try limit\t%s\n", lim)
	}
	if o.Owned != nil {
		fmt.Fprintf(tw, "owned\t%s\n", map[bool]string{true: "yes (the SID PIN is not the MSID)", false: "no (SID PIN = MSID)"}[*o.Owned])
	}
	fmt.Fprintf(tw, "locking SP\t%s\n", o.LockingSP)
	fmt.Fprintf(tw, "locking enabled\t%s\n", yesNo(o.LockingEnabled))
	fmt.Fprintf(tw, "locked\t%s\n", map[bool]string{true: "yes (some range is locked)", false: "no"}[o.Locked])
	if o.MBR != nil {
		s := fmt.Sprintf("enable %s, done %s", yesNo(o.MBR.Enable), yesNo(o.MBR.Done))
		if o.MBR.Shown {
			s += ": LBA 0.. show the MBR table"
		}
		if len(o.MBR.DoneOnReset) > 0 {
			s += ", done on reset: " + strings.Join(o.MBR.DoneOnReset, ",")
		}
		fmt.Fprintf(tw, "shadow MBR\t%s\n", s)
	}
	tw.Flush()
	if len(o.Ranges) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "range\tstart\tlength\tstate\tlock on reset")
	unused := 0
	for _, r := range o.Ranges {
		if r.State == "unused" {
			unused++
			continue
		}
		name := fmt.Sprint(r.N)
		if r.N == 0 {
			name = "0 (global)"
		}
		lor := strings.Join(r.LockOnReset, ",")
		if lor == "" {
			lor = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", name, r.Start, r.Length, r.State, lor)
	}
	tw.Flush()
	if unused > 0 {
		fmt.Fprintf(w, "(%d more ranges unused: length 0)\n", unused)
	}
}
