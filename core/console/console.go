// Package console serves the gateway's local JSON API under /api/v1 (SPEC
// section 8), described by the OpenAPI document it serves at
// /api/v1/openapi.json, and the web console's pages (pages.go), with
// access control (auth.go). core/monitor mounts it beside /healthz and
// /metrics on agent.http_listen.
//
// The API acts through the same code paths as the server's MQTT commands:
// a write, an alarm acknowledgement, a pause or resume is a typed
// sdk.Command served by the agent's Execute (ExecuteLocal), and its reply
// is the one fbox renders for MQTT. Applying a configuration calls the
// hook the command wires to the reload path SIGHUP and Reboot use.
package console

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edgepipe/edgepipe/core/agent"
	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/fbox"
)

// Agent is what the console asks of the running pipeline; *agent.Agent
// implements it.
type Agent interface {
	Health(ctx context.Context) agent.Health
	Stats() agent.Stats
	Points() []sdk.PointSchema
	Devices() []agent.Device
	ExecuteLocal(c sdk.Command) sdk.Result
}

// Options wire a console to its gateway.
type Options struct {
	Agent Agent
	// Live is the table the agent feeds (agent.Options.Observer).
	Live *Live
	// Logs is the ring the gateway's logger writes to; nil: no logs.
	Logs *LogRing
	// Running returns the configuration in force (it changes on reload).
	Running func() *config.Config
	// CheckConfig validates a configuration text as `edgepipe check`
	// would, returning every error (sdk.ConfigErrors, warnings marked).
	CheckConfig func(ctx context.Context, text []byte) error
	// ApplyConfig validates a configuration text and, when it passes,
	// applies it in place like SIGHUP; nil: applying is not available.
	ApplyConfig func(ctx context.Context, text []byte) error
	Version     string
	Logger      *slog.Logger
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// maxConfigSize bounds a configuration sent to check or apply.
const maxConfigSize = 4 << 20

// Console is the API's handler.
type Console struct {
	opts    Options
	mux     *http.ServeMux
	auth    *auth
	started time.Time
	seq     atomic.Uint64
	routes  []route
}

// route is one API route: the access it needs and its handler.
type route struct {
	method, path string // path as in OpenAPI: /api/v1/alarms/{rule}/ack
	public       bool   // no credentials needed (login, the API's description)
	change       bool   // state-changing: CSRF token or write token
	h            http.HandlerFunc
}

// New builds the console.
func New(o Options) *Console {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Live == nil {
		o.Live = NewLive()
	}
	c := &Console{opts: o, mux: http.NewServeMux(), auth: newAuth(o.Now), started: o.Now()}
	c.routes = []route{
		{method: "GET", path: "/api/v1/openapi.json", public: true, h: c.openAPI},
		{method: "POST", path: "/api/v1/login", public: true, h: c.login},
		{method: "POST", path: "/api/v1/logout", change: true, h: c.logout},
		{method: "GET", path: "/api/v1/session", h: c.sessionInfo},
		{method: "GET", path: "/api/v1/status", h: c.status},
		{method: "GET", path: "/api/v1/points", h: c.points},
		{method: "GET", path: "/api/v1/points/stream", h: c.stream},
		{method: "GET", path: "/api/v1/devices", h: c.devices},
		{method: "GET", path: "/api/v1/alarms", h: c.alarms},
		{method: "POST", path: "/api/v1/alarms/{rule}/ack", change: true, h: c.ack},
		{method: "POST", path: "/api/v1/write", change: true, h: c.write},
		{method: "POST", path: "/api/v1/outputs/{alias}/pause", change: true, h: c.pauseResume(sdk.SystemPause)},
		{method: "POST", path: "/api/v1/outputs/{alias}/resume", change: true, h: c.pauseResume(sdk.SystemResume)},
		{method: "GET", path: "/api/v1/config", h: c.config},
		{method: "POST", path: "/api/v1/config/check", h: c.checkConfig},
		{method: "POST", path: "/api/v1/config/apply", change: true, h: c.applyConfig},
		{method: "GET", path: "/api/v1/logs", h: c.logs},
	}
	for _, r := range c.routes {
		c.mux.Handle(r.method+" "+r.path, c.guard(r))
	}
	c.mountPages()
	c.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if _, e := c.auth.identify(r, c.console()); e != nil {
			writeError(w, e.status, e.msg)
			return
		}
		var allow []string
		for _, rt := range c.routes {
			if matchPath(rt.path, r.URL.Path) {
				allow = append(allow, rt.method)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, r.Method+" is not served here; use "+strings.Join(allow, " or "))
			return
		}
		writeError(w, http.StatusNotFound, "no such API route: "+r.Method+" "+fbox.Clip(r.URL.Path))
	})
	return c
}

