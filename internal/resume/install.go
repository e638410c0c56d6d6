package resume

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/template"

	"golang.org/x/sys/unix"
)

// installMarker is in every installed file; uninstall removes only files
// that carry it, and install overwrites only those.
const installMarker = "Installed by 'sedctl resume install'"

// InstallOptions say what the installed files run.
type InstallOptions struct {
	Sedctl string // the sedctl binary (DefaultSedctl)
	Socket string // DefaultSocket
	Config string // DefaultConfig
	// Force overwrites files that sedctl did not install.
	Force bool
}

// Installed files, relative to the root.
const (
	DaemonUnit = "etc/systemd/system/sedctl-resume.service"
	ArmUnit    = "etc/systemd/system/sedctl-resume-arm.service"
	SleepHook  = "usr/lib/systemd/system-sleep/sedctl-resume"
)

type installFile struct {
	path string
	mode fs.FileMode
	tmpl string
}

var installFiles = []installFile{
	{DaemonUnit, 0o644, daemonUnitText},
	{ArmUnit, 0o644, armUnitText},
	{SleepHook, 0o755, sleepHookText},
}

const daemonUnitText = `# {{.Marker}}; 'sedctl resume uninstall' removes it.
#
# The unlock-on-resume daemon for self-encrypting drives the kernel cannot
# unlock itself (no sed-opal, Pyrite/Ruby drives, sedsim). It holds derived
# PINs in locked memory and unlocks the registered ranges when
# /usr/lib/systemd/system-sleep/sedctl-resume tells it the system resumed,
# or when it notices a suspend itself. 'sedctl resume status' shows what it
# holds (never the keys).
[Unit]
Description=sedctl unlock-on-resume daemon for self-encrypting drives
Documentation=man:sedctl(8)
DefaultDependencies=no
After=local-fs.target
Before=sleep.target shutdown.target
Conflicts=shutdown.target

[Service]
Type=simple
ExecStart={{.Sedctl}} resume daemon{{.DaemonArgs}}
Restart=on-failure
RestartSec=1s
# Keys: key files in /etc/sedctl/keys, or encrypted credentials named
# sedctl-resume.* in /etc/credstore.encrypted (systemd-creds encrypt).
ImportCredential=sedctl-resume.*
RuntimeDirectory=sedctl
RuntimeDirectoryMode=0700
RuntimeDirectoryPreserve=yes
UMask=0077
# Keys stay in RAM: memory locked, no core dumps, not swapped or dumped.
LimitMEMLOCK=infinity
LimitCORE=0
OOMScoreAdjust=-900
# Hardening. Device access stays: the daemon talks to /dev/nvme* and /dev/sd*.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=/run/sedctl
ProtectHome=yes
PrivateTmp=yes
PrivateNetwork=yes
RestrictAddressFamilies=AF_UNIX
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
KeyringMode=private
CapabilityBoundingSet=CAP_SYS_ADMIN CAP_SYS_RAWIO CAP_IPC_LOCK CAP_DAC_OVERRIDE

[Install]
WantedBy=multi-user.target
`

const armUnitText = `# {{.Marker}}; 'sedctl resume uninstall' removes it.
#
# Arms the kernel's unlock on resume (IOC_OPAL_SAVE) at every boot: the
# kernel forgets saved keys at reboot. It arms the kernel-path entries of
# {{.Config}} whose keys are stored (key file or encrypted credential),
# each checked with a session first.
[Unit]
Description=sedctl: arm the kernel's unlock on resume for self-encrypting drives
Documentation=man:sedctl(8)
DefaultDependencies=no
After=local-fs.target systemd-udev-settle.service
Before=sleep.target shutdown.target
Conflicts=shutdown.target
ConditionPathExists={{.Config}}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={{.Sedctl}} resume enable --from-config{{.ConfigArg}}
ImportCredential=sedctl-resume.*
UMask=0077
LimitCORE=0
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=/run/sedctl
RuntimeDirectory=sedctl
RuntimeDirectoryMode=0700
RuntimeDirectoryPreserve=yes
ProtectHome=yes
PrivateTmp=yes
PrivateNetwork=yes
RestrictAddressFamilies=AF_UNIX

[Install]
WantedBy=multi-user.target
`

const sleepHookText = `#!/bin/sh
# {{.Marker}}; 'sedctl resume uninstall' removes it.
#
# systemd-sleep runs this with $1 = pre or post and $2 = suspend, hibernate,
# hybrid-sleep or suspend-then-hibernate. After a resume it tells the sedctl
# resume daemon to unlock the self-encrypting drives it holds keys for, and
# waits until it has. Drives armed through the kernel path need nothing here.
case "$1" in
post) exec {{.Sedctl}} resume notify post{{.SocketArg}} ;;
pre) {{.Sedctl}} resume notify pre{{.SocketArg}} >/dev/null 2>&1 || true ;;
esac
exit 0
`

