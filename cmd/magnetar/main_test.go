package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/magnetar/magnetar/internal/config"
)

// invoke runs one command line the way main does, with its own output and
// environment, and returns the exit status and what was written.
func invoke(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &cli{stdout: &out, stderr: &errOut, env: env}
	code = c.run(context.Background(), args)
	return code, out.String(), errOut.String()
}

// invokeCommand runs cmd (not necessarily one of commands()) through the
// shared setup, as run would.
func invokeCommand(t *testing.T, env map[string]string, cmd *command, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &cli{stdout: &out, stderr: &errOut, env: env}
	code = c.exitStatus(c.runCommand(context.Background(), cmd, args))
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHelpListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		code, out, errOut := invoke(t, nil, args...)
		if code != exitOK || errOut != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
		}
		for _, want := range []string{"standalone", "bookie", "broker", "proxy", "loadgen", "bench", "journal", "version", "help"} {
			cmd := findCommand(commands(), want)
			if cmd == nil {
				t.Fatalf("no command %q", want)
			}
			if !strings.Contains(out, fmt.Sprintf("\n  %-11s %s", want, cmd.summary)) {
				t.Errorf("%v: %q is not listed with its summary:\n%s", args, want, out)
			}
		}
	}
}

func TestNoArgumentsIsAUsageError(t *testing.T) {
	code, out, errOut := invoke(t, nil)
	if code != exitUsage || out != "" || !strings.Contains(errOut, "Usage: magnetar <command>") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, out, errOut := invoke(t, nil, "frobnicate", "--x")
	if code != exitUsage || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	if !strings.HasPrefix(errOut, "magnetar: unknown command \"frobnicate\"\n") || !strings.Contains(errOut, "Commands:") {
		t.Errorf("stderr:\n%s", errOut)
	}
}

func TestUnimplementedCommandsSayOneLine(t *testing.T) {
	for _, c := range []struct {
		args []string
		line string
	}{
		{[]string{"proxy"}, "magnetar: proxy: not implemented yet (no issue planned yet)\n"},
	} {
		code, out, errOut := invoke(t, nil, c.args...)
		if code != exitUsage || out != "" || errOut != c.line {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, out, errOut, c.line)
		}
	}
}

func TestCommandHelp(t *testing.T) {
	f := func(args []string, wants ...string) {
		t.Helper()
		code, out, errOut := invoke(t, nil, args...)
		if code != exitOK || errOut != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", args, w, out)
			}
		}
	}
	f([]string{"help", "standalone"}, "Usage: magnetar standalone [flags]",
		"--conf FILE", "--set key=value", "--print-config", "--broker-port int", "(sets brokerServicePort)", "--bookie-port int")
	f([]string{"standalone", "-h"}, "Usage: magnetar standalone [flags]")
	f([]string{"help", "bookie"}, "--bookie-port int", "conf/bookkeeper.conf")
	f([]string{"help", "journal"}, "Usage: magnetar journal <command>", "dump DIR")
	f([]string{"journal", "--help"}, "Usage: magnetar journal <command>")
	f([]string{"help", "journal", "dump"}, "Usage: magnetar journal dump DIR")
	f([]string{"help", "version"}, "Usage: magnetar version\n")
	// scripts/bench.sh probes with --help to learn whether bench exists.
	f([]string{"bench", "--help"}, "Usage: magnetar bench [flags] [list | limits | journal | compare", "--url URL", "--runs int", "--omb FILE")
	f([]string{"help", "loadgen"}, "Usage: magnetar loadgen [flags]", "--workload FILE", "--rate float", "--keys string")

	// Direct flags appear only for roles that have their key.
	if _, out, _ := invoke(t, nil, "help", "broker"); strings.Contains(out, "--bookie-port") {
		t.Errorf("broker offers --bookie-port")
	}
	if code, _, errOut := invoke(t, nil, "help", "nope"); code != exitUsage || !strings.Contains(errOut, `unknown command "nope"`) {
		t.Errorf("help nope: exit %d, %q", code, errOut)
	}
	if code, _, errOut := invoke(t, nil, "journal"); code != exitUsage || !strings.Contains(errOut, "dump DIR") {
		t.Errorf("journal without a subcommand: exit %d, %q", code, errOut)
	}
}

