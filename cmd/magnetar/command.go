package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/magnetar/magnetar/internal/config"
	"github.com/magnetar/magnetar/internal/telemetry"
)

// command is one subcommand.
type command struct {
	name    string
	parent  *command // set for subcommands such as "journal dump"
	summary string   // one line for 'magnetar help'
	args    string   // synopsis of the arguments after the flags, e.g. "DIR"
	detail  string   // paragraph for 'magnetar help <command>'; optional

	// role, when hasRole, gives the command a configuration: --conf, --set
	// and the direct flags of that role, the logger and the HTTP endpoint
	// (/metrics, /debug/pprof/) configured from it.
	hasRole bool
	role    config.Role

	// pending, when not empty, says the capability is not built yet and
	// where it will be ("see issue #8"). Running the command prints one line
	// and exits 2; only --print-config of a command with a role still works
	// (and reports configuration errors).
	pending string

	// flags adds the command's own flags; optional.
	flags func(fs *flag.FlagSet)
	// run does the work once setup is done. It returns when the work is
	// finished or ctx ends (SIGINT, SIGTERM); a nil error exits 0.
	run func(ctx context.Context, p *proc, args []string) error

	subcommands []*command
}

// path is the command's name as typed: "journal dump".
func (c *command) path() string {
	if c.parent != nil {
		return c.parent.path() + " " + c.name
	}
	return c.name
}

// proc is what a command's run receives: the configuration and the
// process-wide facilities built from it.
type proc struct {
	cli *cli
	// Config is nil for commands without a role.
	Config *config.Config
	// ConfPath is the conf file that was read; empty when none was.
	ConfPath string
	Logger   *slog.Logger
	// Registry collects the process's metrics; pass it down to every
	// component. Nil for commands without a role.
	Registry *prometheus.Registry
	// Mux is served on the role's HTTP port (webServicePort, or
	// prometheusStatsHttpPort for a bookie); add routes to it at any time.
	Mux *http.ServeMux
	// HTTPAddr is where Mux is served (useful with port 0).
	HTTPAddr net.Addr

	Stdout, Stderr io.Writer
}

// directFlags are the common keys with a flag of their own; each is offered
// by the commands whose role has the key.
func directFlags() []struct{ flag, key string } {
	return []struct{ flag, key string }{
		{"cluster-name", "clusterName"},
		{"metadata-store", "metadataStoreUrl"},
		{"bind-address", "bindAddress"},
		{"advertised-address", "advertisedAddress"},
		{"broker-port", "brokerServicePort"},
		{"web-port", "webServicePort"},
		{"bookie-port", "bookiePort"},
		{"journal-dir", "journalDirectory"},
		{"ledger-dirs", "ledgerDirectories"},
		{"log-level", "logLevel"},
		{"log-format", "logFormat"},
	}
}

// configFlags are the flags of a command with a role.
type configFlags struct {
	conf        string
	printConfig bool
	settings    []config.Setting
}

func (cf *configFlags) register(fs *flag.FlagSet, role config.Role) {
	fs.StringVar(&cf.conf, "conf", "", "read configuration from `FILE` (default conf/"+role.ConfFile()+", if present)")
	fs.Func("set", "set a configuration key, as `key=value` (repeatable; overrides the file and MAGNETAR_<key>)", func(s string) error {
		st, err := config.ParseAssignment(s, config.Source{Kind: config.FromFlag, Name: "--set"})
		var ce *config.Error
		if errors.As(err, &ce) {
			return errors.New(ce.Msg)
		} else if err != nil {
			return err
		}
		cf.settings = append(cf.settings, st)
		return nil
	})
	fs.BoolVar(&cf.printConfig, "print-config", false, "print the effective configuration, with where each value came from, and exit")
	for _, d := range directFlags() {
		k, ok := config.LookupKey(d.key)
		if !ok || !k.In(role) {
			continue
		}
		name, key := d.flag, d.key
		usage := flagDoc(k.Doc) + " (sets " + key + ")"
		fs.Func(name, usage, func(v string) error {
			cf.settings = append(cf.settings, config.Setting{Key: key, Value: v, Source: config.Source{Kind: config.FromFlag, Name: "--" + name}})
			return nil
		})
	}
}

// flagDoc is the first sentence of a key's doc, without the note that the
// key is Magnetar's own.
func flagDoc(doc string) string {
	if strings.HasPrefix(doc, "Magnetar's key") {
		if _, rest, ok := strings.Cut(doc, ": "); ok {
			doc = strings.ToUpper(rest[:1]) + rest[1:]
		}
	}
	if i := strings.Index(doc, ". "); i >= 0 {
		return doc[:i]
	}
	return strings.TrimSuffix(doc, ".")
}

