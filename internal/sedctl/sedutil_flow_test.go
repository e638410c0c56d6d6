package sedctl_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shiftlock/shiftlock/sim"
	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/session"
	"github.com/shiftlock/shiftlock/tcg/token"
	opalwire "github.com/shiftlock/shiftlock/tcg/transport/wire"
)

// sedutilHost issues methods exactly as sedutil-cli (DTA 1.20,
// DtaDevOpal.cpp; PROTOCOL.md 2.1) does: every step in a session of its
// own, always a write session (sedutil's StartSession sends Write=1),
// passwords hashed with the scheme and the drive's raw serial, the MSID
// unhashed. It talks to the drive over the same opalwire socket sedctl
// uses, and records the method sequence from the decoded trace.
type sedutilHost struct {
	t      *testing.T
	ctx    context.Context
	c      *session.Client
	serial []byte
	scheme *hash.Scheme

	mu    sync.Mutex
	trace []string
	pins  map[string]hash.PIN // derived once: 500 000 rounds of SHA-512 take seconds under -race
}

var callRE = regexp.MustCompile(`Call (\S+)\.(\w+) \[(.*)\] EndOfData`)

func newSedutilHost(t *testing.T, s *testSim, scheme *hash.Scheme) *sedutilHost {
	t.Helper()
	ctx := context.Background()
	conn, err := opalwire.Dial(ctx, s.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	id, err := conn.Identify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := &sedutilHost{t: t, ctx: ctx, serial: id.Serial[:], scheme: scheme, pins: map[string]hash.PIN{}}
	dec := &session.TraceDecoder{}
	h.c = session.NewClient(conn, &session.Options{Trace: func(dir string, proto uint8, spsp uint16, data []byte) {
		line := dec.Decode(dir, proto, spsp, data)
		if dir != session.DirSend || proto != 1 || spsp == session.Level0ComID {
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		switch m := callRE.FindStringSubmatch(line); {
		case strings.HasSuffix(line, "EndOfSession"):
			h.trace = append(h.trace, "EndOfSession")
		case m == nil:
			h.trace = append(h.trace, "?? "+line)
		case m[2] == "Properties":
		case m[2] == "StartSession":
			// [105 SP write 0=[REDACTED n bytes] 3=Authority]
			f := strings.Fields(m[3])
			who := "Anybody"
			if i := strings.Index(m[3], "3="); i >= 0 {
				who = strings.Fields(m[3][i+2:])[0]
			}
			h.trace = append(h.trace, fmt.Sprintf("StartSession %s write=%s as %s", f[1], f[2], strings.TrimSuffix(who, "]")))
		default:
			h.trace = append(h.trace, m[1]+"."+m[2])
		}
	}})
	return h
}

// hashed is DtaHashPwd: the password through the scheme, salted with the
// serial.
func (h *sedutilHost) hashed(password string) hash.PIN {
	if pin, ok := h.pins[password]; ok {
		return pin
	}
	pin, err := h.scheme.Derive([]byte(password), h.serial)
	if err != nil {
		h.t.Fatal(err)
	}
	h.pins[password] = pin
	return pin
}

// session is DtaSession::start(SP, password, authority): one write
// session; fn issues its calls.
func (h *sedutilHost) session(sp, authority method.UID, pin hash.PIN, fn func(s *session.Session)) {
	h.t.Helper()
	s, err := h.c.StartSession(h.ctx, session.Params{SP: sp, Write: true, Authority: authority, Challenge: pin})
	if err != nil {
		h.t.Fatalf("StartSession %v as %v: %v", sp, authority, err)
	}
	fn(s)
	if err := s.Close(h.ctx); err != nil {
		h.t.Fatalf("end session: %v", err)
	}
}

func (h *sedutilHost) set(s *session.Session, obj method.UID, cols ...token.Value) {
	h.t.Helper()
	if err := s.Set(h.ctx, obj, cols...); err != nil {
		h.t.Fatalf("Set %v: %v", obj, err)
	}
}

func (h *sedutilHost) get(s *session.Session, obj method.UID, col uint64) token.Value {
	h.t.Helper()
	r, err := s.Get(h.ctx, obj, method.Columns(col, col))
	if err != nil {
		h.t.Fatalf("Get %v column %d: %v", obj, col, err)
	}
	v, ok := r.Column(col)
	if !ok {
		h.t.Fatalf("Get %v: no column %d in %v", obj, col, r.Values)
	}
	return v
}

func named(col uint64, v token.Value) token.Value { return token.Named(col, v) }

// initialSetup is sedutil-cli --initialSetup <password>: takeOwnership,
// activateLockingSP, configureLockingRange(0, DISABLELOCKING),
// setLockingRange(0, READWRITE), setMBRDone(1), setMBREnable(1) (which
// sets Done again first).
func (h *sedutilHost) initialSetup(password string) {
	h.t.Helper()
	// takeOwnership: getDefaultPassword (anonymous), then setSIDPassword
	// with the MSID, not hashed (dontHashPwd), to hash(password).
	var msid []byte
	h.session(method.AdminSP, method.UID{}, nil, func(s *session.Session) {
		b, err := h.get(s, method.CPINMSID, 3).AsBytes()
		if err != nil {
			h.t.Fatal(err)
		}
		msid = b
	})
	h.session(method.AdminSP, method.SID, hash.PIN(msid), func(s *session.Session) {
		h.set(s, method.CPINSID, named(3, token.Bytes(h.hashed(password))))
	})
	// activateLockingSP: LifeCycleState must be 8, then Activate.
	h.session(method.AdminSP, method.SID, h.hashed(password), func(s *session.Session) {
		if lc, err := h.get(s, method.LockingSP, 6).AsUint(); err != nil || lc != 8 {
			h.t.Fatalf("LockingSP LifeCycleState = %d, %v; want 8", lc, err)
		}
		if _, err := s.Call(h.ctx, method.NewCall(method.LockingSP, method.Activate)); err != nil {
			h.t.Fatalf("Activate: %v", err)
		}
	})
	admin1 := h.hashed(password)
	h.session(method.LockingSP, method.Admin(1), admin1, func(s *session.Session) {
		h.set(s, method.GlobalRange, named(5, token.Bool(false)), named(6, token.Bool(false)))
	})
	h.session(method.LockingSP, method.Admin(1), admin1, func(s *session.Session) {
		h.set(s, method.GlobalRange, named(7, token.Bool(false)), named(8, token.Bool(false)))
	})
	h.setMBRDone(password, true)
	h.setMBRDone(password, true)
	h.session(method.LockingSP, method.Admin(1), admin1, func(s *session.Session) {
		h.set(s, method.MBRControl, named(1, token.Bool(true)))
	})
}

// setupLockingRange is --setupLockingRange <LR> <start> <len>: one Set of
// start, length and all four lock flags off, then rekeyLockingRange (Get
// ActiveKey, GenKey on it) in a session of its own.
func (h *sedutilHost) setupLockingRange(password string, n uint32, start, length uint64) {
	h.t.Helper()
	h.session(method.LockingSP, method.Admin(1), h.hashed(password), func(s *session.Session) {
		h.set(s, method.LockingRange(n), named(3, token.Uint(start)), named(4, token.Uint(length)),
			named(5, token.Bool(false)), named(6, token.Bool(false)), named(7, token.Bool(false)), named(8, token.Bool(false)))
	})
	h.session(method.LockingSP, method.Admin(1), h.hashed(password), func(s *session.Session) {
		key, err := method.UIDFromValue(h.get(s, method.LockingRange(n), 10))
		if err != nil {
			h.t.Fatal(err)
		}
		if _, err := s.Call(h.ctx, method.NewCall(key, method.GenKey)); err != nil {
			h.t.Fatalf("GenKey: %v", err)
		}
	})
}

// enableLockingRange is --enableLockingRange <LR>: RLE = WLE = true.
func (h *sedutilHost) enableLockingRange(password string, n uint32) {
	h.session(method.LockingSP, method.Admin(1), h.hashed(password), func(s *session.Session) {
		h.set(s, method.LockingRange(n), named(5, token.Bool(true)), named(6, token.Bool(true)))
	})
}

// setLockingRange is --setLockingRange <LR> LK|RW: RL and WL.
func (h *sedutilHost) setLockingRange(password string, n uint32, locked bool) {
	h.session(method.LockingSP, method.Admin(1), h.hashed(password), func(s *session.Session) {
		h.set(s, method.LockingRange(n), named(7, token.Bool(locked)), named(8, token.Bool(locked)))
	})
}

// setMBRDone is --setMBRDone on|off.
func (h *sedutilHost) setMBRDone(password string, done bool) {
	h.session(method.LockingSP, method.Admin(1), h.hashed(password), func(s *session.Session) {
		h.set(s, method.MBRControl, named(2, token.Bool(done)))
	})
}

// TestSedutilSetupThenSedctl: a drive set up the way sedutil-cli sets it up
// (its exact method sequence and hashing) is managed by sedctl with the
// same password, for each hashing scheme sedutil builds use.
func TestSedutilSetupThenSedctl(t *testing.T) {
	const password = "sedutil password"
	// The sequence sedutil issues (sessions, methods, in order).
	anyAdmin := "StartSession AdminSP write=1 as Anybody"
	sid := "StartSession AdminSP write=1 as SID"
	admin1 := "StartSession LockingSP write=1 as Admin1"
	eos := "EndOfSession"
	wantSetup := []string{
		anyAdmin, "C_PIN_MSID.Get", eos,
		sid, "C_PIN_SID.Set", eos,
		sid, "LockingSP.Get", "LockingSP.Activate", eos,
		admin1, "Locking_GlobalRange.Set", eos,
		admin1, "Locking_GlobalRange.Set", eos,
		admin1, "MBRControl.Set", eos,
		admin1, "MBRControl.Set", eos,
		admin1, "MBRControl.Set", eos,
	}
	wantRange := []string{
		admin1, "Locking_Range1.Set", eos,
		admin1, "Locking_Range1.Get", "K_AES_256_Range1.GenKey", eos,
		admin1, "Locking_Range1.Set", eos,
		admin1, "Locking_Range1.Set", eos,
		admin1, "MBRControl.Set", eos,
	}

	for _, c := range []struct {
		scheme *hash.Scheme
		full   bool // the whole sedctl tour; the slow schemes get a short one
	}{
		{hash.SedutilSHA1, true},
		{hash.LadarSHA512, false},
		{hash.SedutilSHA512, false},
	} {
		t.Run(c.scheme.Name(), func(t *testing.T) {
			s := newSim(t, sim.Config{Serial: "S2RBNB0HA12200B"})
			h := newSedutilHost(t, s, c.scheme)
			h.initialSetup(password)
			if !slices.Equal(h.trace, wantSetup) {
				t.Fatalf("--initialSetup sequence:\n%s\nwant:\n%s", strings.Join(h.trace, "\n"), strings.Join(wantSetup, "\n"))
			}
			h.trace = nil
			h.setupLockingRange(password, 1, 2048, 4096)
			h.enableLockingRange(password, 1)
			h.setLockingRange(password, 1, true)
			h.setMBRDone(password, true)
			if !slices.Equal(h.trace, wantRange) {
				t.Fatalf("--setupLockingRange/--enableLockingRange/--setLockingRange/--setMBRDone sequence:\n%s\nwant:\n%s", strings.Join(h.trace, "\n"), strings.Join(wantRange, "\n"))
			}
			if s.readable(2048) || !s.readable(0) {
				t.Fatal("after sedutil's setup: range 1 should be locked, the rest readable")
			}

			pw := secretFile(t, password)
			hashOpt := []string{"--hash", c.scheme.Name()}
			// sedctl computes the same PIN sedutil sent.
			var hj struct {
				PINHex string `json:"pin_hex"`
			}
			runJSON(t, &hj, append([]string{"hash", "--password-file", pw, s.dev}, hashOpt...)...)
			if hj.PINHex != hex.EncodeToString(h.hashed(password)) {
				t.Errorf("sedctl hash %s: %s; want sedutil's %x", c.scheme.Name(), hj.PINHex, h.hashed(password))
			}
			// sedctl unlocks range 1 with the same password.
			mustRun(t, append([]string{"range", "unlock", "1", "--password-file", pw, s.dev}, hashOpt...)...)
			if !s.readable(2048) {
				t.Error("sedctl range unlock 1: still locked")
			}
			if !c.full {
				return
			}
			rs := s.ranges(pw)
			if rs[0].ReadLockEnabled || rs[0].WriteLockEnabled || rs[0].ReadLocked {
				t.Errorf("global range after --initialSetup: %+v", rs[0])
			}
			if r := rs[1]; r.Start != 2048 || r.Length != 4096 || !r.ReadLockEnabled || !r.WriteLockEnabled || r.ReadLocked {
				t.Errorf("range 1: %+v", r)
			}
			var st struct {
				Enable bool `json:"enable"`
				Done   bool `json:"done"`
			}
			runJSON(t, &st, "mbr", "status", "--password-file", pw, s.dev)
			if !st.Enable || !st.Done {
				t.Errorf("mbr status after --initialSetup: %+v", st)
			}
			// A power cycle locks range 1 and shows the (empty) shadow MBR;
			// sedctl unlocks and sets Done, as a PBA would.
			mustRun(t, "reset", "--power-cycle", s.dev)
			if s.readable(2048) {
				t.Error("range 1 readable after a power cycle")
			}
			mustRun(t, "range", "unlock", "1", "--password-file", pw, s.dev)
			mustRun(t, "mbr", "done", "on", "--password-file", pw, s.dev)
			if !s.readable(2048) {
				t.Error("range 1 still locked after sedctl unlocked it")
			}
			// sedctl's sedutil-style invocations work on it too, and
			// sedutil's own sequence still works after sedctl changed the
			// password.
			mustRun(t, "--setLockingRange", "1", "LK", "--password-file", pw, s.dev)
			if s.readable(2048) {
				t.Error("--setLockingRange 1 LK through sedctl: readable")
			}
			npw := secretFile(t, "changed by sedctl")
			mustRun(t, "--setAdmin1Pwd", "--password-file", pw, "--new-password-file", npw, s.dev)
			h.setLockingRange("changed by sedctl", 1, false)
			if !s.readable(2048) {
				t.Error("sedutil unlock with the password sedctl set: still locked")
			}
			// And sedctl reverts it with sedutil's SID password.
			mustRun(t, "revert", "--tper", "--yes", "--password-file", pw, s.dev)
			var m msidOut
			runJSON(t, &m, "msid", s.dev)
			mustRun(t, "setup", "--password-file", pw, s.dev)
		})
	}
}
