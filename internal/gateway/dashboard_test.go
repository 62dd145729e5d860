package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portico-gw/portico/internal/admin/dashboard"
	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// dashboardToken is the admin API token of TestDashboardInChromium.
const dashboardToken = "dashboard-test-token"

// dashboardYAML is the gateway config of TestDashboardInChromium: upstream
// "shop" of the two backends, route "shop-api", plus extra YAML under the
// upstream and extra routes; an admin token; no access log.
func dashboardYAML(a, b, upstreamExtra, routesExtra string) string {
	return fmt.Sprintf(`server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  shop:
    balancer: round_robin
    targets:
      - url: %q
      - url: %q
%sroutes:
  - name: shop-api
    match: {path_prefix: /}
    upstream: shop
%sadmin: {listen: "127.0.0.1:0", token: %q}
log: {access: {output: "off"}}
`, a, b, upstreamExtra, routesExtra, dashboardToken)
}

// dashboardURL returns the dashboard's address: the admin listener's own
// /dashboard/ when the admin API mounts it, else a server of its own that
// serves dashboard.Handler and passes every other path to the admin API, as
// the admin listener does.
func dashboardURL(t *testing.T, adminURL string) string {
	t.Helper()
	resp, err := http.Get(adminURL + "/dashboard/")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && strings.Contains(string(body), "Portico dashboard") {
			t.Logf("dashboard mounted on the admin listener")
			return adminURL + "/dashboard/"
		}
	}
	target, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", dashboard.Handler())
	mux.Handle("/", httputil.NewSingleHostReverseProxy(target))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Logf("dashboard not mounted on the admin listener yet: serving it in front of the admin API at %s", srv.URL)
	return srv.URL + "/dashboard/"
}

// adminWrite sends a JSON write to the admin API with the token and the
// running revision as If-Match (read from the ETag of GET /routes). It
// returns the status; 404 and 405 mean the admin API has no such endpoint.
func adminWrite(t *testing.T, tg *testutil.Gateway, method, path, body string) int {
	t.Helper()
	cl := testutil.Client()
	do := func(method, path, ifMatch, body string) (int, http.Header, string) {
		req, _ := http.NewRequest(method, tg.AdminURL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+dashboardToken)
		req.Header.Set("Content-Type", "application/json")
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(bytes.TrimSpace(b))
	}
	code, h, _ := do("GET", "/routes", "", "")
	if code != 200 || h.Get("ETag") == "" {
		return http.StatusNotFound
	}
	code, _, out := do(method, path, h.Get("ETag"), body)
	if code != http.StatusNotFound && code != http.StatusMethodNotAllowed && (code < 200 || code > 299) {
		t.Fatalf("%s %s: %d %s", method, path, code, out)
	}
	return code
}

// changeConfig makes a change through the admin API (method, path, body)
// when the API has that endpoint, else by applying fullConfig, which holds
// the same change. It reports which way it took.
func changeConfig(t *testing.T, tg *testutil.Gateway, method, path, body, fullConfig string) string {
	t.Helper()
	if code := adminWrite(t, tg, method, path, body); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
		return method + " " + path
	}
	if err := tg.Runtime.Apply(testutil.ParseConfig(t, fullConfig)); err != nil {
		t.Fatalf("apply config: %v", err)
	}
	return "Runtime.Apply"
}

// artifactPath is where a test writes a file worth keeping:
// $PORTICO_TEST_ARTIFACTS when set, else the test's temporary directory.
func artifactPath(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("PORTICO_TEST_ARTIFACTS")
	if dir == "" {
		return filepath.Join(t.TempDir(), name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// dashboardBackend is a backend of TestDashboardInChromium that answers
// with its name, fails /fail, lacks /missing and passes /healthz.
func dashboardBackend(t *testing.T, name string) *httptest.Server {
	return testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/healthz":
			io.WriteString(w, "ok")
		case "/fail":
			http.Error(w, "backend failure", http.StatusInternalServerError)
		case "/missing":
			http.NotFound(w, r)
		default:
			// Latencies vary on purpose, for the latency charts.
			time.Sleep(time.Duration(len(r.URL.Path)%4) * time.Millisecond)
			io.WriteString(w, name)
		}
	}))
}

// dashboardTraffic sends steady traffic to the gateway at gwURL until the
// test ends: mostly 200s, a few 404s and 500s (spread out, so no target
// collects enough 5xx in a row to be ejected).
func dashboardTraffic(t *testing.T, gwURL string) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cl := testutil.Client()
		paths := []string{"/", "/api/items", "/api/cart", "/missing", "/", "/api/items", "/fail", "/api/cart"}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			if resp, err := cl.Get(gwURL + paths[i%len(paths)]); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
}

