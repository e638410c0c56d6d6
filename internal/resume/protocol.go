package resume

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
)

// The daemon's socket protocol: one JSON object per line each way, a
// request then its response, any number of times on one connection.
//
//	{"op":"ping"}
//	{"op":"register","device":"/dev/nvme0n1","ranges":[1,2],"authority":"00000009:00010001","pin":"<base64>","source":"socket"}
//	{"op":"register","device":"sim:/run/sedsim.sock","all":true,"authority":"...","pin":"..."}
//	{"op":"unregister","device":"/dev/nvme0n1","ranges":[2]}   (no ranges: all of the device's)
//	{"op":"status"}
//	{"op":"notify","event":"post"}                              ("pre" before a suspend)
//
// Every response is {"ok":true,...} or {"ok":false,"error":"..."}; status
// and notify add "status" and "run". No response ever holds a key.

// Ops.
const (
	OpPing       = "ping"
	OpRegister   = "register"
	OpUnregister = "unregister"
	OpStatus     = "status"
	OpNotify     = "notify"
)

// Notify events.
const (
	EventPost = "post" // after a resume: unlock now
	EventPre  = "pre"  // before a suspend
)

// maxLine bounds a protocol line (a register request with a 256-byte key
// and 9 ranges is well under 1 KiB; a status response for 256 entries
// under 64 KiB).
const maxLine = 256 << 10

// Request is one client request.
type Request struct {
	Op        string   `json:"op"`
	Device    string   `json:"device,omitempty"`
	Ranges    []uint32 `json:"ranges,omitempty"`
	All       bool     `json:"all,omitempty"`
	Authority string   `json:"authority,omitempty"` // UID in hex, method.ParseUID form
	// PIN is the derived PIN (never a password), base64 in JSON; only in
	// register. It is a plain []byte so that it encodes; hash.PIN would
	// redact itself.
	PIN    []byte `json:"pin,omitempty"`
	Event  string `json:"event,omitempty"`
	Source string `json:"source,omitempty"` // where the key came from, shown by status
}

// Response answers a Request.
type Response struct {
	OK     bool          `json:"ok"`
	Error  string        `json:"error,omitempty"`
	Status *DaemonStatus `json:"status,omitempty"`
	Run    *RunReport    `json:"run,omitempty"`
}

// DaemonStatus is what the daemon holds, without the keys.
type DaemonStatus struct {
	PID       int           `json:"pid"`
	KeyMemory string        `json:"key_memory"` // memfd_secret, mlock or heap
	LockedAll bool          `json:"locked_all"` // mlockall worked
	Entries   []EntryStatus `json:"entries"`
	// Unarmed lists configured entries the daemon could not arm by
	// itself (prompt mode, unreadable key file...) and why.
	Unarmed []UnarmedEntry `json:"unarmed,omitempty"`
	LastRun *RunReport     `json:"last_run,omitempty"`
}

// EntryStatus is one registered (device, authority) and its ranges.
type EntryStatus struct {
	Device    string    `json:"device"`
	Authority string    `json:"authority"`
	Ranges    []uint32  `json:"ranges"`
	State     string    `json:"state"` // StateArmed or StateFailed
	Error     string    `json:"error,omitempty"`
	Source    string    `json:"source,omitempty"`
	Since     time.Time `json:"since"`
	LastOK    time.Time `json:"last_unlock,omitzero"`
}

// Entry states.
const (
	StateArmed  = "armed"
	StateFailed = "failed" // wrong key or no rights: not retried until registered again
)

// UnarmedEntry is a configured entry the daemon has no key for.
type UnarmedEntry struct {
	Device    string `json:"device"`
	Authority string `json:"authority"`
	Reason    string `json:"reason"`
}

// RunReport is the result of one resume unlock.
type RunReport struct {
	Trigger   string        `json:"trigger"` // "notify" or "detect"
	Start     time.Time     `json:"start"`
	Duration  time.Duration `json:"duration_ns"`
	Coalesced bool          `json:"coalesced,omitempty"` // this trigger joined an earlier run
	Drives    []DriveReport `json:"drives"`
}

// OK reports whether every drive of the run was unlocked.
func (r *RunReport) OK() bool {
	for _, d := range r.Drives {
		if d.Error != "" || d.Skipped {
			return false
		}
	}
	return true
}

// Exchanges is the total of the drives' exchanges.
func (r *RunReport) Exchanges() int {
	n := 0
	for _, d := range r.Drives {
		n += d.Exchanges
	}
	return n
}

