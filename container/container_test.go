package container

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/shiftlock/shiftlock/idmap"
)

// TestMain lets the test binary serve as the container init that Run
// re-executes.
func TestMain(m *testing.M) {
	MaybeInit()
	os.Exit(m.Run())
}

func TestInitSettingsDefaults(t *testing.T) {
	t.Setenv("TERM", "xterm-test")
	ic, err := initSettings(&Config{Args: []string{"sh"}})
	if err != nil {
		t.Fatalf("initSettings = %v; want nil", err)
	}
	wantEnv := []string{"PATH=" + DefaultPath, "HOME=/root", "TERM=xterm-test", "container=idmapfs"}
	if !slices.Equal(ic.Env, wantEnv) {
		t.Errorf("Env = %q; want %q", ic.Env, wantEnv)
	}
	if ic.Hostname != DefaultHostname || ic.Dir != "/" {
		t.Errorf("Hostname, Dir = %q, %q; want %q, %q", ic.Hostname, ic.Dir, DefaultHostname, "/")
	}

	t.Setenv("TERM", "")
	ic, err = initSettings(&Config{Args: []string{"sh"}, Env: []string{}})
	if err != nil || ic.Env == nil || len(ic.Env) != 0 {
		t.Errorf("initSettings(Env: []string{}) = %q, %v; want an empty environment kept", ic.Env, err)
	}
}

func TestInitSettingsRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no args", Config{}, "no command"},
		{"empty arg0", Config{Args: []string{""}}, "no command"},
		{"relative dir", Config{Args: []string{"sh"}, Dir: "tmp"}, "absolute"},
		{"long hostname", Config{Args: []string{"sh"}, Hostname: strings.Repeat("h", 65)}, "hostname"},
		{"nul hostname", Config{Args: []string{"sh"}, Hostname: "a\x00b"}, "hostname"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := initSettings(&tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("initSettings(%+v) = %v; want an error containing %q", tt.cfg, err, tt.want)
			}
		})
	}
}

func TestCheckMap(t *testing.T) {
	tests := []struct {
		name, text string
		want       string // "" = accepted
	}{
		{"root mapped", "0:100000:65536", ""},
		{"root in second range", "1000:200000:10,0:100000:1", ""},
		{"no root", "1:100001:65535", "does not map container uid 0"},
		{"empty", "", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m idmap.Map
			if tt.text != "" {
				var err error
				if m, err = idmap.ParseMap(tt.text); err != nil {
					t.Fatalf("ParseMap(%q) = %v", tt.text, err)
				}
			}
			err := checkMap("uid", m)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("checkMap(%q) = %v; want nil", tt.text, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("checkMap(%q) = %v; want an error containing %q", tt.text, err, tt.want)
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	tests := []struct {
		name, arg0, path string
		want             []string
	}{
		{"search", "sh", "/usr/bin:/bin", []string{"/usr/bin/sh", "/bin/sh"}},
		{"absolute", "/bin/sh", "/usr/bin", []string{"/bin/sh"}},
		{"relative with slash", "./run", "/usr/bin", []string{"./run"}},
		{"empty element is cwd", "x", ":/bin", []string{"x", "/bin/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := candidates(tt.arg0, tt.path); !slices.Equal(got, tt.want) {
				t.Errorf("candidates(%q, %q) = %q; want %q", tt.arg0, tt.path, got, tt.want)
			}
		})
	}
}

func TestSearchPath(t *testing.T) {
	if got := searchPath([]string{"HOME=/"}); got != DefaultPath {
		t.Errorf("searchPath(no PATH) = %q; want %q", got, DefaultPath)
	}
	if got := searchPath([]string{"PATH=/a", "PATH=/b"}); got != "/b" {
		t.Errorf("searchPath(PATH twice) = %q; want the last, %q", got, "/b")
	}
}
