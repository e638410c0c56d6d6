package session

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/shiftlock/shiftlock/tcg/discovery"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/packet"
	"github.com/shiftlock/shiftlock/tcg/token"
)

// fakeTPer is a scripted drive for the session layer's own tests: it
// answers Level 0, Properties, StartSession and EndOfSession like a simple
// Opal drive, and session calls through onCall. Quirks are switched on by
// its fields. The behaviour of a real SP is tested against sim in
// tcg/opal.
type fakeTPer struct {
	t     testing.TB
	comID uint16
	tsn   uint32

	mu     sync.Mutex
	sends  [][]byte  // every IF-SEND transfer, as sent
	allocs []int     // every IF-RECV allocation length
	queue  []*queued // responses waiting for IF-RECV

	notReady    int                 // answer "not ready" this many times before each response
	properties  func() []byte       // Properties answer tokens; nil = a good one
	startStatus method.MethodStatus // StartSession failure
	onCall      func(c method.Call) method.Result
	multi       bool // accept several calls per ComPacket
	maxMethods  uint64
	echoHost    bool // echo the host properties
}

// queued is a response and how many more polls it is "not ready" for.
type queued struct {
	data     []byte
	notReady int
}

func newFake(t testing.TB) *fakeTPer {
	return &fakeTPer{t: t, comID: 0x1004, tsn: 0x1001, echoHost: true, maxMethods: 1}
}

var fakeTPerProps = method.PropertyList{
	{Name: method.PropMaxComPacketSize, Value: 2048},
	{Name: method.PropMaxResponseComPacketSize, Value: 2048},
	{Name: method.PropMaxPacketSize, Value: 2028},
	{Name: method.PropMaxIndTokenSize, Value: 1992},
	{Name: method.PropMaxPackets, Value: 1},
	{Name: method.PropMaxSubpackets, Value: 1},
}

func (f *fakeTPer) level0() []byte {
	b, err := discovery.Build(&discovery.Discovery{
		MinorVersion: 1,
		TPer:         &discovery.TPer{Descriptor: discovery.Descriptor{Version: 1}, Sync: true, ComIDMgmt: true},
		Locking:      &discovery.Locking{Descriptor: discovery.Descriptor{Version: 1}, LockingSupported: true, MediaEncryption: true},
		OpalV2:       &discovery.OpalV2{Descriptor: discovery.Descriptor{Version: 1}, BaseComID: f.comID, NumComIDs: 1, NumAdmins: 4, NumUsers: 8},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fakeTPer) respond(tsn, hsn uint32, r method.Result) {
	tok, err := r.Encode()
	if err != nil {
		f.t.Fatal(err)
	}
	f.respondTokens(tsn, hsn, tok)
}

func (f *fakeTPer) respondTokens(tsn, hsn uint32, tok []byte) {
	b, err := packet.Build(f.comID, tsn, hsn, tok)
	if err != nil {
		f.t.Fatal(err)
	}
	f.queue = append(f.queue, &queued{data: b, notReady: f.notReady})
}

func (f *fakeTPer) IFSend(ctx context.Context, proto uint8, spsp uint16, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sends = append(f.sends, bytes.Clone(data))
	if proto == ProtocolComID {
		resp := make([]byte, 16)
		copy(resp, data[:8])
		resp[11] = 4 // AvailDataLength
		f.queue = append(f.queue, &queued{data: resp})
		return nil
	}
	if proto != ProtocolTCG || spsp != f.comID {
		return errors.New("fake: unsupported protocol or ComID")
	}
	cp, err := packet.Parse(data)
	if err != nil {
		return err
	}
	pkt, tok, err := cp.Payload()
	if err != nil {
		return err
	}
	if bytes.Equal(tok, []byte{token.TagEndOfSession}) {
		f.respondTokens(pkt.TSN, pkt.HSN, tok)
		return nil
	}
	vs, err := token.Decode(tok)
	if err != nil {
		return err
	}
	// Split into calls at each status list after EndOfData.
	var calls []method.Call
	start := 0
	for i := range vs {
		if i > 0 && vs[i-1].Kind() == token.KindEndOfData {
			b, _ := token.Encode(vs[start : i+1]...)
			c, err := method.ParseCall(b)
			if err != nil {
				return err
			}
			calls = append(calls, c)
			start = i + 1
		}
	}
	if len(calls) > 1 && !f.multi {
		f.t.Errorf("fake: %d calls in one ComPacket", len(calls))
	}
	var all []byte
	for _, c := range calls {
		var r method.Result
		switch c.Method {
		case method.Properties:
			if f.properties != nil {
				f.respondTokens(0, 0, f.properties())
				return nil
			}
			host, _ := method.ParsePropertiesCall(c)
			if !f.echoHost {
				host = nil
			}
			tper := append(method.PropertyList{}, fakeTPerProps...)
			tper = append(tper, method.Property{Name: method.PropMaxMethods, Value: f.maxMethods})
			r = method.PropertiesResult(tper, host)
		case method.StartSession:
			p, err := method.ParseStartSession(c)
			if err != nil {
				return err
			}
			if f.startStatus != 0 {
				r = method.FailedSessionResult(f.startStatus)
			} else {
				r = method.SyncSessionResult(p.HostSessionID, f.tsn)
			}
		default:
			if f.onCall != nil {
				r = f.onCall(c)
			} else {
				r = method.Result{Values: []token.Value{}}
			}
		}
		all, err = r.AppendTokens(all)
		if err != nil {
			return err
		}
	}
	f.respondTokens(pkt.TSN, pkt.HSN, all)
	return nil
}

func (f *fakeTPer) IFRecv(ctx context.Context, proto uint8, spsp uint16, buf []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.allocs = append(f.allocs, len(buf))
	if proto == ProtocolTCG && spsp == Level0ComID {
		return copy(buf, f.level0()), nil
	}
	if len(f.queue) == 0 {
		b, _ := packet.ComPacket{ComID: spsp}.MarshalBinary()
		return copy(buf, b), nil
	}
	q := f.queue[0]
	if q.notReady > 0 {
		q.notReady--
		b, _ := packet.ComPacket{ComID: spsp, OutstandingData: 1}.MarshalBinary()
		return copy(buf, b), nil
	}
	head := q.data
	if len(head) > len(buf) {
		b, _ := packet.ComPacket{ComID: spsp, OutstandingData: uint32(len(head)), MinTransfer: uint32(len(head))}.MarshalBinary()
		return copy(buf, b), nil
	}
	f.queue = f.queue[1:]
	return copy(buf, head), nil
}

// sent returns the IF-SEND transfers on protocol 1 whose tokens start with
// a Call of method m (or, for m zero, are EndOfSession).
func (f *fakeTPer) sentCalls(m method.MethodID) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]byte
	for _, s := range f.sends {
		cp, err := packet.Parse(s)
		if err != nil {
			continue
		}
		_, tok, err := cp.Payload()
		if err != nil {
			continue
		}
		if m == (method.MethodID{}) {
			if bytes.Equal(tok, []byte{token.TagEndOfSession}) {
				out = append(out, s)
			}
			continue
		}
		c, err := method.ParseCall(tok)
		if err == nil && c.Method == m {
			out = append(out, s)
		}
	}
	return out
}

// readGolden returns the bytes of a testdata/*.hex file: a first line "#
// where it comes from", then hex with any spacing; "#" starts a comment.
func readGolden(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("# ")) {
		t.Fatalf("%s: first line must be a # comment naming the source", path)
	}
	var sb strings.Builder
	for line := range strings.SplitSeq(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	out, err := hex.DecodeString(sb.String())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}
