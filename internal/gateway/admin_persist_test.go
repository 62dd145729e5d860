package gateway_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/logbuf"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// TestAdminPersistence writes through the API, restarts from the same file
// and finds the change; the file keeps its ${ENV} references and comments.
func TestAdminPersistence(t *testing.T) {
	t.Parallel()
	backend := admBackend(t)
	file := filepath.Join(t.TempDir(), "portico.yaml")
	a := admStart(t, file, admConfig(backend))
	a.write(t, "PUT", "/routes/saved", `{"match": {"path": "/saved"}, "respond": {"body": "kept"}}`, 200)
	a.write(t, "PUT", "/consumers/bob", `{"credentials": {"key_auth": [{"key": "${PORTICO_TEST_ADMIN_BOB_KEY}"}]}}`, 200)
	rev := a.RunningConfig().Hash
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	admNoSecrets(t, "the persisted file", text)
	for _, ref := range []string{"${PORTICO_TEST_ADMIN_TOKEN}", "${PORTICO_TEST_ADMIN_ALICE_KEY}", "${PORTICO_TEST_ADMIN_JWT}", "${PORTICO_TEST_ADMIN_BOB_KEY}", "# Admin API test config."} {
		if !strings.Contains(text, ref) {
			t.Errorf("persisted file lacks %q:\n%s", ref, text)
		}
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, want 0600 kept", st.Mode().Perm())
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*tmp*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
	admStop(a.Gateway)

	b := admStart(t, file, "")
	if b.RunningConfig().Hash != rev {
		t.Errorf("restarted revision %s, want %s", b.RunningConfig().Hash, rev)
	}
	if s, body := b.traffic(t, "/saved"); s != 200 || body != "kept" {
		t.Fatalf("after restart /saved = %d %q", s, body)
	}
	if s, _ := b.traffic(t, "/api/x", "X-API-Key", admSecrets["PORTICO_TEST_ADMIN_BOB_KEY"]); s != 200 {
		t.Fatalf("after restart bob's key: %d", s)
	}
}

// TestAdminNoPersist checks admin.persist: false leaves the file alone.
func TestAdminNoPersist(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "portico.yaml")
	yaml := strings.Replace(admConfig(admBackend(t)), `token: "${PORTICO_TEST_ADMIN_TOKEN}"`, `token: "${PORTICO_TEST_ADMIN_TOKEN}"`+"\n  persist: false", 1)
	a := admStart(t, file, yaml)
	a.write(t, "PUT", "/routes/mem", `{"match": {"path": "/mem"}, "respond": {"body": "m"}}`, 200)
	if s, _ := a.traffic(t, "/mem"); s != 200 {
		t.Fatalf("/mem = %d", s)
	}
	if data, _ := os.ReadFile(file); string(data) != yaml {
		t.Fatal("file changed although persist is false")
	}
}

// TestAdminPersistFailureRollsBack makes the save fail (the temporary
// file's name is too long) and checks the change is undone.
func TestAdminPersistFailureRollsBack(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), strings.Repeat("p", 240)+".yaml")
	a := admStart(t, file, admConfig(admBackend(t)))
	rev := a.RunningConfig().Hash
	r := a.write(t, "PUT", "/routes/lost", `{"match": {"path": "/lost"}, "respond": {}}`, 500)
	if !strings.Contains(r.body, "rolled back") {
		t.Errorf("body %s", r.body)
	}
	if a.RunningConfig().Hash != rev {
		t.Fatal("config not rolled back")
	}
	if s, _ := a.traffic(t, "/lost"); s != 404 {
		t.Fatalf("/lost = %d after rollback", s)
	}
}

// TestAdminFileChangedOnDisk checks the API refuses to overwrite a file
// edited on disk that is not the running config.
func TestAdminFileChangedOnDisk(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "portico.yaml")
	a := admStart(t, file, admConfig(admBackend(t)))
	edited := admConfig(admBackend(t)) + "# edited by hand\n"
	os.WriteFile(file, []byte(edited), 0o600)
	a.write(t, "PUT", "/routes/x", `{"match": {"path": "/x"}, "respond": {}}`, 409)
	if data, _ := os.ReadFile(file); string(data) != edited {
		t.Fatal("hand edit overwritten")
	}
}

// TestAdminWriteDoesNotTriggerReload checks the file watcher sees the
// API's own write as the running revision and does nothing, while a real
// edit still reloads.
func TestAdminWriteDoesNotTriggerReload(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "portico.yaml")
	backend := admBackend(t)
	a := admStart(t, file, admConfig(backend))
	var reloads atomic.Int32
	rl := a.NewReloader(file)
	rl.OnResult = func(error) { reloads.Add(1) }
	// The watcher logs at debug level when it finds the running revision.
	var logs logbuf.Buffer
	rl.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	watching := make(chan struct{})
	gateway.OnWatching(rl, func() { close(watching) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rl.Watch(ctx, 50*time.Millisecond)
	<-watching
	a.write(t, "PUT", "/routes/w", `{"match": {"path": "/w"}, "respond": {"body": "w"}}`, 200)
	rev := a.RunningConfig().Hash
	wait.For(t, 5*time.Second, "the watcher to see the admin write", func() bool {
		return strings.Contains(logs.String(), "config file unchanged; nothing to reload")
	})
	if n := reloads.Load(); n != 0 {
		t.Fatalf("%d reloads after an admin write, want 0", n)
	}
	if a.RunningConfig().Hash != rev {
		t.Fatal("revision changed")
	}
	// A real edit is still applied.
	data, _ := os.ReadFile(file)
	os.WriteFile(file, append(data, []byte("# touched\n")...), 0o600)
	if !wait.Within(5*time.Second, func() bool { return reloads.Load() != 0 }) {
		t.Fatal("edit not reloaded")
	}
	if s, body := a.traffic(t, "/w"); s != 200 || body != "w" {
		t.Fatalf("/w = %d %q", s, body)
	}
}

// TestAdminConfigHistory: every applied revision is listed, oldest first.
func TestAdminConfigHistory(t *testing.T) {
	t.Parallel()
	tg := testutil.StartGateway(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
routes: [{name: a, match: {path: /a}, respond: {}}]
`)
	cfg2 := testutil.ParseConfig(t, "server: {listen: [{addr: \"127.0.0.1:0\"}]}\nadmin: {listen: \"127.0.0.1:0\"}\nlog: {access: {output: \"off\"}}\nroutes: [{name: a, match: {path: /a}, respond: {}}, {name: b, match: {path: /b}, respond: {}}]\n")
	cfg2.Server.Listen = tg.Runtime.Current().Config().Server.Listen
	if err := tg.Runtime.Apply(cfg2); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(tg.AdminURL + "/config/history")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		History []struct {
			Revision string `json:"revision"`
			Routes   int    `json:"routes"`
		} `json:"history"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if len(body.History) != 2 || body.History[0].Routes != 1 || body.History[1].Routes != 2 || body.History[1].Revision != cfg2.Hash {
		t.Fatalf("history = %+v", body.History)
	}
}
