package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// CheckSHA256 fails t unless every file named in want (relative to dir)
// has the hex sha256 want gives it.
func CheckSHA256(t testing.TB, dir string, want map[string]string) {
	t.Helper()
	for name, sum := range want {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != sum {
			t.Fatalf("%s: sha256 %x; want %s", name, got, sum)
		}
	}
}
