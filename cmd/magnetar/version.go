package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at link time: go build -ldflags "-X main.version=v0.1.0 -X main.revision=abc123".
// Without them, the module version and the VCS stamp of the build are used.
var (
	version  string
	revision string
)

func versionCommand() *command {
	return &command{
		name:    "version",
		summary: "print the version, git revision and Go version",
		run: func(ctx context.Context, p *proc, args []string) error {
			v, rev := buildVersion()
			fmt.Fprintf(p.Stdout, "magnetar %s\nrevision %s\ngo %s %s/%s\n", v, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// buildVersion reports the version and git revision: the link-time values
// when set, else what the Go toolchain stamped into the binary.
func buildVersion() (v, rev string) {
	v, rev = version, revision
	info, ok := debug.ReadBuildInfo()
	if ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		if rev == "" {
			modified := false
			for _, s := range info.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if rev != "" && modified {
				rev += "-dirty"
			}
		}
	}
	if v == "" {
		v = "dev"
	}
	if rev == "" {
		rev = "unknown"
	}
	return v, rev
}
