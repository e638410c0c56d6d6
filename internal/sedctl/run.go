package sedctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/shiftlock/shiftlock/tcg/hash"
	"github.com/shiftlock/shiftlock/tcg/method"
)

// IO is what a sedctl run reads and writes: the standard streams and the
// environment (only SEDCTL_SIM_SOCKETS, a path list, is read from it;
// secrets never are).
type IO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// env is one run of sedctl.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string

	opts   *options
	json   bool
	scheme *hash.Scheme
	cmd    *command

	fds     map[int]*os.File
	closers []func()
	// emitted is set once the command has printed its JSON object: an
	// error after that (raw's method status, is-valid's "no") is told
	// by that object and the exit code, so stdout stays one JSON value.
	emitted bool
}

// Main runs sedctl with args (without the program name), reports any error
// on stderr (and, with --json, as a JSON object on stdout) and returns the
// exit code (see ExitCode).
func Main(ctx context.Context, args []string, stdio IO) int {
	e := &env{ctx: ctx, stdin: stdio.Stdin, stdout: stdio.Stdout, stderr: stdio.Stderr, getenv: stdio.Getenv, fds: map[int]*os.File{}}
	if e.stdin == nil {
		e.stdin = strings.NewReader("")
	}
	if e.getenv == nil {
		e.getenv = func(string) string { return "" }
	}
	err := e.run(args)
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	if err != nil {
		e.report(err)
	}
	return ExitCode(err)
}

func (e *env) run(args []string) error {
	p, err := parseArgs(args)
	if err != nil {
		return err
	}
	if p.alias != nil {
		exp, err := p.alias.expand(p.pos)
		if err != nil {
			return err
		}
		p2, err := parseArgs(exp)
		if err != nil {
			return err
		}
		if err := mergeOpts(p2.opts, p.opts); err != nil {
			return err
		}
		p = p2
	}
	e.opts = p.opts
	e.json = e.opts.bool("json")
	if e.opts.bool("version") && len(p.pos) == 0 {
		return cmdVersion(e, nil)
	}
	if len(p.pos) == 0 {
		if e.opts.bool("help") {
			return writeUsage(e.stdout)
		}
		writeUsage(e.stderr)
		return usageError(errors.New("no command given"))
	}
	if e.opts.bool("help") && len(p.pos) == 1 && writeGroupHelp(e.stdout, p.pos[0]) {
		return nil
	}
	cmd, rest, err := findCommand(p.pos)
	if err != nil {
		return err
	}
	e.cmd = cmd
	if e.opts.bool("help") {
		return cmd.writeHelp(e.stdout)
	}
	if err := checkOpts(e.opts, cmd); err != nil {
		return err
	}
	if len(rest) < cmd.minArgs || (cmd.maxArgs >= 0 && len(rest) > cmd.maxArgs) {
		return usageError(fmt.Errorf("usage: sedctl %s %s (see 'sedctl %s --help')", cmd.path, cmd.args, cmd.path))
	}
	e.scheme = hash.Default()
	if name := e.opts.get("hash"); name != "" {
		if e.scheme, err = hash.Lookup(name); err != nil {
			return usageError(fmt.Errorf("--hash %s: %w (sedctl hash --list shows the schemes)", name, err))
		}
	}
	if e.opts.has("via") && !strings.HasPrefix(cmd.path, "resume ") {
		run, err := viaKernel(e, cmd, rest)
		if err != nil {
			return err
		}
		return run(e, rest)
	}
	return cmd.run(e, rest)
}

// mergeOpts adds the options of from to into, refusing contradictions.
func mergeOpts(into, from *options) error {
	for _, n := range from.names() {
		if into.has(n) && into.get(n) != from.get(n) {
			return usageError(fmt.Errorf("--%s conflicts with what the sedutil command implies", n))
		}
		into.given[n] = true
		if v, ok := from.str[n]; ok {
			into.str[n] = v
		}
		into.list[n] = append(into.list[n], from.list[n]...)
	}
	return nil
}

// report prints err for people on stderr and, with --json, as an object on
// stdout.
func (e *env) report(err error) {
	code := ExitCode(err)
	hs := hints(err)
	fmt.Fprintf(e.stderr, "sedctl: %v\n", err)
	for _, h := range hs {
		fmt.Fprintf(e.stderr, "sedctl: %s\n", h)
	}
	if code == ExitUsage && e.cmd == nil {
		fmt.Fprintln(e.stderr, "Run 'sedctl help' for usage.")
	}
	if !e.json || e.emitted {
		return
	}
	je := jsonError{Message: err.Error(), ExitCode: code, Hints: hs}
	var st method.MethodStatus
	if errors.As(err, &st) && st != method.StatusSuccess {
		je.Status = st.Name()
		je.StatusCode = int(st)
	}
	var te *triesError
	if errors.As(err, &te) {
		je.Authority, je.TriesLeft = te.authority, te.left
	}
	writeJSON(e.stdout, struct {
		Error jsonError `json:"error"`
	}{je})
}

