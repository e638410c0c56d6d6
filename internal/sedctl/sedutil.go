package sedctl

import (
	"fmt"
	"strings"
)

// sedutil-cli compatibility: its commands are accepted as aliases, matched
// without regard to case, with its argument order and literal arguments
// (RW/RO/LK, on/off). sedutil takes passwords as arguments; sedctl never
// does, so each alias is written without them and the password comes from
// the prompt, --password-file or --password-fd. An alias given with the
// password still in place is refused without echoing it.

// alias maps one sedutil-cli command to sedctl's.
type alias struct {
	name string
	// args is sedutil's argument list, device last; "pw" marks a password.
	args []string
	// to builds sedctl's arguments (command words and positionals) from
	// the non-password arguments, device included, in sedutil's order.
	to func(a []string) []string
	// flags are options the alias implies.
	flags []string
	// note, when set, is why the alias is refused.
	note string
}

func words(w ...string) func(a []string) []string {
	return func(a []string) []string { return append(append([]string(nil), w...), a...) }
}

var aliases = []*alias{
	{name: "scan", args: nil, to: words("scan")},
	{name: "query", args: []string{"dev"}, to: words("query")},
	{name: "isValidSED", args: []string{"dev"}, to: words("is-valid")},
	{name: "printDefaultPassword", args: []string{"dev"}, to: words("msid")},
	{name: "takeOwnership", args: []string{"pw", "dev"}, to: words("take-ownership")},
	{name: "activateLockingSP", args: []string{"pw", "dev"}, to: words("activate")},
	{name: "activateLockingSP_SUM", args: []string{"LR", "pw", "dev"}, to: words("sum", "activate")},
	{name: "initialSetup", args: []string{"pw", "dev"}, to: words("setup"), flags: []string{"--mbr"}},
	{name: "setup_SUM", args: []string{"LR", "start", "len", "pw", "pw", "dev"}, to: words("sum", "setup-drive")},
	{name: "setSIDPassword", args: []string{"pw", "pw", "dev"}, to: words("password", "set"), flags: []string{"--authority", "sid"}},
	{name: "setAdmin1Pwd", args: []string{"pw", "pw", "dev"}, to: words("password", "set"), flags: []string{"--authority", "admin1"}},
	{name: "setPassword", args: []string{"pw", "userid", "pw", "dev"}, to: func(a []string) []string {
		return []string{"password", "set", "--authority", a[0], a[1]}
	}},
	{name: "setPassword_SUM", args: []string{"pw", "userid", "pw", "dev"}, to: func(a []string) []string {
		return []string{"password", "set", "--authority", a[0], "--as", a[0], a[1]}
	}},
	{name: "enableuser", args: []string{"pw", "userid", "dev"}, to: words("user", "enable")},
	{name: "enableLockingRange", args: []string{"LR", "pw", "dev"}, to: words("range", "enable")},
	{name: "disableLockingRange", args: []string{"LR", "pw", "dev"}, to: words("range", "disable")},
	{name: "readonlyLockingRange", args: []string{"LR", "pw", "dev"}, to: words("range", "readonly")},
	{name: "setLockingRange", args: []string{"LR", "state", "pw", "dev"}, to: words("range", "set")},
	{name: "setLockingRange_SUM", args: []string{"LR", "state", "pw", "dev"}, to: words("sum", "set")},
	{name: "setupLockingRange", args: []string{"LR", "start", "len", "pw", "dev"}, to: words("range", "setup")},
	{name: "setupLockingRange_SUM", args: []string{"LR", "start", "len", "pw", "dev"}, to: words("sum", "setup")},
	{name: "rekeyLockingRange", args: []string{"LR", "pw", "dev"}, to: words("range", "erase"), flags: []string{"--yes"}},
	{name: "listLockingRanges", args: []string{"pw", "dev"}, to: words("range", "list")},
	{name: "listLockingRange", args: []string{"LR", "pw", "dev"}, to: words("range", "list")},
	{name: "eraseLockingRange_SUM", args: []string{"LR", "pw", "dev"}, to: words("sum", "erase"), flags: []string{"--yes"}},
	{name: "eraseLockingRange", args: []string{"LR", "pw", "dev"},
		note: "--eraseLockingRange is an Enterprise SSC command; on Opal use 'sedctl range erase N DEV' (GenKey) or, for Single User Mode ranges, 'sedctl sum erase N DEV'"},
	{name: "setBandsEnabled", args: []string{"pw", "dev"}, note: "--setBandsEnabled is an Enterprise SSC command and does nothing on Opal"},
	{name: "setBandEnabled", args: []string{"LR", "pw", "dev"}, note: "--setBandEnabled is an Enterprise SSC command and does nothing on Opal"},
	{name: "setMBREnable", args: []string{"onoff", "pw", "dev"}, to: func(a []string) []string {
		if strings.EqualFold(a[0], "off") {
			return []string{"mbr", "disable", a[1]}
		}
		return []string{"mbr", "enable", a[1]} // "on"; expand checked it
	}},
	{name: "setMBRDone", args: []string{"onoff", "pw", "dev"}, to: words("mbr", "done")},
	{name: "loadPBAimage", args: []string{"pw", "file", "dev"}, to: words("mbr", "load")},
	{name: "revertTPer", args: []string{"pw", "dev"}, to: words("revert"), flags: []string{"--tper", "--yes"}},
	{name: "revertNoErase", args: []string{"pw", "dev"}, to: words("revert"), flags: []string{"--locking-sp", "--keep-data", "--yes"}},
	{name: "revertLockingSP", args: []string{"pw", "dev"}, to: words("revert"), flags: []string{"--locking-sp", "--yes"}},
	{name: "PSIDrevert", args: []string{"pw", "dev"}, to: words("psid-revert"), flags: []string{"--yes"}},
	{name: "PSIDrevertAdminSP", args: []string{"pw", "dev"}, to: words("psid-revert"), flags: []string{"--yes"}},
	{name: "yesIreallywanttoERASEALLmydatausingthePSID", args: []string{"pw", "dev"}, to: words("psid-revert"), flags: []string{"--yes"}},
	{name: "objDump", args: []string{"SP", "auth", "pw", "uid", "dev"}, to: words("raw", "get")},
	{name: "rawCmd", args: []string{"SP", "auth", "pw", "invoker", "method", "plist", "dev"}, to: func(a []string) []string {
		return []string{"raw", "call", a[0], a[1], a[2], a[3], "tokens:" + a[4], a[5]}
	}},
	{name: "printPasswordHash", args: []string{"pw", "dev"}, to: words("hash")},
	{name: "TCGreset", args: []string{"dev"}, to: words("reset")},
	{name: "validatePBKDF2", args: nil, to: words("hash", "--self-test")},
	// sedutil's --help and --version are sedctl's own options of the same
	// name, so they need no alias.
}

