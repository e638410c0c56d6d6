package transport

import "testing"

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{
		KindUnknown: "unknown(0)", KindNVMe: "nvme", KindSCSI: "scsi", KindATA: "ata", KindSim: "sim", 42: "unknown(42)",
	} {
		if k.String() != want {
			t.Errorf("Kind(%d).String() = %q; want %q", uint8(k), k.String(), want)
		}
	}
}

func TestSerialString(t *testing.T) {
	tests := []struct {
		raw  string
		want string
	}{
		{"S3Z9NB0K123456A     ", "S3Z9NB0K123456A"},
		{"     WD-WX12345678AB", "WD-WX12345678AB"},
		{"SEDSIM\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "SEDSIM"},
		{"                    ", ""},
	}
	for _, tc := range tests {
		id := Identity{Serial: [SerialLen]byte([]byte(tc.raw))}
		if got := id.SerialString(); got != tc.want {
			t.Errorf("SerialString(%q) = %q; want %q", tc.raw, got, tc.want)
		}
		if string(id.Serial[:]) != tc.raw {
			t.Errorf("Serial changed: %q; want %q", id.Serial, tc.raw)
		}
	}
}
