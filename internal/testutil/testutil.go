// Package testutil holds helpers shared by the mounted tests.
package testutil

import (
	"os"
	"testing"
)

// RequireRoot skips t unless it runs as root. CI runs as root, so a skip
// there is a failure of the setup, not of the code.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// RequireFUSE skips t unless /dev/fuse can be opened.
func RequireFUSE(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("needs /dev/fuse: %v", err)
	}
	f.Close()
}
