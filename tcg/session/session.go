package session

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// Params say which session to start (StartSession, Core 5.2.3.1,
// PROTOCOL.md 1.6).
type Params struct {
	// SP is the SP to open: method.AdminSP or method.LockingSP.
	SP method.UID
	// Write asks for a read-write session; an SP has at most one.
	Write bool
	// Authority is the authority to authenticate as
	// (HostSigningAuthority); the zero UID opens an anonymous (Anybody)
	// session.
	Authority method.UID
	// Challenge is the Authority's PIN (HostChallenge), already derived:
	// MSID and PSID as they are, passwords through tcg/hash. nil sends
	// none.
	Challenge hash.PIN
	// Timeout asks for a session timeout (SessionTimeout); 0 leaves the
	// drive's default.
	Timeout time.Duration
}

// A Session is an open session with one SP. Use it from one goroutine at a
// time, and Close it when done.
type Session struct {
	c         *Client
	sp, auth  method.UID
	write     bool
	hsn, tsn  uint32
	props     Properties
	mu        sync.Mutex
	ended     bool
	endReason string
}

// authorityName names a for messages.
func authorityName(a method.UID) string {
	if a.IsZero() {
		return "Anybody"
	}
	return uidName(a)
}

// uidName is u's friendly name, or its hex form.
func uidName(u method.UID) string {
	if n := u.Name(); n != "" {
		return n
	}
	return u.Hex()
}

func methodName(m method.MethodID) string {
	if n := m.Name(); n != "" {
		return n
	}
	return m.Hex()
}

// StartSession opens a session (StartSession / SyncSession), exchanging
// Properties first if that has not happened yet. A failed start returns the
// drive's status wrapped ("start session on LockingSP as Admin1:
// NOT_AUTHORIZED (0x01)") and no Session: there is nothing to end. It never
// retries: a wrong PIN counts toward the authority's TryLimit.
func (c *Client) StartSession(ctx context.Context, p Params) (*Session, error) {
	what := fmt.Sprintf("start session on %s as %s", uidName(p.SP), authorityName(p.Authority))
	if p.Challenge != nil && p.Authority.IsZero() {
		return nil, fmt.Errorf("%s: a PIN needs an authority to go with", what)
	}
	if p.Timeout < 0 || p.Timeout/time.Millisecond > 0xFFFFFFFF {
		return nil, fmt.Errorf("%s: session timeout %v out of range", what, p.Timeout)
	}
	props, err := c.Properties(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	c.mu.Lock()
	hsn := c.nextHSN
	c.nextHSN++
	if c.nextHSN == 0 {
		c.nextHSN = 1
	}
	c.mu.Unlock()

	sp := method.StartSessionParams{
		HostSessionID:        hsn,
		SPID:                 p.SP,
		Write:                p.Write,
		HostSigningAuthority: p.Authority,
		SessionTimeout:       uint32(p.Timeout / time.Millisecond),
	}
	if p.Challenge != nil {
		sp.HostChallenge = []byte(p.Challenge)
	}
	payload, err := method.NewStartSession(sp).Encode()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer clear(payload)
	if err := checkTokens(payload, props.TPer.MaxIndTokenSize); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	_, data, err := c.exchange(ctx, what, 0, 0, payload, props.TPer)
	if err != nil {
		return nil, err
	}
	r, err := method.ParseResult(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, ErrMalformed, err)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	gotHSN, tsn, err := method.ParseSyncSession(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, ErrMalformed, err)
	}
	if gotHSN != hsn {
		return nil, fmt.Errorf("%s: %w: SyncSession for host session %d; this host asked for %d", what, ErrMalformed, gotHSN, hsn)
	}
	s := &Session{c: c, sp: p.SP, auth: p.Authority, write: p.Write, hsn: hsn, tsn: tsn, props: *props}
	c.mu.Lock()
	c.sessions[s] = struct{}{}
	c.mu.Unlock()
	c.log.Debug("session started", "sp", uidName(p.SP), "authority", authorityName(p.Authority), "write", p.Write, "tsn", tsn, "hsn", hsn)
	return s, nil
}

// SP returns the session's SP.
func (s *Session) SP() method.UID { return s.sp }

// Authority returns the authority the session was started as (zero for
// Anybody).
func (s *Session) Authority() method.UID { return s.auth }

// Write reports whether the session is read-write.
func (s *Session) Write() bool { return s.write }

// Numbers returns the session's TPer and host session numbers.
func (s *Session) Numbers() (tsn, hsn uint32) { return s.tsn, s.hsn }

// Limits returns the limits that hold in the session.
func (s *Session) Limits() Properties { return s.props }

// Ended reports whether the session is over, and why: closed by the host,
// aborted by the drive, or ended by a call such as RevertSP.
func (s *Session) Ended() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended, s.endReason
}

