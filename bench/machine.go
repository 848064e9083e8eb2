package bench

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/results"
)

// DescribeMachine collects facts about the host. It is best effort: a fact
// that cannot be read (no /proc, another OS) is left empty.
func DescribeMachine(fs vfs.FS) results.Machine {
	if fs == nil {
		fs = vfs.Default
	}
	m := results.Machine{
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
		Cores:     runtime.NumCPU(),
		GoVersion: runtime.Version(),
	}
	m.Hostname, _ = os.Hostname()
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		m.Kernel = string(bytes.TrimRight(uts.Release[:], "\x00"))
	}
	if b, err := readSmall(fs, "/proc/cpuinfo"); err == nil {
		m.CPUModel = cpuModel(b)
	}
	if b, err := readSmall(fs, "/proc/meminfo"); err == nil {
		m.MemoryBytes = memTotal(b)
	}
	return m
}

// readSmall reads at most 1 MiB of a (pseudo-)file.
func readSmall(fs vfs.FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// cpuModel returns the first "model name" (x86) or "Model"/"CPU part"
// (arm) line of /proc/cpuinfo.
func cpuModel(cpuinfo []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	fallback := ""
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "model name":
			return v
		case "Model", "Hardware", "cpu model":
			if fallback == "" {
				fallback = v
			}
		}
	}
	return fallback
}

// memTotal returns MemTotal of /proc/meminfo in bytes.
func memTotal(meminfo []byte) uint64 {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			n, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0
			}
			if len(f) >= 3 && f[2] == "kB" {
				n *= 1024
			}
			return n
		}
	}
	return 0
}

// BuildRevision is the VCS revision the binary was built from, as Go's build
// info records it ("-dirty" appended for a modified tree), or "" when the
// build did not stamp it (go test, go run).
func BuildRevision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	return rev
}
