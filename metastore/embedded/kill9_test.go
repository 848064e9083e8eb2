package embedded_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/magnetar/magnetar/metastore"
	"github.com/magnetar/magnetar/metastore/embedded"
)

const (
	kill9DirEnv   = "MAGNETAR_METASTORE_KILL9_DIR"
	kill9CycleEnv = "MAGNETAR_METASTORE_KILL9_CYCLE"
)

// TestHelperProcessKill9 is the child of TestKill9: it writes to the store
// in dir as fast as it can and reports every acknowledged write on stdout,
// until it is killed.
func TestHelperProcessKill9(t *testing.T) {
	dir := os.Getenv(kill9DirEnv)
	if dir == "" {
		t.Skip("the child process of TestKill9")
	}
	cycle := os.Getenv(kill9CycleEnv)
	var mu sync.Mutex
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
	}
	srv, err := embedded.Open(dir, metastore.Options{Logger: discard})
	if err != nil {
		report("ERR open: %v", err)
		os.Exit(3)
	}
	s, err := srv.NewSession()
	if err != nil {
		report("ERR session: %v", err)
		os.Exit(3)
	}
	ctx := context.Background()
	eph := "/eph/c" + cycle
	if _, err := s.Create(ctx, eph, nil, metastore.Ephemeral|metastore.CreateParents); err != nil {
		report("ERR ephemeral: %v", err)
		os.Exit(3)
	}
	report("E %s", eph)
	for g := range 4 {
		go func() {
			for j := 0; ; j++ {
				p := fmt.Sprintf("/c%s/g%d/k%06d", cycle, g, j)
				data := fmt.Sprintf("%s-%d-%d", cycle, g, j)
				if _, err := s.Create(ctx, p, []byte(data), metastore.CreateParents); err != nil {
					report("ERR create %s: %v", p, err)
					os.Exit(3)
				}
				report("C %s %s", p, data)
				if j%4 != 0 {
					continue
				}
				for {
					d, st, err := s.Get(ctx, "/counter")
					if errors.Is(err, metastore.ErrNotFound) {
						if _, err := s.Create(ctx, "/counter", []byte("1"), 0); err == nil {
							report("N 1")
							break
						}
						continue
					}
					if err != nil {
						report("ERR counter: %v", err)
						os.Exit(3)
					}
					n, _ := strconv.Atoi(string(d))
					if _, err := s.Put(ctx, "/counter", []byte(strconv.Itoa(n+1)), st.Version); err == nil {
						report("N %d", n+1)
						break
					} else if !errors.Is(err, metastore.ErrBadVersion) {
						report("ERR counter: %v", err)
						os.Exit(3)
					}
				}
			}
		}()
	}
	select {}
}

// TestKill9 kills a process writing to the embedded store with SIGKILL at a
// random point, several times, reopening the store each time: every write
// the process reported as acknowledged is there, the counter it advanced by
// compare-and-set never goes back, and its ephemeral nodes are gone.
// MAGNETAR_LONG=1 runs 50 cycles instead of 5.
func TestKill9(t *testing.T) {
	cycles := 5
	if os.Getenv("MAGNETAR_LONG") == "1" {
		cycles = 50
	}
	dir := t.TempDir()
	acked := map[string]string{}
	counter := 0
	var ephemerals []string
	for cycle := range cycles {
		target := 100 + rand.IntN(400)
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessKill9$", "-test.count=1")
		cmd.Env = append(os.Environ(), kill9DirEnv+"="+dir, kill9CycleEnv+"="+strconv.Itoa(cycle))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		guard := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 3 && f[0] == "C":
				acked[f[1]] = f[2]
				n++
			case len(f) == 2 && f[0] == "N":
				v, _ := strconv.Atoi(f[1])
				counter = max(counter, v)
			case len(f) == 2 && f[0] == "E":
				ephemerals = append(ephemerals, f[1])
			case len(f) > 0 && f[0] == "ERR":
				cmd.Process.Kill()
				t.Fatalf("cycle %d: child: %s", cycle, sc.Text())
			}
			if n == target {
				cmd.Process.Kill() // SIGKILL; keep reading what it wrote before
			}
		}
		werr := cmd.Wait()
		guard.Stop()
		if n < target {
			t.Fatalf("cycle %d: child stopped after %d acknowledged writes (%v): %s", cycle, n, werr, stderr.String())
		}

		srv, err := embedded.Open(dir, metastore.Options{Logger: discard})
		if err != nil {
			t.Fatalf("cycle %d: reopen after kill -9: %v", cycle, err)
		}
		s, err := srv.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for p, want := range acked {
			d, _, err := s.Get(ctx, p)
			if err != nil || string(d) != want {
				t.Fatalf("cycle %d: acknowledged %s=%q, after restart %q %v", cycle, p, want, d, err)
			}
		}
		d, _, err := s.Get(ctx, "/counter")
		if got, _ := strconv.Atoi(string(d)); err != nil || got < counter {
			t.Fatalf("cycle %d: counter %q (%v), acknowledged %d", cycle, d, err, counter)
		}
		for _, p := range ephemerals {
			if _, ok, _ := s.Exists(ctx, p); ok {
				t.Fatalf("cycle %d: ephemeral %s of a killed process survived", cycle, p)
			}
		}
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("cycle %d: killed after %d acknowledged creates (%d in all), counter %d", cycle, n, len(acked), counter)
	}
}
