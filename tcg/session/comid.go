package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// ComID management requests (IF-SEND protocol 2 on the target ComID; Core
// 3.3.4.7, PROTOCOL.md 1.17).
const (
	RequestVerifyComIDValid uint32 = 1
	RequestStackReset       uint32 = 2
)

// ComIDState is the state VERIFY_COMID_VALID reports (Core 3.3.4.7.4).
type ComIDState uint32

// ComID states.
const (
	ComIDInvalid    ComIDState = 0
	ComIDInactive   ComIDState = 1
	ComIDIssued     ComIDState = 2
	ComIDAssociated ComIDState = 3
)

// Valid reports whether the ComID can carry sessions (issued or
// associated).
func (s ComIDState) Valid() bool { return s == ComIDIssued || s == ComIDAssociated }

func (s ComIDState) String() string {
	switch s {
	case ComIDInvalid:
		return "invalid"
	case ComIDInactive:
		return "inactive"
	case ComIDIssued:
		return "issued"
	case ComIDAssociated:
		return "associated"
	}
	return fmt.Sprintf("state %d", uint32(s))
}

// ErrStackResetFailed: the drive reports that STACK_RESET failed.
var ErrStackResetFailed = errors.New("drive reports STACK_RESET failed")

// comIDRequestLen is the transfer length of a ComID management request:
// ComID(2) Extension(2) RequestCode(4), padded to a block.
const comIDRequestLen = transferBlock

// GetComID asks the drive for a dynamic ComID (IF-RECV protocol 2, SPSP 0;
// PROTOCOL.md 1.17). Drives with static ComIDs need none of this.
func (c *Client) GetComID(ctx context.Context) (comID, ext uint16, err error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	c.xmu.Lock()
	defer c.xmu.Unlock()
	buf := make([]byte, transferBlock)
	n, err := c.ifRecv(ctx, ProtocolComID, 0, buf)
	if err != nil {
		return 0, 0, fmt.Errorf("GET_COMID: %w", err)
	}
	if n < 4 {
		return 0, 0, fmt.Errorf("GET_COMID: %w: %d-byte answer", ErrMalformed, n)
	}
	return binary.BigEndian.Uint16(buf), binary.BigEndian.Uint16(buf[2:]), nil
}

// VerifyComID asks whether comID (0: the Client's) is valid
// (VERIFY_COMID_VALID).
func (c *Client) VerifyComID(ctx context.Context, comID uint16) (ComIDState, error) {
	data, err := c.comIDRequest(ctx, "VERIFY_COMID_VALID", comID, RequestVerifyComIDValid)
	if err != nil {
		return 0, err
	}
	if len(data) < 4 {
		return 0, fmt.Errorf("VERIFY_COMID_VALID: %w: %d bytes of data", ErrMalformed, len(data))
	}
	return ComIDState(binary.BigEndian.Uint32(data)), nil
}

// StackReset resets the Client's ComID (STACK_RESET, Core 3.3.4.7.5): the
// drive aborts every session and drops every queued response on it,
// without a power cycle. It is the way out of SP_BUSY left by a host that
// died in a session. The Client's own sessions count as ended afterwards,
// and Properties are exchanged again before the next session.
func (c *Client) StackReset(ctx context.Context) error {
	data, err := c.comIDRequest(ctx, "STACK_RESET", 0, RequestStackReset)
	if err != nil {
		return err
	}
	if len(data) < 4 {
		return fmt.Errorf("STACK_RESET: %w: %d bytes of data", ErrMalformed, len(data))
	}
	c.endAll("ended by STACK_RESET")
	c.Renegotiate()
	if st := binary.BigEndian.Uint32(data); st != 0 {
		return fmt.Errorf("STACK_RESET: %w (status %d)", ErrStackResetFailed, st)
	}
	return nil
}

// TPerResetComID is the ComID of the TPer Reset command (IF-SEND protocol
// 2; Opal 2.01, PROTOCOL.md 1.17).
const TPerResetComID uint16 = 0x0004

// TPerReset sends the programmatic TPer reset (IF-SEND protocol 2, ComID
// 4): the drive ends every session and applies the Programmatic reset type
// of LockOnReset and DoneOnReset. Drives accept it only when TPerInfo's
// ProgrammaticResetEnable is True; others refuse the command. The Client's
// sessions count as ended, and Properties are exchanged again.
func (c *Client) TPerReset(ctx context.Context) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	c.xmu.Lock()
	err := c.ifSend(ctx, ProtocolComID, TPerResetComID, make([]byte, transferBlock))
	c.stale = true
	c.xmu.Unlock()
	if err != nil {
		return fmt.Errorf("TPer reset: %w", err)
	}
	c.endAll("ended by TPer reset")
	c.Renegotiate()
	return nil
}

// comIDRequest sends a ComID management request and polls for its answer
// while the drive reports it pending (no data yet). It returns the answer's
// data.
func (c *Client) comIDRequest(ctx context.Context, what string, comID uint16, code uint32) ([]byte, error) {
	if comID == 0 {
		var err error
		if comID, err = c.ComID(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	c.xmu.Lock()
	defer c.xmu.Unlock()
	req := make([]byte, comIDRequestLen)
	binary.BigEndian.PutUint16(req, comID)
	binary.BigEndian.PutUint32(req[4:], code)
	if err := c.ifSend(ctx, ProtocolComID, comID, req); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	delay := c.opts.PollInterval
	buf := make([]byte, transferBlock)
	for {
		n, err := c.ifRecv(ctx, ProtocolComID, comID, buf)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if n < 12 {
			return nil, fmt.Errorf("%s: %w: %d-byte answer", what, ErrMalformed, n)
		}
		gotID := binary.BigEndian.Uint16(buf)
		gotCode := binary.BigEndian.Uint32(buf[4:])
		avail := int(binary.BigEndian.Uint16(buf[10:]))
		if gotCode == 0 && avail == 0 {
			// "No response available" (request code 0): pending.
			gotCode = code
		}
		if gotID != comID || gotCode != code {
			return nil, fmt.Errorf("%s: %w: answer for ComID %#04x request %d", what, ErrMalformed, gotID, gotCode)
		}
		if avail > 0 {
			if 12+avail > n {
				return nil, fmt.Errorf("%s: %w: %d bytes of data announced, %d received", what, ErrMalformed, avail, n-12)
			}
			return append([]byte(nil), buf[12:12+avail]...), nil
		}
		// Pending: no data yet.
		if err := sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		delay = min(2*delay, c.opts.MaxPollInterval)
	}
}
