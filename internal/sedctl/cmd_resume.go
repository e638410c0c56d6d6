package sedctl

// sedctl resume: the command-line glue of unlock on resume (internal/resume;
// DESIGN.md "Unlock on resume"). The engine lives in internal/resume; this
// file turns options into its Options structs, reads the password the way
// every other sedctl command does, and maps the outcome to sedctl's output
// (text or --json) and exit codes.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/shiftlock/shiftlock/internal/resume"
	"github.com/shiftlock/shiftlock/tcg/method"
	"github.com/shiftlock/shiftlock/tcg/transport"
)

// resumeOpen is the resume engine's device opener: sedctl's own transport
// choice, without --via (the engine picks the kernel path itself).
func resumeOpen(ctx context.Context, device string) (transport.Transport, error) {
	return openTransport(ctx, device, "")
}

func init() {
	for name, spec := range map[string]optSpec{
		"range":          {optList, "N|all", "ranges to unlock on resume: a number (0 = global), a list 1,2 (repeatable), or all (default): every range whose locking is enabled"},
		"socket":         {optString, "PATH", "the resume daemon's socket (default " + resume.DefaultSocket + ")"},
		"config":         {optString, "FILE", "the resume configuration (default " + resume.DefaultConfig + ")"},
		"run-dir":        {optString, "DIR", "where the kernel path records what it armed this boot (default " + resume.DefaultRunDir + ")"},
		"key-store":      {optString, "prompt|file|credential", "keep the derived key for the next boot: nowhere (prompt, the default), a root-only key file, or a systemd encrypted credential"},
		"key-file":       {optString, "FILE", "the key file for --key-store file (default " + resume.DefaultKeyDir + "/DEVICE.AUTHORITY.key)"},
		"key-credential": {optString, "NAME", "the credential name for --key-store credential (default " + resume.CredentialBase + "DEVICE.AUTHORITY)"},
		"credential":     {optString, "NAME", "read the password from the systemd credential NAME in $CREDENTIALS_DIRECTORY"},
		"path":           {optString, "kernel|daemon", "force the kernel path (IOC_OPAL_SAVE) or the daemon path (default: the kernel path where the device has one)"},
		"from-config":    {optBool, "", "re-arm the kernel path from the configuration's stored keys (the boot unit)"},
		"root":           {optString, "DIR", "install under DIR instead of / (a chroot or an image)"},
		"sedctl":         {optString, "PATH", "the sedctl binary the installed files run (default " + resume.DefaultSedctl + ")"},
		"force":          {optBool, "", "overwrite files that sedctl did not install"},
		"debounce":       {optString, "DURATION", "a 'notify post' within DURATION of the last unlock, with no suspend seen since, joins that unlock (default 5s; 0: never)"},
	} {
		if _, dup := optionSpecs[name]; dup {
			resumeOptionClashes = append(resumeOptionClashes, name) // TestResumeOptions fails
			continue
		}
		optionSpecs[name] = spec
	}
}

// resumeOptionClashes are the resume options whose names another command's
// option already took: none, or the meaning of one would silently change.
var resumeOptionClashes []string

var (
	resumeLocOpts    = []string{"socket", "config", "run-dir"}
	resumeSecretOpts = []string{"password-file", "password-fd", "credential", "hash"}
)

