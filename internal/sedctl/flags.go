package sedctl

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// optKind is what an option takes.
type optKind uint8

const (
	optBool   optKind = iota // --yes
	optString                // --hash sedutil-sha1, --hash=sedutil-sha1
	optList                  // --sim A --sim B
)

// optSpec describes one long option. Names are matched without regard to
// case, as sedutil-cli matches its own.
type optSpec struct {
	kind optKind
	arg  string // the value's name in help, "" for bool options
	help string
}

// optionSpecs are every long option sedctl knows; each command lists those
// it takes (command.opts), plus the global ones.
var optionSpecs = map[string]optSpec{
	"json":              {optBool, "", "print JSON (stable snake_case fields) instead of tables"},
	"trace":             {optBool, "", "decode every IF-SEND/IF-RECV to stderr (PINs redacted)"},
	"help":              {optBool, "", "show help"},
	"via":               {optString, "kernel", "use the kernel's sed-opal ioctls (IOC_OPAL_*) on the block device instead of Security Send/Receive: for query, is-valid, setup, take-ownership, activate, password set, user enable, range *, mbr * but status, datastore, revert, psid-revert, reset (STACK_RESET); other commands refuse it"},
	"hash":              {optString, "SCHEME", "password to PIN derivation (default sedutil-sha1; see 'sedctl hash --list')"},
	"password-file":     {optString, "FILE", "read the password from the first line of FILE (mode 0600 or stricter)"},
	"password-fd":       {optString, "N", "read the password from the first line of file descriptor N"},
	"new-password-file": {optString, "FILE", "read the new password from the first line of FILE"},
	"new-password-fd":   {optString, "N", "read the new password from the first line of file descriptor N"},
	"as":                {optString, "AUTHORITY", "authenticate as AUTHORITY (sid, admin1..4, userN, anybody)"},
	"authority":         {optString, "AUTHORITY", "the authority whose password is set (sid, admin1..4, userN)"},
	"yes":               {optBool, "", "do not ask for confirmation before erasing data"},
	"sim":               {optList, "SOCKET", "also scan this sedsim socket (repeatable)"},
	"serial":            {optString, "SERIAL", "drive serial number to salt the hash with (padded to 20 bytes)"},
	"list":              {optBool, "", "list the hash schemes"},
	"tper":              {optBool, "", "revert the whole drive (Admin SP Revert, as SID)"},
	"locking-sp":        {optBool, "", "revert only the Locking SP (RevertSP, as Admin1)"},
	"keep-data":         {optBool, "", "keep the global range's key and data (RevertSP KeepGlobalRangeKey)"},
	"mbr":               {optBool, "", "also enable the shadow MBR (Done on), as sedutil --initialSetup does"},
	"offset":            {optString, "BYTES", "offset in the table"},
	"length":            {optString, "BYTES", "bytes to read (default: to the end of the table)"},
	"out":               {optString, "FILE", "write the data to FILE instead of stdout"},
	"table":             {optString, "N", "DataStore table number (default 1)"},
	"power-cycle":       {optBool, "", "power-cycle the drive (sedsim only: opalwire RESET)"},
	"stack":             {optBool, "", "reset the ComID (STACK_RESET; the default)"},
	"no-verify":         {optBool, "", "skip reading the image back after loading it"},
	"admins-set-ranges": {optBool, "", "admins, not the range owners, set SUM ranges' start and length"},
	"version":           {optBool, "", "print the version"},
	"self-test":         {optBool, "", "check the hash schemes against their published test vectors"},
}

// globalOpts are accepted by every command.
var globalOpts = []string{"json", "trace", "help", "via"}

// Option groups for command definitions.
var (
	authOpts   = []string{"hash", "password-file", "password-fd", "as"}
	newPwOpts  = []string{"new-password-file", "new-password-fd"}
	secretOpts = []string{"password-file", "password-fd"}
)

// options holds the parsed options.
type options struct {
	given map[string]bool
	str   map[string]string
	list  map[string][]string
}

func (o *options) has(name string) bool     { return o.given[name] }
func (o *options) bool(name string) bool    { return o.given[name] }
func (o *options) get(name string) string   { return o.str[name] }
func (o *options) all(name string) []string { return o.list[name] }
func (o *options) set(name, v string)       { o.given[name] = true; o.str[name] = v }
func (o *options) setBool(name string)      { o.given[name] = true }
func (o *options) names() []string {
	var n []string
	for k := range o.given {
		n = append(n, k)
	}
	slices.Sort(n)
	return n
}