// dashboardBrowser starts headless Chromium and records its console. It
// returns the browser context and a function that closes the browser and
// returns the console messages.
func dashboardBrowser(t *testing.T, chromium string) (context.Context, func() []chromedp.ConsoleMessage) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	var (
		consoleMu sync.Mutex
		console   []chromedp.ConsoleMessage
	)
	messages := chromedp.Console(browser)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			consoleMu.Lock()
			console = append(console, m)
			consoleMu.Unlock()
		}
	}()
	t.Cleanup(func() { cancelBrowser(); <-consoleDone })
	return browser, func() []chromedp.ConsoleMessage {
		cancelBrowser()
		<-consoleDone
		consoleMu.Lock()
		defer consoleMu.Unlock()
		return console
	}
}

// dashboardPage is the dashboard open in one browser tab.
type dashboardPage struct {
	t   *testing.T
	ctx context.Context
}

// waitFor fails the test unless selector is visible within the time given.
func (p dashboardPage) waitFor(what, selector string, within time.Duration) {
	p.t.Helper()
	start := time.Now()
	wctx, wcancel := context.WithTimeout(p.ctx, within)
	defer wcancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(selector))); err != nil {
		html, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.querySelector('main') ? document.querySelector('main').innerText : ''`))
		p.t.Fatalf("%s (%s) not shown within %v: %v\npage:\n%s", what, selector, within, err, html)
	}
	p.t.Logf("%s shown after %v", what, time.Since(start).Round(10*time.Millisecond))
}

// waitJS fails the test unless the JavaScript expression expr turns true
// within the time given.
func (p dashboardPage) waitJS(what, expr string, within time.Duration) {
	p.t.Helper()
	var err error
	if !wait.Within(within, func() bool {
		var ok bool
		ok, err = chromedp.Run(p.ctx, chromedp.Evaluate[bool](expr))
		return err == nil && ok
	}) {
		p.t.Fatalf("%s: not true within %v (%v)", what, within, err)
	}
}

// login enters the admin token the page asks for and waits for the data of
// upstream shop, whose target b is up.
func (p dashboardPage) login(bHost string) {
	p.t.Helper()
	p.waitFor("token field", `#auth #token`, 20*time.Second)
	if err := chromedp.Do(p.ctx,
		chromedp.SendKeys(chromedp.CSS(`#token`), dashboardToken),
		chromedp.Click(chromedp.CSS(`#auth button[type="submit"]`)),
	); err != nil {
		p.t.Fatalf("enter token: %v", err)
	}
	p.waitFor("route shop-api", `#routes-body tr[data-route="shop-api"]`, 20*time.Second)
	p.waitFor("upstream shop with both targets up",
		fmt.Sprintf(`tr.target[data-target=%q][data-health="up"] .badge.ok`, bHost), 20*time.Second)
	if stored, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`sessionStorage.getItem('portico.adminToken') || ''`)); err != nil || stored != dashboardToken {
		p.t.Errorf("token in sessionStorage: %q %v", stored, err)
	}
}

// checkOverview lets the sparklines collect a few samples, checks the
// overview figures and the live status, and saves a screenshot.
func (p dashboardPage) checkOverview() {
	p.t.Helper()
	p.waitJS("request-rate sparkline with 4 samples",
		`((document.querySelector('#s-rate path.line') || {getAttribute: () => ''}).getAttribute('d').match(/L/g) || []).length >= 3`, 8*time.Second)
	for _, id := range []string{"v-rate", "v-err", "v-p50", "v-p99"} {
		v, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(`#`+id)))
		if err != nil || v == "" || v == "—" {
			p.t.Errorf("overview #%s not shown: %q %v", id, v, err)
		}
	}
	status, _ := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(`#status`)))
	if !strings.HasPrefix(status, "live") {
		p.t.Errorf("status %q, want live", status)
	}
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	shot := artifactPath(p.t, "dashboard.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", shot)
}

// dashboardMetricsOnly opens the dashboard, in a new tab of browser, in
// front of an admin API without /routes, /upstreams and /version, and
// checks that the page falls back to what /metrics says: route dash-new,
// target bHost down and target aHost up.
func dashboardMetricsOnly(t *testing.T, browser context.Context, adminURL, aHost, bHost string) {
	older := http.NewServeMux()
	older.Handle("/dashboard/", dashboard.Handler())
	adminTarget, _ := url.Parse(adminURL)
	proxy := httputil.NewSingleHostReverseProxy(adminTarget)
	older.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		r.Header.Set("Authorization", "Bearer "+dashboardToken)
		proxy.ServeHTTP(w, r)
	})
	olderSrv := httptest.NewServer(older)
	t.Cleanup(olderSrv.Close)
	tab, cancelTab := chromedp.NewContext(browser)
	defer cancelTab()
	tabCtx, cancelTabCtx := context.WithTimeout(tab, 30*time.Second)
	defer cancelTabCtx()
	if err := chromedp.Do(tabCtx,
		chromedp.Navigate(olderSrv.URL+"/dashboard/"),
		chromedp.WaitVisible(chromedp.CSS(`#routes-body tr[data-route="dash-new"]`)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr.target[data-target=%q][data-health="down"] .badge.bad`, bHost))),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr.target[data-target=%q][data-health="up"] .badge.ok`, aHost))),
	); err != nil {
		// The page text helps diagnose; a tab that no longer answers must
		// not hang the test.
		dctx, dcancel := context.WithTimeout(tab, 5*time.Second)
		txt, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.querySelector('main') ? document.querySelector('main').innerText : ''`))
		dcancel()
		t.Fatalf("metrics-only dashboard: %v\npage:\n%s", err, txt)
	}
	if src, err := chromedp.Run(tabCtx, chromedp.Text(chromedp.CSS(`#routes-src`))); err != nil || src != "from metrics" {
		t.Errorf("metrics-only routes source %q %v", src, err)
	}
	t.Logf("metrics-only admin API: routes and target health shown from /metrics")
}