// resumeCommands is the "resume" group of the command table.
func resumeCommands() []*command {
	return []*command{
		{path: "resume enable", args: "DEV | --from-config", maxArgs: 1, run: cmdResumeEnable,
			opts:    opts(resumeSecretOpts, resumeLocOpts, []string{"range", "authority", "key-store", "key-file", "key-credential", "path", "from-config"}),
			summary: "unlock DEV's ranges after suspend-to-RAM: check the password, then arm the kernel or the daemon",
			help: `Reads the password of --authority (admin1, the default, ..admin4 or userN)
from the prompt, --password-file, --password-fd or --credential NAME (a
systemd credential), derives the PIN with --hash, and checks it with a real
session before it stores or arms anything: a wrong password costs one try
and arms nothing. Then it arms the kernel path (IOC_OPAL_SAVE) where the
device answers the kernel's sed-opal ioctls, and the resume daemon
('sedctl resume daemon', which must be running) everywhere else, a sedsim
drive included. --key-store says where the derived key (never the
password) is kept for the next boot: prompt (nowhere: enable again after
each boot), file (a root-only key file) or credential (systemd-creds).

--from-config (no DEV) is what sedctl-resume-arm.service runs at boot: it
re-arms the kernel path of every configured entry with a stored key.

Exit status: 0 armed; 1..63 the drive refused the password (1 NOT_AUTHORIZED);
64 usage; 66 a password, key or configuration file cannot be used; 69 no
locking on the drive, or --path kernel without a kernel path; 74 the device
or the daemon cannot be reached.

Example:
  sedctl resume enable /dev/nvme0n1                      # all locking ranges, as Admin1, asks the password
  sedctl resume enable --range 1 --authority user1 --password-file /root/u1.pw /dev/nvme0n1
  sedctl resume enable --range 0 --key-store file sim:/run/sedsim.sock
  sedctl resume enable --from-config`},
		{path: "resume disable", args: "DEV", minArgs: 1, maxArgs: 1, run: cmdResumeDisable,
			opts:    opts(resumeLocOpts, []string{"range", "authority"}),
			summary: "forget DEV's resume keys: kernel entries overwritten, daemon keys zeroised, stored keys removed",
			help: `Without --authority, every authority's keys for DEV; without --range, every
range. The kernel cannot delete a saved entry, so it is overwritten with a
lock entry and a random key, as cryptsetup does.

Example:
  sedctl resume disable /dev/nvme0n1
  sedctl resume disable --range 2 --authority user1 /dev/nvme0n1`},
		{path: "resume status", args: "", maxArgs: 0, run: cmdResumeStatus, opts: resumeLocOpts,
			summary: "what is armed: the configuration, the kernel path this boot, the daemon (never the keys)",
			help: `Example:
  sedctl resume status
  sedctl resume status --json | jq '.daemon.entries'`},
		{path: "resume daemon", args: "", maxArgs: 0, run: cmdResumeDaemon, opts: []string{"socket", "config", "debounce"},
			summary: "run the unlock-on-resume daemon (sedctl-resume.service runs it)",
			help: `Locks its memory, keeps the derived keys in memfd_secret (or mlocked)
memory, listens on --socket (mode 0600; only root, or the user running it,
may connect), re-arms the daemon-path entries of --config whose keys are
stored, and unlocks every armed range when 'sedctl resume notify post'
tells it of a resume or when it notices one itself (CLOCK_BOOTTIME grows
past CLOCK_MONOTONIC). It prints one line starting with "ready" on stdout
once it accepts requests, logs to stderr, and stops on SIGTERM or SIGINT,
zeroising the keys.

Example:
  sedctl resume daemon
  sedctl resume daemon --socket /run/test/resume.sock --config /etc/test/resume.conf &`},
		{path: "resume notify", args: "post|pre", minArgs: 1, maxArgs: 1, run: cmdResumeNotify, opts: []string{"socket"},
			summary: "tell the daemon of a resume (post: unlock now, and wait) or a coming suspend (pre)",
			help: `The system-sleep hook runs it. "post" waits until the daemon has unlocked
every armed range and fails if any stays locked.

Exit status: 0 all unlocked; 1..63 a drive refused a stored key (it is not
tried again: 'sedctl resume enable' registers the right one); 69 a
configured drive is not armed (prompt mode after a daemon restart, an
unreadable key file); 74 the daemon is not running, or a drive could not
be reached.

Example:
  sedctl resume notify post
  sedctl resume notify post --json --socket /run/test/resume.sock`},
		{path: "resume install", args: "", maxArgs: 0, run: cmdResumeInstall, opts: []string{"root", "sedctl", "socket", "config", "force"},
			summary: "write the daemon's unit, the boot-time re-arm unit and the system-sleep hook",
			help: `Writes ` + strings.Join(resume.InstalledFiles(), ", ") + `
under --root (default /). It runs no systemctl: it prints what to run.

Example:
  sedctl resume install
  sedctl resume install --root /mnt/image --sedctl /usr/local/bin/sedctl`},
		{path: "resume uninstall", args: "", maxArgs: 0, run: cmdResumeUninstall, opts: []string{"root"},
			summary: "remove the files 'resume install' wrote (only those carrying its marker)",
			help: `Example:
  sedctl resume uninstall
  sedctl resume uninstall --root /mnt/image`},
	}
}

