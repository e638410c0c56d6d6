package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"
)

// ErrMismatch matches (errors.Is) every *MismatchError.
var ErrMismatch = errors.New("checksum mismatch")

// MismatchError is returned by Verify when the file's checksum differs.
type MismatchError struct {
	Path      string
	Got, Want []byte // sha256 digests
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s: sha256 mismatch: got %x, want %x; refusing to use it", e.Path, e.Got, e.Want)
}

// Is reports target == ErrMismatch.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// chunkSize is how much Verify reads at a time, checking ctx in between.
const chunkSize = 1 << 20

// ParseDigest parses "sha256:HEX" (algorithm and hex in any case) and
// returns the 32-byte digest. Other algorithms are refused.
func ParseDigest(want string) ([]byte, error) {
	algo, hexsum, ok := strings.Cut(strings.TrimSpace(want), ":")
	if !ok {
		return nil, fmt.Errorf("checksum %q: want the form sha256:HEX", want)
	}
	if !strings.EqualFold(algo, "sha256") {
		return nil, fmt.Errorf("checksum %q: algorithm %q is not supported; give sha256:HEX (sha256sum prints it)", want, algo)
	}
	if len(hexsum) != 2*sha256.Size {
		return nil, fmt.Errorf("checksum %q: a sha256 is %d hex digits, this has %d", want, 2*sha256.Size, len(hexsum))
	}
	sum, err := hex.DecodeString(hexsum)
	if err != nil {
		return nil, fmt.Errorf("checksum %q: not hex: %w", want, err)
	}
	return sum, nil
}

// Verify checks that the file at path has the checksum want ("sha256:HEX").
// It reads the file in 1 MiB chunks, stops when ctx is done, and leaves the
// file's access time alone. If progress is a terminal it draws a progress
// bar there, cleared at the end; any other writer gets nothing.
func Verify(ctx context.Context, path, want string, progress io.Writer) error {
	sum, err := ParseDigest(want)
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	return verify(ctx, path, sum, newBar(progress, filepath.Base(path)))
}

// VerifyFile looks the base name of path up in sumsFile (the output of
// sha256sum, lines "HEX  name" or "HEX *name") and verifies path against it.
func VerifyFile(ctx context.Context, path, sumsFile string, progress io.Writer) error {
	f, err := os.Open(sumsFile)
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSumsSize+1))
	if err != nil {
		return fmt.Errorf("verify %s: read %s: %w", path, sumsFile, err)
	}
	if len(data) > maxSumsSize {
		return fmt.Errorf("verify %s: %s is over %d bytes; is it really a checksum list?", path, sumsFile, maxSumsSize)
	}
	sum, err := LookupSum(data, filepath.Base(path))
	if err != nil {
		return fmt.Errorf("verify %s: %s: %w", path, sumsFile, err)
	}
	return verify(ctx, path, sum, newBar(progress, filepath.Base(path)))
}

func verify(ctx context.Context, path string, want []byte, bar *bar) error {
	f, err := openNoatime(path)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("verify %s: not a regular file", path)
	}
	bar.start(fi.Size())
	defer bar.finish()

	h := sha256.New()
	buf := make([]byte, chunkSize)
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("verify %s: %w", path, err)
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		done += int64(n)
		bar.update(done)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	got := h.Sum(nil)
	if !bytes.Equal(got, want) {
		return &MismatchError{Path: path, Got: got, Want: want}
	}
	return nil
}

// maxSumsSize caps how much of a SUMS file is read.
const maxSumsSize = 16 << 20

