package image

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fileTimes are the timestamps of a file, to the nanosecond.
type fileTimes struct {
	Atime, Mtime, Ctime unix.Timespec
}

func statTimes(t *testing.T, path string) fileTimes {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fileTimes{st.Atim, st.Mtim, st.Ctim}
}

func TestVerifyKeepsAtime(t *testing.T) {
	p, sum := writeTestFile(t, t.TempDir(), "foo.img", 1<<20)
	old := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, old, old.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	before := statTimes(t, p)
	if err := Verify(context.Background(), p, "sha256:"+sum, nil); err != nil {
		t.Fatal(err)
	}
	if after := statTimes(t, p); after != before {
		t.Errorf("times after Verify = %+v; want unchanged %+v", after, before)
	}
}

// TestProgressOnTerminal: a pty counts as a terminal and its width is used.
func TestProgressOnTerminal(t *testing.T) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pts.Close()
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 100}); err != nil {
		t.Fatal(err)
	}
	b := newBar(pts, "foo.img")
	if b == nil || b.width != 100 {
		t.Fatalf("newBar(pty) = %+v; want a bar 100 wide", b)
	}
	p, sum := writeTestFile(t, t.TempDir(), "foo.img", 1<<20)
	if err := Verify(context.Background(), p, "sha256:"+sum, pts); err != nil {
		t.Errorf("Verify(progress on a pty) = %v", err)
	}
}
