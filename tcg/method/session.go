package method

import (
	"fmt"
	"math"

	"github.com/shiftlock/shiftlock/tcg/token"
)

// Parameter names of the Session Manager methods (PROTOCOL.md 1.6).
const (
	// Properties
	ParamHostProperties = 0

	// StartSession, after the required HostSessionID, SPID, Write
	ParamHostChallenge         = 0 // the password (PIN) of HostSigningAuthority
	ParamHostExchangeAuthority = 1
	ParamHostExchangeCert      = 2
	ParamHostSigningAuthority  = 3 // the authority to authenticate as
	ParamHostSigningCert       = 4
	ParamSessionTimeout        = 5
	ParamTransTimeout          = 6
	ParamInitialCredit         = 7
	ParamSignedHash            = 8
)

// Property names the TPer reports in its Properties answer; the host sends
// a subset (PROTOCOL.md 1.6).
const (
	PropMaxComPacketSize         = "MaxComPacketSize"
	PropMaxResponseComPacketSize = "MaxResponseComPacketSize"
	PropMaxPacketSize            = "MaxPacketSize"
	PropMaxIndTokenSize          = "MaxIndTokenSize"
	PropMaxAggTokenSize          = "MaxAggTokenSize"
	PropMaxPackets               = "MaxPackets"
	PropMaxSubpackets            = "MaxSubpackets"
	PropMaxMethods               = "MaxMethods"
	PropMaxSessions              = "MaxSessions"
	PropMaxReadSessions          = "MaxReadSessions"
	PropMaxAuthentications       = "MaxAuthentications"
	PropMaxTransactionLimit      = "MaxTransactionLimit"
	PropContinuedTokens          = "ContinuedTokens"
	PropSequenceNumbers          = "SequenceNumbers"
	PropAckNak                   = "AckNak"
	PropAsynchronous             = "Asynchronous"
	PropDefSessionTimeout        = "DefSessionTimeout"
	PropMaxSessionTimeout        = "MaxSessionTimeout"
	PropMinSessionTimeout        = "MinSessionTimeout"
	PropDefTransTimeout          = "DefTransTimeout"
	PropMaxTransTimeout          = "MaxTransTimeout"
	PropMinTransTimeout          = "MinTransTimeout"
	PropMaxComIDTime             = "MaxComIDTime"
)

// A Property is one Session Manager property: a name and an integer value.
type Property struct {
	Name  string
	Value uint64
}

// A PropertyList is a list of properties in wire order.
type PropertyList []Property

// Get returns the value of the first property called name.
func (l PropertyList) Get(name string) (uint64, bool) {
	for _, p := range l {
		if p.Name == name {
			return p.Value, true
		}
	}
	return 0, false
}

// value returns l as a list of (name, value) named values.
func (l PropertyList) value() token.Value {
	items := make([]token.Value, len(l))
	for i, p := range l {
		items[i] = token.Pair(token.Text(p.Name), token.Uint(p.Value))
	}
	return token.List(items...)
}

// propertiesOf reads a list of named properties. Items that are not a byte
// string name with an integer value are skipped: vendors add their own.
func propertiesOf(v token.Value) (PropertyList, error) {
	items, err := v.AsList()
	if err != nil {
		return nil, err
	}
	l := make(PropertyList, 0, len(items))
	for _, it := range items {
		name, val, ok := it.NameValue()
		if !ok || name.Kind() != token.KindBytes {
			continue
		}
		u, err := val.AsUint()
		if err != nil || val.Kind() == token.KindBytes {
			continue
		}
		n, _ := name.AsBytes()
		l = append(l, Property{Name: string(n), Value: u})
	}
	return l, nil
}

// NewProperties returns the Session Manager Properties call, sending the
// host's properties if there are any (sedutil sends MaxComPacketSize 2048,
// MaxPacketSize 2028, MaxIndTokenSize 1992, MaxPackets 1, MaxSubpackets 1,
// MaxMethods 1).
func NewProperties(host PropertyList) Call {
	c := NewCall(SMUID, Properties)
	if len(host) > 0 {
		c.Args = []token.Value{token.Named(ParamHostProperties, host.value())}
	}
	return c
}

// ParsePropertiesCall returns the host properties of a Properties call (the
// TPer side); none is an empty list.
func ParsePropertiesCall(c Call) (PropertyList, error) {
	if c.Method != Properties {
		return nil, fmt.Errorf("method: %v is not Properties: %w", c, StatusInvalidParameter)
	}
	if len(c.Required()) != 0 {
		return nil, fmt.Errorf("method: Properties takes no required parameters: %w", StatusInvalidParameter)
	}
	v, ok := c.Arg(ParamHostProperties)
	if !ok {
		return PropertyList{}, nil
	}
	l, err := propertiesOf(v)
	if err != nil {
		return nil, fmt.Errorf("method: Properties HostProperties: %v: %w", err, StatusInvalidParameter)
	}
	return l, nil
}

