// Package zktest runs a real ZooKeeper server for tests: Debian's
// `zookeeper` package (or an Apache tarball under ZOOKEEPER_HOME), started
// as a standalone server on a free 127.0.0.1 port with its data in a
// temporary directory, and killed afterwards.
//
// Starting a JVM takes seconds, so a test package shares one server:
//
//	var zk zktest.Shared
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		zk.Close()
//		os.Exit(code)
//	}
//
//	func TestSomething(t *testing.T) {
//		srv := zk.Get(t) // starts it on first use
//		...
//	}
//
// When ZooKeeper is not installed, Get and Start skip the test with a
// message saying how to install it, except when the environment has
// CI=true: then they fail, so that CI never passes by skipping. (This
// package is test support; it reads the environment on purpose.)
//
// The server runs with the four-letter-word commands enabled, so tests can
// ask it which sessions are alive (SessionAlive), and with a short tick so
// that sessions can be made to expire quickly. The JVM is started with
// Pdeathsig, so it dies with the test binary even if that is killed.
package zktest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ErrNotInstalled says ZooKeeper (or Java) was not found.
var ErrNotInstalled = errors.New("zktest: ZooKeeper not installed (apt-get install zookeeper, or `make deps`)")

// TickTime is the servers' tick. ZooKeeper accepts session timeouts from 2
// to 20 ticks (we raise the maximum to 60s) and expires sessions at tick
// granularity.
const TickTime = 200 * time.Millisecond

// MinSessionTimeout is the shortest session timeout the servers grant.
const MinSessionTimeout = 2 * TickTime

// Server is a running (or stopped) ZooKeeper server.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr    string
	Port    int
	DataDir string

	dir     string // holds zoo.cfg, the data dir and the server log
	ownsDir bool
	java    string
	cp      string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// find returns the java binary and the class path of the server.
func find() (java, classpath string, err error) {
	java, err = exec.LookPath("java")
	if err != nil {
		return "", "", fmt.Errorf("%w: no java on PATH", ErrNotInstalled)
	}
	// Debian: one jar whose manifest names its dependencies.
	if _, err := os.Stat("/usr/share/java/zookeeper.jar"); err == nil {
		return java, "/usr/share/java/zookeeper.jar", nil
	}
	// An Apache binary tarball.
	for _, home := range []string{os.Getenv("ZOOKEEPER_HOME"), "/usr/share/zookeeper", "/opt/zookeeper"} {
		if home == "" {
			continue
		}
		jars, _ := filepath.Glob(filepath.Join(home, "lib", "*.jar"))
		if len(jars) > 0 {
			return java, strings.Join(jars, ":"), nil
		}
	}
	return "", "", ErrNotInstalled
}

