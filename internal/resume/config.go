package resume

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// Paths of unlock on resume.
const (
	PathKernel = "kernel" // IOC_OPAL_SAVE, replayed by the kernel
	PathDaemon = "daemon" // the resume daemon
)

// Config is /etc/sedctl/resume.conf: what to arm at boot and when the
// daemon restarts. It holds no key, only where keys are kept.
//
//	{
//	  "version": 1,
//	  "entries": [
//	    {"device": "/dev/nvme0n1", "authority": "00000009:00010001", "ranges": [1],
//	     "path": "kernel", "storage": "file", "key_file": "/etc/sedctl/keys/nvme0n1.Admin1.key"},
//	    {"device": "sim:/run/sedsim/a.sock", "authority": "00000009:00030001", "ranges": [0],
//	     "path": "daemon", "storage": "credential", "credential": "sedctl-resume.a-user1"},
//	    {"device": "/dev/sda", "authority": "00000009:00010001", "all": true,
//	     "path": "daemon", "storage": "prompt"}
//	  ]
//	}
type Config struct {
	Version int           `json:"version"`
	Entries []ConfigEntry `json:"entries"`
}

// ConfigEntry is one (device, authority) armed for resume.
type ConfigEntry struct {
	Device     string   `json:"device"`
	Authority  string   `json:"authority"` // UID in hex
	Ranges     []uint32 `json:"ranges,omitempty"`
	All        bool     `json:"all,omitempty"`
	Path       string   `json:"path"`    // PathKernel or PathDaemon
	Storage    string   `json:"storage"` // StoragePrompt, StorageFile or StorageCredential
	KeyFile    string   `json:"key_file,omitempty"`
	Credential string   `json:"credential,omitempty"`
	// CredentialFile is the encrypted credential Enable wrote, removed
	// by Disable.
	CredentialFile string `json:"credential_file,omitempty"`
	Hash           string `json:"hash,omitempty"` // the derivation used, for people
}

const configVersion = 1

// LoadConfig reads the configuration; a missing file is an empty one. The
// file must belong to owner and not be writable by group or others, since
// it says which files hold keys.
func LoadConfig(path string, owner uint32) (*Config, error) {
	// O_NONBLOCK: a FIFO in its place must not hang the daemon (the mode
	// check below refuses it).
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{Version: configVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resume configuration: %w", err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("resume configuration: %w", err)
	}
	if st.Uid != owner || st.Mode&0o022 != 0 || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("resume configuration %s must be a regular file owned by uid %d and writable only by it (mode %04o, uid %d)",
			path, owner, st.Mode&0o777, st.Uid)
	}
	b, err := readAllBounded(f, path)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("resume configuration %s: %w", path, err)
	}
	if c.Version != configVersion {
		return nil, fmt.Errorf("resume configuration %s: version %d, this sedctl reads %d", path, c.Version, configVersion)
	}
	for i, e := range c.Entries {
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("resume configuration %s, entry %d: %w", path, i+1, err)
		}
	}
	return &c, nil
}

func (e ConfigEntry) validate() error {
	if e.Device == "" {
		return errors.New("no device")
	}
	if _, err := parseAuthority(e.Authority); err != nil {
		return err
	}
	if !e.All && len(e.Ranges) == 0 {
		return errors.New("no ranges")
	}
	if e.Path != PathKernel && e.Path != PathDaemon {
		return fmt.Errorf("path %q: want kernel or daemon", e.Path)
	}
	switch e.Storage {
	case StoragePrompt:
	case StorageFile:
		if e.KeyFile == "" {
			return errors.New("storage file without key_file")
		}
	case StorageCredential:
		if err := validCredentialName(e.Credential); err != nil {
			return err
		}
	default:
		return fmt.Errorf("storage %q: want prompt, file or credential", e.Storage)
	}
	return nil
}

// Save writes the configuration atomically, mode 0600.
func (c *Config) Save(path string) error {
	c.Version = configVersion
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	dir := dirOf(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("resume configuration: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".resume.conf-*")
	if err != nil {
		return fmt.Errorf("resume configuration: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("resume configuration: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("resume configuration: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("resume configuration: %w", err)
	}
	return nil
}

// upsert records e for its device and authority, and returns the entry it
// replaced (nil if none). On the same path the ranges add up, as they do
// in the daemon and in the kernel path: enabling range 2 after range 1
// arms both, and a restarted daemon must arm both again.
func (c *Config) upsert(e ConfigEntry) *ConfigEntry {
	for i := range c.Entries {
		p := &c.Entries[i]
		if p.Device != e.Device || p.Authority != e.Authority {
			continue
		}
		prev := *p
		if p.Path == e.Path {
			if p.All || e.All {
				e.All, e.Ranges = true, nil
			} else {
				e.Ranges = mergeRanges(p.Ranges, e.Ranges)
			}
		}
		*p = e
		return &prev
	}
	c.Entries = append(c.Entries, e)
	return nil
}

// remove drops the entries of device (of authority, if not empty) and
// returns them.
func (c *Config) remove(device, authority string) []ConfigEntry {
	var gone []ConfigEntry
	c.Entries = slices.DeleteFunc(c.Entries, func(e ConfigEntry) bool {
		if e.Device == device && (authority == "" || e.Authority == authority) {
			gone = append(gone, e)
			return true
		}
		return false
	})
	return gone
}
