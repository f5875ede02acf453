// Package monitor serves the gateway's /healthz and /metrics over HTTP.
//
// /healthz answers 200 when every plugin is up and every enabled output is
// connected, 503 otherwise; its JSON body names what is wrong and why (the
// CONNACK reason, a restarting plugin process) and gives every output's
// queue depth. /metrics is the Prometheus text format, read from the
// pipeline's counters when scraped.
package monitor

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgepipe/edgepipe/core/agent"
)

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
	descReported   = prometheus.NewDesc("edgepipe_points_reported_total", "Points that left the processors in a report.", nil, nil)
	descDropped    = prometheus.NewDesc("edgepipe_points_dropped_total", "Points lost to a failing processor.", nil, nil)
	descMessages   = prometheus.NewDesc("edgepipe_messages_queued_total", "Messages handed to the outputs' queues.", nil, nil)
	descPublished  = prometheus.NewDesc("edgepipe_messages_published_total", "Messages an output delivered (acknowledged by the server at QoS 1).", []string{"plugin"}, nil)
	descDepth      = prometheus.NewDesc("edgepipe_queue_depth", "Messages waiting in an output's queue.", []string{"plugin"}, nil)
	descBytes      = prometheus.NewDesc("edgepipe_queue_bytes", "Bytes waiting in an output's queue.", []string{"plugin"}, nil)
	descQDropped   = prometheus.NewDesc("edgepipe_queue_dropped_total", "Messages an output's queue lost: past its buffer_limit (limit), not written for a full disk (disk_full) or another write error (write_error), in damaged records or missing files (corrupt).", []string{"plugin", "reason"}, nil)
	descQCorrupt   = prometheus.NewDesc("edgepipe_queue_corrupt_total", "Damaged records and missing files found in an output's disk queue.", []string{"plugin"}, nil)
	descRestarts   = prometheus.NewDesc("edgepipe_plugin_restarts_total", "Restarts of a crashed plugin process.", []string{"plugin"}, nil)
	descUp         = prometheus.NewDesc("edgepipe_plugin_up", "1 when the plugin reports itself well (an output: connected).", []string{"plugin"}, nil)
	descPluginCtrs = prometheus.NewDesc("edgepipe_plugin_counter_total", "Counters a plugin reports about itself (reconnects, read errors by device, ...).", []string{"plugin", "counter"}, nil)
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
	counter(descReported, st.Reported)
	counter(descDropped, st.Dropped)
	counter(descMessages, st.Messages)
	for _, p := range st.Plugins {
		counter(descReadErrs, p.Errors, p.ID)
		counter(descRestarts, p.Restarts, p.ID)
		switch p.Kind {
		case "inputs":
			counter(descGathered, p.Gathered, p.ID)
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
}
