package sedctl

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// table is an aligned text table for people.
type table struct {
	header []string
	rows   [][]string
}

func newTable(header ...string) *table { return &table{header: header} }

func (t *table) add(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = cellText(c)
	}
	t.rows = append(t.rows, row)
}

func cellText(c any) string {
	switch v := c.(type) {
	case string:
		if v == "" {
			return "-"
		}
		return v
	case bool:
		if v {
			return "yes"
		}
		return "no"
	default:
		return fmt.Sprint(v)
	}
}

func (t *table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(t.header) > 0 {
		fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	}
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// keyValues prints "key: value" lines aligned on the colon.
type keyValues struct{ rows [][2]string }

func (kv *keyValues) add(k string, v any) { kv.rows = append(kv.rows, [2]string{k, cellText(v)}) }

func (kv *keyValues) write(w io.Writer, indent string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, r := range kv.rows {
		fmt.Fprintf(tw, "%s%s:\t%s\n", indent, r[0], r[1])
	}
	return tw.Flush()
}

// emit prints v as JSON with --json, or calls human otherwise.
func (e *env) emit(v any, human func(w io.Writer) error) error {
	if e.json {
		e.emitted = true
		return writeJSON(e.stdout, v)
	}
	return human(e.stdout)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// done reports a change made to the drive: one line for people, an
// object for --json.
type doneResult struct {
	Device string  `json:"device"`
	Action string  `json:"action"`
	Range  *uint32 `json:"range,omitempty"`
	Detail string  `json:"detail,omitempty"`
}

func (e *env) done(d *device, action string, rng *uint32, detail string) error {
	r := doneResult{Device: d.spec, Action: action, Range: rng, Detail: detail}
	return e.emit(r, func(w io.Writer) error {
		if detail != "" {
			_, err := fmt.Fprintf(w, "%s: %s\n", d.spec, detail)
			return err
		}
		_, err := fmt.Fprintf(w, "%s: %s: done\n", d.spec, action)
		return err
	})
}

func u32(n uint32) *uint32 { return &n }