// resumePrelude refuses the global options that mean nothing to the resume
// engine, rather than ignoring them.
func (e *env) resumePrelude() error {
	if e.opts.has("via") {
		return usageError(errors.New("--via does not apply to 'sedctl resume': it picks the kernel path itself where the device has one (--path kernel forces it)"))
	}
	if e.opts.has("trace") {
		return usageError(errors.New("--trace does not apply to 'sedctl resume' (the daemon logs every unlock; trace a drive with the other commands)"))
	}
	// An empty value would mean the engine's default: the system's
	// socket, configuration or key directory, not what was asked for.
	for _, n := range []string{"socket", "config", "run-dir", "key-file", "key-credential", "credential", "root", "sedctl"} {
		if e.opts.has(n) && e.opts.get(n) == "" {
			return usageError(fmt.Errorf("--%s: empty value (leave the option out for the default)", n))
		}
	}
	return nil
}

// euid is the uid that owns the configuration and key files, and that may
// use the daemon's socket: root, on an installed system.
func euid() uint32 { return uint32(os.Geteuid()) }

// resumeAuthority reads --authority: admin1 by default; the Locking SP's
// admins and users only.
func (e *env) resumeAuthority(def method.UID) (method.UID, error) {
	if !e.opts.has("authority") {
		return def, nil
	}
	s := e.opts.get("authority")
	u, err := parseAuthority(s)
	if err != nil {
		return method.UID{}, err
	}
	if u.IsZero() || u == method.SID || u == method.PSID || spOf(u) != method.LockingSP {
		return method.UID{}, usageError(fmt.Errorf("--authority %s: unlocking is done in the Locking SP, by admin1..4 or userN", s))
	}
	return u, nil
}

// resumeRanges reads --range: numbers, lists, or all (the default when
// allByDefault).
func (e *env) resumeRanges(allByDefault bool) (ranges []uint32, all bool, err error) {
	vals := e.opts.all("range")
	if len(vals) == 0 {
		return nil, allByDefault, nil
	}
	for _, v := range vals {
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if strings.EqualFold(f, "all") {
				all = true
				continue
			}
			n, err := parseUint("--range", f, 16)
			if err != nil {
				return nil, false, err
			}
			ranges = append(ranges, uint32(n))
		}
	}
	if all && len(ranges) > 0 {
		return nil, false, usageError(errors.New("--range: give range numbers or all, not both"))
	}
	if len(ranges) > 64 {
		return nil, false, usageError(errors.New("--range: at most 64 ranges"))
	}
	slices.Sort(ranges)
	return slices.Compact(ranges), all, nil
}

// passwordSource is where enable reads the password: --credential, or
// sedctl's usual prompt / --password-file / --password-fd (so that their
// checks and exit codes are those of every other command).
func (e *env) passwordSource(who method.UID) (resume.PasswordSource, error) {
	src, err := e.currentSource()
	if err != nil {
		return resume.PasswordSource{}, err
	}
	if e.opts.has("credential") {
		if src.file != "" || src.fd >= 0 {
			return resume.PasswordSource{}, usageError(errors.New("give one password source: --credential, --password-file or --password-fd"))
		}
		return resume.PasswordSource{Credential: e.opts.get("credential"), CredentialsDir: e.getenv("CREDENTIALS_DIRECTORY"), FileOwner: -1}, nil
	}
	return resume.PasswordSource{FileOwner: -1, Prompt: func() ([]byte, error) {
		return e.readSecret(src, authName(who)+" password", false)
	}}, nil
}

// resumeResult is the --json object of enable, disable, install and
// uninstall: what was done, and the engine's messages to people.
type resumeResult struct {
	Device     string   `json:"device,omitempty"`
	Root       string   `json:"root,omitempty"`
	Action     string   `json:"action"`
	Path       string   `json:"path,omitempty"`
	Authority  string   `json:"authority,omitempty"`
	Ranges     []uint32 `json:"ranges,omitempty"`
	All        bool     `json:"all,omitempty"`
	Storage    string   `json:"key_store,omitempty"`
	KeyFile    string   `json:"key_file,omitempty"`
	Credential string   `json:"key_credential,omitempty"`
	Messages   []string `json:"messages"`
}

// output is where the engine's messages go: stdout for people; a buffer
// with --json (the messages then go into the JSON object, or to stderr if
// the command fails).
func (e *env) resumeOutput() (io.Writer, func(err error) []string) {
	if !e.json {
		return e.stdout, func(error) []string { return nil }
	}
	var b bytes.Buffer
	return &b, func(err error) []string {
		if err != nil {
			e.stderr.Write(b.Bytes())
			return nil
		}
		lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
		if len(lines) == 1 && lines[0] == "" {
			return []string{}
		}
		return lines
	}
}