// ServeHTTP serves the API and the console's pages.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	if !c.console().On() && c.opts.Running != nil {
		// Disabled by a reload: the monitor keeps serving /metrics and /healthz.
		writeError(w, http.StatusNotFound, "the console is disabled ([agent.console] enabled = false)")
		return
	}
	c.mux.ServeHTTP(w, r)
}

// matchPath tells whether a request path matches a route's pattern, a
// {name} matching one segment.
func matchPath(pattern, path string) bool {
	ps, qs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(qs) {
		return false
	}
	for i := range ps {
		if ps[i] != qs[i] && !(strings.HasPrefix(ps[i], "{") && qs[i] != "") {
			return false
		}
	}
	return true
}

// console is the running [agent.console].
func (c *Console) console() config.Console {
	if c.opts.Running == nil {
		return config.Console{}
	}
	if cfg := c.opts.Running(); cfg != nil {
		return cfg.Console
	}
	return config.Console{}
}

type whoKey struct{}

// guard checks who is asking before a route runs.
func (c *Console) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cons := c.console()
		if !rt.public {
			id, e := c.auth.identify(r, cons)
			switch {
			case e != nil:
			case rt.change:
				e = allowChange(r, id)
			case r.Method == http.MethodPost && id.name == "loopback" && crossSite(r):
				e = &authError{http.StatusForbidden, "cross-site request refused"}
			}
			if e != nil {
				writeError(w, e.status, e.msg)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), whoKey{}, id))
		} else if cons.PasswordHash == "" && !loopbackPeer(r) {
			writeError(w, http.StatusForbidden, "the console answers on loopback only: no password_hash is configured")
			return
		}
		rt.h(w, r)
	})
}