// flagSet returns the command's flags; cf receives the configuration flags
// of a command with a role.
func (cmd *command) flagSet() (fs *flag.FlagSet, cf *configFlags) {
	fs = flag.NewFlagSet(cmd.path(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cf = &configFlags{}
	if cmd.hasRole {
		cf.register(fs, cmd.role)
	}
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	return fs, cf
}

// runCommand parses the command's flags, sets it up and runs it.
func (c *cli) runCommand(ctx context.Context, cmd *command, args []string) error {
	if len(cmd.subcommands) > 0 {
		if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			w := c.stderr
			if len(args) > 0 {
				w = c.stdout
			}
			c.commandHelp(w, cmd)
			if len(args) == 0 {
				return errUsage
			}
			return errHelpShown
		}
		sub := findCommand(cmd.subcommands, args[0])
		if sub == nil {
			fmt.Fprintf(c.stderr, "magnetar: %s: unknown command %q\n", cmd.path(), args[0])
			c.commandHelp(c.stderr, cmd)
			return errUsage
		}
		return c.runCommand(ctx, sub, args[1:])
	}
	// A command that is not built and has no configuration to check says
	// so at once, whatever its arguments (even -h: scripts probe with it).
	if cmd.pending != "" && !cmd.hasRole {
		return notImplementedError{cmd.path(), cmd.pending}
	}

	fs, cf := cmd.flagSet()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.commandHelp(c.stdout, cmd)
			return errHelpShown
		}
		fmt.Fprintf(c.stderr, "magnetar: %s: %v\nRun 'magnetar help %s' for usage.\n", cmd.path(), err, cmd.path())
		return errUsage
	}

	p := &proc{cli: c, Stdout: c.stdout, Stderr: c.stderr}
	if !cmd.hasRole {
		logger, _ := telemetry.NewLogger(c.stderr, "info", "text")
		p.Logger = logger
		if c.setDefaultLogger {
			slog.SetDefault(logger)
		}
		ctx, stop := signalContext(ctx)
		defer stop()
		return wrapRunError(cmd, cmd.run(ctx, p, fs.Args()))
	}

	if cmd.pending != "" && !cf.printConfig {
		return notImplementedError{cmd.path(), cmd.pending}
	}
	cfg, confPath, err := c.loadConfig(cmd.role, cf)
	if err != nil {
		return err
	}
	p.Config, p.ConfPath = cfg, confPath
	if cf.printConfig {
		if confPath != "" {
			fmt.Fprintf(c.stdout, "# conf file: %s\n", confPath)
		}
		return cfg.WriteEffective(c.stdout)
	}
	return wrapRunError(cmd, c.serve(ctx, cmd, p, fs.Args()))
}

// wrapRunError names the command in a failure, leaving the errors that
// decide the exit status as they are.
func wrapRunError(cmd *command, err error) error {
	var (
		ni notImplementedError
		ce configError
	)
	if err == nil || errors.Is(err, errUsage) || errors.Is(err, errHelpShown) || errors.As(err, &ni) || errors.As(err, &ce) {
		return err
	}
	return runError{cmd.path(), err}
}

// loadConfig reads the conf file, the environment and the flags into a
// Config: defaults, then the file, then MAGNETAR_<key>, then flags.
func (c *cli) loadConfig(role config.Role, cf *configFlags) (*config.Config, string, error) {
	in := config.Input{Env: c.env, Flags: cf.settings}
	path := cf.conf
	if path == "" {
		path = c.findConf(role)
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, "", configError{fmt.Errorf("cannot read conf file: %w", err)}
		}
		in.ConfName, in.ConfData = path, data
	}
	cfg, err := config.Load(role, in)
	if err != nil {
		return nil, "", configError{err}
	}
	return cfg, path, nil
}

// findConf looks for the role's default conf file in ./conf, then in
// ../conf next to the executable (bin/magnetar finds conf/ of its checkout).
// No file means built-in defaults.
func (c *cli) findConf(role config.Role) string {
	candidates := []string{filepath.Join("conf", role.ConfFile())}
	if c.exeDir != "" {
		candidates = append(candidates, filepath.Join(c.exeDir, "..", "conf", role.ConfFile()))
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return p // present, or there but unreadable: let ReadFile say why
		}
	}
	return ""
}

// serve sets up logging, metrics, the HTTP endpoint and signal handling
// from p.Config, runs the command, and tears everything down after it.
func (c *cli) serve(ctx context.Context, cmd *command, p *proc, args []string) error {
	cfg := p.Config
	logger, err := telemetry.NewLogger(c.stderr, cfg.Telemetry.LogLevel, cfg.Telemetry.LogFormat)
	if err != nil {
		return configError{err} // unreachable: config checks the choices
	}
	logger = logger.With("role", cfg.Role.String())
	p.Logger = logger
	if c.setDefaultLogger {
		slog.SetDefault(logger)
	}
	if p.ConfPath != "" {
		logger.Info("configuration loaded", "file", p.ConfPath)
	} else {
		logger.Info("no conf file found; using built-in defaults", "looked_for", "conf/"+cfg.Role.ConfFile())
	}
	for _, w := range cfg.Warnings() {
		logger.Warn(w)
	}

	ctx, stop := signalContext(ctx)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	p.Registry = telemetry.NewRegistry()
	opts := telemetry.MuxOptions{Pprof: cfg.Telemetry.PprofEnabled, Logger: logger}
	if cfg.Telemetry.MetricsEnabled {
		opts.Metrics = p.Registry
	}
	p.Mux = telemetry.NewMux(opts)
	addr := net.JoinHostPort(cfg.Network.BindAddress, strconv.Itoa(cfg.HTTPPort()))
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("HTTP endpoint: %w", err)
	}
	p.HTTPAddr = ln.Addr()
	served := make(chan error, 1)
	go func() { served <- telemetry.ServeListener(ctx, ln, p.Mux, logger) }()
	logger.Info("HTTP endpoint listening", "addr", ln.Addr().String(),
		"metrics", cfg.Telemetry.MetricsEnabled, "pprof", cfg.Telemetry.PprofEnabled)

	runErr := cmd.run(ctx, p, args)
	if ctx.Err() != nil {
		logger.Info("shutting down", "cause", context.Cause(ctx))
	}
	cancel()
	if err := <-served; err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// signalContext ends ctx on SIGINT or SIGTERM. After the first signal the
// default handling is restored, so a second one kills a process that hangs
// while stopping.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	return ctx, stop
}
