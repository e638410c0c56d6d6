package sedctl

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
)

func mbrCmd(e *env, spec string) (*device, opal.Auth, error) {
	d, err := e.openDevice(spec)
	if err != nil {
		return nil, opal.Auth{}, err
	}
	if err := d.requireMBR(e.ctx); err != nil {
		return nil, opal.Auth{}, err
	}
	a, err := e.loginAs(d, method.Admin(1))
	return d, a, err
}

func cmdMBRStatus(e *env, args []string) error {
	d, a, err := mbrCmd(e, args[0])
	if err != nil {
		return err
	}
	st, err := opal.GetMBRControl(e.ctx, d.c, a)
	if err != nil {
		return e.explain(d, a, err)
	}
	size, err := opal.TableSize(e.ctx, d.c, a, method.MBR)
	if err != nil {
		return e.explain(d, a, err)
	}
	out := struct {
		Device      string   `json:"device"`
		Enable      bool     `json:"enable"`
		Done        bool     `json:"done"`
		DoneOnReset []string `json:"done_on_reset"`
		Shadowing   bool     `json:"shadowing"`
		TableSize   uint64   `json:"table_size"`
	}{d.spec, st.Enable, st.Done, []string{}, st.Enable && !st.Done, size}
	for _, r := range st.DoneOnReset {
		out.DoneOnReset = append(out.DoneOnReset, snake(r.String()))
	}
	return e.emit(out, func(w io.Writer) error {
		kv := &keyValues{}
		kv.add("Enable", st.Enable)
		kv.add("Done", st.Done)
		kv.add("Done on reset", strings.Join(out.DoneOnReset, ","))
		kv.add("Shadow shown now", out.Shadowing)
		kv.add("Table size", fmt.Sprintf("%d bytes (%s)", size, humanBytes(size)))
		return kv.write(w, "")
	})
}

// cmdMBREnable is sedutil --setMBREnable: Done is set first, for on and
// off alike as sedutil does (so the shadow does not show until the next
// power cycle), then Enable.
func cmdMBREnable(on bool) func(e *env, args []string) error {
	return func(e *env, args []string) error {
		d, a, err := mbrCmd(e, args[0])
		if err != nil {
			return err
		}
		ms := opal.MBRSettings{Enable: &on}
		t := true
		if err := opal.SetMBRControl(e.ctx, d.c, a, opal.MBRSettings{Done: &t}); err != nil {
			return e.explain(d, a, err)
		}
		if err := opal.SetMBRControl(e.ctx, d.c, a, ms); err != nil {
			return e.explain(d, a, err)
		}
		if on {
			return e.done(d, "mbr enable", nil, "shadow MBR enabled (Done is set: it shows after the next power cycle)")
		}
		return e.done(d, "mbr disable", nil, "shadow MBR disabled")
	}
}

func parseOnOff(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "on", "true", "yes", "1":
		return true, nil
	case "off", "false", "no", "0":
		return false, nil
	}
	return false, usageError(fmt.Errorf("%q: want on or off", s))
}

func cmdMBRDone(e *env, args []string) error {
	on, err := parseOnOff(args[0])
	if err != nil {
		return err
	}
	d, a, err := mbrCmd(e, args[1])
	if err != nil {
		return err
	}
	if err := opal.SetMBRControl(e.ctx, d.c, a, opal.MBRSettings{Done: &on}); err != nil {
		return e.explain(d, a, err)
	}
	if on {
		return e.done(d, "mbr done", nil, "shadow MBR done: the drive shows its real first blocks until the next power cycle")
	}
	return e.done(d, "mbr done", nil, "shadow MBR not done: the drive shows the shadow MBR (if enabled)")
}