func caller(r *http.Request) who {
	w, _ := r.Context().Value(whoKey{}).(who)
	return w
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeRaw answers a JSON document already rendered.
func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

//go:embed openapi.json
var openAPIDoc []byte

func (c *Console) openAPI(w http.ResponseWriter, _ *http.Request) {
	writeRaw(w, http.StatusOK, openAPIDoc)
}

// status is GET /api/v1/status.
func (c *Console) status(w http.ResponseWriter, r *http.Request) {
	h := c.opts.Agent.Health(r.Context())
	st := c.opts.Agent.Stats()
	cfg := c.running()
	raised, _ := c.opts.Live.Alarms()
	clients, dropped := c.opts.Live.StreamStats()
	type output struct {
		ID         string `json:"id"`
		Plugin     string `json:"plugin"`
		Enabled    bool   `json:"enabled"`
		Connected  bool   `json:"connected"`
		Reason     string `json:"reason,omitempty"`
		QueueDepth int    `json:"queue_depth"`
		QueueBytes int64  `json:"queue_bytes"`
	}
	outs := []output{}
	for _, p := range h.Plugins {
		if p.Kind != string(sdk.KindOutput) {
			continue
		}
		o := output{ID: p.ID, Plugin: p.Plugin, Connected: p.OK, Reason: p.Reason}
		if p.Enabled != nil {
			o.Enabled = *p.Enabled
		}
		if p.QueueDepth != nil {
			o.QueueDepth = *p.QueueDepth
		}
		if p.QueueBytes != nil {
			o.QueueBytes = *p.QueueBytes
		}
		outs = append(outs, o)
	}
	now := c.opts.Now()
	writeJSON(w, http.StatusOK, map[string]any{
		"device_id":     cfg.Agent.DeviceID,
		"version":       c.opts.Version,
		"started":       c.started.UnixMilli(),
		"uptime_s":      int64(now.Sub(c.started).Seconds()),
		"ok":            h.OK,
		"plugins":       h.Plugins,
		"outputs":       outs,
		"alarms_raised": len(raised),
		"counters": map[string]uint64{"points_gathered": st.Gathered, "gather_errors": st.GatherErrors,
			"points_reported": st.Reported, "points_dropped": st.Dropped, "messages_queued": st.Messages},
		"stream": map[string]any{"clients": clients, "dropped": dropped},
	})
}

func (c *Console) running() *config.Config {
	if c.opts.Running != nil {
		if cfg := c.opts.Running(); cfg != nil {
			return cfg
		}
	}
	return &config.Config{}
}

// points is GET /api/v1/points: every point of the registry with its
// latest reading.
func (c *Console) points(w http.ResponseWriter, _ *http.Request) {
	writeRaw(w, http.StatusOK, c.pointsDoc())
}

// pointsDoc renders {"points":[...]} (also the stream's first event).
func (c *Console) pointsDoc() []byte {
	now := c.opts.Now()
	b := []byte(`{"points":[`)
	for i, s := range c.opts.Agent.Points() {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = sdk.AppendJSONString(b, s.FullName())
		b = append(b, `,"device":`...)
		b = sdk.AppendJSONString(b, s.Device)
		b = append(b, `,"type":`...)
		b = sdk.AppendJSONString(b, s.Type)
		b = append(b, `,"access":"`...)
		b = append(b, s.Access.String()...)
		b = append(b, `","unit":`...)
		b = sdk.AppendJSONString(b, s.Unit)
		v, q, ts, ok := c.opts.Live.Latest(s.FullName())
		if ok {
			b = append(b, `,"value":`...)
			b = v.AppendJSON(b)
			b = append(b, `,"q":"`...)
			b = append(b, q.String()...)
			b = append(b, `","ts":`...)
			b = strconv.AppendInt(b, ts, 10)
			b = append(b, `,"age_ms":`...)
			b = strconv.AppendInt(b, age(now, ts), 10)
		} else {
			b = append(b, `,"value":null,"q":null,"ts":null,"age_ms":null`...)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// streamPing keeps idle streams open through proxies and finds closed
// clients.
const streamPing = 15 * time.Second

// streamWriteTimeout ends a stream whose client stopped reading (its TCP
// window full): the handler is not left blocked in a write for ever.
const streamWriteTimeout = 30 * time.Second

// stream is GET /api/v1/points/stream: Server-Sent Events. The first event
// ("snapshot") is GET points; then one "points" event per batch read, with
// the points of that batch.
func (c *Console) stream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	sub := c.opts.Live.subscribe()
	defer c.opts.Live.unsubscribe(sub)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)) }
	deadline()
	snap := append([]byte("event: snapshot\ndata: "), c.pointsDoc()...)
	if _, err := w.Write(append(snap, "\n\n"...)); err != nil || rc.Flush() != nil {
		return
	}
	ping := time.NewTicker(streamPing)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-sub.ch:
			if !ok {
				// Dropped for falling behind: end the response; EventSource
				// reconnects and starts again from a snapshot.
				return
			}
			deadline()
			if _, err := w.Write(ev); err != nil {
				return
			}
			// Send what else is waiting in the same write burst.
		more:
			for {
				select {
				case ev, ok := <-sub.ch:
					if !ok {
						break more
					}
					if _, err := w.Write(ev); err != nil {
						return
					}
				default:
					break more
				}
			}
			if rc.Flush() != nil {
				return
			}
		case <-ping.C:
			deadline()
			if _, err := io.WriteString(w, ": ping\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// deviceState is a device of GET devices.
type deviceState struct {
	agent.Device
	Up         *bool  `json:"up"` // null: not read yet
	LastRead   *int64 `json:"last_read"`
	AgeMS      *int64 `json:"age_ms"`
	GoodPoints int    `json:"good_points"`
	BadPoints  int    `json:"bad_points"`
	InputOK    bool   `json:"input_ok"`
	Reason     string `json:"reason,omitempty"`
	// From the input's own account of the device (sdk.DeviceHealth), when
	// it gives one: it decides Up, and says why a device is down.
	LastError  string `json:"last_error,omitempty"`
	ReadErrors uint64 `json:"read_errors"`
}

// deviceList is every device of the registry and its input. A device the
// input reports on (sdk.DeviceHealth: a Modbus slave, a PLC) is up or down
// by that report, the same state /healthz and edgepipe_device_up show;
// otherwise by whether its last read gave any point that is not bad.
func (c *Console) deviceList(ctx context.Context) []deviceState {
	h := c.opts.Agent.Health(ctx)
	inputs := map[string]agent.PluginHealth{}
	for _, p := range h.Plugins {
		inputs[p.ID] = p
	}
	type key struct{ plugin, device string }
	reported := map[key]agent.DeviceHealth{}
	for _, d := range h.Devices {
		reported[key{d.Plugin, d.Device}] = d
	}
	now := c.opts.Now()
	out := []deviceState{}
	for _, d := range c.opts.Agent.Devices() {
		dv := deviceState{Device: d}
		if ih, ok := inputs[d.Input]; ok {
			dv.InputOK, dv.Reason = ih.OK, ih.Reason
		}
		if rd, ok := c.opts.Live.device(d.Name); ok {
			up := rd.good > 0 || rd.bad == 0
			ts, a := rd.ts, age(now, rd.ts)
			dv.Up, dv.LastRead, dv.AgeMS, dv.GoodPoints, dv.BadPoints = &up, &ts, &a, rd.good, rd.bad
		}
		if dh, ok := reported[key{d.Input, d.Name}]; ok {
			up := dh.Up
			dv.Up, dv.LastError, dv.ReadErrors = &up, dh.LastError, dh.ReadErrors
		}
		out = append(out, dv)
	}
	return out
}

// devices is GET /api/v1/devices.
func (c *Console) devices(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"devices": c.deviceList(r.Context())})
}

