package sedctl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/opal"
	"github.com/shiftlock/shiftlock/tcg/session"
)

// TestAliasesReachCommands: every sedutil-cli alias expands to a sedctl
// command that exists and takes the options the alias implies; the table
// stays consistent as commands are added.
func TestAliasesReachCommands(t *testing.T) {
	for _, a := range aliases {
		t.Run(a.name, func(t *testing.T) {
			args := make([]string, len(a.args)-a.passwords())
			for i := range args {
				args[i] = "on" // a valid on/off, and any other positional
			}
			exp, err := a.expand(args)
			if a.note != "" {
				if err == nil || ExitCode(err) != ExitUnsupported {
					t.Errorf("refused alias: %v; want exit %d", err, ExitUnsupported)
				}
				return
			}
			if err != nil {
				t.Fatalf("expand: %v", err)
			}
			p, err := parseArgs(exp)
			if err != nil {
				t.Fatalf("parse %q: %v", exp, err)
			}
			cmd, rest, err := findCommand(p.pos)
			if err != nil {
				t.Fatalf("%q: %v", exp, err)
			}
			if err := checkOpts(p.opts, cmd); err != nil {
				t.Errorf("%q: %v", exp, err)
			}
			if len(rest) < cmd.minArgs || (cmd.maxArgs >= 0 && len(rest) > cmd.maxArgs) {
				t.Errorf("%q: %d arguments for 'sedctl %s %s'", exp, len(rest), cmd.path, cmd.args)
			}
			// Case does not matter, and the password-in-argv form is refused.
			if lookupAlias(strings.ToUpper(a.name)) != nil {
				t.Error("lookupAlias matched an upper-case name: it takes lower case")
			}
			if lookupAlias(strings.ToLower(a.name)) != a {
				t.Error("lookupAlias: not found by its lower-case name")
			}
			if a.passwords() > 0 {
				if _, err := a.expand(append(args, "pw")); err == nil || !strings.Contains(err.Error(), "never takes passwords") {
					t.Errorf("password in argv: %v", err)
				}
			}
		})
	}
}

// TestCommandTable: paths are unique, every option a command lists exists,
// and every command has a summary and an example.
func TestCommandTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commands() {
		if seen[c.path] {
			t.Errorf("command %q twice", c.path)
		}
		seen[c.path] = true
		if c.summary == "" || !strings.Contains(c.help, "Example") {
			t.Errorf("command %q lacks a summary or an example", c.path)
		}
		for _, o := range c.opts {
			if _, ok := optionSpecs[o]; !ok {
				t.Errorf("command %q lists unknown option --%s", c.path, o)
			}
		}
	}
}

// TestExitCodes pins the exit code of each kind of failure.
func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{fmt.Errorf("start session: %w", method.StatusNotAuthorized), 1},
		{fmt.Errorf("x: %w", method.StatusSPBusy), 3},
		{fmt.Errorf("x: %w", method.StatusInvalidParameter), 12},
		{fmt.Errorf("x: %w", method.StatusAuthorityLockedOut), 18},
		{fmt.Errorf("x: %w", method.StatusFail), 63},
		{usageError(errors.New("u")), ExitUsage},
		{withCode(ExitData, errors.New("d"), ""), ExitData},
		{fmt.Errorf("x: %w", opal.ErrNoRanges), ExitUnsupported},
		{fmt.Errorf("x: %w", session.ErrNoSSC), ExitUnsupported},
		{fmt.Errorf("x: %w", opal.ErrOwned), ExitRefused},
		{fmt.Errorf("x: %w", context.Canceled), ExitInterrupted},
		{fmt.Errorf("x: %w", session.ErrMalformed), ExitProtocol},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), ExitIO},
		{errors.New("something else"), ExitSoftware},
	} {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("ExitCode(%v) = %d; want %d", c.err, got, c.want)
		}
	}
}
