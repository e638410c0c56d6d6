package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTestFile writes n pseudo-random bytes to dir/name and returns the
// path and its sha256 in hex.
func writeTestFile(t *testing.T, dir, name string, n int) (string, string) {
	t.Helper()
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return p, hex.EncodeToString(s[:])
}

func TestParseDigest(t *testing.T) {
	hexsum := strings.Repeat("ab", 32)
	tests := []struct {
		in      string
		wantErr string
	}{
		{"sha256:" + hexsum, ""},
		{"SHA256:" + strings.ToUpper(hexsum), ""},
		{"  sha256:" + hexsum + "\n", ""},
		{"md5:d41d8cd98f00b204e9800998ecf8427e", `algorithm "md5" is not supported`},
		{"sha512:" + hexsum + hexsum, `algorithm "sha512" is not supported`},
		{hexsum, "want the form sha256:HEX"},
		{"sha256:" + hexsum[:62], "a sha256 is 64 hex digits, this has 62"},
		{"sha256:" + hexsum[:62] + "zz", "not hex"},
	}
	for _, tt := range tests {
		got, err := ParseDigest(tt.in)
		switch {
		case tt.wantErr == "" && (err != nil || hex.EncodeToString(got) != hexsum):
			t.Errorf("ParseDigest(%q) = %x, %v; want %s, nil", tt.in, got, err, hexsum)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseDigest(%q) = %x, %v; want error containing %q", tt.in, got, err, tt.wantErr)
		}
	}
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, sum := writeTestFile(t, dir, "foo.img", 3<<20+123) // several chunks, the last partial
	var out bytes.Buffer

	if err := Verify(ctx, p, "sha256:"+sum, &out); err != nil {
		t.Errorf("Verify(right sum) = %v; want nil", err)
	}
	if err := Verify(ctx, p, "sha256:"+strings.ToUpper(sum), &out); err != nil {
		t.Errorf("Verify(right sum, upper case) = %v; want nil", err)
	}
	wrong := strings.Repeat("0", 64)
	err := Verify(ctx, p, "sha256:"+wrong, &out)
	want := fmt.Sprintf("%s: sha256 mismatch: got %s, want %s; refusing to use it", p, sum, wrong)
	if err == nil || err.Error() != want || !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify(wrong sum) = %v; want %q (and errors.Is ErrMismatch)", err, want)
	}
	if err := Verify(ctx, p, "md5:d41d8cd98f00b204e9800998ecf8427e", &out); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("Verify(md5) = %v; want refusal", err)
	}
	if err := Verify(ctx, filepath.Join(dir, "missing.img"), "sha256:"+sum, &out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Verify(missing file) = %v; want ErrNotExist", err)
	}
	if err := Verify(ctx, dir, "sha256:"+sum, &out); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Verify(directory) = %v; want 'not a regular file'", err)
	}
	if out.Len() != 0 {
		t.Errorf("Verify wrote %q to a non-terminal; want nothing", out.String())
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Verify(cctx, p, "sha256:"+sum, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify(canceled ctx) = %v; want context.Canceled", err)
	}
}

func TestVerifyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, sum := writeTestFile(t, dir, "foo.img", 1000)
	other := strings.Repeat("1", 64)
	write := func(name, content string) string {
		t.Helper()
		sp := filepath.Join(dir, name)
		if err := os.WriteFile(sp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return sp
	}
	tests := []struct {
		name, sums, wantErr string
	}{
		{"text mode", other + "  bar.img\n" + sum + "  foo.img\n", ""},
		{"binary mode", sum + " *foo.img\n", ""},
		{"path", sum + "  images/foo.img\n", ""},
		{"crlf", sum + "  foo.img\r\n", ""},
		{"bsd tag", "SHA256 (foo.img) = " + sum + "\n", ""},
		{"upper hex", strings.ToUpper(sum) + "  foo.img\n", ""},
		{"absent", other + "  bar.img\n", "no sha256 for foo.img among its 1 entries"},
		{"empty", "", "no sha256 for foo.img among its 0 entries"},
		{"prefix name only", sum + "  foo.img.old\n", "no sha256 for foo.img"},
		{"wrong sum", other + "  foo.img\n", "sha256 mismatch"},
		{"conflict", sum + "  foo.img\n" + other + "  x/foo.img\n", "lists foo.img twice with different sums"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := write("SUMS", tt.sums)
			err := VerifyFile(ctx, p, sp, nil)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("VerifyFile(%q) = %v; want nil", tt.sums, err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("VerifyFile(%q) = %v; want error containing %q", tt.sums, err, tt.wantErr)
			}
		})
	}
	if err := VerifyFile(ctx, p, filepath.Join(dir, "NOSUMS"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("VerifyFile(missing SUMS) = %v; want ErrNotExist", err)
	}
}