type alarmJSON struct {
	TS      int64           `json:"ts"`
	Rule    string          `json:"rule"`
	Point   string          `json:"point"`
	Level   string          `json:"level"`
	State   string          `json:"state"`
	Value   json.RawMessage `json:"value"`
	Message string          `json:"message"`
}

func toAlarmJSON(as []sdk.Alarm) []alarmJSON {
	out := make([]alarmJSON, len(as))
	for i, a := range as {
		out[i] = alarmJSON{TS: a.TS, Rule: a.Rule, Point: a.Point, Level: a.Level, State: a.State,
			Value: a.Value.AppendJSON(nil), Message: a.Message}
	}
	return out
}

// alarms is GET /api/v1/alarms: the raised alarms (state "acked" once
// acknowledged) and the recent events, newest last.
func (c *Console) alarms(w http.ResponseWriter, _ *http.Request) {
	raised, history := c.opts.Live.Alarms()
	sort.Slice(raised, func(i, j int) bool { return raised[i].Rule < raised[j].Rule })
	writeJSON(w, http.StatusOK, map[string]any{"raised": toAlarmJSON(raised), "history": toAlarmJSON(history)})
}

// requestID is the id a command from the API carries: the body's "id"
// when it has one, else a fresh "console-N".
func (c *Console) requestID(body []byte) string {
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(body, &v) == nil && len(v.ID) > 0 {
		var s string
		if json.Unmarshal(v.ID, &s) == nil && s != "" {
			return s
		}
		var n json.Number
		if json.Unmarshal(v.ID, &n) == nil {
			return n.String()
		}
	}
	return "console-" + strconv.FormatUint(c.seq.Add(1), 10)
}

// readBody reads at most max bytes of the request's body; ok false has
// answered 413 or 400.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", max))
		} else {
			writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		}
		return nil, false
	}
	return b, true
}

func (c *Console) topics() fbox.Topics {
	cfg := c.running()
	return fbox.NewTopics(cfg.Agent.TopicPrefix, cfg.Agent.DeviceID)
}