// TestDashboardInChromium loads the dashboard in headless Chromium against a
// running gateway and checks what an operator sees: the configured route, a
// route added while the page is open, and a backend that dies turning its
// target red. It does not run in parallel: /metrics reports the upstreams of
// the most recently started gateway.
func TestDashboardInChromium(t *testing.T) {
	chromium := testutil.RequireBinary(t, "chromium", "chromium")
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		chromium = "/usr/bin/chromium"
	}
	a, b := dashboardBackend(t, "a"), dashboardBackend(t, "b")
	aHost, bHost := strings.TrimPrefix(a.URL, "http://"), strings.TrimPrefix(b.URL, "http://")
	tg := testutil.StartGateway(t, dashboardYAML(a.URL, b.URL, "", ""))
	pageURL := dashboardURL(t, tg.AdminURL)
	dashboardTraffic(t, tg.URL)
	// Uncaught exceptions and CSP violations fail the test; other console
	// errors (such as a 404 from an admin endpoint that does not exist yet)
	// are only logged.
	browser, closeBrowser := dashboardBrowser(t, chromium)

	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	page := dashboardPage{t: t, ctx: ctx}
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("load %s: %v", pageURL, err)
	}
	// The admin API wants a token: the page asks for it, then shows data.
	page.login(bHost)

	// A route added while the page is open shows up at the next poll.
	newRoute := "  - name: dash-new\n    match: {path_prefix: /new, methods: [GET, POST]}\n    upstream: shop\n"
	how := changeConfig(t, tg, "PUT", "/routes/dash-new",
		`{"name": "dash-new", "match": {"path_prefix": "/new", "methods": ["GET", "POST"]}, "upstream": "shop"}`,
		dashboardYAML(a.URL, b.URL, "", newRoute))
	t.Logf("route dash-new added with %s", how)
	page.waitFor("new route dash-new", `#routes-body tr[data-route="dash-new"]`, 20*time.Second)

	// Backend b dies; an active health check takes its target out and the
	// page turns it red.
	b.Close()
	hc := "    health_check: {path: /healthz, interval: 100ms, timeout: 80ms, healthy_threshold: 1, unhealthy_threshold: 1}\n"
	how = changeConfig(t, tg, "PUT", "/upstreams/shop",
		fmt.Sprintf(`{"balancer": "round_robin", "targets": [{"url": %q}, {"url": %q}], `+
			`"health_check": {"path": "/healthz", "interval": "100ms", "timeout": "80ms", "healthy_threshold": 1, "unhealthy_threshold": 1}}`, a.URL, b.URL),
		dashboardYAML(a.URL, b.URL, hc, newRoute))
	t.Logf("health check configured with %s", how)
	page.waitFor("target b unhealthy", fmt.Sprintf(`tr.target[data-target=%q][data-health="down"] .badge:not(.ok)`, bHost), 6*time.Second)
	page.waitFor("target a still healthy", fmt.Sprintf(`tr.target[data-target=%q][data-health="up"] .badge.ok`, aHost), time.Second)

	// Once the token works the form goes away, leaving a way to forget it.
	page.waitFor("forget-token button", `#logout`, time.Second)
	if hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('auth').hidden`)); err != nil || !hidden {
		t.Errorf("token form still shown after the token was accepted (%v)", err)
	}
	page.checkOverview()
	dashboardMetricsOnly(t, browser, tg.AdminURL, aHost, bHost)

	for _, m := range closeBrowser() {
		switch {
		case m.Type == chromedp.ConsoleException, strings.Contains(m.Text, "Content Security Policy"):
			t.Errorf("browser console: %s %s (%s:%d)", m.Type, m.Text, m.URL, m.Line)
		case m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning:
			t.Logf("browser console: %s %s (%s)", m.Type, m.Text, m.URL)
		}
	}
}
