// Command magnetar is Magnetar's one binary. Like Pulsar's bin/pulsar it has a
// subcommand per kind of process (standalone, bookie, broker, proxy) and per
// tool (loadgen, bench, journal, version, help).
//
// This package is the only place that reads flags, environment variables and
// conf files, handles signals and exits; it turns configuration into the
// Options of the packages it wires together. Each subcommand lives in its own
// file as a function returning a *command; commands() lists them.
//
// Exit status: 0 success; 1 failure while running; 2 bad usage, bad
// configuration, or a command that is not implemented yet.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// cli is one invocation's surroundings; tests build their own.
type cli struct {
	stdout, stderr io.Writer
	env            map[string]string // the process environment
	// exeDir is the directory of the magnetar executable, where
	// ../conf/<role>.conf is looked for after ./conf; empty skips that.
	exeDir string
	// setDefaultLogger makes each command's logger slog's default, for
	// libraries given no logger. Only main sets it: tests run many
	// invocations in one process.
	setDefaultLogger bool
}

func main() {
	c := &cli{
		stdout:           os.Stdout,
		stderr:           os.Stderr,
		env:              environ(os.Environ()),
		setDefaultLogger: true,
	}
	if exe, err := os.Executable(); err == nil {
		c.exeDir = filepath.Dir(exe)
	}
	os.Exit(c.run(context.Background(), os.Args[1:]))
}

func environ(kv []string) map[string]string {
	env := make(map[string]string, len(kv))
	for _, s := range kv {
		if k, v, ok := strings.Cut(s, "="); ok {
			env[k] = v
		}
	}
	return env
}

// commands lists the subcommands in the order help shows them. Wiring a new
// one is a file with a function returning its *command, and a line here.
func commands() []*command {
	return []*command{
		standaloneCommand(),
		bookieCommand(),
		brokerCommand(),
		proxyCommand(),
		loadgenCommand(),
		benchCommand(),
		journalCommand(),
		versionCommand(),
		helpCommand(),
	}
}

func findCommand(list []*command, name string) *command {
	for _, c := range list {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run executes one command line (without the program name) and returns the
// exit status.
func (c *cli) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		c.usage(c.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		c.usage(c.stdout)
		return exitOK
	case "-version", "--version":
		args = []string{"version"}
	}
	cmd := findCommand(commands(), args[0])
	if cmd == nil {
		fmt.Fprintf(c.stderr, "magnetar: unknown command %q\n\n", args[0])
		c.usage(c.stderr)
		return exitUsage
	}
	return c.exitStatus(c.runCommand(ctx, cmd, args[1:]))
}

// Errors that decide the exit status.
var (
	// errUsage: bad flags or arguments; the message was already printed.
	errUsage = errors.New("usage")
	// errHelpShown: -h was asked for and answered.
	errHelpShown = errors.New("help shown")
)

// notImplementedError: the command's capability is not built yet.
type notImplementedError struct{ path, where string }

func (e notImplementedError) Error() string {
	return e.path + ": not implemented yet (" + e.where + ")"
}

// runError: the command failed while running.
type runError struct {
	path string
	err  error
}

func (e runError) Error() string { return e.path + ": " + e.err.Error() }
func (e runError) Unwrap() error { return e.err }

// configError: the configuration failed to load; its lines name file:line.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// exitStatus prints what err says, if it was not printed yet, and returns
// the exit status it calls for.
func (c *cli) exitStatus(err error) int {
	var (
		ni notImplementedError
		ce configError
	)
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.As(err, &ni):
		fmt.Fprintf(c.stderr, "magnetar: %v\n", ni)
		return exitUsage
	case errors.As(err, &ce):
		for _, line := range strings.Split(ce.Error(), "\n") {
			fmt.Fprintf(c.stderr, "magnetar: %s\n", line)
		}
		return exitUsage
	}
	fmt.Fprintf(c.stderr, "magnetar: %v\n", err)
	return exitFailure
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, `Magnetar: the Apache Pulsar architecture (brokers, bookies, a metadata store), in Go.

Usage: magnetar <command> [flags] [arguments]

Commands:
`)
	for _, cmd := range commands() {
		line := cmd.summary
		if cmd.pending != "" {
			line += " (not implemented yet)"
		}
		fmt.Fprintf(w, "  %-11s %s\n", cmd.name, line)
	}
	fmt.Fprint(w, `
Run 'magnetar help <command>' for a command's flags.

Configuration: conf/standalone.conf, conf/broker.conf and conf/bookkeeper.conf document every key
(Pulsar's and BookKeeper's names and defaults); MAGNETAR_<key> environment variables override the
file, and --set key=value flags override both.

Exit status: 0 success, 1 failure, 2 bad usage or configuration, or a command not implemented yet.
`)
}