// execute serves a command through the agent and answers its reply as
// rendered for MQTT: 200 when it succeeded (a write: when it was served,
// with a result per point), 400 when the request could not be parsed, 422
// when the gateway refused it.
func (c *Console) execute(w http.ResponseWriter, r *http.Request, cmd sdk.Command) {
	res := c.opts.Agent.ExecuteLocal(cmd)
	c.opts.Logger.Info("console command", "by", caller(r).name, "command", cmd.Kind.String(), "id", fbox.Clip(cmd.ID),
		"ok", res.OK())
	status := http.StatusOK
	switch {
	case cmd.Err != "":
		status = http.StatusBadRequest
	case !res.OK():
		status = http.StatusUnprocessableEntity
	}
	writeRaw(w, status, fbox.Reply(cmd, res).Payload)
}

// write is POST /api/v1/write: SPEC 4's write, {"id":..,"points":{..}}.
func (c *Console) write(w http.ResponseWriter, r *http.Request) {
	max := int64(c.running().Agent.MaxCommandSize)
	if max <= 0 {
		max = fbox.DefaultMaxCommandSize
	}
	body, ok := readBody(w, r, max)
	if !ok {
		return
	}
	t := c.topics()
	cmd, _ := t.Parse(t.Write(), body, int(max))
	if cmd.ID == "" && cmd.Err == "" {
		cmd.ID = c.requestID(nil)
	}
	c.execute(w, r, cmd)
}

// ack is POST /api/v1/alarms/{rule}/ack, body optional {"id":..}.
func (c *Console) ack(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, 4<<10)
	if !ok {
		return
	}
	t := c.topics()
	cmd := sdk.Command{Kind: sdk.CommandAck, ID: c.requestID(body), ReplyTopic: t.AckReply(), Rule: r.PathValue("rule")}
	c.execute(w, r, cmd)
}

// pauseResume is POST /api/v1/outputs/{alias}/pause and /resume.
func (c *Console) pauseResume(op sdk.SystemOp) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := readBody(w, r, 4<<10)
		if !ok {
			return
		}
		alias := r.PathValue("alias")
		found := false
		for _, p := range c.opts.Agent.Health(r.Context()).Plugins {
			found = found || p.Kind == string(sdk.KindOutput) && p.ID == alias
		}
		if !found {
			writeError(w, http.StatusNotFound, "no output "+strconv.Quote(fbox.Clip(alias)))
			return
		}
		t := c.topics()
		cmd := sdk.Command{Kind: sdk.CommandSystem, System: op, Name: op.String(), Output: alias,
			ID: c.requestID(body), ReplyTopic: t.SystemReply()}
		c.execute(w, r, cmd)
	}
}

// config is GET /api/v1/config: the running configuration, secrets shown
// as ${VAR} or ***.
func (c *Console) config(w http.ResponseWriter, _ *http.Request) {
	cfg := c.running()
	writeJSON(w, http.StatusOK, map[string]any{"file": cfg.File, "text": string(cfg.ShowText())})
}

type configErrorJSON struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	Warning bool   `json:"warning,omitempty"`
}

// checked runs CheckConfig (or ApplyConfig) on the body and lists what it
// found: ok is false when an error (not a warning) was found.
func checked(err error) (bool, []configErrorJSON) {
	list := []configErrorJSON{}
	ok := true
	for _, e := range sdk.AsConfigErrors(err) {
		list = append(list, configErrorJSON{File: e.File, Line: e.Line, Path: e.Path, Message: e.Msg, Warning: e.Warning})
		ok = ok && e.Warning
	}
	return ok, list
}

// maskedSecrets refuses a configuration that still holds the "***" the
// console shows in place of a secret (the running file edited in the
// browser): applied, it would make "***" the password.
func maskedSecrets(file string, text []byte) error {
	var errs sdk.ConfigErrors
	for i, line := range strings.Split(string(text), "\n") {
		if strings.Contains(line, `= "`+config.Masked+`"`) || strings.Contains(line, `="`+config.Masked+`"`) {
			errs = append(errs, sdk.ConfigError{File: file, Line: i + 1, Msg: "a secret is still masked as " + config.Masked +
				": write it again, or take it from the environment with ${VAR}"})
		}
	}
	return errs.Err()
}