// DriveReport is one session of a run: a device and an authority.
type DriveReport struct {
	Device    string   `json:"device"`
	Authority string   `json:"authority"`
	Ranges    []uint32 `json:"ranges"`
	MBRDone   bool     `json:"mbr_done,omitempty"` // set MBRControl Done
	Exchanges int      `json:"exchanges"`
	Error     string   `json:"error,omitempty"`
	Skipped   bool     `json:"skipped,omitempty"` // marked failed earlier: not tried
}

// parseAuthority reads the protocol's authority field.
func parseAuthority(s string) (method.UID, error) {
	u, err := method.ParseUID(s)
	if err != nil {
		return method.UID{}, fmt.Errorf("authority %q: %w", s, err)
	}
	if u.IsZero() || u == method.Anybody {
		return method.UID{}, fmt.Errorf("authority %q: unlocking needs an authority with a PIN", s)
	}
	return u, nil
}

// authName is an authority for people: "Admin1", "User2".
func authName(u method.UID) string { return opal.Auth{Authority: u}.String() }

// readLine reads one line of at most maxLine bytes (without the newline).
// The returned slice is the caller's to wipe.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > maxLine+1 {
			clear(line)
			return nil, fmt.Errorf("protocol line over %d bytes", maxLine)
		}
		line = append(line, frag...)
		clear(frag)
		if err == nil {
			return line[:len(line)-1], nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				clear(line)
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// decodeRequest parses a request line strictly.
func decodeRequest(line []byte) (Request, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		clear(req.PIN)
		return Request{}, fmt.Errorf("bad request: %w", err)
	}
	if dec.More() {
		clear(req.PIN)
		return Request{}, errors.New("bad request: more than one JSON value on the line")
	}
	return req, nil
}

// encodeRequest renders req as a line. The PIN is appended by hand so that
// no buffer but the returned one (which the caller wipes) holds it.
func encodeRequest(req Request) ([]byte, error) {
	pin := req.PIN
	req.PIN = nil
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if pin == nil {
		return append(b, '\n'), nil
	}
	out := make([]byte, 0, len(b)+base64.StdEncoding.EncodedLen(len(pin))+12)
	out = append(out, b[:len(b)-1]...)
	out = append(out, `,"pin":"`...)
	out = base64.StdEncoding.AppendEncode(out, pin)
	out = append(out, "\"}\n"...)
	return out, nil
}

// Bounds of a call when the caller's context has none, so that a socket
// whose listener never answers (a hung daemon, another program) cannot hang
// status, enable or disable. A register or unregister may wait for a
// running unlock (DaemonOptions.UnlockTimeout, 30 s) and then open a device.
var (
	callTimeout       = 10 * time.Second
	callChangeTimeout = 2 * time.Minute
)

// call sends one request to the daemon's socket and reads the response.
func call(ctx context.Context, socket string, req Request) (*Response, error) {
	if _, ok := ctx.Deadline(); !ok {
		limit := callTimeout
		if req.Op != OpStatus && req.Op != OpPing {
			limit = callChangeTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, limit,
			fmt.Errorf("the resume daemon on %s did not answer within %v", socket, limit))
		defer cancel()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if errors.Is(err, os.ErrPermission) {
		// It may well be running: the socket is root's (mode 0600).
		return nil, fmt.Errorf("the resume daemon's socket %s: %w (it is root's: run sedctl as root)", socket, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (%s): %w", ErrNoDaemon, socket, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	line, err := encodeRequest(req)
	if err != nil {
		return nil, err
	}
	_, werr := c.Write(line)
	clear(line)
	// A daemon that refuses the connection answers and closes at once,
	// possibly before the request is written: read its answer anyway.
	resp, err := readLine(bufio.NewReader(c))
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			<-ctx.Done() // the connection's deadline is the context's: it ends now
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if werr != nil {
			err = werr
		}
		return nil, fmt.Errorf("resume daemon %s: %w", socket, err)
	}
	var r Response
	if err := json.Unmarshal(resp, &r); err != nil {
		return nil, fmt.Errorf("resume daemon %s: bad response: %w", socket, err)
	}
	if !r.OK {
		return &r, fmt.Errorf("resume daemon: %s", r.Error)
	}
	return &r, nil
}

// ErrNoDaemon: nothing answers on the daemon's socket.
var ErrNoDaemon = errors.New("the resume daemon is not running (start it with: systemctl start sedctl-resume.service; install it with: sedctl resume install)")

// Peer is the process at the other end of a connection.
type Peer struct {
	PID      int32
	UID, GID uint32
}

// checkPeer admits only processes running as uid (root: 0). The socket's
// mode 0600 already keeps others out; this holds even if the mode or the
// directory were loosened.
func checkPeer(p Peer, uid uint32) error {
	if p.UID != uid {
		return fmt.Errorf("connection from pid %d uid %d refused: only uid %d may use the resume daemon", p.PID, p.UID, uid)
	}
	return nil
}
