package session

import (
	"context"
	"errors"
	"fmt"

	"github.com/shiftlock/shiftlock/tcg/method"
)

// Limits are the communication limits of one side (Core 5.2.2.1,
// PROTOCOL.md 1.6): for the drive, what it accepts from the host; for the
// host, what the drive agreed to send.
type Limits struct {
	MaxComPacketSize uint64
	// MaxResponseComPacketSize is the largest response the drive sends
	// (drive side only; 0 if it does not say).
	MaxResponseComPacketSize uint64
	MaxPacketSize            uint64
	MaxIndTokenSize          uint64 // the largest single token, atom header included
	MaxAggTokenSize          uint64
	MaxPackets               uint64 // per ComPacket
	MaxSubpackets            uint64 // per Packet
	MaxMethods               uint64 // per ComPacket
}

// CoreMinimums are the limits every TPer and host supports, which hold
// before Properties is exchanged (Core Table 168, PROTOCOL.md 1.6).
var CoreMinimums = Limits{
	MaxComPacketSize: 1024,
	MaxPacketSize:    1004,
	MaxIndTokenSize:  968,
	MaxAggTokenSize:  968,
	MaxPackets:       1,
	MaxSubpackets:    1,
	MaxMethods:       1,
}

// DefaultHostProperties are what a Client tells the drive it can receive:
// 64 KiB ComPackets (so MBR and DataStore reads come in large chunks), one
// Packet and SubPacket, and up to 8 methods per ComPacket (results of a
// batch of calls, see [Session.Calls]). The drive answers with the values it
// accepts.
var DefaultHostProperties = method.PropertyList{
	{Name: method.PropMaxComPacketSize, Value: 65536},
	{Name: method.PropMaxPacketSize, Value: 65516},
	{Name: method.PropMaxIndTokenSize, Value: 65480},
	{Name: method.PropMaxPackets, Value: 1},
	{Name: method.PropMaxSubpackets, Value: 1},
	{Name: method.PropMaxMethods, Value: 8},
}

// Properties are the outcome of the Properties exchange.
type Properties struct {
	// TPer limits every request the Client sends.
	TPer Limits
	// Host are the host limits the drive accepted (the echo of the host
	// properties); the Core minimums where it echoed none.
	Host Limits
	// TPerProperties and HostProperties are the lists as the drive sent
	// them (nil after a fallback).
	TPerProperties method.PropertyList
	HostProperties method.PropertyList
	// Fallback is why the Client uses the Core minimums instead: the
	// drive refused Properties or answered badly. Nil after a good
	// exchange. With Options.NoProperties it is ErrNotExchanged.
	Fallback error
}

// ErrNotExchanged is Properties.Fallback when Options.NoProperties is set.
var ErrNotExchanged = errors.New("properties not exchanged (disabled by the host)")

// limitsOf reads l over base: a property the list lacks, or reports as 0,
// keeps base's value.
func limitsOf(l method.PropertyList, base Limits) Limits {
	for _, f := range []struct {
		name string
		dst  *uint64
	}{
		{method.PropMaxComPacketSize, &base.MaxComPacketSize},
		{method.PropMaxResponseComPacketSize, &base.MaxResponseComPacketSize},
		{method.PropMaxPacketSize, &base.MaxPacketSize},
		{method.PropMaxIndTokenSize, &base.MaxIndTokenSize},
		{method.PropMaxAggTokenSize, &base.MaxAggTokenSize},
		{method.PropMaxPackets, &base.MaxPackets},
		{method.PropMaxSubpackets, &base.MaxSubpackets},
		{method.PropMaxMethods, &base.MaxMethods},
	} {
		if v, ok := l.Get(f.name); ok && v != 0 {
			*f.dst = v
		}
	}
	return base
}