// checkConfig is POST /api/v1/config/check: the body is TOML; the answer
// lists every error with its line, as `edgepipe check` prints them.
func (c *Console) checkConfig(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, maxConfigSize)
	if !ok {
		return
	}
	if c.opts.CheckConfig == nil {
		writeError(w, http.StatusNotImplemented, "checking a configuration is not available in this mode")
		return
	}
	err := maskedSecrets(c.running().File, body)
	if err == nil {
		err = c.opts.CheckConfig(r.Context(), body)
	}
	good, list := checked(err)
	writeJSON(w, http.StatusOK, map[string]any{"ok": good, "errors": list})
}

// applyConfig is POST /api/v1/config/apply: checked, then applied in
// place like SIGHUP; refused (422, with every error) when it does not
// check, and the running configuration stays.
func (c *Console) applyConfig(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, maxConfigSize)
	if !ok {
		return
	}
	if c.opts.ApplyConfig == nil {
		writeError(w, http.StatusNotImplemented, "applying a configuration is not available in this mode")
		return
	}
	err := maskedSecrets(c.running().File, body)
	if err == nil {
		err = c.opts.ApplyConfig(r.Context(), body)
	}
	good, list := checked(err)
	c.opts.Logger.Info("console configuration apply", "by", caller(r).name, "ok", good, "errors", len(list))
	status := http.StatusOK
	if !good {
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, map[string]any{"ok": good, "applied": good, "errors": list})
}

// logs is GET /api/v1/logs?level=warn&limit=100.
func (c *Console) logs(w http.ResponseWriter, r *http.Request) {
	var level slog.Level = slog.LevelDebug
	if s := r.URL.Query().Get("level"); s != "" {
		if err := level.UnmarshalText([]byte(s)); err != nil {
			writeError(w, http.StatusBadRequest, "level: want debug, info, warn or error")
			return
		}
	}
	limit := 200
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "limit: want a positive number")
			return
		}
		limit = n
	}
	recs := []LogRecord{}
	if c.opts.Logs != nil {
		recs = append(recs, c.opts.Logs.Records(level, limit)...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": recs})
}

// login is POST /api/v1/login with user name and password as a form
// (username, password) or JSON; it sets the session cookie and answers
// the session's CSRF token. A form from the console's login page is
// redirected to the page it came for.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	cons := c.console()
	var user, pw string
	form := strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
	if form {
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		user, pw = r.PostFormValue("username"), r.PostFormValue("password")
	} else {
		body, ok := readBody(w, r, 4<<10)
		if !ok {
			return
		}
		var v struct{ Username, Password string }
		if err := json.Unmarshal(body, &v); err != nil {
			writeError(w, http.StatusBadRequest, `want {"username":"...","password":"..."} or a form`)
			return
		}
		user, pw = v.Username, v.Password
	}
	s, e := c.auth.login(r, cons, user, pw)
	if e != nil {
		if e.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", strconv.Itoa(int(loginEvery.Seconds())))
		}
		// The name typed is not logged: it is sometimes the password.
		c.opts.Logger.Warn("console login refused", "client", peerIP(r), "user_known", user == cons.Username, "reason", e.msg)
		if fromBrowserForm(r) && e.status != http.StatusNotFound {
			loginFailed(w, r, e.status)
			return
		}
		writeError(w, e.status, e.msg)
		return
	}
	c.opts.Logger.Info("console login", "client", peerIP(r), "user", s.user)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(sessionTTL.Seconds())})
	if fromBrowserForm(r) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user": s.user, "csrf_token": s.csrf})
}

// logout is POST /api/v1/logout: ends the session.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if s := caller(r).session; s != nil {
		c.auth.logout(s)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// sessionInfo is GET /api/v1/session: who is asking, with which access,
// and the CSRF token of a logged-in person's session.
func (c *Console) sessionInfo(w http.ResponseWriter, r *http.Request) {
	id := caller(r)
	out := map[string]string{"user": id.name, "access": map[level]string{accessRead: "read", accessWrite: "write"}[id.access]}
	if id.session != nil {
		out["csrf_token"] = id.session.csrf
	}
	writeJSON(w, http.StatusOK, out)
}
