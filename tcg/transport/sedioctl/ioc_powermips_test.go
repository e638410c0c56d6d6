//go:build ppc64 || ppc64le || mips || mipsle || mips64 || mips64le

package sedioctl

import "testing"

// TestIoctlNumbers pins the powerpc/mips encoding: _IOW is 4<<29, _IOR
// 2<<29, _IO 1<<29.
func TestIoctlNumbers(t *testing.T) {
	tests := []struct {
		name string
		got  uint32
		want uint32
	}{
		{"IOC_OPAL_SAVE", IoctlSave, 0x811870DC},
		{"IOC_OPAL_GET_STATUS", IoctlGetStatus, 0x400870EC},
		{"IOC_OPAL_GET_GEOMETRY", IoctlGetGeometry, 0x402070EE},
		{"IOC_OPAL_DISCOVERY", IoctlDiscovery, 0x801070EF},
		{"IOC_OPAL_STACK_RESET", IoctlStackReset, 0x200070F6},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = 0x%08X; want 0x%08X", tt.name, tt.got, tt.want)
		}
	}
}