// cmdMBRLoad is sedutil --loadPBAimage: the image goes into the MBR table
// from offset 0, then is read back and compared (unless --no-verify). An
// image larger than the table is refused before anything is written.
func cmdMBRLoad(e *env, args []string) error {
	image, spec := args[0], args[1]
	f, err := os.Open(image)
	if err != nil {
		return withCode(ExitNoInput, fmt.Errorf("PBA image: %w", err), "")
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return withCode(ExitNoInput, fmt.Errorf("PBA image: %w", err), "")
	}
	d, a, err := mbrCmd(e, spec)
	if err != nil {
		return err
	}
	size, err := opal.TableSize(e.ctx, d.c, a, method.MBR)
	if err != nil {
		return e.explain(d, a, err)
	}
	if fi.Size() < 0 || uint64(fi.Size()) > size {
		return withCode(ExitData, fmt.Errorf("PBA image %s is %d bytes (%s), larger than the drive's shadow MBR table: %d bytes (%s); nothing was written",
			image, fi.Size(), humanBytes(uint64(fi.Size())), size, humanBytes(size)), "")
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(size)+1))
	if err != nil {
		return withCode(ExitNoInput, fmt.Errorf("read PBA image %s: %w", image, err), "")
	}
	if uint64(len(data)) > size {
		return withCode(ExitData, fmt.Errorf("PBA image %s grew beyond the shadow MBR table (%d bytes); nothing was written", image, size), "")
	}
	bar := e.progress("loading "+image, len(data))
	err = opal.WriteMBR(e.ctx, d.c, a, 0, data, bar.update)
	bar.finish()
	if err != nil {
		return e.explain(d, a, err)
	}
	verified := false
	if !e.opts.bool("no-verify") {
		back := make([]byte, len(data))
		if err := opal.ReadMBR(e.ctx, d.c, a, 0, back); err != nil {
			return e.explain(d, a, fmt.Errorf("read back the shadow MBR: %w", err))
		}
		if i := firstDiff(data, back); i >= 0 {
			return withCode(ExitIO, fmt.Errorf("shadow MBR read back differs from %s at byte %d", image, i), "load the image again")
		}
		verified = true
	}
	out := struct {
		Device    string `json:"device"`
		Image     string `json:"image"`
		Bytes     int    `json:"bytes"`
		TableSize uint64 `json:"table_size"`
		Verified  bool   `json:"verified"`
	}{d.spec, image, len(data), size, verified}
	return e.emit(out, func(w io.Writer) error {
		v := ""
		if verified {
			v = ", read back and verified"
		}
		_, err := fmt.Fprintf(w, "%s: loaded %d bytes of %s into the shadow MBR (%s table)%s\n", d.spec, len(data), image, humanBytes(size), v)
		return err
	})
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// progressBar draws on stderr when it is a terminal and output is not
// JSON; otherwise it does nothing.
type progressBar struct {
	w     io.Writer
	label string
	total int
	last  int
}

func (e *env) progress(label string, total int) *progressBar {
	f, ok := e.stderr.(*os.File)
	if e.json || !ok || !term.IsTerminal(int(f.Fd())) || total == 0 {
		return &progressBar{}
	}
	return &progressBar{w: f, label: label, total: total, last: -1}
}

func (p *progressBar) update(done int) {
	if p.w == nil {
		return
	}
	pct := done * 100 / p.total
	if pct == p.last {
		return
	}
	p.last = pct
	const width = 30
	fill := pct * width / 100
	fmt.Fprintf(p.w, "\r%s [%s%s] %3d%% %s/%s", p.label, strings.Repeat("#", fill), strings.Repeat(" ", width-fill), pct,
		humanBytes(uint64(done)), humanBytes(uint64(p.total)))
}

func (p *progressBar) finish() {
	if p.w != nil {
		fmt.Fprintln(p.w)
	}
}

// ---- datastore

func dataStoreArgs(e *env) (table uint32, offset uint64, err error) {
	table = 1
	if e.opts.has("table") {
		n, err := parseUint("--table", e.opts.get("table"), 16)
		if err != nil {
			return 0, 0, err
		}
		if n == 0 {
			return 0, 0, usageError(errors.New("--table: DataStore tables are numbered from 1"))
		}
		table = uint32(n)
	}
	if e.opts.has("offset") {
		if offset, err = parseUint("--offset", e.opts.get("offset"), 64); err != nil {
			return 0, 0, err
		}
	}
	return table, offset, nil
}