func TestBadFlags(t *testing.T) {
	code, _, errOut := invoke(t, nil, "standalone", "--nope")
	if code != exitUsage || !strings.Contains(errOut, "magnetar: standalone: flag provided but not defined: -nope") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = invoke(t, nil, "standalone", "--set", "novalue")
	if code != exitUsage || !strings.Contains(errOut, `invalid value "novalue" for flag -set: expected key=value, got "novalue"`) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestMisspeltKeyInConfNamesFileAndLine(t *testing.T) {
	conf := writeFile(t, "standalone.conf", "# my node\nbookiePort=3181\njournalMaxGroupWaitMsec=2\n")
	want := fmt.Sprintf("magnetar: %s:3: unknown key \"journalMaxGroupWaitMsec\" (did you mean \"journalMaxGroupWaitMSec\"?)\n", conf)

	code, out, errOut := invoke(t, nil, "standalone", "--conf", conf, "--print-config")
	if code != exitUsage || out != "" || errOut != want {
		t.Errorf("print-config: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
	// The same through the setup every implemented command goes through.
	code, _, errOut = invokeCommand(t, nil, testNode(nil), "--conf", conf)
	if code != exitUsage || errOut != want {
		t.Errorf("setup: exit %d, stderr %q; want %q", code, errOut, want)
	}
}

func TestConfFileProblems(t *testing.T) {
	code, _, errOut := invoke(t, nil, "standalone", "--print-config", "--conf", filepath.Join(t.TempDir(), "missing.conf"))
	if code != exitUsage || !strings.Contains(errOut, "cannot read conf file") || !strings.Contains(errOut, "missing.conf") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
	// Several problems are all reported, one per line.
	conf := writeFile(t, "b.conf", "clusterName=c\nbrokerServicePort=x\nbookiePort=3181\n")
	code, _, errOut = invoke(t, nil, "broker", "--print-config", "--conf", conf)
	wantLines := []string{
		fmt.Sprintf("magnetar: %s:2: bad value for brokerServicePort: \"x\" is not an integer", conf),
		fmt.Sprintf("magnetar: %s:3: key \"bookiePort\" is not a broker setting (it belongs in standalone.conf, bookkeeper.conf)", conf),
	}
	if code != exitUsage || errOut != strings.Join(wantLines, "\n")+"\n" {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
	code, _, errOut = invoke(t, map[string]string{"MAGNETAR_bookiePort": "x"}, "standalone", "--print-config")
	if code != exitUsage || errOut != "magnetar: environment MAGNETAR_bookiePort: bad value for bookiePort: \"x\" is not an integer\n" {
		t.Errorf("bad env: exit %d, %q", code, errOut)
	}
}

// effective parses --print-config output into key -> value and key -> the
// "# from" comment above it.
func effective(t *testing.T, out string) (values, sources map[string]string) {
	t.Helper()
	values, sources = map[string]string{}, map[string]string{}
	from := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "# from "):
			from = strings.TrimPrefix(line, "# from ")
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			k, v, _ := strings.Cut(line, "=")
			values[k], sources[k] = v, from
			from = ""
		}
	}
	return values, sources
}

func TestEnvOverridesFileAndFlagsOverrideEnv(t *testing.T) {
	conf := writeFile(t, "s.conf", "brokerServicePort=7001\nwebServicePort=7002\nbookiePort=7003\nlogLevel=warn\n")
	env := map[string]string{
		"MAGNETAR_webServicePort": "8002",
		"MAGNETAR_BOOKIEPORT":     "8003",
		"MAGNETAR_logLevel":       "error",
		"HOME":                    "/nowhere",
	}
	code, out, errOut := invoke(t, env, "standalone", "--print-config", "--conf", conf,
		"--bookie-port", "9003", "--set", "logLevel=debug", "--log-level", "info")
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	values, sources := effective(t, out)
	for _, c := range []struct{ key, value, source string }{
		{"brokerServicePort", "7001", conf + ":1"},
		{"webServicePort", "8002", "environment MAGNETAR_webServicePort"},
		{"bookiePort", "9003", "flag --bookie-port"},
		{"logLevel", "info", "flag --log-level"}, // the last flag wins
		{"journalSyncData", "true", ""},          // default
	} {
		if values[c.key] != c.value || sources[c.key] != c.source {
			t.Errorf("%s = %q from %q, want %q from %q", c.key, values[c.key], sources[c.key], c.value, c.source)
		}
	}
	if !strings.HasPrefix(out, "# conf file: "+conf+"\n") {
		t.Errorf("output does not name the conf file:\n%.200s", out)
	}
}

func TestDefaultConfFileNextToExecutable(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(root, "conf", "standalone.conf")
	if err := os.WriteFile(conf, []byte("brokerServicePort=7777\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	c := &cli{stdout: &out, stderr: &errOut, exeDir: filepath.Join(root, "bin")}
	if code := c.run(context.Background(), []string{"standalone", "--print-config"}); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if values, _ := effective(t, out.String()); values["brokerServicePort"] != "7777" {
		t.Errorf("bin/../conf/standalone.conf was not read:\n%.300s", out.String())
	}
}

// testNode is a command with the standalone role, as a wired subcommand will
// be, whose body is run.
func testNode(run func(ctx context.Context, p *proc, args []string) error) *command {
	if run == nil {
		run = func(context.Context, *proc, []string) error { return nil }
	}
	return &command{name: "testnode", summary: "a test", hasRole: true, role: config.Standalone, run: run}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestSetupServesMetricsAndPprofAndLogs(t *testing.T) {
	conf := writeFile(t, "s.conf", "bindAddress=127.0.0.1\nwebServicePort=0\nbrokerServicePort=0\nbookiePort=0\n")
	for _, pprof := range []bool{false, true} {
		var ran bool
		cmd := testNode(func(ctx context.Context, p *proc, args []string) error {
			ran = true
			if len(args) != 1 || args[0] == "" {
				t.Errorf("args = %q", args)
			}
			if p.Config.Telemetry.LogFormat != "json" || p.ConfPath != conf {
				t.Errorf("config not loaded: %+v, %q", p.Config.Telemetry, p.ConfPath)
			}
			base := "http://" + p.HTTPAddr.String()
			if code, body := httpGet(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
				t.Errorf("/metrics: %d", code)
			}
			wantPprof := http.StatusNotFound
			if pprof {
				wantPprof = http.StatusOK
			}
			if code, _ := httpGet(t, base+"/debug/pprof/"); code != wantPprof {
				t.Errorf("pprofEnabled=%v: /debug/pprof/ = %d, want %d", pprof, code, wantPprof)
			}
			p.Logger.Info("node up", "answer", 42)
			return nil
		})
		code, _, errOut := invokeCommand(t, nil, cmd, "--conf", conf, "--log-format", "json",
			"--set", fmt.Sprintf("pprofEnabled=%v", pprof), "extra-arg")
		if code != exitOK || !ran {
			t.Fatalf("exit %d, ran %v, stderr:\n%s", code, ran, errOut)
		}
		var sawUp bool
		for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line is not JSON: %q", line)
			}
			if rec["msg"] == "node up" && rec["answer"] == float64(42) && rec["role"] == "standalone" {
				sawUp = true
			}
		}
		if !sawUp {
			t.Errorf("the command's log line is missing:\n%s", errOut)
		}
	}
}

func TestSetupFailsWhenHTTPPortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	cmd := testNode(func(context.Context, *proc, []string) error {
		t.Error("the command ran without its HTTP endpoint")
		return nil
	})
	code, _, errOut := invokeCommand(t, nil, cmd, "--bind-address", "127.0.0.1", "--web-port", port)
	if code != exitFailure || !strings.Contains(errOut, "magnetar: testnode: HTTP endpoint: listen tcp 127.0.0.1:"+port) {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}

func TestSignalEndsTheCommand(t *testing.T) {
	cmd := testNode(func(ctx context.Context, p *proc, args []string) error {
		// The handler is installed before run is called, so this signal
		// ends ctx instead of the test binary.
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	})
	code, _, errOut := invokeCommand(t, nil, cmd, "--set", "webServicePort=0", "--set", "bindAddress=127.0.0.1")
	if code != exitOK || !strings.Contains(errOut, "shutting down") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}

func TestRuntimeErrorExitsOne(t *testing.T) {
	cmd := testNode(func(context.Context, *proc, []string) error { return fmt.Errorf("disk on fire") })
	code, _, errOut := invokeCommand(t, nil, cmd, "--set", "webServicePort=0", "--set", "bindAddress=127.0.0.1")
	if code != exitFailure || !strings.HasSuffix(errOut, "magnetar: testnode: disk on fire\n") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := invoke(t, nil, "version")
	if code != exitOK || !strings.HasPrefix(out, "magnetar ") || !strings.Contains(out, "\nrevision ") || !strings.Contains(out, "\ngo go1.") {
		t.Errorf("exit %d, output %q", code, out)
	}
	saved := [2]string{version, revision}
	defer func() { version, revision = saved[0], saved[1] }()
	version, revision = "v1.2.3", "abc1234"
	if _, out, _ := invoke(t, nil, "--version"); !strings.HasPrefix(out, "magnetar v1.2.3\nrevision abc1234\n") {
		t.Errorf("link-time values ignored: %q", out)
	}
}
