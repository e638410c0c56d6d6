package scsi

import (
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/shiftlock/shiftlock/tcg/transport"
)

// TestSgIOHdrABI pins struct sg_io_hdr to include/scsi/sg.h: the 64-bit
// layout of PROTOCOL.md 4.2, or the 32-bit one where pointers are 4 bytes.
func TestSgIOHdrABI(t *testing.T) {
	var h SgIOHdr
	type off struct {
		name       string
		got        uintptr
		lp64, ilp3 uintptr
	}
	offs := []off{
		{"interface_id", unsafe.Offsetof(h.InterfaceID), 0, 0},
		{"dxfer_direction", unsafe.Offsetof(h.DxferDirection), 4, 4},
		{"cmd_len", unsafe.Offsetof(h.CmdLen), 8, 8},
		{"mx_sb_len", unsafe.Offsetof(h.MxSbLen), 9, 9},
		{"iovec_count", unsafe.Offsetof(h.IovecCount), 10, 10},
		{"dxfer_len", unsafe.Offsetof(h.DxferLen), 12, 12},
		{"dxferp", unsafe.Offsetof(h.Dxferp), 16, 16},
		{"cmdp", unsafe.Offsetof(h.Cmdp), 24, 20},
		{"sbp", unsafe.Offsetof(h.Sbp), 32, 24},
		{"timeout", unsafe.Offsetof(h.Timeout), 40, 28},
		{"flags", unsafe.Offsetof(h.Flags), 44, 32},
		{"pack_id", unsafe.Offsetof(h.PackID), 48, 36},
		{"usr_ptr", unsafe.Offsetof(h.UsrPtr), 56, 40},
		{"status", unsafe.Offsetof(h.Status), 64, 44},
		{"masked_status", unsafe.Offsetof(h.MaskedStatus), 65, 45},
		{"msg_status", unsafe.Offsetof(h.MsgStatus), 66, 46},
		{"sb_len_wr", unsafe.Offsetof(h.SbLenWr), 67, 47},
		{"host_status", unsafe.Offsetof(h.HostStatus), 68, 48},
		{"driver_status", unsafe.Offsetof(h.DriverStatus), 70, 50},
		{"resid", unsafe.Offsetof(h.Resid), 72, 52},
		{"duration", unsafe.Offsetof(h.Duration), 76, 56},
		{"info", unsafe.Offsetof(h.Info), 80, 60},
	}
	lp64 := unsafe.Sizeof(uintptr(0)) == 8
	wantSize := uintptr(88)
	if !lp64 {
		wantSize = 64
	}
	if got := unsafe.Sizeof(h); got != wantSize {
		t.Errorf("sizeof(sg_io_hdr) = %d; want %d", got, wantSize)
	}
	for _, o := range offs {
		want := o.lp64
		if !lp64 {
			want = o.ilp3
		}
		if o.got != want {
			t.Errorf("offsetof(%s) = %d; want %d", o.name, o.got, want)
		}
	}
	if IoctlSGIO != 0x2285 || DxferNone != -1 || DxferToDev != -2 || DxferFromDev != -3 || interfaceIDOrig != 'S' {
		t.Errorf("SG_IO constants: 0x%x %d %d %d %q", IoctlSGIO, DxferNone, DxferToDev, DxferFromDev, interfaceIDOrig)
	}
}

func TestCheckResult(t *testing.T) {
	illegal := []byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0x00, 0, 0, 0, 0}
	recovered := []byte{0x70, 0, 0x01, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x17, 0x01, 0, 0, 0, 0}
	tests := []struct {
		name  string
		h     SgIOHdr
		sense []byte
		want  string // "" for success
		is    error
	}{
		{"good", SgIOHdr{}, nil, "", nil},
		{"check condition", SgIOHdr{Status: 2, DriverStatus: 8, SbLenWr: 18}, illegal, "ILLEGAL REQUEST: INVALID FIELD IN CDB", transport.ErrInvalidField},
		{"recovered", SgIOHdr{Status: 2, DriverStatus: 8, SbLenWr: 18}, recovered, "", nil},
		{"sense without status", SgIOHdr{SbLenWr: 18}, illegal, "ILLEGAL REQUEST", transport.ErrInvalidField},
		{"check condition no sense", SgIOHdr{Status: 2}, nil, "CHECK CONDITION", nil},
		{"bad sense", SgIOHdr{Status: 2, SbLenWr: 4}, []byte{0x12, 0x34, 0, 0}, "unknown response code 0x12", nil},
		{"busy", SgIOHdr{Status: 8}, nil, "SCSI status 0x08 BUSY", nil},
		{"timeout", SgIOHdr{HostStatus: 3}, nil, "DID_TIME_OUT", nil},
		{"no connect", SgIOHdr{HostStatus: 1}, nil, "DID_NO_CONNECT", nil},
		{"driver timeout", SgIOHdr{DriverStatus: 6}, nil, "DRIVER_TIMEOUT", nil},
		{"driver sense only", SgIOHdr{DriverStatus: 8}, nil, "", nil},
		{"sb_len_wr beyond buffer", SgIOHdr{Status: 2, SbLenWr: 200}, illegal, "INVALID FIELD IN CDB", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			err := checkResult(&h, tt.sense)
			if tt.want == "" {
				if err != nil {
					t.Errorf("checkResult = %v; want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("checkResult = %v; want %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("checkResult = %v; want errors.Is %v", err, tt.is)
			}
		})
	}
}