// PropertiesResult returns the TPer's answer to Properties: its own
// properties and the host properties it accepted (PROTOCOL.md 1.6).
func PropertiesResult(tper, host PropertyList) Result {
	return Result{
		HasCall:  true,
		Invoking: SMUID,
		Method:   Properties,
		Values:   []token.Value{tper.value(), token.Named(ParamHostProperties, host.value())},
	}
}

// ParsePropertiesResult returns the TPer's properties and the echo of the
// host's from a Properties response. A missing echo gives a nil host list
// (a WD drive answers that way, go-tcg-storage issue #116). A failed
// response returns its status error.
func ParsePropertiesResult(r Result) (tper, host PropertyList, err error) {
	if err := r.Err(); err != nil {
		return nil, nil, fmt.Errorf("method: Properties: %w", err)
	}
	if r.HasCall && r.Method != Properties {
		return nil, nil, malformed("Properties answered by %v", r.Method)
	}
	if len(r.Values) == 0 {
		return nil, nil, malformed("Properties result without TPer properties")
	}
	if tper, err = propertiesOf(r.Values[0]); err != nil {
		return nil, nil, malformed("Properties TPer properties: %v", err)
	}
	if v, ok := token.List(r.Values[1:]...).Lookup(ParamHostProperties); ok {
		if host, err = propertiesOf(v); err != nil {
			return nil, nil, malformed("Properties host properties: %v", err)
		}
	}
	return tper, host, nil
}

// StartSessionParams are the parameters of StartSession (PROTOCOL.md 1.6).
// Zero optional fields are omitted from the call. Its String method hides
// HostChallenge.
type StartSessionParams struct {
	HostSessionID uint32 // HSN, chosen by the host (sedutil uses 0x69)
	SPID          UID    // AdminSP or LockingSP
	Write         bool   // a read-write session

	HostChallenge         []byte // the PIN; nil = omitted (a non-nil empty PIN is sent as a zero-length atom)
	HostExchangeAuthority UID
	HostSigningAuthority  UID    // the authority to authenticate as; zero = Anybody session
	SessionTimeout        uint32 // milliseconds
	TransTimeout          uint32
	InitialCredit         uint32
}

// String describes p without revealing HostChallenge.
func (p StartSessionParams) String() string {
	s := fmt.Sprintf("StartSession{HSN %d, SP %v, write %v", p.HostSessionID, p.SPID, p.Write)
	if !p.HostSigningAuthority.IsZero() {
		s += fmt.Sprintf(", as %v", p.HostSigningAuthority)
	}
	if p.HostChallenge != nil {
		s += ", with challenge"
	}
	return s + "}"
}

// GoString is String, so that %#v does not reveal HostChallenge either.
func (p StartSessionParams) GoString() string { return p.String() }

// NewStartSession returns the StartSession call for p.
func NewStartSession(p StartSessionParams) Call {
	args := []token.Value{token.Uint(uint64(p.HostSessionID)), p.SPID.Value(), token.Bool(p.Write)}
	if p.HostChallenge != nil {
		args = append(args, token.Named(ParamHostChallenge, token.Bytes(p.HostChallenge)))
	}
	if !p.HostExchangeAuthority.IsZero() {
		args = append(args, token.Named(ParamHostExchangeAuthority, p.HostExchangeAuthority.Value()))
	}
	if !p.HostSigningAuthority.IsZero() {
		args = append(args, token.Named(ParamHostSigningAuthority, p.HostSigningAuthority.Value()))
	}
	for _, o := range []struct {
		name uint64
		v    uint32
	}{{ParamSessionTimeout, p.SessionTimeout}, {ParamTransTimeout, p.TransTimeout}, {ParamInitialCredit, p.InitialCredit}} {
		if o.v != 0 {
			args = append(args, token.Named(o.name, token.Uint(uint64(o.v))))
		}
	}
	return NewCall(SMUID, StartSession, args...)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("method: %s: %w", fmt.Sprintf(format, args...), StatusInvalidParameter)
}

func uint32Of(v token.Value) (uint32, error) {
	if v.Kind() == token.KindBytes {
		return 0, fmt.Errorf("%v is not an integer", v.Kind())
	}
	u, err := v.AsUint()
	if err != nil {
		return 0, err
	}
	if u > math.MaxUint32 {
		return 0, fmt.Errorf("%d does not fit 32 bits", u)
	}
	return uint32(u), nil
}