func (s *Session) end(reason string) {
	s.mu.Lock()
	if !s.ended {
		s.ended, s.endReason = true, reason
	}
	s.mu.Unlock()
	s.c.mu.Lock()
	delete(s.c.sessions, s)
	s.c.mu.Unlock()
}

// endsSession reports whether a successful c makes the drive abort session
// s: Revert of the session's own SP (or ThisSP), and RevertSP (Core 5.3.3.10,
// Opal 5.1.3; PROTOCOL.md 1.11).
func (s *Session) endsSession(c method.Call) bool {
	switch c.Method {
	case method.RevertSP:
		return true
	case method.Revert:
		return c.Invoking == s.sp || c.Invoking == method.ThisSP
	}
	return false
}

// callError wraps a failed status with the call: "Set Locking_Range1:
// NOT_AUTHORIZED (0x01)".
func callError(c method.Call, err error) error {
	return fmt.Errorf("%s %s: %w", methodName(c.Method), uidName(c.Invoking), err)
}

// Call invokes one method and returns its result. A failed status is an
// error wrapping the [method.MethodStatus], with the method and object
// named; the Result is returned as well.
func (s *Session) Call(ctx context.Context, c method.Call) (method.Result, error) {
	rs, err := s.Calls(ctx, c)
	if len(rs) == 1 {
		return rs[0], err
	}
	return method.Result{}, err
}

// Get returns the cells cb of object or table obj.
func (s *Session) Get(ctx context.Context, obj method.UID, cb method.CellBlock) (method.Result, error) {
	return s.Call(ctx, method.NewGet(obj, cb))
}

// Set sets columns (token.Named(column, value)) of object obj.
func (s *Session) Set(ctx context.Context, obj method.UID, columns ...token.Value) error {
	_, err := s.Call(ctx, method.NewSet(obj, columns...))
	return err
}

// Authenticate authenticates authority with pin within the session
// (Authenticate on ThisSP, PROTOCOL.md 1.6), adding it to the session's
// authorities. The drive answers a wrong PIN with SUCCESS and False; that
// is returned as an error wrapping [method.StatusNotAuthorized]. It is one
// try toward the authority's TryLimit, and is never retried.
func (s *Session) Authenticate(ctx context.Context, authority method.UID, pin hash.PIN) error {
	proof := []byte(pin)
	if proof == nil {
		proof = []byte{}
	}
	r, err := s.Call(ctx, method.NewAuthenticate(authority, proof))
	if err != nil {
		return err
	}
	ok, err := r.Bool()
	if err != nil {
		return fmt.Errorf("Authenticate %s: %w: %w", authorityName(authority), ErrMalformed, err)
	}
	if !ok {
		return fmt.Errorf("Authenticate %s: the drive answered False: %w", authorityName(authority), method.StatusNotAuthorized)
	}
	return nil
}

// BatchSize returns how many method calls [Session.Calls] puts in one
// ComPacket: the drive's MaxMethods and the host's, as the drive accepted
// it.
func (s *Session) BatchSize() int {
	n := min(s.props.TPer.MaxMethods, s.props.Host.MaxMethods)
	return int(max(1, min(n, 64)))
}

// Calls invokes calls in order, several per ComPacket when the drive's and
// the host's MaxMethods allow (so that a short sequence costs one exchange),
// and returns the results of those that ran. It stops at the first failure,
// returned wrapped as for Call, and at anything that ends the session.
func (s *Session) Calls(ctx context.Context, calls ...method.Call) ([]method.Result, error) {
	var results []method.Result
	for len(calls) > 0 {
		if ok, why := s.Ended(); ok {
			return results, fmt.Errorf("%s %s: %w (%s)", methodName(calls[0].Method), uidName(calls[0].Invoking), ErrSessionEnded, why)
		}
		n := min(len(calls), s.BatchSize())
		payload, n, err := s.encodeBatch(calls[:n])
		if err != nil {
			return results, err
		}
		rs, err := s.exchangeBatch(ctx, calls[:n], payload)
		clear(payload)
		results = append(results, rs...)
		if err != nil {
			return results, err
		}
		calls = calls[n:]
	}
	return results, nil
}

// encodeBatch encodes as many leading calls as fit the drive's limits (at
// least one, or an error).
func (s *Session) encodeBatch(calls []method.Call) ([]byte, int, error) {
	var payload []byte
	for i, c := range calls {
		var err error
		start := len(payload)
		payload, err = c.AppendTokens(payload)
		if err != nil {
			clear(payload)
			return nil, 0, callError(c, err)
		}
		err = checkTokens(payload[start:], s.props.TPer.MaxIndTokenSize)
		if err == nil {
			err = checkFrame(len(payload), s.props.TPer)
		}
		if err != nil {
			if i == 0 {
				clear(payload)
				return nil, 0, callError(c, err)
			}
			clear(payload[start:])
			return payload[:start], i, nil
		}
	}
	return payload, len(calls), nil
}

