package opal

import (
	"context"
	"fmt"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/packet"
	"github.com/shiftlock/shiftlock/tcg/session"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// MBRState is the MBRControl object (PROTOCOL.md 1.9, 1.12).
type MBRState struct {
	// Enable: the drive shadows LBA 0.. with the MBR table while not
	// Done.
	Enable bool
	// Done: the shadow is switched off until a reset in DoneOnReset.
	Done        bool
	DoneOnReset []ResetType
}

// MBRSettings are the MBRControl columns SetMBRControl sets; nil fields are
// left as they are.
type MBRSettings struct {
	Enable      *bool
	Done        *bool
	DoneOnReset []ResetType // nil: unchanged
}

// GetMBRControl reads MBRControl as a.
func GetMBRControl(ctx context.Context, c *session.Client, a Auth) (MBRState, error) {
	var st MBRState
	err := withSession(ctx, c, method.LockingSP, a, false, func(s *session.Session) error {
		r, err := s.Get(ctx, method.MBRControl, method.Columns(ColMBREnable, ColMBRDoneOnReset))
		if err != nil {
			return err
		}
		if st.Enable, err = boolColumn(r, ColMBREnable); err != nil {
			return err
		}
		if st.Done, err = boolColumn(r, ColMBRDone); err != nil {
			return err
		}
		if v, ok := r.Column(ColMBRDoneOnReset); ok {
			if st.DoneOnReset, err = parseResetList(v); err != nil {
				return fmt.Errorf("%w: DoneOnReset: %v", ErrUnexpected, err)
			}
		}
		return nil
	})
	if err != nil {
		return MBRState{}, fmt.Errorf("read MBR control: %w", err)
	}
	return st, nil
}

// SetMBRControl sets the MBRControl columns ms names, in one Set as a
// (sedutil --setMBREnable, --setMBRDone).
func SetMBRControl(ctx context.Context, c *session.Client, a Auth, ms MBRSettings) error {
	var cols []token.Value
	if ms.Enable != nil {
		cols = append(cols, token.Named(ColMBREnable, token.Bool(*ms.Enable)))
	}
	if ms.Done != nil {
		cols = append(cols, token.Named(ColMBRDone, token.Bool(*ms.Done)))
	}
	if ms.DoneOnReset != nil {
		cols = append(cols, token.Named(ColMBRDoneOnReset, resetList(ms.DoneOnReset)))
	}
	if len(cols) == 0 {
		return nil
	}
	err := withSession(ctx, c, method.LockingSP, a, true, func(s *session.Session) error {
		return s.Set(ctx, method.MBRControl, cols...)
	})
	if err != nil {
		return fmt.Errorf("set MBR control: %w", err)
	}
	return nil
}

// TableSize returns the size in bytes of byte table table (its Rows in the
// Table table) in the Locking SP, read as a.
func TableSize(ctx context.Context, c *session.Client, a Auth, table method.UID) (uint64, error) {
	var n uint64
	err := withSession(ctx, c, method.LockingSP, a, false, func(s *session.Session) error {
		r, err := s.Get(ctx, method.TableRow(table), method.Columns(ColTableRows, ColTableRows))
		if err != nil {
			return err
		}
		n, err = uintColumn(r, ColTableRows)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read size of %v: %w", table, err)
	}
	return n, nil
}

// writeChunk is the most data one Set of table at offsets up to end can
// carry within the drive's limits: the ComPacket and Packet sizes less the
// headers and the call's other tokens, and MaxIndTokenSize less the long
// atom header (PROTOCOL.md 1.16).
func writeChunk(l session.Properties, table method.UID, end uint64) int {
	probe, err := method.NewSetBytes(table, end, nil).Encode()
	if err != nil {
		return 0
	}
	overhead := uint64(len(probe)) - 1 + 4 // a long atom's header instead of A0
	room := min(l.TPer.MaxComPacketSize-packet.HeaderLen, l.TPer.MaxPacketSize-packet.PacketHeaderLen-packet.SubPacketHeaderLen)
	if room <= overhead {
		return 0
	}
	room = min(room-overhead, l.TPer.MaxIndTokenSize-4, token.MaxAtomLen)
	return int(room &^ 3)
}

// readChunk is the most data one Get of a byte table can return within
// what the drive may send the host.
func readChunk(l session.Properties) int {
	resp := l.Host.MaxComPacketSize
	if m := l.TPer.MaxResponseComPacketSize; m != 0 {
		resp = min(resp, m)
	}
	const overhead = 16 // [ atom ] EndOfData [ status 0 0 ], EndOfSession, with room
	room := min(resp-packet.HeaderLen, l.Host.MaxPacketSize-packet.PacketHeaderLen-packet.SubPacketHeaderLen)
	if room <= overhead+4 {
		return 0
	}
	room = min(room-overhead-4, l.Host.MaxIndTokenSize-4, token.MaxAtomLen)
	return int(room &^ 3)
}

// WriteTable writes data at offset of byte table table (the MBR, a
// DataStore table) as a, in as few Set calls as the drive's limits allow,
// all in one session. progress, if set, is called after each chunk with
// the bytes written so far.
func WriteTable(ctx context.Context, c *session.Client, a Auth, table method.UID, offset uint64, data []byte, progress func(done int)) error {
	err := withSession(ctx, c, method.LockingSP, a, true, func(s *session.Session) error {
		chunk := writeChunk(s.Limits(), table, offset+uint64(len(data)))
		if chunk <= 0 {
			return fmt.Errorf("the drive's limits leave no room for data")
		}
		for done := 0; done < len(data); {
			k := min(chunk, len(data)-done)
			if _, err := s.Call(ctx, method.NewSetBytes(table, offset+uint64(done), data[done:done+k])); err != nil {
				return fmt.Errorf("at offset %d: %w", offset+uint64(done), err)
			}
			done += k
			if progress != nil {
				progress(done)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write %v: %w", table, err)
	}
	return nil
}

// ReadTable fills buf from offset of byte table table as a, in as few Get
// calls as the drive's limits allow, all in one read-only session.
func ReadTable(ctx context.Context, c *session.Client, a Auth, table method.UID, offset uint64, buf []byte) error {
	err := withSession(ctx, c, method.LockingSP, a, false, func(s *session.Session) error {
		chunk := readChunk(s.Limits())
		if chunk <= 0 {
			return fmt.Errorf("the drive's limits leave no room for data")
		}
		for done := 0; done < len(buf); {
			k := min(chunk, len(buf)-done)
			at := offset + uint64(done)
			r, err := s.Get(ctx, table, method.Rows(at, at+uint64(k)-1))
			if err != nil {
				return fmt.Errorf("at offset %d: %w", at, err)
			}
			b, err := r.Bytes()
			if err != nil {
				return fmt.Errorf("at offset %d: %w: %v", at, ErrUnexpected, err)
			}
			if len(b) == 0 || len(b) > k {
				return fmt.Errorf("at offset %d: %w: %d bytes for %d asked", at, ErrUnexpected, len(b), k)
			}
			done += copy(buf[done:], b)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read %v: %w", table, err)
	}
	return nil
}

// WriteMBR writes the shadow MBR (sedutil --loadPBAimage) at offset.
func WriteMBR(ctx context.Context, c *session.Client, a Auth, offset uint64, data []byte, progress func(done int)) error {
	return WriteTable(ctx, c, a, method.MBR, offset, data, progress)
}

// ReadMBR reads the shadow MBR at offset into buf.
func ReadMBR(ctx context.Context, c *session.Client, a Auth, offset uint64, buf []byte) error {
	return ReadTable(ctx, c, a, method.MBR, offset, buf)
}

// WriteDataStore writes DataStore table n (1 = the first) at offset.
func WriteDataStore(ctx context.Context, c *session.Client, a Auth, n uint32, offset uint64, data []byte, progress func(done int)) error {
	return WriteTable(ctx, c, a, method.DataStoreTable(n), offset, data, progress)
}

// ReadDataStore reads DataStore table n (1 = the first) at offset into buf.
func ReadDataStore(ctx context.Context, c *session.Client, a Auth, n uint32, offset uint64, buf []byte) error {
	return ReadTable(ctx, c, a, method.DataStoreTable(n), offset, buf)
}
