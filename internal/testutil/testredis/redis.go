// Package testredis starts a real redis-server for tests. It imports
// nothing of Portico, so any package's internal tests can use it.
package testredis

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Redis is a real redis-server started for one test on 127.0.0.1.
type Redis struct {
	// Addr is host:port.
	Addr string
	t    testing.TB
	cmd  *exec.Cmd
	port int
	dir  string
	args []string
}

// RequireBinary returns the path of a program the tests need. Missing, it
// fails the test under CI (CI=true) and skips it elsewhere, with a message
// saying how to install it (scripts/test.sh installs it).
func RequireBinary(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found: apt-get install -y %s (scripts/test.sh installs it)", name, debianPackage)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Start starts redis-server on a free loopback port without
// persistence; it is stopped when the test ends.
func Start(t testing.TB) *Redis {
	t.Helper()
	return StartWith(t)
}

// StartWith is Start with extra redis-server arguments, e.g.
// "--cluster-enabled", "yes" for a cluster node (whose bus port, the
// port + 10000, must be free too: a server that cannot bind it does not
// start, and another port is tried).
func StartWith(t testing.TB, args ...string) *Redis {
	t.Helper()
	bin := RequireBinary(t, "redis-server", "redis-server")
	r := &Redis{t: t, dir: t.TempDir(), args: args}
	for attempt := 0; attempt < 10; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r.port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if err := r.start(bin); err == nil {
			t.Cleanup(r.Stop)
			return r
		}
	}
	t.Fatal("redis-server did not start")
	return nil
}

func (r *Redis) start(bin string) error {
	r.Addr = fmt.Sprintf("127.0.0.1:%d", r.port)
	cmd := exec.Command(bin, "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--protected-mode", "no")
	cmd.Args = append(cmd.Args, r.args...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	// ready reports whether this server said it accepts connections. A
	// dial alone is not proof: when another test's server took the port
	// between choosing it and binding it, this one exits and the dial
	// reaches the other, and the two tests would share (and kill) one server.
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), "Ready to accept connections") {
				ready <- true
				signalled = true
			}
		}
		if !signalled {
			ready <- false
		}
	}()
	ok := false
	select {
	case ok = <-ready:
	case <-time.After(10 * time.Second):
	}
	if ok {
		if c, err := net.DialTimeout("tcp", r.Addr, time.Second); err == nil {
			c.Close()
			r.cmd = cmd
			return nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return fmt.Errorf("redis-server on %s did not come up", r.Addr)
}

// Stop kills the server (a crash, from the clients' point of view).
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGKILL)
	r.cmd.Wait()
	r.cmd = nil
}

// Restart starts the server again on the same port (empty: no persistence).
func (r *Redis) Restart() {
	r.t.Helper()
	bin := RequireBinary(r.t, "redis-server", "redis-server")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if err := r.start(bin); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("redis-server did not restart on %s", r.Addr)
}
