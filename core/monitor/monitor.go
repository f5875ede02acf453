// Package monitor serves the gateway's /healthz and /metrics over HTTP.
//
// /healthz is liveness and readiness for the whole gateway: it answers 200
// unless a plugin process is down, an enabled output is not connected or
// a queue cannot be written (503). Its JSON body names what is wrong and
// why (the CONNACK reason, a restarting plugin process), gives every
// output's queue depth, and lists the inputs' field devices under
// "devices": a dead PLC is shown there, never failing the answer, because
// restarting the gateway would not revive it. /metrics is the Prometheus
// text format, read from the pipeline's counters when scraped; it passes
// `promtool check metrics` (see TestMetricsPassPromtool).
package monitor

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgepipe/edgepipe/core/agent"
)

// build is what edgepipe_build_info says; see SetBuildInfo.
var build struct {
	mu              sync.Mutex
	version, commit string
}

// SetBuildInfo names the running binary's version and commit for
// edgepipe_build_info ("" leaves "unknown"). The command calls it once at
// start: the version is stamped into package main, which the monitor
// cannot import, and it is the same for every monitor of the process.
func SetBuildInfo(version, commit string) {
	build.mu.Lock()
	build.version, build.commit = version, commit
	build.mu.Unlock()
}

func buildInfo() (version, commit string) {
	build.mu.Lock()
	defer build.mu.Unlock()
	version, commit = build.version, build.commit
	if version == "" {
		version = "unknown"
	}
	if commit == "" {
		commit = "unknown"
	}
	return version, commit
}

// Source is what the monitor reads; *agent.Agent implements it.
type Source interface {
	Stats() agent.Stats
	Health(ctx context.Context) agent.Health
}

// Server is a running monitor.
type Server struct {
	srv  *http.Server
	addr string
}

// Handler returns the monitor's routes.
func Handler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(&collector{src: src})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		h := src.Health(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if !h.OK {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(h)
	})
	return mux
}

// Start serves /healthz and /metrics on addr ("127.0.0.1:9273"; port 0
// picks one); Serve also mounts the console.
func Start(addr string, src Source, log *slog.Logger) (*Server, error) {
	return Serve(Config{Addr: addr, Source: src, Logger: log})
}

// Addr is where the server listens.
func (s *Server) Addr() string { return s.addr }

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// collector turns the pipeline's counters into metrics at scrape time.
type collector struct{ src Source }

var (
	descGathered   = prometheus.NewDesc("edgepipe_points_gathered_total", "Points read by an input.", []string{"plugin"}, nil)
	descReadErrs   = prometheus.NewDesc("edgepipe_plugin_errors_total", "Failed calls of a plugin: reads of an input, process calls, publishes of an output.", []string{"plugin"}, nil)
	descReported   = prometheus.NewDesc("edgepipe_points_reported_total", "Points rendered into messages that the outputs' queues took.", nil, nil)
	descBad        = prometheus.NewDesc("edgepipe_points_bad_quality_total", "Points an input reported with quality bad (failed reads).", []string{"plugin"}, nil)
	descHeldBack   = prometheus.NewDesc("edgepipe_points_held_back_total", "Points a processor took out of the pipeline without reporting them (a deadband's unchanged readings).", []string{"plugin"}, nil)
	descDropped    = prometheus.NewDesc("edgepipe_points_dropped_total", "Points lost to a failing processor.", nil, nil)
	descMessages   = prometheus.NewDesc("edgepipe_messages_queued_total", "Messages handed to the outputs' queues.", nil, nil)
	descPublished  = prometheus.NewDesc("edgepipe_messages_published_total", "Messages an output delivered (acknowledged by the server at QoS 1).", []string{"plugin"}, nil)
	descDepth      = prometheus.NewDesc("edgepipe_queue_depth", "Messages waiting in an output's queue.", []string{"plugin"}, nil)
	descBytes      = prometheus.NewDesc("edgepipe_queue_bytes", "Bytes waiting in an output's queue.", []string{"plugin"}, nil)
	descQDropped   = prometheus.NewDesc("edgepipe_queue_dropped_total", "Messages an output's queue lost: past its buffer_limit (limit), not written for a full disk (disk_full) or another write error (write_error), in damaged records or missing files (corrupt).", []string{"plugin", "reason"}, nil)
	descQCorrupt   = prometheus.NewDesc("edgepipe_queue_corrupt_total", "Damaged records and missing files found in an output's disk queue.", []string{"plugin"}, nil)
	descRestarts   = prometheus.NewDesc("edgepipe_plugin_restarts_total", "Restarts of a crashed plugin process.", []string{"plugin"}, nil)
	descUp         = prometheus.NewDesc("edgepipe_plugin_up", "1 when the plugin reports itself well (an output: connected).", []string{"plugin"}, nil)
	descPluginCtrs = prometheus.NewDesc("edgepipe_plugin_events_total", "Counters a plugin reports about itself (requests, timeouts, reconnects, ...), by name.", []string{"plugin", "event"}, nil)
	descBuild      = prometheus.NewDesc("edgepipe_build_info", "Always 1; the labels name the running binary's version, commit and Go version.", []string{"version", "commit", "go"}, nil)
	descDevUp      = prometheus.NewDesc("edgepipe_device_up", "1 when the field device answered its last read, 0 when it did not or was not read yet.", []string{"plugin", "device"}, nil)
	descDevErrs    = prometheus.NewDesc("edgepipe_device_read_errors_total", "Failed reads of a field device.", []string{"plugin", "device"}, nil)
	descDevGood    = prometheus.NewDesc("edgepipe_device_last_good_read_timestamp_seconds", "When a read of the field device last returned values (Unix time); absent until one did.", []string{"plugin", "device"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	h := c.src.Health(ctx)
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	version, commit := buildInfo()
	gauge(descBuild, 1, version, commit, runtime.Version())
	counter(descReported, st.Reported)
	counter(descDropped, st.Dropped)
	counter(descMessages, st.Messages)
	for _, p := range st.Plugins {
		counter(descReadErrs, p.Errors, p.ID)
		counter(descRestarts, p.Restarts, p.ID)
		switch p.Kind {
		case "inputs":
			counter(descGathered, p.Gathered, p.ID)
			counter(descBad, p.BadQuality, p.ID)
		case "processors":
			counter(descHeldBack, p.HeldBack, p.ID)
		case "outputs":
			counter(descPublished, p.Published, p.ID)
			if q := p.Queue; q != nil {
				gauge(descDepth, float64(q.Depth), p.ID)
				gauge(descBytes, float64(q.Bytes), p.ID)
				counter(descQDropped, q.Dropped, p.ID, "limit")
				counter(descQDropped, q.DroppedFull, p.ID, "disk_full")
				counter(descQDropped, q.DroppedWrite, p.ID, "write_error")
				counter(descQDropped, q.DroppedCorrupt, p.ID, "corrupt")
				counter(descQCorrupt, q.Corrupt, p.ID)
			}
		}
	}
	for _, p := range h.Plugins {
		up := 0.0
		if p.OK {
			up = 1
		}
		gauge(descUp, up, p.ID)
		for name, v := range p.Counters {
			counter(descPluginCtrs, v, p.ID, name)
		}
	}
	for _, d := range h.Devices {
		up := 0.0
		if d.Up {
			up = 1
		}
		gauge(descDevUp, up, d.Plugin, d.Device)
		counter(descDevErrs, d.ReadErrors, d.Plugin, d.Device)
		if !d.LastGood.IsZero() {
			gauge(descDevGood, float64(d.LastGood.UnixMilli())/1000, d.Plugin, d.Device)
		}
	}
}
