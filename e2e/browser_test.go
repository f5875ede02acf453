package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// chromiumPath is the headless browser the console's browser tests drive:
// $EDGEPIPE_CHROMIUM, else Debian's chromium (`.ci/run` installs it) or
// another Chrome on PATH; "" when there is none.
func chromiumPath() string {
	if p := os.Getenv("EDGEPIPE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is one headless Chromium tab on the console of a gateway. Every
// request the tab makes, for any page, is recorded, so that the test can
// tell whether one left the box.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string // http://127.0.0.1:port
	shots string // where the screenshots go

	mu       sync.Mutex
	requests []string
}

// newBrowser starts Chromium (no sandbox: the tests may run as root) with
// one tab whose network events are all recorded. It is closed at test end.
func newBrowser(t *testing.T, exe, addr string) *browser {
	t.Helper()
	b := &browser{t: t, base: "http://" + addr, shots: t.TempDir()}
	if d := os.Getenv("EDGEPIPE_CONSOLE_SHOTS"); d != "" {
		b.shots = d // kept after the test, to look at
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(1100, 720),
	)
	// A bound for the whole browser session, far above what it takes on a
	// loaded machine; each wait below has its own.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	tctx, tcancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		// Runs in the tab's event loop: record and return.
		var u string
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			u = ev.Request.URL
		case *network.EventWebSocketCreated:
			u = ev.URL
		default:
			return
		}
		b.mu.Lock()
		b.requests = append(b.requests, u)
		b.mu.Unlock()
	}))
	t.Cleanup(func() {
		tcancel()
		acancel()
		cancel()
	})
	if err := chromedp.Do(tctx); err != nil { // starts the browser
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	b.ctx = tctx
	t.Logf("screenshots of the console's pages: %s", b.shots)
	return b
}

// do runs browser actions; a failure (a wait that timed out) fails the test
// with the page's text, to see what the browser saw.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\npage: %s", what, err, b.pageText())
	}
}

// eval evaluates a JavaScript expression in the page.
func evalIn[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// pollFor waits (in the page, no sleep) until the expression is truthy and
// returns its value.
func pollFor[T any](b *browser, what, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		b.t.Fatalf("waiting for %s (%s): %v\npage: %s", what, expr, err, b.pageText())
	}
	return v
}

// pageText is the visible text of the page, for failure messages.
func (b *browser) pageText() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// open navigates to a console page and waits for its heading.
func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS("main h1")))
}

// shot saves a full-page PNG of the current page as name.png and returns
// its path.
func (b *browser) shot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// offBox lists the recorded requests that went anywhere but the gateway.
func (b *browser) offBox() (all, off []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	gw, _ := url.Parse(b.base)
	for _, r := range b.requests {
		u, err := url.Parse(r)
		switch {
		case err != nil:
			off = append(off, r)
		case u.Scheme == "data" || u.Scheme == "blob" || u.Scheme == "about":
			// In the page itself.
		case (u.Scheme == "http" || u.Scheme == "ws") && u.Host == gw.Host:
		default:
			off = append(off, r)
		}
	}
	return append([]string(nil), b.requests...), off
}

// browserGateway is the gateway of the browser test: startSim's device
// polled every 100 ms (a counter that moves, a read-only constant, a
// writable set point), published to a broker that wants the password the
// configuration page must hide.
func browserGateway(dir, addr, simAddr, brokerURL, user, password string) string {
	return fmt.Sprintf(`[agent]
device_id = "GW-WEB"
data_dir = %q
http_listen = %q
%s
[[outputs.mqtt]]
alias = "cloud"
servers = [%q]
username = %q
password = %q
qos = 1
buffer = "memory"
`, dir+"/data", addr, modbusInput(simAddr), brokerURL, user, password)
}