func lookupAlias(lname string) *alias {
	for _, a := range aliases {
		if strings.ToLower(a.name) == lname {
			return a
		}
	}
	return nil
}

func (a *alias) passwords() int {
	n := 0
	for _, x := range a.args {
		if x == "pw" {
			n++
		}
	}
	return n
}

func (a *alias) usage() string {
	var b strings.Builder
	b.WriteString("--" + a.name)
	for _, x := range a.args {
		if x != "pw" {
			b.WriteString(" <" + x + ">")
		}
	}
	return b.String()
}

// expand turns an alias and its positional arguments into sedctl's
// command line: command words, positionals, implied flags.
func (a *alias) expand(pos []string) ([]string, error) {
	if a.note != "" {
		return nil, withCode(ExitUnsupported, fmt.Errorf("%s", a.note), "")
	}
	want := len(a.args) - a.passwords()
	switch {
	case len(pos) == want:
	case len(pos) > want && len(pos) <= len(a.args):
		return nil, usageError(fmt.Errorf("sedctl never takes passwords on the command line (they end up in shell history and in /proc/PID/cmdline): "+
			"write --%s without the password, as '%s', and give it at the prompt, with --password-file FILE or with --password-fd N", a.name, a.usage()))
	default:
		return nil, usageError(fmt.Errorf("usage: sedctl %s (passwords come from the prompt, --password-file or --password-fd)", a.usage()))
	}
	if a.name == "setMBREnable" && !strings.EqualFold(pos[0], "on") && !strings.EqualFold(pos[0], "off") {
		return nil, usageError(fmt.Errorf("--setMBREnable takes on or off, not %q", pos[0]))
	}
	out := a.to(pos)
	return append(out, a.flags...), nil
}