func cmdResumeEnable(e *env, args []string) error {
	if err := e.resumePrelude(); err != nil {
		return err
	}
	if e.opts.bool("from-config") {
		return e.resumeRearm(args)
	}
	if len(args) != 1 {
		return usageError(errors.New("usage: sedctl resume enable DEV (or --from-config); see 'sedctl resume enable --help'"))
	}
	dev := args[0]
	who, err := e.resumeAuthority(method.Admin(1))
	if err != nil {
		return err
	}
	ranges, all, err := e.resumeRanges(true)
	if err != nil {
		return err
	}
	storage := e.opts.get("key-store")
	switch storage {
	case "", resume.StoragePrompt, resume.StorageFile, resume.StorageCredential:
	default:
		return usageError(fmt.Errorf("--key-store %q: want prompt, file or credential", storage))
	}
	if e.opts.has("key-file") && storage != resume.StorageFile {
		return usageError(errors.New("--key-file goes with --key-store file"))
	}
	if e.opts.has("key-credential") && storage != resume.StorageCredential {
		return usageError(errors.New("--key-credential goes with --key-store credential"))
	}
	path := e.opts.get("path")
	if path != "" && path != resume.PathKernel && path != resume.PathDaemon {
		return usageError(fmt.Errorf("--path %q: want kernel or daemon", path))
	}
	pw, err := e.passwordSource(who)
	if err != nil {
		return err
	}
	w, finish := e.resumeOutput()
	o := resume.EnableOptions{
		Device: dev, Open: resumeOpen, Kernel: openKernelOpal,
		Ranges: ranges, All: all, Authority: who, Password: pw, Hash: e.scheme,
		Path: path, Storage: storage, KeyFile: e.opts.get("key-file"), Credential: e.opts.get("key-credential"),
		Socket: e.opts.get("socket"), Config: e.opts.get("config"), RunDir: e.opts.get("run-dir"),
	}
	err = resume.Enable(e.ctx, o, w)
	msgs := finish(err)
	if err != nil {
		return resumeError(err)
	}
	if !e.json {
		return nil
	}
	r := resumeResult{Device: dev, Action: "resume enable", Authority: authName(who), Ranges: ranges, All: all, Messages: msgs}
	config := o.Config
	if config == "" {
		config = resume.DefaultConfig
	}
	if cfg, err := resume.LoadConfig(config, euid()); err == nil {
		for _, c := range cfg.Entries {
			if c.Device == dev && c.Authority == who.Hex() {
				r.Path, r.Ranges, r.All, r.Storage, r.KeyFile, r.Credential = c.Path, c.Ranges, c.All, c.Storage, c.KeyFile, c.Credential
			}
		}
	}
	return e.emit(r, func(io.Writer) error { return nil })
}

// resumeRearm is 'resume enable --from-config', the boot unit.
func (e *env) resumeRearm(args []string) error {
	for _, n := range []string{"range", "authority", "key-store", "key-file", "key-credential", "path", "password-file", "password-fd", "credential", "hash", "socket"} {
		if e.opts.has(n) {
			return usageError(fmt.Errorf("--from-config takes everything from the configuration; --%s does not apply", n))
		}
	}
	if len(args) > 0 {
		return usageError(errors.New("--from-config re-arms every configured device: give no DEV"))
	}
	w, finish := e.resumeOutput()
	err := resume.Rearm(e.ctx, resume.RearmOptions{
		Open: resumeOpen, Kernel: openKernelOpal, Config: e.opts.get("config"), RunDir: e.opts.get("run-dir"),
		CredentialsDir: e.getenv("CREDENTIALS_DIRECTORY"), KeyFileOwner: euid(),
	}, w)
	msgs := finish(err)
	if err != nil {
		return resumeError(err)
	}
	return e.emit(resumeResult{Action: "resume enable --from-config", Messages: msgs}, func(io.Writer) error { return nil })
}