type jsonError struct {
	Message    string   `json:"message"`
	ExitCode   int      `json:"exit_code"`
	Status     string   `json:"status,omitempty"`
	StatusCode int      `json:"status_code,omitempty"`
	Hints      []string `json:"hints,omitempty"`
	// Authority and TriesLeft: for a refused password, whose it was and
	// how many tries the drive has left (0 once locked out; absent when
	// the drive does not say).
	Authority string  `json:"authority,omitempty"`
	TriesLeft *uint64 `json:"tries_left,omitempty"`
}

// command is one sedctl command.
type command struct {
	path    string // "range lock"
	args    string // "N DEV"
	minArgs int
	maxArgs int // -1: no limit
	summary string
	help    string // details and examples
	opts    []string
	run     func(e *env, args []string) error
}

func findCommand(pos []string) (*command, []string, error) {
	word := strings.ToLower(pos[0])
	var group []*command
	for _, c := range commands() {
		first, _, _ := strings.Cut(c.path, " ")
		if first == word {
			group = append(group, c)
		}
	}
	if len(group) == 0 {
		return nil, nil, usageError(fmt.Errorf("unknown command %q", pos[0]))
	}
	if len(group) == 1 && !strings.Contains(group[0].path, " ") {
		return group[0], pos[1:], nil
	}
	if len(pos) < 2 {
		return nil, nil, usageError(fmt.Errorf("'sedctl %s' needs a subcommand: %s", word, subNames(group)))
	}
	sub := strings.ToLower(pos[1])
	for _, c := range group {
		if c.path == word+" "+sub {
			return c, pos[2:], nil
		}
	}
	return nil, nil, usageError(fmt.Errorf("unknown command 'sedctl %s %s'; 'sedctl %s' has: %s", word, pos[1], word, subNames(group)))
}

// writeGroupHelp lists the subcommands of word ("range") and reports
// whether word is such a group.
func writeGroupHelp(w io.Writer, word string) bool {
	word = strings.ToLower(word)
	t := newTable()
	for _, c := range commands() {
		if first, _, sub := strings.Cut(c.path, " "); sub && first == word {
			t.rows = append(t.rows, []string{"  sedctl " + c.path + " " + c.args, c.summary})
		}
	}
	if len(t.rows) == 0 {
		return false
	}
	fmt.Fprintf(w, "Usage: sedctl %s SUBCOMMAND ... DEVICE\n\nSubcommands:\n", word)
	t.write(w)
	fmt.Fprintf(w, "\n'sedctl %s SUBCOMMAND --help' shows each one's options and examples.\n", word)
	return true
}

func subNames(group []*command) string {
	var n []string
	for _, c := range group {
		_, s, _ := strings.Cut(c.path, " ")
		n = append(n, s)
	}
	return strings.Join(n, ", ")
}

func (c *command) writeHelp(w io.Writer) error {
	fmt.Fprintf(w, "Usage: sedctl %s %s\n\n%s\n", c.path, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	opts := slices.Concat(c.opts, globalOpts)
	fmt.Fprintln(w, "\nOptions:")
	kv := &keyValues{}
	for _, n := range opts {
		s := optionSpecs[n]
		name := "--" + n
		if s.arg != "" {
			name += " " + s.arg
		}
		kv.rows = append(kv.rows, [2]string{name, s.help})
	}
	tw := newTable()
	for _, r := range kv.rows {
		tw.rows = append(tw.rows, []string{"  " + r[0], r[1]})
	}
	if err := tw.write(w); err != nil {
		return err
	}
	if aliases := aliasesOf(c.path); len(aliases) > 0 {
		fmt.Fprintf(w, "\nsedutil-cli equivalent: %s\n", strings.Join(aliases, ", "))
	}
	return nil
}

func aliasesOf(path string) []string {
	var out []string
	for _, a := range aliases {
		if a.to == nil {
			continue
		}
		args := make([]string, len(a.args)-a.passwords())
		for i := range args {
			args[i] = "X" + fmt.Sprint(i)
		}
		exp := a.to(args)
		n := 0
		for n < len(exp) && !strings.HasPrefix(exp[n], "X") && !strings.HasPrefix(exp[n], "-") {
			n++
		}
		if strings.Join(exp[:n], " ") == path {
			out = append(out, a.usage())
		}
	}
	return out
}

func writeUsage(w io.Writer) error {
	fmt.Fprint(w, `sedctl: manage TCG Opal, Pyrite and Ruby self-encrypting drives

Usage: sedctl COMMAND [ARGS] [OPTIONS] DEVICE

DEVICE is /dev/nvmeN, /dev/sdX, or a sedsim socket as sim:PATH (or a path
that is a Unix socket). It comes last, as with sedutil-cli, whose command
names (--initialSetup, --setLockingRange, ...) sedctl accepts as well.

Commands:
`)
	t := newTable()
	for _, c := range commands() {
		t.rows = append(t.rows, []string{"  " + c.path + " " + c.args, c.summary})
	}
	t.write(w)
	fmt.Fprint(w, `
Passwords are read from the terminal (no echo), --password-file FILE or
--password-fd N, never from the command line or the environment, and hashed
with --hash (default sedutil-sha1, as sedutil-cli) salted with the drive's
serial number. Every command takes --json, --trace and --help.
`)
	return nil
}