// Properties returns the negotiated limits, running the Session Manager
// Properties exchange (Core 5.2.2.1) the first time it is needed. A drive
// that refuses Properties or answers badly is not an error: the Client then
// uses the Core minimums, and Properties.Fallback says why. Only a failure
// of the context (or a transport error that ends it) is returned.
func (c *Client) Properties(ctx context.Context) (*Properties, error) {
	c.mu.Lock()
	p := c.props
	c.mu.Unlock()
	if p != nil {
		return p, nil
	}
	if c.opts.NoProperties {
		p = &Properties{TPer: CoreMinimums, Host: CoreMinimums, Fallback: ErrNotExchanged}
	} else {
		var err error
		if p, err = c.exchangeProperties(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			c.log.Warn("Properties exchange failed; using the Core minimum limits", "err", err)
			p = &Properties{TPer: CoreMinimums, Host: CoreMinimums, Fallback: err}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.props == nil {
		c.props = p
	}
	return c.props, nil
}

func (c *Client) exchangeProperties(ctx context.Context) (*Properties, error) {
	payload, err := method.NewProperties(c.opts.HostProperties).Encode()
	if err != nil {
		return nil, fmt.Errorf("properties: %w", err)
	}
	// Before Properties, only the Core minimums hold.
	if err := checkTokens(payload, CoreMinimums.MaxIndTokenSize); err != nil {
		return nil, fmt.Errorf("properties: %w", err)
	}
	_, data, err := c.exchange(ctx, "Properties", 0, 0, payload, CoreMinimums)
	if err != nil {
		return nil, err
	}
	r, err := method.ParseResult(data)
	if err != nil {
		return nil, fmt.Errorf("properties: %w: %w", ErrMalformed, err)
	}
	tper, host, err := method.ParsePropertiesResult(r)
	if err != nil {
		return nil, fmt.Errorf("properties: %w", err)
	}
	p := &Properties{
		TPer:           limitsOf(tper, CoreMinimums),
		Host:           limitsOf(host, CoreMinimums),
		TPerProperties: tper,
		HostProperties: host,
	}
	// The drive may not send us more than we said we take.
	p.Host = capLimits(p.Host, limitsOf(c.opts.HostProperties, CoreMinimums))
	c.log.Debug("properties exchanged", "tper", p.TPer, "host", p.Host)
	return p, nil
}

// capLimits returns l with each field at most c's.
func capLimits(l, c Limits) Limits {
	l.MaxComPacketSize = min(l.MaxComPacketSize, c.MaxComPacketSize)
	l.MaxPacketSize = min(l.MaxPacketSize, c.MaxPacketSize)
	l.MaxIndTokenSize = min(l.MaxIndTokenSize, c.MaxIndTokenSize)
	l.MaxAggTokenSize = min(l.MaxAggTokenSize, max(c.MaxAggTokenSize, c.MaxIndTokenSize))
	l.MaxPackets = min(l.MaxPackets, c.MaxPackets)
	l.MaxSubpackets = min(l.MaxSubpackets, c.MaxSubpackets)
	l.MaxMethods = min(l.MaxMethods, c.MaxMethods)
	return l
}

// Limits returns the limits in force without any I/O: the negotiated ones,
// or the Core minimums before Properties has run.
func (c *Client) Limits() Properties {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.props == nil {
		return Properties{TPer: CoreMinimums, Host: CoreMinimums, Fallback: ErrNotExchanged}
	}
	return *c.props
}

// Renegotiate makes the Client exchange Properties again before its next
// session. The drive forgets the host's properties on a power cycle and on
// a stack reset (StackReset calls this itself).
func (c *Client) Renegotiate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.props = nil
}

// checkTokens checks that no token of the stream b is larger than max
// bytes, header included (the drive's MaxIndTokenSize).
func checkTokens(b []byte, max uint64) error {
	for i := 0; i < len(b); {
		h := b[i]
		n := 1
		switch {
		case h < 0x80: // tiny atom
		case h < 0xC0: // short atom
			n = 1 + int(h&0x0F)
		case h < 0xE0: // medium atom
			if i+1 >= len(b) {
				return nil
			}
			n = 2 + (int(h&0x07)<<8 | int(b[i+1]))
		case h < 0xE4: // long atom
			if i+3 >= len(b) {
				return nil
			}
			n = 4 + (int(b[i+1])<<16 | int(b[i+2])<<8 | int(b[i+3]))
		}
		if uint64(n) > max {
			return fmt.Errorf("%w: a %d-byte token, the drive takes at most %d (MaxIndTokenSize)", ErrTooLarge, n, max)
		}
		i += n
	}
	return nil
}