func cmdResumeDisable(e *env, args []string) error {
	if err := e.resumePrelude(); err != nil {
		return err
	}
	var who method.UID
	if e.opts.has("authority") {
		var err error
		if who, err = e.resumeAuthority(method.UID{}); err != nil {
			return err
		}
	}
	ranges, all, err := e.resumeRanges(false)
	if err != nil {
		return err
	}
	if all {
		ranges = nil // every range: what no --range means
	}
	w, finish := e.resumeOutput()
	err = resume.Disable(e.ctx, resume.DisableOptions{
		Device: args[0], Authority: who, Ranges: ranges, Kernel: openKernelOpal,
		Socket: e.opts.get("socket"), Config: e.opts.get("config"), RunDir: e.opts.get("run-dir"),
	}, w)
	msgs := finish(err)
	if err != nil {
		return resumeError(err)
	}
	r := resumeResult{Device: args[0], Action: "resume disable", Ranges: ranges, Messages: msgs}
	if !who.IsZero() {
		r.Authority = authName(who)
	}
	return e.emit(r, func(io.Writer) error { return nil })
}

func cmdResumeStatus(e *env, _ []string) error {
	if err := e.resumePrelude(); err != nil {
		return err
	}
	e.emitted = e.json
	return resume.Status(e.ctx, resume.StatusOptions{
		Socket: e.opts.get("socket"), Config: e.opts.get("config"), RunDir: e.opts.get("run-dir"), JSON: e.json,
	}, e.stdout)
}

func cmdResumeDaemon(e *env, _ []string) error {
	if err := e.resumePrelude(); err != nil {
		return err
	}
	if e.json {
		return usageError(errors.New("--json does not apply to 'sedctl resume daemon': it logs to stderr; 'sedctl resume status --json' reports on it"))
	}
	socket := e.opts.get("socket")
	if socket == "" {
		socket = resume.DefaultSocket
	}
	var debounce time.Duration // 0: the engine's default
	if e.opts.has("debounce") {
		d, err := time.ParseDuration(e.opts.get("debounce"))
		if err != nil || d < 0 || d > time.Hour {
			return usageError(fmt.Errorf("--debounce %q: want a duration such as 5s, 0 or 500ms (at most 1h)", e.opts.get("debounce")))
		}
		debounce = d
		if d == 0 {
			debounce = -1 // never join: every notification unlocks
		}
	}
	err := resume.RunDaemon(e.ctx, resume.DaemonOptions{
		Socket: socket, Open: resumeOpen, Config: e.opts.get("config"), Debounce: debounce,
		CredentialsDir: e.getenv("CREDENTIALS_DIRECTORY"),
		KeyFileOwner:   euid(), AllowUID: euid(), Harden: true,
		Logger: slog.New(slog.NewTextHandler(e.stderr, nil)),
		Ready: func() {
			fmt.Fprintf(e.stdout, "ready: resume daemon pid %d on %s\n", os.Getpid(), socket)
			if f, ok := e.stdout.(*os.File); ok {
				f.Sync()
			}
		},
	})
	if err != nil {
		return resumeError(fmt.Errorf("resume daemon: %w", err))
	}
	return nil
}

// notifyResult is notify's --json object.
type notifyResult struct {
	Event   string                `json:"event"`
	OK      bool                  `json:"ok"`
	Run     *resume.RunReport     `json:"run,omitempty"`
	Unarmed []resume.UnarmedEntry `json:"unarmed,omitempty"`
}

func cmdResumeNotify(e *env, args []string) error {
	if err := e.resumePrelude(); err != nil {
		return err
	}
	event := strings.ToLower(args[0])
	if event != resume.EventPost && event != resume.EventPre {
		return usageError(fmt.Errorf("resume notify %q: want post (after a resume) or pre (before a suspend)", args[0]))
	}
	socket := e.opts.get("socket")
	var out bytes.Buffer
	err := resume.Notify(e.ctx, resume.NotifyOptions{Socket: socket, Event: event}, &out)
	if !e.json {
		e.stdout.Write(out.Bytes())
	}
	if errors.Is(err, resume.ErrNoDaemon) || event == resume.EventPre {
		if err != nil {
			return withCode(ExitIO, err, "")
		}
		return e.emit(notifyResult{Event: event, OK: true}, func(io.Writer) error { return nil })
	}
	// What the run left locked: the daemon's report, and the configured
	// entries it holds no key for (they stay locked too).
	r := notifyResult{Event: event, OK: err == nil}
	if s := resume.GetStatus(e.ctx, resume.StatusOptions{Socket: socket}); s.Daemon != nil {
		r.Run, r.Unarmed = s.Daemon.LastRun, s.Daemon.Unarmed
	}
	if err == nil && len(r.Unarmed) > 0 {
		r.OK = false
		var what []string
		for _, u := range r.Unarmed {
			what = append(what, fmt.Sprintf("%s as %s (%s)", u.Device, u.Authority, u.Reason))
		}
		err = withCode(ExitUnsupported, fmt.Errorf("resume notify post: configured but not armed, so still locked: %s", strings.Join(what, "; ")),
			"the daemon holds no key for these: run 'sedctl resume enable' for each (or store the key with --key-store file|credential so a restarted daemon re-arms it)")
	}
	if e.json {
		e.emit(r, func(io.Writer) error { return nil })
	}
	if err == nil {
		return nil
	}
	var ce *codeError
	if errors.As(err, &ce) {
		return err
	}
	// A drive that refused the stored key exits with its status, as any
	// refused password does; anything else left locked is an I/O failure.
	if r.Run != nil {
		for _, d := range r.Run.Drives {
			for _, s := range []method.MethodStatus{method.StatusNotAuthorized, method.StatusAuthorityLockedOut} {
				if strings.Contains(d.Error, s.Error()) {
					return withCode(int(s), err, "a drive refused the stored key: it is not tried again until 'sedctl resume enable' registers the right one (so the drive's try limit is not used up)")
				}
			}
		}
	}
	return withCode(ExitIO, err, "'sedctl resume status' and the daemon's log (journalctl -u sedctl-resume) say what stayed locked")
}

