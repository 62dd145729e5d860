//go:build linux

package redisclient

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/testutil/logbuf"
)

// TestLibraryLogsAreJSON makes go-redis log (every dial to a closed port
// fails) and checks that its messages arrive as rate-limited structured
// WARN lines through the process's slog logger, and that nothing is
// written to stderr in plain text. Not parallel: it swaps slog.Default and
// file descriptor 2.
func TestLibraryLogsAreJSON(t *testing.T) {
	// A port with nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	logs := new(logbuf.Buffer)
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	// Capture file descriptor 2, where go-redis's own logger writes.
	stderr, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup3(int(stderr.Fd()), 2, 0); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			_ = syscall.Dup3(saved, 2, 0)
			_ = syscall.Close(saved)
		}
	}
	t.Cleanup(restore)

	// A fresh rate window, so the count below does not depend on earlier
	// runs in this process (-count).
	installLogger()
	redis.SetLogger(newLibLogger(slog.New(defaultHandler{}), 0))
	cl, err := New(&Config{Addr: addr, Timeout: config.Duration(200 * time.Millisecond)})
	if err != nil {
		restore()
		t.Fatal(err)
	}
	for range 20 {
		if cl.Ping(context.Background()).Err() == nil {
			restore()
			t.Fatal("PING to a closed port succeeded")
		}
	}
	_ = cl.Close()
	restore()

	plain, err := os.ReadFile(stderr.Name())
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) > 0 {
		t.Errorf("go-redis wrote to stderr:\n%s", plain)
	}
	var warns []map[string]any
	for line := range strings.Lines(logs.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["level"] == "WARN" && m["dependency"] == "redis" && strings.Contains(m["msg"].(string), "failed to dial") {
			warns = append(warns, m)
		}
	}
	if len(warns) != 1 {
		t.Fatalf("%d WARN lines about the failed dials of 20 requests, want 1 (one per interval):\n%s", len(warns), logs.String())
	}
	if d, _ := warns[0]["detail"].(string); !strings.Contains(d, addr) {
		t.Errorf("detail %q does not name the address", d)
	}
}
