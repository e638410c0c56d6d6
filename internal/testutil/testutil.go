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
		skip(t, "needs root")
	}
}

// RequireFUSE skips t unless /dev/fuse can be opened.
func RequireFUSE(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		skip(t, "needs /dev/fuse: "+err.Error())
	}
	f.Close()
}

// skip skips t, except under CI (CI=true), where root and /dev/fuse are
// promised: there a missing requirement fails the test.
func skip(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI promises it; refusing to skip)", why)
	}
	t.Skip(why)
}