func TestLookupSumEscaped(t *testing.T) {
	sum := strings.Repeat("cd", 32)
	// GNU sha256sum escapes names holding a backslash or newline.
	got, err := LookupSum([]byte(`\`+sum+`  a\\b\nc.img`+"\n"), "a\\b\nc.img")
	if err != nil || hex.EncodeToString(got) != sum {
		t.Errorf("LookupSum(escaped) = %x, %v; want %s", got, err, sum)
	}
}

func FuzzLookupSum(f *testing.F) {
	f.Add([]byte(strings.Repeat("ab", 32)+"  foo.img\n"), "foo.img")
	f.Add([]byte("SHA256 (foo.img) = "+strings.Repeat("ab", 32)), "foo.img")
	f.Add([]byte(`\`+strings.Repeat("ab", 32)+` *x\n`), "x\n")
	f.Fuzz(func(t *testing.T, sums []byte, name string) {
		sum, err := LookupSum(sums, name)
		if err == nil && len(sum) != sha256.Size {
			t.Fatalf("LookupSum(%q, %q) = %x; want %d bytes", sums, name, sum, sha256.Size)
		}
	})
}

func TestProgressBar(t *testing.T) {
	var out bytes.Buffer
	clock := time.Unix(1000, 0)
	b := &bar{w: &out, name: "foo.img", width: 60, now: func() time.Time { return clock }, minStep: 100 * time.Millisecond}
	b.start(100 << 20)
	for i := 1; i <= 100; i++ { // 100 MiB in 1 MiB chunks over 2 s
		clock = clock.Add(20 * time.Millisecond)
		b.update(int64(i) << 20)
	}
	b.finish()
	s := out.String()
	if n := strings.Count(s, "\r"); n != 20+1 { // 2 s at 10/s, plus the clear
		t.Errorf("bar drew %d times; want 20 draws and a clear:\n%q", n, s)
	}
	if !strings.HasSuffix(s, "\r\x1b[K") {
		t.Errorf("bar output ends %q; want the line cleared", s[max(0, len(s)-10):])
	}
	if !strings.Contains(s, "100%") || !strings.Contains(s, "MB/s") {
		t.Errorf("bar output %q; want a 100%% frame with MB/s", s)
	}

	var quiet bytes.Buffer
	q := &bar{w: &quiet, name: "x", width: 60, now: time.Now, minStep: time.Hour}
	q.start(10)
	q.update(10)
	q.finish()
	if quiet.Len() != 0 {
		t.Errorf("bar that never drew wrote %q; want nothing", quiet.String())
	}
	if newBar(&out, "x") != nil {
		t.Errorf("newBar(bytes.Buffer) != nil; want no bar off a terminal")
	}
}

func TestRenderBar(t *testing.T) {
	tests := []struct {
		name        string
		done, total int64
		elapsed     time.Duration
		width       int
		want        string
	}{
		{"foo.img", 0, 100, 0, 40, "foo.img [>          ]   0%     0.0 MB/s"},
		{"foo.img", 50e6, 100e6, time.Second, 40, "foo.img [=====>     ]  50%    50.0 MB/s"},
		{"foo.img", 100e6, 100e6, 2 * time.Second, 40, "foo.img [===========] 100%    50.0 MB/s"},
		{"foo.img", 5, 0, time.Second, 40, "foo.img [===========] 100%     0.0 MB/s"},
		{"foo.img", 1, 2, time.Second, 20, "foo.img  50%     0.0 MB/s"},
	}
	for _, tt := range tests {
		got := renderBar(tt.name, tt.done, tt.total, tt.elapsed, tt.width)
		if got != tt.want {
			t.Errorf("renderBar(%q, %d, %d, %v, %d) = %q; want %q", tt.name, tt.done, tt.total, tt.elapsed, tt.width, got, tt.want)
		}
		if len(got) > tt.width && tt.width >= 30 {
			t.Errorf("renderBar(..., %d) is %d wide", tt.width, len(got))
		}
	}
}
