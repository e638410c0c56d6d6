package scsi

import (
	"errors"
	"strings"
	"testing"

	"github.com/shiftlock/shiftlock/tcg/transport"
)

func TestParseSense(t *testing.T) {
	tests := []struct {
		name    string
		b       []byte
		want    Sense
		text    []string
		bad     bool
		notSupp bool
		invFld  bool
	}{
		{
			name: "fixed invalid opcode",
			b:    []byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0x00, 0, 0, 0, 0},
			want: Sense{Response: 0x70, Key: IllegalRequest, ASC: 0x20, FieldPointer: -1},
			text: []string{"ILLEGAL REQUEST: INVALID COMMAND OPERATION CODE (ASC 0x20 ASCQ 0x00)"}, notSupp: true,
		},
		{
			// libata's answer to a filtered TRUSTED command in ATA
			// PASS-THROUGH(16): field pointer at CDB byte 14.
			name: "fixed invalid field with pointer",
			b:    []byte{0xF0, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0x00, 0, 0xC0, 0x00, 0x0E},
			want: Sense{Response: 0x70, Key: IllegalRequest, ASC: 0x24, FieldPointer: 14, InCDB: true},
			text: []string{"INVALID FIELD IN CDB", "CDB byte 14"}, invFld: true,
		},
		{
			name: "fixed additional length cuts asc",
			b:    []byte{0x70, 0, 0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0x29, 0x00},
			want: Sense{Response: 0x70, Key: UnitAttention, FieldPointer: -1},
			text: []string{"UNIT ATTENTION"},
		},
		{
			name: "fixed short",
			b:    []byte{0x70, 0, 0x02},
			want: Sense{Response: 0x70, Key: NotReady, FieldPointer: -1},
			text: []string{"NOT READY: NO ADDITIONAL SENSE INFORMATION"},
		},
		{
			name: "fixed ATA information",
			b:    []byte{0x70, 0, 0x0B, 0x04, 0x51, 0x40, 0x00, 10, 0, 0, 0, 0, 0x00, 0x1D, 0, 0, 0, 0},
			want: Sense{Response: 0x70, Key: AbortedCommand, ASCQ: 0x1D, FieldPointer: -1, ATA: &ATAStatus{Error: 0x04, Status: 0x51, Device: 0x40}},
			text: []string{"ABORTED COMMAND", "ATA status 0x51 error 0x04 (ABRT"},
		},
		{
			name: "deferred fixed",
			b:    []byte{0x71, 0, 0x03, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x11, 0x00, 0, 0, 0, 0},
			want: Sense{Response: 0x71, Key: MediumError, ASC: 0x11, FieldPointer: -1},
			text: []string{"MEDIUM ERROR: UNRECOVERED READ ERROR", "deferred"},
		},
		{
			name: "descriptor with ATA return",
			b: []byte{0x72, 0x0B, 0x00, 0x00, 0, 0, 0, 14,
				0x09, 0x0C, 0x00, 0x04, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x40, 0x51},
			want: Sense{Response: 0x72, Key: AbortedCommand, FieldPointer: -1, ATA: &ATAStatus{Error: 0x04, Status: 0x51, Device: 0x40, Count: 0x01}},
			text: []string{"ABORTED COMMAND: NO ADDITIONAL SENSE INFORMATION", "ABRT"},
		},
		{
			name: "descriptor with sense key specific",
			b: []byte{0x72, 0x05, 0x24, 0x00, 0, 0, 0, 8,
				0x02, 0x06, 0, 0, 0xC0, 0x00, 0x04, 0},
			want: Sense{Response: 0x72, Key: IllegalRequest, ASC: 0x24, FieldPointer: 4, InCDB: true},
			text: []string{"CDB byte 4"}, invFld: true,
		},
		{
			name: "descriptor parameter list",
			b: []byte{0x72, 0x05, 0x26, 0x00, 0, 0, 0, 8,
				0x02, 0x06, 0, 0, 0x80, 0x00, 0x10, 0},
			want: Sense{Response: 0x72, Key: IllegalRequest, ASC: 0x26, FieldPointer: 16},
			text: []string{"INVALID FIELD IN PARAMETER LIST", "parameter data byte 16"}, invFld: true,
		},
		{
			name: "descriptor truncated descriptor",
			b:    []byte{0x72, 0x0B, 0x00, 0x00, 0, 0, 0, 14, 0x09, 0x0C, 0x00, 0x04},
			want: Sense{Response: 0x72, Key: AbortedCommand, FieldPointer: -1},
			text: []string{"ABORTED COMMAND"},
		},
		{
			name: "descriptor header only",
			b:    []byte{0x73, 0x07},
			want: Sense{Response: 0x73, Key: DataProtect, FieldPointer: -1},
			text: []string{"DATA PROTECT", "deferred"},
		},
		{
			name: "unknown asc",
			b:    []byte{0x72, 0x04, 0x99, 0x42},
			want: Sense{Response: 0x72, Key: HardwareError, ASC: 0x99, ASCQ: 0x42, FieldPointer: -1},
			text: []string{"HARDWARE ERROR: additional sense (ASC 0x99 ASCQ 0x42)"},
		},
		{name: "empty", b: nil, bad: true},
		{name: "fixed too short", b: []byte{0x70, 0}, bad: true},
		{name: "descriptor too short", b: []byte{0x72}, bad: true},
		{name: "unknown response", b: []byte{0x7f, 0, 5}, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSense(tt.b)
			if tt.bad {
				if err == nil {
					t.Errorf("ParseSense(%x) = %v; want an error", tt.b, s)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSense(%x): %v", tt.b, err)
			}
			if s.Response != tt.want.Response || s.Key != tt.want.Key || s.ASC != tt.want.ASC || s.ASCQ != tt.want.ASCQ ||
				s.FieldPointer != tt.want.FieldPointer || s.InCDB != tt.want.InCDB || (s.ATA == nil) != (tt.want.ATA == nil) ||
				(s.ATA != nil && *s.ATA != *tt.want.ATA) {
				t.Errorf("ParseSense(%x) = %+v (ATA %+v); want %+v (ATA %+v)", tt.b, s, s.ATA, tt.want, tt.want.ATA)
			}
			for _, w := range tt.text {
				if !strings.Contains(s.Error(), w) {
					t.Errorf("Error() = %q; want it to contain %q", s.Error(), w)
				}
			}
			if got := errors.Is(s, transport.ErrNotSupported); got != tt.notSupp {
				t.Errorf("errors.Is(%v, ErrNotSupported) = %v; want %v", s, got, tt.notSupp)
			}
			if got := errors.Is(s, transport.ErrInvalidField); got != tt.invFld {
				t.Errorf("errors.Is(%v, ErrInvalidField) = %v; want %v", s, got, tt.invFld)
			}
		})
	}
}

func TestSenseKeyNames(t *testing.T) {
	for k, want := range map[SenseKey]string{NoSense: "NO SENSE", IllegalRequest: "ILLEGAL REQUEST", Completed: "COMPLETED", 0x1C: "RESERVED (0xC)"} {
		if got := k.String(); got != want {
			t.Errorf("SenseKey(%d) = %q; want %q", k, got, want)
		}
	}
}