// ParseStartSession returns the parameters of a StartSession call (the TPer
// side). Errors wrap [StatusInvalidParameter]; certificates and SignedHash
// (names 2, 4, 8) are not supported and rejected like unknown names.
func ParseStartSession(c Call) (StartSessionParams, error) {
	var p StartSessionParams
	if c.Method != StartSession {
		return p, invalid("%v is not StartSession", c)
	}
	req := c.Required()
	if len(req) != 3 {
		return p, invalid("StartSession with %d required parameters; want HostSessionID, SPID, Write", len(req))
	}
	var err error
	if p.HostSessionID, err = uint32Of(req[0]); err != nil {
		return p, invalid("StartSession HostSessionID: %v", err)
	}
	if p.SPID, err = UIDFromValue(req[1]); err != nil {
		return p, invalid("StartSession SPID: %v", err)
	}
	if req[2].Kind() == token.KindBytes {
		return p, invalid("StartSession Write is a byte sequence")
	}
	if p.Write, err = req[2].AsBool(); err != nil {
		return p, invalid("StartSession Write: %v", err)
	}
	for _, a := range c.Args[len(req):] {
		name, v, ok := a.NameValue()
		if !ok {
			return p, invalid("StartSession: %v after the optional parameters", a.Kind())
		}
		n, err := uint32Of(name)
		if err != nil {
			return p, invalid("StartSession parameter name %v", name)
		}
		switch n {
		case ParamHostChallenge:
			if p.HostChallenge, err = v.AsBytes(); err != nil {
				return p, invalid("StartSession HostChallenge: %v", err)
			}
		case ParamHostExchangeAuthority:
			if p.HostExchangeAuthority, err = UIDFromValue(v); err != nil {
				return p, invalid("StartSession HostExchangeAuthority: %v", err)
			}
		case ParamHostSigningAuthority:
			if p.HostSigningAuthority, err = UIDFromValue(v); err != nil {
				return p, invalid("StartSession HostSigningAuthority: %v", err)
			}
		case ParamSessionTimeout:
			if p.SessionTimeout, err = uint32Of(v); err != nil {
				return p, invalid("StartSession SessionTimeout: %v", err)
			}
		case ParamTransTimeout:
			if p.TransTimeout, err = uint32Of(v); err != nil {
				return p, invalid("StartSession TransTimeout: %v", err)
			}
		case ParamInitialCredit:
			if p.InitialCredit, err = uint32Of(v); err != nil {
				return p, invalid("StartSession InitialCredit: %v", err)
			}
		default:
			return p, invalid("StartSession parameter %d not supported", n)
		}
	}
	return p, nil
}

// SyncSessionResult returns the TPer's answer to a successful StartSession:
// SyncSession with the host's session number and the TPer's, which must not
// be zero (the kernel rejects 0).
func SyncSessionResult(hsn, tsn uint32) Result {
	return Result{
		HasCall:  true,
		Invoking: SMUID,
		Method:   SyncSession,
		Values:   []token.Value{token.Uint(uint64(hsn)), token.Uint(uint64(tsn))},
	}
}

// FailedSessionResult returns the TPer's answer to a StartSession that
// failed with status s: SyncSession with an empty parameter list.
func FailedSessionResult(s MethodStatus) Result {
	return Result{HasCall: true, Invoking: SMUID, Method: SyncSession, Values: []token.Value{}, Status: s}
}

// ParseSyncSession returns the host and TPer session numbers from the
// response to StartSession (the host side). A failed response returns its
// status error (StatusNotAuthorized for a wrong password,
// StatusAuthorityLockedOut, StatusSPBusy, ...). Optional SyncSession
// parameters after the two numbers are ignored; a TSN or HSN of 0 is an
// error.
func ParseSyncSession(r Result) (hsn, tsn uint32, err error) {
	if err := r.Err(); err != nil {
		return 0, 0, fmt.Errorf("method: StartSession: %w", err)
	}
	return sessionNumbers(r, SyncSession)
}

func sessionNumbers(r Result, m MethodID) (hsn, tsn uint32, err error) {
	if r.HasCall && r.Method != m {
		return 0, 0, malformed("%v expected, got %v", m.Name(), r.Method)
	}
	if len(r.Values) < 2 {
		return 0, 0, malformed("%v with %d values; want HostSessionID, SPSessionID", m.Name(), len(r.Values))
	}
	if hsn, err = uint32Of(r.Values[0]); err != nil {
		return 0, 0, malformed("%v HostSessionID: %v", m.Name(), err)
	}
	if tsn, err = uint32Of(r.Values[1]); err != nil {
		return 0, 0, malformed("%v SPSessionID: %v", m.Name(), err)
	}
	if hsn == 0 || tsn == 0 {
		return 0, 0, malformed("%v with HSN %d, TSN %d; both must be non-zero", m.Name(), hsn, tsn)
	}
	return hsn, tsn, nil
}

// CloseSessionResult returns the message a TPer sends, on Session Manager
// ComPackets, to report that it aborted session (hsn, tsn).
func CloseSessionResult(hsn, tsn uint32) Result {
	return Result{
		HasCall:  true,
		Invoking: SMUID,
		Method:   CloseSession,
		Values:   []token.Value{token.Uint(uint64(hsn)), token.Uint(uint64(tsn))},
	}
}

// ParseCloseSession returns the session numbers of a CloseSession message
// from the TPer.
func ParseCloseSession(r Result) (hsn, tsn uint32, err error) {
	if !r.HasCall || r.Method != CloseSession {
		return 0, 0, malformed("not a CloseSession message")
	}
	return sessionNumbers(r, CloseSession)
}

// EndSession returns the token stream that ends a session: the lone
// EndOfSession token, sent in the session's own Packet. The TPer echoes it
// (see [Result.NoStatus]).
func EndSession() []byte { return []byte{token.TagEndOfSession} }
