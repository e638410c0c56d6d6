// Package container is the launcher behind `idmapfs run`: it starts a
// command as root of a user-namespaced container whose root filesystem is an
// existing directory, typically an idmapfs mount showing the image with host
// ids.
//
// The command runs in new user, mount, pid, uts and ipc namespaces. The user
// namespace gets the configured uid_map and gid_map (container id = on-disk
// id, host id = what idmapfs shows), and the command runs as container uid 0
// and gid 0, that is host uid IDs.UID.ToHost(0). Inside, it sees a fresh
// /proc, a small /dev (when the image has a /dev directory) and nothing of the
// host's mounts: the launcher pivots into the root and detaches the old one.
// Every mount it makes lives only in the container's mount namespace, so
// nothing remains mounted once the command has exited.
//
// The setup inside the namespaces runs in a re-executed copy of the calling
// binary, which is why every program using Run must call MaybeInit first
// thing in main (and test binaries in TestMain).
package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/shiftlock/shiftlock/idmap"
)

// DefaultPath is the PATH inside the container when Config.Env is nil, and
// the search path for Config.Args[0] when Env has no PATH.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultUmask is the command's umask when Config.Umask is nil.
const DefaultUmask = 0o022

// DefaultHostname is the container's hostname when Config.Hostname is empty.
const DefaultHostname = "idmapfs"

// Exit codes Run returns when the command itself did not run, following the
// conventions of shells and container runtimes.
const (
	// ExitSetupFailed means the container could not be set up; Run also
	// returns an error saying why.
	ExitSetupFailed = 125
	// ExitCannotExecute means Args[0] was found but could not be executed.
	ExitCannotExecute = 126
	// ExitNotFound means Args[0] was not found inside the container.
	ExitNotFound = 127
)

// maxHostname is HOST_NAME_MAX on Linux.
const maxHostname = 64

// Config describes one container.
type Config struct {
	// Root is the directory that becomes the container's /. It must
	// contain a directory named proc; a directory named dev gets a small
	// tmpfs /dev with the usual character devices.
	Root string
	// IDs become the container's uid_map and gid_map (inside = Disk,
	// outside = Host). Both must map container id 0.
	IDs idmap.IDMap
	// Args is the command and its arguments. Args[0] is looked up inside
	// the new root in the container's PATH unless it contains a slash.
	Args []string
	// Env is the command's environment. Nil means a minimal one: PATH,
	// HOME=/root, TERM from the caller when set, and container=idmapfs.
	Env []string
	// Hostname is the container's hostname; empty means "idmapfs".
	Hostname string
	// Dir is the working directory inside the container; empty means "/".
	Dir string
	// Umask is the command's umask; nil means DefaultUmask. (The calling
	// process's own umask is no guide: an idmapfs daemon runs with 0.)
	Umask *uint32

	// Stdin, Stdout and Stderr are the command's; nil means /dev/null.
	// An *os.File is handed to the command as it is. Any other Stdin is
	// copied through a pipe, and Run does not wait for it to reach EOF:
	// once the container has exited, the copy ends after its pending
	// Read returns, and whatever that Read consumed is lost.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// initConfig is what the parent sends the container init through a pipe, as
// JSON. Paths and ids travel as file descriptors and /proc files instead.
type initConfig struct {
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	Hostname string   `json:"hostname"`
	Dir      string   `json:"dir"`
	Umask    uint32   `json:"umask"`
}

// initFailure is what the container init sends back, as JSON, when a setup
// step fails. The pipe closes on exec, so an empty read means the command
// started.
type initFailure struct {
	Step  string `json:"step"`
	Err   string `json:"error"`
	Errno int    `json:"errno,omitempty"`
}

// SetupError reports that the container could not be started; the command
// did not run.
type SetupError struct {
	Root string // Config.Root
	Step string // what was being done, such as "mount proc"
	Err  error  // the cause; a syscall.Errno when the kernel refused
	Hint string // what to do about it, when known
}

func (e *SetupError) Error() string {
	msg := fmt.Sprintf("start container in %s: %s: %v", e.Root, e.Step, e.Err)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *SetupError) Unwrap() error { return e.Err }

// initSettings checks cfg and fills in the defaults.
func initSettings(cfg *Config) (initConfig, error) {
	ic := initConfig{
		Args:     cfg.Args,
		Env:      cfg.Env,
		Hostname: cfg.Hostname,
		Dir:      cfg.Dir,
		Umask:    DefaultUmask,
	}
	if cfg.Umask != nil {
		ic.Umask = *cfg.Umask & 0o777
	}
	if len(ic.Args) == 0 || ic.Args[0] == "" {
		return ic, errors.New("no command to run; give one after --")
	}
	if ic.Env == nil {
		ic.Env = defaultEnv(os.Getenv("TERM"))
	}
	if ic.Hostname == "" {
		ic.Hostname = DefaultHostname
	}
	if len(ic.Hostname) > maxHostname || strings.ContainsRune(ic.Hostname, 0) {
		return ic, fmt.Errorf("hostname %q is longer than %d bytes or contains NUL", ic.Hostname, maxHostname)
	}
	if ic.Dir == "" {
		ic.Dir = "/"
	}
	if !path.IsAbs(ic.Dir) {
		return ic, fmt.Errorf("working directory %q must be an absolute path inside the container", ic.Dir)
	}
	return ic, nil
}

func defaultEnv(term string) []string {
	env := []string{"PATH=" + DefaultPath, "HOME=/root"}
	if term != "" {
		env = append(env, "TERM="+term)
	}
	return append(env, "container=idmapfs")
}

// checkMap rejects maps the container cannot start with: the command runs as
// container id 0, so 0 must be mapped.
func checkMap(kind string, m idmap.Map) error {
	if len(m.Ranges()) == 0 {
		return fmt.Errorf("the %s map is empty; pass a map such as --map 0:100000:65536", kind)
	}
	if _, ok := m.ToHost(0); !ok {
		return fmt.Errorf("the %s map %v does not map container %s 0, which the command runs as; add a range starting at 0", kind, m, kind)
	}
	return nil
}

// searchPath returns the PATH to look Args[0] up in: the one in env, or
// DefaultPath.
func searchPath(env []string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "PATH="); ok {
			return v
		}
	}
	return DefaultPath
}

// candidates lists the paths execvp would try for name, in order.
func candidates(name, pathList string) []string {
	if strings.Contains(name, "/") {
		return []string{name}
	}
	var out []string
	for _, dir := range strings.Split(pathList, ":") {
		if dir == "" {
			dir = "."
		}
		out = append(out, path.Join(dir, name))
	}
	return out
}
