package hash

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// secretPIN is printable so that a leak in any encoding shows as text.
var secretPIN = PIN("hunter2-correct-horse")

const redacted = "[REDACTED 21 bytes]"

func TestPINFormat(t *testing.T) {
	type holder struct {
		Name string
		PIN  PIN
	}
	p := bytes.Clone(secretPIN)
	pin := PIN(p)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%d", "%10s", "%T-free"} {
		got := fmt.Sprintf(verb, pin)
		if verb == "%T-free" {
			got = fmt.Sprint(pin) + fmt.Sprintln(pin)
		}
		if strings.Contains(got, "hunter") || strings.Contains(got, fmt.Sprintf("%x", []byte(p))[:8]) {
			t.Errorf("Sprintf(%q, pin) = %q leaks the PIN", verb, got)
		}
		if !strings.Contains(got, redacted) {
			t.Errorf("Sprintf(%q, pin) = %q; want it to contain %q", verb, got, redacted)
		}
	}
	for _, v := range []any{&pin, holder{"x", pin}, &holder{"x", pin}, []PIN{pin}, map[string]PIN{"k": pin}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%s"} {
			got := fmt.Sprintf(verb, v)
			if strings.Contains(got, "hunter") || strings.Contains(got, "68756e746572") || strings.Contains(got, "104 117 110") {
				t.Errorf("Sprintf(%q, %T) = %q leaks the PIN", verb, v, got)
			}
		}
	}
	if got := pin.String(); got != redacted {
		t.Errorf("String() = %q; want %q", got, redacted)
	}
	if got := pin.GoString(); got != redacted {
		t.Errorf("GoString() = %q; want %q", got, redacted)
	}
	if got := fmt.Sprint(PIN(nil)); got != "[REDACTED 0 bytes]" {
		t.Errorf("Sprint(nil PIN) = %q", got)
	}
}

func TestPINEncodings(t *testing.T) {
	pin := PIN(bytes.Clone(secretPIN))
	type holder struct {
		PIN PIN `json:"pin" xml:"pin"`
	}
	b, err := json.Marshal(holder{pin})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"pin":"[REDACTED 21 bytes]"}`; string(b) != want {
		t.Errorf("json.Marshal = %s; want %s", b, want)
	}
	b, err = xml.Marshal(holder{pin})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "hunter") || !strings.Contains(string(b), redacted) {
		t.Errorf("xml.Marshal = %s; want it redacted", b)
	}

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		log := slog.New(h)
		log.Info("unlock", "pin", pin)
		log.Info("unlock", slog.Any("pin", pin), slog.Group("g", "pin", pin))
		log.Info(fmt.Sprint(pin))
	}
	if strings.Contains(buf.String(), "hunter") || strings.Contains(buf.String(), "aHVudGVy") {
		t.Errorf("slog output leaks the PIN:\n%s", buf.String())
	}
	if strings.Count(buf.String(), redacted) != 8 {
		t.Errorf("slog output: want 8 redacted PINs:\n%s", buf.String())
	}
}

func TestPINWipeEqual(t *testing.T) {
	a := PIN(bytes.Clone(secretPIN))
	b := PIN(bytes.Clone(secretPIN))
	if !a.Equal(b) || !PIN(nil).Equal(PIN{}) {
		t.Errorf("Equal is false for equal PINs")
	}
	if a.Equal(b[:5]) || a.Equal(PIN("hunter2-correct-horsf")) {
		t.Errorf("Equal is true for different PINs")
	}
	a.Wipe()
	if !bytes.Equal(a, make([]byte, len(secretPIN))) {
		t.Errorf("after Wipe: %x; want zeros", []byte(a))
	}
	PIN(nil).Wipe()
}