// LookupSum finds name in sums, the output of sha256sum (GNU: "HEX  name",
// "HEX *name", with a leading backslash when the name is escaped; or BSD
// tagged: "SHA256 (name) = HEX"). A line whose path has name as its last
// element matches too ("HEX  images/name"). Malformed lines are skipped,
// as sha256sum -c does; two different sums for name are an error.
func LookupSum(sums []byte, name string) ([]byte, error) {
	var found []byte
	entries := 0
	for _, line := range strings.Split(string(sums), "\n") {
		line = strings.TrimSuffix(line, "\r")
		sumHex, file, ok := parseSumsLine(line)
		if !ok {
			continue
		}
		entries++
		if file != name && filepath.Base(file) != name {
			continue
		}
		sum, err := hex.DecodeString(sumHex)
		if err != nil || len(sum) != sha256.Size {
			continue
		}
		if found != nil && !bytes.Equal(found, sum) {
			return nil, fmt.Errorf("lists %s twice with different sums (%x and %x)", name, found, sum)
		}
		found = sum
	}
	if found == nil {
		return nil, fmt.Errorf("no sha256 for %s among its %d entries", name, entries)
	}
	return found, nil
}

// parseSumsLine splits one line of sha256sum output into hex sum and name.
func parseSumsLine(line string) (sum, name string, ok bool) {
	if rest, found := strings.CutPrefix(line, "SHA256 ("); found {
		name, sum, ok = strings.Cut(rest, ") = ")
		return sum, name, ok
	}
	escaped := strings.HasPrefix(line, "\\")
	if escaped {
		line = line[1:]
	}
	if len(line) < 2*sha256.Size+2 || line[2*sha256.Size] != ' ' {
		return "", "", false
	}
	sum, name = line[:2*sha256.Size], line[2*sha256.Size+1:]
	switch {
	case strings.HasPrefix(name, " "), strings.HasPrefix(name, "*"):
		name = name[1:] // text or binary mode marker
	default:
		return "", "", false
	}
	if escaped {
		name = strings.NewReplacer(`\\`, `\`, `\n`, "\n", `\r`, "\r").Replace(name)
	}
	return sum, name, name != ""
}

// bar draws a progress bar on a terminal. A nil *bar draws nothing.
type bar struct {
	w     io.Writer
	name  string
	width int
	now   func() time.Time

	total   int64
	began   time.Time
	last    time.Time
	drawn   bool
	minStep time.Duration
}

// newBar returns a bar for w if w is a terminal, else nil.
func newBar(w io.Writer, name string) *bar {
	f, ok := w.(*os.File)
	if !ok || f == nil || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width <= 0 {
		width = 80
	}
	return &bar{w: w, name: name, width: width, now: time.Now, minStep: 100 * time.Millisecond}
}

func (b *bar) start(total int64) {
	if b == nil {
		return
	}
	b.total = total
	b.began = b.now()
	b.last = b.began
}

// update redraws at most once per minStep (10 times a second).
func (b *bar) update(done int64) {
	if b == nil {
		return
	}
	t := b.now()
	if t.Sub(b.last) < b.minStep {
		return
	}
	b.last = t
	b.drawn = true
	fmt.Fprint(b.w, "\r"+renderBar(b.name, done, b.total, t.Sub(b.began), b.width))
}

// finish clears the line if anything was drawn.
func (b *bar) finish() {
	if b == nil || !b.drawn {
		return
	}
	fmt.Fprint(b.w, "\r\x1b[K")
}

// renderBar formats one line, at most width columns:
// "name [=====>    ]  45%  123.4 MB/s".
func renderBar(name string, done, total int64, elapsed time.Duration, width int) string {
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(min(done, total)) / float64(total)
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / 1e6 / s
	}
	tail := fmt.Sprintf(" %3.0f%% %7.1f MB/s", pct, rate)
	const maxName = 24
	if len(name) > maxName {
		name = name[:maxName-1] + "~"
	}
	cells := width - len(name) - len(tail) - 4 // " [" and "]" and a spare column
	if cells < 5 {
		return strings.TrimSpace(name + tail)
	}
	cells = min(cells, 50)
	fill := int(pct / 100 * float64(cells))
	arrow := ""
	if fill < cells {
		arrow = ">"
	}
	return name + " [" + strings.Repeat("=", fill) + arrow + strings.Repeat(" ", cells-fill-len(arrow)) + "]" + tail
}