// TestConsoleInBrowser drives the console of a real `edgepipe run` (the
// Modbus simulator in, mosquitto out) in headless Chromium, as an
// integrator on site would: every page loads from the gateway alone, live
// values change in place, a write reaches the simulator and a read-only
// point is refused on the page, pause stops delivery to a subscriber and
// resume restarts it, the configuration page hides the password, and a
// broken configuration is shown with its lines and not applied. Each page
// is saved as a screenshot; with EDGEPIPE_CONSOLE_PNG=path the live points
// page is also copied there (how docs/console.png is made), and with
// EDGEPIPE_CONSOLE_SHOTS=dir the screenshots go to dir and are kept.
func TestConsoleInBrowser(t *testing.T) {
	needBinary(t)
	exe := chromiumPath()
	if exe == "" {
		t.Skip("no chromium binary found (apt-get install chromium, or set EDGEPIPE_CHROMIUM): the console's browser tests are skipped")
	}
	const user, password = "gw-web", "browser-secret-7f3a91"
	var (
		brokerURL string
		collect   func(filter string) *testbroker.Collector
	)
	if testbroker.MosquittoPath() != "" && os.Getenv("EDGEPIPE_E2E_BROKER") != "mochi" {
		m := testbroker.StartMosquitto(t, testbroker.MosquittoOptions{Username: user, Password: password})
		brokerURL = m.URL()
		collect = func(filter string) *testbroker.Collector {
			return testbroker.Subscribe(t, m.URL(), filter, testbroker.ClientOptions{Username: user, Password: password})
		}
	} else {
		t.Log("mosquitto not installed or EDGEPIPE_E2E_BROKER=mochi: using the in-process mochi broker")
		m := testbroker.StartMochi(t, testbroker.MochiOptions{Username: user, Password: password})
		brokerURL, collect = m.URL(), m.Subscribe
	}
	sim := startSim(t)
	dir := t.TempDir()
	addr := httpAddr(t)
	doc := browserGateway(dir, addr, sim.Addr(), brokerURL, user, password)
	path := writeFile(t, dir, "gw.toml", doc)
	g := startGateway(t, "browser", path, addr)
	defer g.stop()
	g.waitLog("serving /healthz and /metrics", 1, 30*time.Second)
	data := collect("Topic/flexem/fbox/GW-WEB/data")
	data.Wait(t, 30*time.Second, "the first data message", func(m []testbroker.Received) bool { return len(m) > 0 })

	b := newBrowser(t, exe, addr)

	t.Run("live points change in place", func(t *testing.T) {
		b.t = t
		b.open("/points")
		pollFor[bool](b, "the live stream", `document.getElementById("live").textContent === "live"`)
		counter := `document.querySelector('tr[data-point="plc.level"] .v').textContent`
		first := pollFor[string](b, "a first value", counter)
		// A mark on the window: a reload would wipe it.
		b.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
		next := pollFor[string](b, "the counter to move", fmt.Sprintf(`%s !== %q && %s`, counter, first, counter))
		if !evalIn[bool](b, `window.notReloaded === true`) {
			t.Fatal("the page was reloaded to show the new value")
		}
		// Quality and age are shown with it.
		if q := evalIn[string](b, `document.querySelector('tr[data-point="plc.level"] .q').textContent`); q != "good" {
			t.Fatalf("quality %q", q)
		}
		pollFor[bool](b, "an age", `/ s$/.test(document.querySelector('tr[data-point="plc.level"] .age').textContent)`)
		t.Logf("plc.level went from %s to %s without a reload", first, next)
		p := b.shot("points")
		if dst := os.Getenv("EDGEPIPE_CONSOLE_PNG"); dst != "" {
			if err := os.WriteFile(dst, mustRead(t, p), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("a write reaches the simulator, a read-only point is refused", func(t *testing.T) {
		b.t = t
		b.open("/write")
		if evalIn[bool](b, `!!document.querySelector('#write option[value="plc.const"]')`) {
			t.Fatal("the write page offers the read-only plc.const")
		}
		b.do("write plc.setpoint = 7",
			chromedp.SetValue(chromedp.CSS(`#write select[name="point"]`), "plc.setpoint"),
			chromedp.SetValue(chromedp.CSS(`#write input[name="value"]`), "7"),
			chromedp.Click(chromedp.CSS(`#write button[type="submit"]`)))
		if r := pollFor[string](b, "the write's result", `document.getElementById("result").textContent`); r != "written" {
			t.Fatalf("write result %q", r)
		}
		waitFor(t, 10*time.Second, "holding 2 = 7 in the simulator", func() bool {
			v, err := sim.Read(1, modbussim.Holding, 2, 1)
			return err == nil && v[0] == 7
		})
		b.shot("write")
		// A page opened before the point became read-only, or a hand-made
		// form, still names it: the gateway refuses and the page says why.
		b.do("write plc.const = 1",
			chromedp.Evaluate[chromedp.Void](`(function () {
				var o = document.createElement("option");
				o.value = o.textContent = "plc.const";
				document.querySelector('#write select[name="point"]').appendChild(o);
				document.getElementById("result").textContent = "";
			})()`),
			chromedp.SetValue(chromedp.CSS(`#write select[name="point"]`), "plc.const"),
			chromedp.SetValue(chromedp.CSS(`#write input[name="value"]`), "1"),
			chromedp.Click(chromedp.CSS(`#write button[type="submit"]`)))
		r := pollFor[string](b, "the refusal", `document.getElementById("result").textContent`)
		if !strings.HasPrefix(r, "refused: ") || !strings.Contains(r, "read-only") {
			t.Fatalf("read-only write result %q", r)
		}
		if v, err := sim.Read(1, modbussim.Holding, 0, 1); err != nil || v[0] != 1234 {
			t.Fatalf("holding 0 changed: %v %v", v, err)
		}
		b.shot("write-refused")
	})

	t.Run("pause stops delivery, resume restarts it", func(t *testing.T) {
		b.t = t
		row := `tr[data-output="cloud"]`
		b.open("/")
		b.do("the output connected", chromedp.WaitVisible(chromedp.CSS(row+` .badge.ok`)))
		b.do("pause", chromedp.Click(chromedp.CSS(row+` button[data-post="/api/v1/outputs/cloud/pause"]`)),
			chromedp.WaitVisible(chromedp.CSS(row+` .badge.warn`)))
		if s := evalIn[string](b, `document.querySelector('`+row+` .badge').textContent`); s != "paused" {
			t.Fatalf("state after pause: %q", s)
		}
		b.shot("overview-paused")
		// Paused: the polls pile up in the queue and none reaches the
		// subscriber. Watch one stretch of queue growth after the pause
		// (a message in flight at the pause may still land before it).
		d0 := g.queueDepth("cloud")
		waitFor(t, 30*time.Second, "the queue to grow while paused", func() bool { return g.queueDepth("cloud") >= d0+5 })
		n1, d1 := data.Len(), g.queueDepth("cloud")
		waitFor(t, 30*time.Second, "the queue to grow more while paused", func() bool { return g.queueDepth("cloud") >= d1+5 })
		if n := data.Len(); n != n1 {
			t.Fatalf("%d messages reached the subscriber while the output was paused", n-n1)
		}
		b.do("resume", chromedp.Click(chromedp.CSS(row+` button[data-post="/api/v1/outputs/cloud/resume"]`)),
			chromedp.WaitVisible(chromedp.CSS(row+` .badge.ok`)))
		data.Wait(t, 30*time.Second, "delivery after resume", func(m []testbroker.Received) bool { return len(m) >= n1+d1 })
		waitFor(t, 30*time.Second, "the queue to drain", func() bool { return g.queueDepth("cloud") < d1 })
		b.open("/")
		b.shot("overview")
	})

	t.Run("the configuration page hides the password", func(t *testing.T) {
		b.t = t
		b.open("/config")
		running := evalIn[string](b, `document.getElementById("running").textContent`)
		if !strings.Contains(running, `password = "***"`) || !strings.Contains(running, `username = "gw-web"`) {
			t.Fatalf("running configuration shown:\n%s", running)
		}
		if html := evalIn[string](b, `document.documentElement.outerHTML`); strings.Contains(html, password) {
			t.Fatal("the password is in the configuration page")
		}
		b.shot("config")
	})

	t.Run("a broken configuration is shown by line and not applied", func(t *testing.T) {
		b.t = t
		b.open("/config")
		// The running file with the device renamed and two mistakes in two
		// new tables, lines counted from the text typed.
		broken := strings.Replace(doc, `"GW-WEB"`, `"GW-BROKEN"`, 1) +
			"\n[[inputs.synthetic]]\npoints = \"many\"\n" + // points: line n+3
			"\n[[processors.deadband]]\nabsolut = 1.0\n" // absolut: line n+6
		n := strings.Count(doc, "\n")
		b.do("apply the broken file",
			chromedp.SetValue(chromedp.CSS(`#config textarea[name="text"]`), broken),
			chromedp.Click(chromedp.CSS(`#config button[value="apply"]`)))
		res := pollFor[string](b, "the refusal", `document.getElementById("result").textContent`)
		errs := evalIn[[]string](b, `Array.from(document.querySelectorAll("#errors li")).map(function (li) { return li.textContent; })`)
		t.Logf("shown: %q %q", res, errs)
		if !strings.Contains(res, "not applied") {
			t.Fatalf("result %q", res)
		}
		for _, line := range []int{n + 3, n + 6} {
			found := false
			for _, e := range errs {
				found = found || strings.HasPrefix(e, fmt.Sprintf("line %d: ", line))
			}
			if !found {
				t.Errorf("no error shown at line %d: %q", line, errs)
			}
		}
		b.shot("config-refused")
		// Nothing changed: the header still names the running device, the
		// file is untouched, nothing was reloaded.
		b.open("/config")
		if dev := evalIn[string](b, `document.querySelector("header .dev").textContent`); dev != "GW-WEB" {
			t.Fatalf("device after the refused apply: %q", dev)
		}
		if string(mustRead(t, path)) != doc || strings.Contains(g.stderr.String(), "configuration reloaded") {
			t.Fatal("the refused configuration was applied")
		}
	})

	t.Run("every page loads from the box alone", func(t *testing.T) {
		b.t = t
		for _, p := range []struct{ path, name string }{{"/devices", "devices"}, {"/alarms", "alarms"}, {"/logs", "logs"}} {
			b.open(p.path)
			b.shot(p.name)
		}
		all, off := b.offBox()
		if len(all) < 10 {
			t.Fatalf("only %d requests recorded: %q", len(all), all)
		}
		if len(off) > 0 {
			t.Fatalf("requests that left the box: %q", off)
		}
		t.Logf("%d requests, all to %s", len(all), addr)
	})
}
