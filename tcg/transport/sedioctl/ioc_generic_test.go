//go:build !ppc64 && !ppc64le && !mips && !mipsle && !mips64 && !mips64le

package sedioctl

import "testing"

// TestIoctlNumbers pins every request number to PROTOCOL.md 3.2 (values
// computed by a C program against include/uapi/linux/sed-opal.h).
func TestIoctlNumbers(t *testing.T) {
	tests := []struct {
		name string
		got  uint32
		want uint32
	}{
		{"IOC_OPAL_SAVE", IoctlSave, 0x411870DC},
		{"IOC_OPAL_LOCK_UNLOCK", IoctlLockUnlock, 0x411870DD},
		{"IOC_OPAL_TAKE_OWNERSHIP", IoctlTakeOwnership, 0x410870DE},
		{"IOC_OPAL_ACTIVATE_LSP", IoctlActivateLSP, 0x411870DF},
		{"IOC_OPAL_SET_PW", IoctlSetPW, 0x422070E0},
		{"IOC_OPAL_ACTIVATE_USR", IoctlActivateUsr, 0x411070E1},
		{"IOC_OPAL_REVERT_TPR", IoctlRevertTPR, 0x410870E2},
		{"IOC_OPAL_LR_SETUP", IoctlLRSetup, 0x412870E3},
		{"IOC_OPAL_ADD_USR_TO_LR", IoctlAddUsrToLR, 0x411870E4},
		{"IOC_OPAL_ENABLE_DISABLE_MBR", IoctlEnableDisableMBR, 0x411070E5},
		{"IOC_OPAL_ERASE_LR", IoctlEraseLR, 0x411070E6},
		{"IOC_OPAL_SECURE_ERASE_LR", IoctlSecureEraseLR, 0x411070E7},
		{"IOC_OPAL_PSID_REVERT_TPR", IoctlPSIDRevertTPR, 0x410870E8},
		{"IOC_OPAL_MBR_DONE", IoctlMBRDone, 0x411070E9},
		{"IOC_OPAL_WRITE_SHADOW_MBR", IoctlWriteShadowMBR, 0x412070EA},
		{"IOC_OPAL_GENERIC_TABLE_RW", IoctlGenericTableRW, 0x413870EB},
		{"IOC_OPAL_GET_STATUS", IoctlGetStatus, 0x800870EC},
		{"IOC_OPAL_GET_LR_STATUS", IoctlGetLRStatus, 0x413070ED},
		{"IOC_OPAL_GET_GEOMETRY", IoctlGetGeometry, 0x802070EE},
		{"IOC_OPAL_DISCOVERY", IoctlDiscovery, 0x401070EF},
		{"IOC_OPAL_REVERT_LSP", IoctlRevertLSP, 0x411070F0},
		{"IOC_OPAL_SET_SID_PW", IoctlSetSIDPW, 0x422070F1},
		{"IOC_OPAL_REACTIVATE_LSP", IoctlReactivateLSP, 0x422070F2},
		{"IOC_OPAL_LR_SET_START_LEN", IoctlLRSetStartLen, 0x412870F3},
		{"IOC_OPAL_ENABLE_DISABLE_LR", IoctlEnableDisableLR, 0x412870F4},
		{"IOC_OPAL_GET_SUM_STATUS", IoctlGetSUMStatus, 0x411870F5},
		{"IOC_OPAL_STACK_RESET", IoctlStackReset, 0x000070F6},
	}
	seen := map[uint32]bool{}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = 0x%08X; want 0x%08X", tt.name, tt.got, tt.want)
		}
		if IoctlName(tt.got) != tt.name {
			t.Errorf("IoctlName(0x%08X) = %q; want %q", tt.got, IoctlName(tt.got), tt.name)
		}
		seen[tt.got] = true
	}
	if len(seen) != len(ioctlNames) {
		t.Errorf("%d distinct numbers tested, %d named", len(seen), len(ioctlNames))
	}
}