// parsed is a command line split into options, positional arguments and,
// for sedutil-style invocations, the sedutil command named.
type parsed struct {
	opts  *options
	pos   []string
	alias *alias // a sedutil-cli command (--setLockingRange ...), or nil
}

// parseArgs splits args. Options may come anywhere (before "--"), as
// "--name value", "--name=value" or, for a few, short forms: -h (help),
// -y (yes), -n (sedutil's no-hash: --hash sedutil-raw) and sedutil's
// verbosity flags -v...-vvvvv (accepted and ignored; use --trace). An
// argument that looks like a negative number is positional.
func parseArgs(args []string) (*parsed, error) {
	p := &parsed{opts: &options{given: map[string]bool{}, str: map[string]string{}, list: map[string][]string{}}}
	o := p.opts
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			p.pos = append(p.pos, args[i+1:]...)
			return p, nil
		case a == "-h":
			o.setBool("help")
			continue
		case a == "-y":
			o.setBool("yes")
			continue
		case a == "-n":
			if o.has("hash") && o.get("hash") != "sedutil-raw" {
				return nil, usageError(fmt.Errorf("-n (no hashing) conflicts with --hash %s", o.get("hash")))
			}
			o.set("hash", "sedutil-raw")
			continue
		case len(a) > 1 && a[0] == '-' && strings.Trim(a[1:], "v") == "":
			continue // sedutil -v ... -vvvvv
		case len(a) > 1 && a[0] == '-' && a[1] != '-' && !isNumber(a):
			return nil, usageError(fmt.Errorf("unknown option %q (long options start with --)", a))
		case !strings.HasPrefix(a, "--") || a == "--":
			p.pos = append(p.pos, a)
			continue
		}
		name, value, hasValue := strings.Cut(a[2:], "=")
		lname := strings.ToLower(name)
		_, isOpt := optionSpecs[lname]
		if al := lookupAlias(lname); al != nil && !hasValue && !isOpt {
			if p.alias != nil {
				return nil, usageError(fmt.Errorf("two sedutil commands given: --%s and --%s", p.alias.name, al.name))
			}
			if len(p.pos) > 0 {
				return nil, usageError(fmt.Errorf("--%s must come before its arguments", al.name))
			}
			p.alias = al
			continue
		}
		spec, ok := optionSpecs[lname]
		if !ok {
			return nil, usageError(fmt.Errorf("unknown option --%s", name))
		}
		switch spec.kind {
		case optBool:
			if hasValue {
				b, err := strconv.ParseBool(value)
				if err != nil {
					return nil, usageError(fmt.Errorf("--%s takes no value (or true/false), not %q", lname, value))
				}
				if !b {
					delete(o.given, lname)
					continue
				}
			}
			o.setBool(lname)
		case optString, optList:
			if !hasValue {
				if i+1 >= len(args) {
					return nil, usageError(fmt.Errorf("--%s needs a value (%s)", lname, spec.arg))
				}
				i++
				value = args[i]
			}
			if spec.kind == optList {
				o.given[lname] = true
				o.list[lname] = append(o.list[lname], value)
				continue
			}
			if o.has(lname) && o.get(lname) != value {
				if lname == "hash" && o.get(lname) == "sedutil-raw" {
					return nil, usageError(fmt.Errorf("-n (no hashing, --hash sedutil-raw) conflicts with --hash %s", value))
				}
				return nil, usageError(fmt.Errorf("--%s given twice", lname))
			}
			o.set(lname, value)
		}
	}
	return p, nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseInt(s, 0, 64)
	return err == nil
}

// checkOpts refuses options that the command does not take.
func checkOpts(o *options, cmd *command) error {
	for _, n := range o.names() {
		if slices.Contains(globalOpts, n) || slices.Contains(cmd.opts, n) {
			continue
		}
		return usageError(fmt.Errorf("option --%s does not apply to 'sedctl %s'", n, cmd.path))
	}
	return nil
}

// parseUint parses a decimal or 0x-prefixed unsigned number.
func parseUint(what, s string, bits int) (uint64, error) {
	v, err := strconv.ParseUint(s, 0, bits)
	if err != nil {
		return 0, usageError(fmt.Errorf("%s: %q is not a number (decimal, or hex with 0x)", what, s))
	}
	return v, nil
}

// parseFD parses a file descriptor number.
func parseFD(what, s string) (int, error) {
	v, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, usageError(fmt.Errorf("%s: %q is not a file descriptor number", what, s))
	}
	return int(v), nil
}