// Start starts a server in a new temporary directory. Stop it with Close.
func Start() (*Server, error) {
	java, cp, err := find()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "zktest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, ownsDir: true, java: java, cp: cp, DataDir: filepath.Join(dir, "data")}
	if err := os.MkdirAll(s.DataDir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A free port can be taken between our probe and the JVM's bind; try
	// a few.
	for attempt := 0; ; attempt++ {
		s.Port, err = freePort()
		if err == nil {
			s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
			if err = s.start(); err == nil {
				return s, nil
			}
		}
		if attempt == 2 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// StartT starts a server for one test and kills it when the test ends. It
// skips the test when ZooKeeper is missing (fails when CI=true).
func StartT(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatal(err)
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%v; CI=true, so ZooKeeper tests fail instead of skipping", err)
	}
	t.Skipf("skipping: %v", err)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) writeConfig() (string, error) {
	cfg := fmt.Sprintf(`tickTime=%d
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
maxClientCnxns=0
minSessionTimeout=%d
maxSessionTimeout=60000
admin.enableServer=false
4lw.commands.whitelist=*
autopurge.purgeInterval=0
`, TickTime.Milliseconds(), s.DataDir, s.Port, MinSessionTimeout.Milliseconds())
	name := filepath.Join(s.dir, "zoo.cfg")
	return name, os.WriteFile(name, []byte(cfg), 0o644)
}

// start launches the JVM and waits until the server answers.
func (s *Server) start() error {
	cfg, err := s.writeConfig()
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(s.java,
		"-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
		"-Djava.awt.headless=true", "-Dzookeeper.jmx.log4j.disable=true",
		"-cp", s.cp, "org.apache.zookeeper.server.ZooKeeperServerMain", cfg)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("zktest: start java: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(60 * time.Second)
	for {
		if reply, err := s.fourLetterWord("ruok"); err == nil && reply == "imok" {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("zktest: server exited at start: %s", s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("zktest: server did not answer on %s within 60s: %s", s.Addr, s.logTail())
		}
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// fourLetterWord sends a four-letter command and returns the reply.
func (s *Server) fourLetterWord(cmd string) (string, error) {
	conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(cmd)); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// SessionAlive reports whether the server still holds session id (from the
// "dump" command).
func (s *Server) SessionAlive(id int64) (bool, error) {
	out, err := s.fourLetterWord("dump")
	if err != nil {
		return false, err
	}
	if !strings.Contains(out, "Session") {
		return false, fmt.Errorf("zktest: unexpected dump output: %q", out)
	}
	want := fmt.Sprintf("0x%x", id)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if strings.EqualFold(strings.TrimSuffix(f, ":"), want) {
				return true, nil
			}
		}
	}
	return false, nil
}

// WaitSessionGone polls until the server no longer holds session id.
func (s *Server) WaitSessionGone(id int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		alive, err := s.SessionAlive(id)
		if err == nil && !alive {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("zktest: session %#x still alive after %v (last error %v)", id, timeout, err)
		}
		time.Sleep(TickTime / 2)
	}
}

// Stop kills the server (SIGKILL, like a crash) and waits for it to exit.
// The data directory stays, so Restart brings back the same state.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// Restart stops the server and starts it again on the same port with the
// same data. Sessions survive if their clients reconnect within their
// timeout, as with a real server restart.
func (s *Server) Restart() error {
	s.Stop()
	var err error
	for range 20 {
		// The port may linger for a moment after the kill.
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return err
}

// Close kills the server and removes its directory.
func (s *Server) Close() {
	s.Stop()
	if s.ownsDir {
		os.RemoveAll(s.dir)
	}
}

// URL is the store URL of the server, with chroot appended ("" for none).
func (s *Server) URL(chroot string) string { return "zk:" + s.Addr + chroot }

// Shared is a server shared by the tests of a package, started on first
// use. The zero value is ready; Close it in TestMain.
type Shared struct {
	mu  sync.Mutex
	srv *Server
	err error
}

// Get returns the shared server, starting it if needed. It skips the test
// when ZooKeeper is missing (fails when CI=true), and fails it when the
// server did not start.
func (sh *Shared) Get(t testing.TB) *Server {
	t.Helper()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.srv == nil && sh.err == nil {
		sh.srv, sh.err = Start()
	}
	if sh.err != nil {
		skipOrFail(t, sh.err)
	}
	return sh.srv
}

// Close stops the shared server if it was started.
func (sh *Shared) Close() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.srv != nil {
		sh.srv.Close()
		sh.srv = nil
	}
}

// Partition is a dialer whose connections can be cut, to partition a
// client from the server. Use Dial as the store's Dialer option.
type Partition struct {
	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

// Dial connects unless the partition is cut.
func (p *Partition) Dial(network, address string, timeout time.Duration) (net.Conn, error) {
	p.mu.Lock()
	cut := p.cut
	p.mu.Unlock()
	if cut {
		return nil, errors.New("zktest: network partitioned")
	}
	c, err := net.DialTimeout(network, address, timeout)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		c.Close()
		return nil, errors.New("zktest: network partitioned")
	}
	if p.conns == nil {
		p.conns = map[net.Conn]struct{}{}
	}
	p.conns[c] = struct{}{}
	return c, nil
}

// Cut closes every connection and refuses new ones.
func (p *Partition) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Heal lets connections through again.
func (p *Partition) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}
