package console

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/edgepipe/edgepipe/core/agent"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// The console's pages are rendered on the gateway with html/template and
// updated in the browser by one small script (live values over the SSE
// stream, buttons that post to the API): no front-end build, no
// framework, nothing fetched from outside the box. Everything is embedded.

//go:embed web
var webFS embed.FS

// pages are parsed on the first page served, not at start: a gateway that
// never serves the console (most, and every plugin process, which runs the
// same binary) does not keep the parsed templates (~70 KB of heap, scanned
// by every GC cycle) nor touch the parser's code.
var pages = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("").Funcs(template.FuncMap{
		"deref":   func(b *bool) bool { return b != nil && *b },
		"deref64": func(n *int64) int64 { return *n },
	}).ParseFS(webFS, "web/*.html"))
})

// navItem is a link of the page header.
type navItem struct{ Name, Path, Title string }

var nav = []navItem{{"overview", "/", "Overview"}, {"points", "/points", "Live points"}, {"devices", "/devices", "Devices"},
	{"alarms", "/alarms", "Alarms"}, {"write", "/write", "Write"}, {"config", "/config", "Configuration"}, {"logs", "/logs", "Log"}}

// static serves the stylesheet and the script.
var static = func() http.Handler {
	sub, err := fs.Sub(webFS, "web")
	if err != nil {
		panic(err)
	}
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}()

// pageData is what every page gets.
type pageData struct {
	Title, Page, DeviceID, Version, User, CSRF, Error string
	Health                                            agent.Health
	Outputs                                           []pageOutput
	Alarms                                            []sdk.Alarm
	Points                                            []pagePoint
	Nav                                               []navItem
	Devices                                           []deviceState
	History                                           []sdk.Alarm
	File, Text                                        string
	Logs                                              []LogRecord
	Levels                                            []string
}

type pageOutput struct {
	ID, Plugin, Reason string
	Enabled, OK        bool
	Depth              int
}

type pagePoint struct {
	Name, Value, Unit, Quality, Access string
	TS                                 int64
}

// mountPages adds the console's pages to the mux.
func (c *Console) mountPages() {
	c.mux.Handle("GET /static/{file}", staticHeaders(static))
	c.mux.HandleFunc("GET /login", c.loginPage)
	c.mux.HandleFunc("GET /{$}", c.page("overview", c.overviewData))
	c.mux.HandleFunc("GET /points", c.page("points", c.pointsData))
	c.mux.HandleFunc("GET /devices", c.page("devices", func(r *http.Request, d *pageData) {
		d.Title, d.Devices = "Devices", c.deviceList(r.Context())
	}))
	c.mux.HandleFunc("GET /alarms", c.page("alarms", func(_ *http.Request, d *pageData) {
		d.Title = "Alarms"
		d.Alarms, d.History = c.opts.Live.Alarms()
		sort.Slice(d.Alarms, func(i, j int) bool { return d.Alarms[i].Rule < d.Alarms[j].Rule })
		slices.Reverse(d.History) // newest first
	}))
	c.mux.HandleFunc("GET /write", c.page("write", func(r *http.Request, d *pageData) {
		c.pointsData(r, d)
		d.Title = "Write a point"
		d.Points = slices.DeleteFunc(d.Points, func(p pagePoint) bool { return p.Access == "pub" })
	}))
	c.mux.HandleFunc("GET /config", c.page("config", func(_ *http.Request, d *pageData) {
		cfg := c.running()
		d.Title, d.File, d.Text = "Configuration", cfg.File, string(cfg.ShowText())
	}))
	c.mux.HandleFunc("GET /logs", c.page("logs", func(r *http.Request, d *pageData) {
		d.Title, d.Levels = "Log", []string{"debug", "info", "warn", "error"}
		var l slog.Level
		_ = l.UnmarshalText([]byte(r.URL.Query().Get("level")))
		if c.opts.Logs != nil {
			d.Logs = c.opts.Logs.Records(l, 500)
			slices.Reverse(d.Logs)
		}
	}))
}

func staticHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		h.ServeHTTP(w, r)
	})
}

// pageHeaders forbid anything but the gateway's own resources and framing.
func pageHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
}

func (c *Console) render(w http.ResponseWriter, status int, name string, d pageData) {
	cfg := c.running()
	d.DeviceID, d.Version = cfg.Agent.DeviceID, c.opts.Version
	var b bytes.Buffer
	if err := pages().ExecuteTemplate(&b, name+".html", d); err != nil {
		c.opts.Logger.Error("console page", "page", name, "err", err)
		http.Error(w, "page failed", http.StatusInternalServerError)
		return
	}
	pageHeaders(w)
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// page serves a page to whoever may read: a person who is not logged in
// is sent to the login form.
func (c *Console) page(name string, fill func(r *http.Request, d *pageData)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, e := c.auth.identify(r, c.console())
		if e != nil {
			if e.status == http.StatusUnauthorized && r.Header.Get("Authorization") == "" {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			c.render(w, e.status, "login", pageData{Title: "Refused", Page: "login", Error: e.msg})
			return
		}
		d := pageData{Page: name, User: id.name, Nav: nav}
		if id.session != nil {
			d.CSRF = id.session.csrf
		}
		fill(r, &d)
		c.render(w, http.StatusOK, name, d)
	}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Log in", Page: "login"}
	switch r.URL.Query().Get("failed") {
	case "":
	case "limit":
		d.Error = "Too many attempts; wait a little and try again."
	default:
		d.Error = "Wrong user name or password."
	}
	if c.console().PasswordHash == "" {
		d.Error = "No password is configured: the console is open on this host without logging in."
	}
	c.render(w, http.StatusOK, "login", d)
}

func (c *Console) overviewData(r *http.Request, d *pageData) {
	d.Title = "Overview"
	d.Health = c.opts.Agent.Health(r.Context())
	for _, p := range d.Health.Plugins {
		if p.Kind != string(sdk.KindOutput) {
			continue
		}
		o := pageOutput{ID: p.ID, Plugin: p.Plugin, Reason: p.Reason, OK: p.OK}
		if p.Enabled != nil {
			o.Enabled = *p.Enabled
		}
		if p.QueueDepth != nil {
			o.Depth = *p.QueueDepth
		}
		d.Outputs = append(d.Outputs, o)
	}
	d.Alarms, _ = c.opts.Live.Alarms()
	sort.Slice(d.Alarms, func(i, j int) bool { return d.Alarms[i].Rule < d.Alarms[j].Rule })
}

func (c *Console) pointsData(_ *http.Request, d *pageData) {
	d.Title = "Live points"
	for _, s := range c.opts.Agent.Points() {
		p := pagePoint{Name: s.FullName(), Unit: s.Unit, Access: s.Access.String()}
		if v, q, ts, ok := c.opts.Live.Latest(p.Name); ok {
			p.Value, p.Quality, p.TS = v.String(), q.String(), ts
		}
		d.Points = append(d.Points, p)
	}
}

// loginFailed sends a browser's failed form back to the login page.
func loginFailed(w http.ResponseWriter, r *http.Request, status int) {
	why := "1"
	if status == http.StatusTooManyRequests {
		why = "limit"
	}
	http.Redirect(w, r, "/login?failed="+url.QueryEscape(why), http.StatusSeeOther)
}

// fromBrowserForm tells whether a request is the login page's form.
func fromBrowserForm(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") &&
		strings.Contains(r.Header.Get("Accept"), "text/html")
}