func (o *InstallOptions) defaults() error {
	if o.Sedctl == "" {
		o.Sedctl = DefaultSedctl
	}
	for _, p := range []string{o.Sedctl, o.Socket, o.Config} {
		if p == "" {
			continue
		}
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t\n\"'\\$`;&|<>%*?") {
			return fmt.Errorf("resume install: %q: want an absolute path without spaces or shell characters", p)
		}
	}
	return nil
}

func (o InstallOptions) render(text string) ([]byte, error) {
	data := map[string]string{"Marker": installMarker, "Sedctl": o.Sedctl, "Config": DefaultConfig}
	if o.Config != "" && o.Config != DefaultConfig {
		data["Config"] = o.Config
		data["ConfigArg"] = " --config " + o.Config
	}
	if o.Socket != "" && o.Socket != DefaultSocket {
		data["SocketArg"] = " --socket " + o.Socket
	}
	data["DaemonArgs"] = data["SocketArg"] + data["ConfigArg"]
	t, err := template.New("f").Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, err
	}
	return bytes.ReplaceAll(b.Bytes(), []byte("<no value>"), nil), nil
}

// InstalledFiles lists the files Install writes, relative to the root.
func InstalledFiles() []string {
	out := make([]string, len(installFiles))
	for i, f := range installFiles {
		out[i] = f.path
	}
	return out
}

// Install writes the daemon's unit, the boot-time unit that re-arms the
// kernel path, and the system-sleep hook under root ("/" on a real
// system), resolving every path beneath root. Files that sedctl did not
// install are not overwritten unless opts.Force. It does not run
// systemctl; w says what to run.
func Install(root string, opts InstallOptions, w io.Writer) error {
	if err := opts.defaults(); err != nil {
		return err
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("resume install: %w", err)
	}
	defer r.Close()
	for _, f := range installFiles {
		if !opts.Force {
			old, err := readInstalled(r, f.path)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil || !bytes.Contains(old, []byte(installMarker)) {
				return fmt.Errorf("resume install: %s exists and was not installed by sedctl; remove it or use --force", f.path)
			}
		}
	}
	for _, f := range installFiles {
		b, err := opts.render(f.tmpl)
		if err != nil {
			return err
		}
		if err := writeBeneath(r, f.path, b, f.mode); err != nil {
			return fmt.Errorf("resume install: %w", err)
		}
		fmt.Fprintf(w, "installed %s\n", strings.TrimSuffix(root, "/")+"/"+f.path)
	}
	fmt.Fprintln(w, "now run: systemctl daemon-reload && systemctl enable --now sedctl-resume.service sedctl-resume-arm.service")
	return nil
}

// readInstalled reads a file at one of the installed paths. Anything but a
// regular file reads as empty (not sedctl's): a FIFO put there must not
// hang install or uninstall, nor a huge file fill the memory.
func readInstalled(r *os.Root, name string) ([]byte, error) {
	f, err := r.OpenFile(name, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if regularFile(f, name) != nil {
		return []byte{}, nil
	}
	return readAllBounded(f, name)
}

// writeBeneath writes data to name under r: a temporary file beside it,
// synced, then renamed into place.
func writeBeneath(r *os.Root, name string, data []byte, mode fs.FileMode) error {
	dir := dirOf(name)
	if err := r.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := name + ".sedctl-tmp"
	_ = r.Remove(tmp)
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = r.Rename(tmp, name)
	}
	if err != nil {
		_ = r.Remove(tmp)
	}
	return err
}

// Uninstall removes exactly the files Install writes, and only those that
// carry its marker; a file someone else put there is reported and left.
func Uninstall(root string, w io.Writer) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("resume uninstall: %w", err)
	}
	defer r.Close()
	var errs []error
	for _, f := range installFiles {
		b, err := readInstalled(r, f.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !bytes.Contains(b, []byte(installMarker)) {
			errs = append(errs, fmt.Errorf("%s was not installed by sedctl: left in place", f.path))
			continue
		}
		if err := r.Remove(f.path); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(w, "removed %s\n", strings.TrimSuffix(root, "/")+"/"+f.path)
	}
	if len(errs) == 0 {
		fmt.Fprintln(w, "now run: systemctl daemon-reload")
	}
	return errors.Join(errs...)
}