func cmdDataStoreRead(e *env, args []string) error {
	table, offset, err := dataStoreArgs(e)
	if err != nil {
		return err
	}
	d, err := e.openDevice(args[0])
	if err != nil {
		return err
	}
	a, err := e.loginAs(d, method.Admin(1))
	if err != nil {
		return err
	}
	size, err := opal.TableSize(e.ctx, d.c, a, method.DataStoreTable(table))
	if err != nil {
		return e.explain(d, a, err)
	}
	if offset > size {
		return withCode(ExitData, fmt.Errorf("--offset %d is beyond the DataStore table's %d bytes", offset, size), "")
	}
	length := size - offset
	if e.opts.has("length") {
		if length, err = parseUint("--length", e.opts.get("length"), 64); err != nil {
			return err
		}
		if length > size-offset { // offset <= size: no overflow
			return withCode(ExitData, fmt.Errorf("offset %d + length %d runs past the DataStore table's %d bytes", offset, length, size), "")
		}
	}
	buf := make([]byte, length)
	if err := opal.ReadDataStore(e.ctx, d.c, a, table, offset, buf); err != nil {
		return e.explain(d, a, err)
	}
	if out := e.opts.get("out"); out != "" {
		if err := os.WriteFile(out, buf, 0o600); err != nil {
			return withCode(ExitIO, fmt.Errorf("write %s: %w", out, err), "")
		}
	}
	if e.json {
		j := struct {
			Device  string `json:"device"`
			Table   uint32 `json:"table"`
			Offset  uint64 `json:"offset"`
			Length  uint64 `json:"length"`
			Size    uint64 `json:"table_size"`
			DataHex string `json:"data_hex,omitempty"`
			Out     string `json:"out,omitempty"`
		}{d.spec, table, offset, length, size, "", e.opts.get("out")}
		if j.Out == "" {
			j.DataHex = hex.EncodeToString(buf)
		}
		return writeJSON(e.stdout, j)
	}
	if e.opts.get("out") != "" {
		_, err := fmt.Fprintf(e.stderr, "%s: read %d bytes of DataStore table %d into %s\n", d.spec, length, table, e.opts.get("out"))
		return err
	}
	_, err = e.stdout.Write(buf)
	return err
}

func cmdDataStoreWrite(e *env, args []string) error {
	table, offset, err := dataStoreArgs(e)
	if err != nil {
		return err
	}
	// Opened before the drive, so that a missing file costs no session;
	// read once the table's size bounds it (FILE may be endless, as
	// /dev/zero is).
	file := args[0]
	in, closeIn, err := e.openInput(file)
	if err != nil {
		return err
	}
	defer closeIn()
	d, err := e.openDevice(args[1])
	if err != nil {
		return err
	}
	a, err := e.loginAs(d, method.Admin(1))
	if err != nil {
		return err
	}
	size, err := opal.TableSize(e.ctx, d.c, a, method.DataStoreTable(table))
	if err != nil {
		return e.explain(d, a, err)
	}
	if offset > size {
		return withCode(ExitData, fmt.Errorf("--offset %d is beyond the DataStore table's %d bytes; nothing was written", offset, size), "")
	}
	room := size - offset
	data, err := io.ReadAll(io.LimitReader(in, int64(min(room, 1<<40))+1))
	if err != nil {
		return withCode(ExitNoInput, fmt.Errorf("read %s: %w", file, err), "")
	}
	if uint64(len(data)) > room {
		return withCode(ExitData, fmt.Errorf("the data of %s do not fit the DataStore table's %d bytes at offset %d (room for %d bytes); nothing was written", file, size, offset, room), "")
	}
	bar := e.progress("writing "+file, len(data))
	err = opal.WriteDataStore(e.ctx, d.c, a, table, offset, data, bar.update)
	bar.finish()
	if err != nil {
		return e.explain(d, a, err)
	}
	return e.emit(struct {
		Device string `json:"device"`
		Table  uint32 `json:"table"`
		Offset uint64 `json:"offset"`
		Bytes  int    `json:"bytes"`
	}{d.spec, table, offset, len(data)}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s: wrote %d bytes to DataStore table %d at offset %d\n", d.spec, len(data), table, offset)
		return err
	})
}

// openInput opens FILE for reading, or standard input for "-"; a directory
// is refused. closeIn is never nil.
func (e *env) openInput(file string) (in io.Reader, closeIn func(), err error) {
	if file == "-" {
		return e.stdin, func() {}, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, withCode(ExitNoInput, fmt.Errorf("read %s: %w", file, err), "")
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, nil, withCode(ExitNoInput, fmt.Errorf("read %s: is a directory", file), "")
	}
	return f, func() { f.Close() }, nil
}