// exchangeBatch sends the encoded calls and sorts out their results.
func (s *Session) exchangeBatch(ctx context.Context, calls []method.Call, payload []byte) ([]method.Result, error) {
	what := fmt.Sprintf("%s %s", methodName(calls[0].Method), uidName(calls[0].Invoking))
	if len(calls) > 1 {
		what = fmt.Sprintf("%s (and %d more calls)", what, len(calls)-1)
	}
	pkt, data, err := s.c.exchange(ctx, what, s.tsn, s.hsn, payload, s.props.TPer)
	if err != nil {
		return nil, err
	}
	if pkt.TSN != s.tsn || pkt.HSN != s.hsn {
		if pkt.TSN == 0 && pkt.HSN == 0 {
			// A Session Manager message: the drive closed a session.
			if r, err := method.ParseResult(data); err == nil {
				if h, t, err := method.ParseCloseSession(r); err == nil && h == s.hsn && t == s.tsn {
					s.end("aborted by the drive (CloseSession)")
					return nil, fmt.Errorf("%s: %w: the drive aborted the session", what, ErrSessionEnded)
				}
			}
		}
		return nil, fmt.Errorf("%s: %w: answer for session TSN %d HSN %d; this session is TSN %d HSN %d", what, ErrMalformed, pkt.TSN, pkt.HSN, s.tsn, s.hsn)
	}
	rs, err := splitResults(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, ErrMalformed, err)
	}
	var out []method.Result
	for i, r := range rs {
		if i >= len(calls) {
			return out, fmt.Errorf("%s: %w: %d results for %d calls", what, ErrMalformed, len(rs), len(calls))
		}
		c := calls[i]
		if r.NoStatus {
			s.end("ended by the drive (EndOfSession)")
			return out, callError(c, ErrSessionEnded)
		}
		out = append(out, r)
		if r.EndOfSession {
			s.end("ended by the drive (EndOfSession)")
		}
		if err := r.Err(); err != nil {
			return out, callError(c, err)
		}
		if s.endsSession(c) {
			s.end(methodName(c.Method) + " aborts the session")
		}
	}
	if len(out) < len(calls) {
		if ok, _ := s.Ended(); ok {
			return out, callError(calls[len(out)], ErrSessionEnded)
		}
		return out, fmt.Errorf("%s: %w: %d results for %d calls", what, ErrMalformed, len(out), len(calls))
	}
	return out, nil
}

// splitResults parses a response that may hold the results of several
// calls, each ending with EndOfData and its status list.
func splitResults(b []byte) ([]method.Result, error) {
	vs, err := token.Decode(b)
	if err != nil {
		return nil, err
	}
	var out []method.Result
	start := 0
	for i := 0; i < len(vs); i++ {
		if vs[i].Kind() != token.KindEndOfData || i+1 >= len(vs) {
			continue
		}
		end := i + 2
		for end < len(vs) && vs[end].Kind() == token.KindEndOfSession {
			end++
		}
		r, err := parseValues(vs[start:end])
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		start, i = end, end-1
	}
	if start < len(vs) || len(out) == 0 {
		r, err := parseValues(vs[start:])
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func parseValues(vs []token.Value) (method.Result, error) {
	b, err := token.Encode(vs...)
	if err != nil {
		return method.Result{}, err
	}
	return method.ParseResult(b)
}

// Close ends the session with EndOfSession (PROTOCOL.md 1.6) unless it has
// already ended: closed before, aborted by the drive, or ended by RevertSP
// or a Revert of its own SP. The session counts as ended afterwards even if
// the drive's answer is an error.
func (s *Session) Close(ctx context.Context) error {
	if ok, _ := s.Ended(); ok {
		return nil
	}
	s.end("closed by the host")
	what := fmt.Sprintf("end session on %s", uidName(s.sp))
	pkt, data, err := s.c.exchange(ctx, what, s.tsn, s.hsn, method.EndSession(), s.props.TPer)
	if err != nil {
		return err
	}
	if pkt.TSN != s.tsn || pkt.HSN != s.hsn {
		return fmt.Errorf("%s: %w: answer for session TSN %d HSN %d", what, ErrMalformed, pkt.TSN, pkt.HSN)
	}
	r, err := method.ParseResult(data)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", what, ErrMalformed, err)
	}
	if !r.EndOfSession {
		if err := r.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return fmt.Errorf("%s: %w: no EndOfSession in the answer", what, ErrMalformed)
	}
	return nil
}

// endAll marks every open session of the Client ended (after a stack
// reset).
func (c *Client) endAll(reason string) {
	c.mu.Lock()
	ss := make([]*Session, 0, len(c.sessions))
	for s := range c.sessions {
		ss = append(ss, s)
	}
	c.mu.Unlock()
	for _, s := range ss {
		s.end(reason)
	}
}