func cmdResumeInstall(e *env, _ []string) error {
	if err := e.resumePrelude(); err != nil {
		return err
	}
	root := e.opts.get("root")
	if root == "" {
		root = "/"
	}
	o := resume.InstallOptions{Sedctl: e.opts.get("sedctl"), Socket: e.opts.get("socket"), Config: e.opts.get("config"), Force: e.opts.bool("force")}
	w, finish := e.resumeOutput()
	err := resume.Install(root, o, w)
	if err == nil {
		bin := o.Sedctl
		if bin == "" {
			bin = resume.DefaultSedctl
		}
		if r, rerr := os.OpenRoot(root); rerr == nil {
			if _, serr := r.Stat(strings.TrimPrefix(bin, "/")); serr != nil {
				fmt.Fprintf(w, "warning: the units run %s, which is not there (%v): install sedctl there, or install again with --sedctl PATH\n", bin, serr)
			}
			r.Close()
		}
	}
	msgs := finish(err)
	if err != nil {
		return resumeError(err)
	}
	return e.emit(resumeResult{Root: root, Action: "resume install", Messages: msgs}, func(io.Writer) error { return nil })
}

func cmdResumeUninstall(e *env, _ []string) error {
	if err := e.resumePrelude(); err != nil {
		return err
	}
	root := e.opts.get("root")
	if root == "" {
		root = "/"
	}
	w, finish := e.resumeOutput()
	err := resume.Uninstall(root, w)
	msgs := finish(err)
	if err != nil {
		return resumeError(err)
	}
	return e.emit(resumeResult{Root: root, Action: "resume uninstall", Messages: msgs}, func(io.Writer) error { return nil })
}

// resumeError gives the engine's errors sedctl's exit codes. Drive
// statuses, transport and file errors already map (ExitCode); the engine's
// own refusals are plain errors, told apart by their stable wording.
func resumeError(err error) error {
	if err == nil {
		return nil
	}
	var ce *codeError
	if errors.As(err, &ce) {
		return err
	}
	if errors.Is(err, resume.ErrNoDaemon) {
		return withCode(ExitIO, err, "")
	}
	if ExitCode(err) != ExitSoftware {
		return err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "nothing is armed"):
		return withCode(ExitData, err, "'sedctl resume status' shows what is armed")
	case strings.Contains(msg, "has locking off"), strings.Contains(msg, "no range has locking enabled"):
		return withCode(ExitUnsupported, err, "set the drive up first: sedctl setup DEV, then sedctl range enable N DEV")
	case strings.Contains(msg, "does not exist: the drive has ranges"):
		return withCode(ExitUsage, err, "'sedctl range list DEV' shows the drive's ranges")
	case strings.Contains(msg, "kernel path is not available"):
		return withCode(ExitUnsupported, err, "leave out --path kernel to use the resume daemon")
	case strings.Contains(msg, "resume configuration"), strings.Contains(msg, "key file"),
		strings.Contains(msg, "password file"), strings.Contains(msg, "credential"):
		return withCode(ExitNoInput, err, "")
	case strings.Contains(msg, "was not installed by sedctl"):
		return withCode(ExitRefused, err, "")
	}
	return err
}
