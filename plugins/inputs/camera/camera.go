// Package camera is an input that takes JPEG pictures: from an IP camera's
// HTTP(S) snapshot URL (basic or digest authentication) or from a serial
// camera module speaking the VC0706 command set. Pictures are taken every
// interval, when the server writes true to "<device>.capture", and when an
// alarm naming the camera raises (the alarm processor asks for that same
// write with an sdk.Request, which the core checks and routes like the
// server's).
//
// It is a streaming input rather than a polled one because pictures are
// taken on demand as much as on a schedule: Stream owns the schedule and
// the capture requests, so a request is served as soon as the camera is
// free instead of waiting for the next poll.
package camera

import (
	"context"
	"crypto/x509"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

//go:embed sample.conf
var sampleConf string

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindInput, Name: "camera",
		Description:  "JPEG pictures from an HTTP(S) snapshot URL or a VC0706 serial camera",
		SampleConfig: sampleConf, Factory: func() sdk.Plugin { return &Camera{} }})
}

// CapturePoint is the name, within the camera's device, of the sub point
// whose write of true requests a picture.
const CapturePoint = "capture"

// maxPictureLimit bounds max_size: a picture crosses the plugin boundary in
// one gRPC message, whose limit is grpcplugin.MaxMessageBytes.
const maxPictureLimit = 32 << 20

// failuresForUnhealthy is how many captures in a row must fail before the
// camera reports itself unhealthy: one failure may be a network hiccup,
// three are a camera that is gone or misconfigured.
const failuresForUnhealthy = 3

// errTooLarge and errNotJPEG classify refused pictures for the counters.
var (
	errTooLarge = errors.New("picture larger than max_size")
	errNotJPEG  = errors.New("answer is not a JPEG picture")
)

// checkJPEG refuses data that does not start with a JPEG SOI marker: an
// HTML error page or a camera's "busy" text must not be published as a
// picture.
func checkJPEG(data []byte) error {
	if len(data) < 2 || data[0] != 0xFF || data[1] != 0xD8 {
		return fmt.Errorf("%w (starts with % x)", errNotJPEG, data[:min(len(data), 4)])
	}
	return nil
}

// config is the plugin's TOML table.
type config struct {
	Device     string       `toml:"device"`
	Source     string       `toml:"source"`
	URL        string       `toml:"url"`
	Username   string       `toml:"username"`
	Password   string       `toml:"password"`
	TLSCA      string       `toml:"tls_ca"`
	Port       string       `toml:"port"`
	BaudRate   int          `toml:"baud_rate"`
	Resolution string       `toml:"resolution"`
	Interval   sdk.Duration `toml:"interval"`
	Timeout    sdk.Duration `toml:"timeout"`
	MaxSize    sdk.Size     `toml:"max_size"`
}

// source takes one picture. Its calls never overlap: Stream serialises
// them, which is also what a camera can do.
type source interface {
	capture(ctx context.Context) ([]byte, error)
	close() error
}

// Camera is the inputs.camera plugin.
type Camera struct {
	cfg config
	src source
	now func() time.Time

	// requests holds at most one pending capture request: requests that
	// arrive while a picture is being taken collapse into one more picture,
	// which still shows the scene after the last request.
	requests chan struct{}

	mu          sync.Mutex // guards the counters below
	captures    uint64
	failures    uint64
	tooLarge    uint64
	notJPEG     uint64
	bytes       uint64
	requested   uint64
	consecutive int
	lastErr     string // of the current run of failures, "" after a picture
	// For Health's device entry: the last failure (kept after a picture)
	// and when the last picture and the last failure came.
	devErr             string
	devErrAt, lastGood time.Time

	// attempted, when set (by tests), learns the outcome of each capture
	// once it is fully accounted for: a signal to wait on instead of
	// sleeping.
	attempted func(error)
}

func (c *Camera) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	c.cfg = config{
		Source:     "http",
		BaudRate:   115200,
		Resolution: "640x480",
		Interval:   sdk.Duration(10 * time.Minute),
		Timeout:    sdk.Duration(10 * time.Second),
		MaxSize:    sdk.Size(4_000_000),
	}
	src, err := sdk.DecodeConfig(req, &c.cfg)
	if err != nil {
		return nil, err
	}
	cfg := &c.cfg
	var errs sdk.ConfigErrors
	if cfg.Device == "" {
		errs = append(errs, src.Errorf("device", "must not be empty"))
	}
	if cfg.Timeout <= 0 {
		errs = append(errs, src.Errorf("timeout", "must be more than 0"))
	}
	if cfg.MaxSize <= 0 || cfg.MaxSize > maxPictureLimit {
		errs = append(errs, src.Errorf("max_size", "want more than 0 and at most 32MiB, got %d bytes", int64(cfg.MaxSize)))
	}
	// Sources are built only from valid keys, and open nothing yet, so
	// there is nothing to release when another key is wrong.
	switch cfg.Source {
	case "http":
		s, es := newHTTPFromConfig(cfg, src)
		if errs = append(errs, es...); len(errs) == 0 {
			c.src = s
		}
	case "serial":
		s, es := newSerialFromConfig(cfg, src)
		if errs = append(errs, es...); len(errs) == 0 {
			c.src = s
		}
	default:
		errs = append(errs, src.Errorf("source", "want http or serial, got %q", cfg.Source))
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	c.now = time.Now
	c.requests = make(chan struct{}, 1)
	return &sdk.InitResponse{Points: []sdk.PointSchema{{
		Device: cfg.Device, Name: CapturePoint, Type: "bool", Kind: sdk.KindBool, Access: sdk.AccessSub,
	}}}, nil
}

// newHTTPFromConfig validates the http keys and builds the source.
func newHTTPFromConfig(cfg *config, src *sdk.ConfigSource) (*httpSource, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	if cfg.URL == "" {
		return nil, append(errs, src.Errorf("url", "required with source = \"http\""))
	}
	u, err := url.Parse(cfg.URL)
	switch {
	case err != nil:
		// url.Parse quotes the whole URL, which may hold a password.
		return nil, append(errs, src.Errorf("url", "not a valid URL"))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, src.Errorf("url", "want an http:// or https:// URL, got scheme %q", u.Scheme))
	case u.Host == "":
		errs = append(errs, src.Errorf("url", "has no host"))
	}
	user, pass := cfg.Username, cfg.Password
	if u.User != nil {
		// Credentials written into the URL are used like username and
		// password, and taken out of the URL so that it can be logged.
		if user == "" {
			user = u.User.Username()
			pass, _ = u.User.Password()
		}
		u.User = nil
	}
	var roots *x509.CertPool
	if cfg.TLSCA != "" {
		pem, err := os.ReadFile(cfg.TLSCA)
		if err != nil {
			errs = append(errs, src.Errorf("tls_ca", "%v", err))
		} else {
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				errs = append(errs, src.Errorf("tls_ca", "%s holds no PEM certificate", cfg.TLSCA))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return newHTTPSource(u, user, pass, roots, cfg.Timeout.D(), int64(cfg.MaxSize)), nil
}

// newSerialFromConfig validates the serial keys and builds the source; the
// port is opened at the first capture, as Init must not do slow I/O.
func newSerialFromConfig(cfg *config, src *sdk.ConfigSource) (*serialSource, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	if cfg.Port == "" {
		errs = append(errs, src.Errorf("port", "required with source = \"serial\""))
	}
	if cfg.BaudRate <= 0 {
		errs = append(errs, src.Errorf("baud_rate", "must be more than 0, got %d", cfg.BaudRate))
	}
	res, ok := resolutions[cfg.Resolution]
	if !ok {
		errs = append(errs, src.Errorf("resolution", "want 160x120, 320x240 or 640x480, got %q", cfg.Resolution))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return newSerialSource(cfg.Port, cfg.BaudRate, res, cfg.Timeout.D(), int64(cfg.MaxSize)), nil
}

func (c *Camera) Close(context.Context) error {
	if c.src == nil {
		return nil
	}
	return c.src.close()
}

// Write serves writes of the capture point: true queues a capture request
// and returns at once, the picture follows on the stream; false does
// nothing (a dashboard button that resets itself writes it).
func (c *Camera) Write(_ context.Context, reqs []sdk.WriteRequest) ([]sdk.WriteResult, error) {
	out := make([]sdk.WriteResult, len(reqs))
	for i, r := range reqs {
		switch {
		case r.Device != c.cfg.Device || r.Name != CapturePoint:
			out[i].Error = fmt.Sprintf("unknown point %s.%s", r.Device, r.Name)
		case r.Value.Kind() != sdk.KindBool:
			out[i].Error = fmt.Sprintf("want a bool value, got %s", r.Value.Kind())
		case r.Value.BoolValue():
			c.Request()
		}
	}
	return out, nil
}

// Request asks for a picture as soon as the camera is free.
func (c *Camera) Request() {
	c.mu.Lock()
	c.requested++
	c.mu.Unlock()
	select {
	case c.requests <- struct{}{}:
	default: // one is already pending: they coalesce
	}
}

// Stream takes pictures until ctx ends: the first at once and then every
// interval when an interval is set (so that a start, or `edgepipe once`,
// shows at once whether the camera works), and one per capture request.
// Failures are counted and logged; the stream itself never fails, the
// next picture is simply tried on schedule.
func (c *Camera) Stream(ctx context.Context, emit func(*sdk.Frame)) error {
	var tick <-chan time.Time
	if iv := c.cfg.Interval.D(); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
		c.captureOnce(ctx, emit)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		case <-c.requests:
		}
		if ctx.Err() != nil {
			return nil
		}
		c.captureOnce(ctx, emit)
	}
}

// captureOnce takes one picture, emits it or accounts for the failure.
func (c *Camera) captureOnce(ctx context.Context, emit func(*sdk.Frame)) {
	ts := c.now().UnixMilli()
	data, err := c.src.capture(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: not the camera's failure
		}
		c.failed(err)
		if c.attempted != nil {
			c.attempted(err)
		}
		return
	}
	c.mu.Lock()
	c.captures++
	c.bytes += uint64(len(data))
	if c.consecutive > 0 {
		slog.Info("camera: pictures again", "device", c.cfg.Device, "after_failures", c.consecutive)
	}
	c.consecutive, c.lastErr = 0, ""
	c.lastGood = c.now()
	c.mu.Unlock()
	emit(&sdk.Frame{Pictures: []sdk.Picture{{TS: ts, Device: c.cfg.Device, Format: "jpeg", Data: data}}})
	if c.attempted != nil {
		c.attempted(nil)
	}
}

// failed counts a failed capture. The first failure, and any with a new
// reason, is logged as a warning; repeats of the same reason only at debug
// level, so a dead camera with a short interval does not flood the log.
func (c *Camera) failed(err error) {
	msg := err.Error()
	c.mu.Lock()
	c.failures++
	switch {
	case errors.Is(err, errTooLarge):
		c.tooLarge++
	case errors.Is(err, errNotJPEG):
		c.notJPEG++
	}
	c.consecutive++
	repeat := msg == c.lastErr
	c.lastErr = msg
	c.devErr, c.devErrAt = msg, c.now()
	n := c.consecutive
	c.mu.Unlock()
	if repeat {
		slog.Debug("camera: capture failed", "device", c.cfg.Device, "consecutive", n, "err", msg)
	} else {
		slog.Warn("camera: capture failed", "device", c.cfg.Device, "consecutive", n, "err", msg)
	}
}

// Health reports the counters, and not OK once failuresForUnhealthy
// captures in a row have failed; the camera is its one device.
func (c *Camera) Health(context.Context) (sdk.Health, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := sdk.Health{OK: c.consecutive < failuresForUnhealthy, Counters: map[string]uint64{
		"captures": c.captures, "failures": c.failures, "too_large": c.tooLarge,
		"not_jpeg": c.notJPEG, "bytes": c.bytes, "requests": c.requested,
	}}
	if !h.OK {
		h.Reason = fmt.Sprintf("%d captures failed in a row, last: %s", c.consecutive, c.lastErr)
	}
	// The camera is a device like a PLC: up once it gave a picture, until
	// the captures fail as many times in a row as make it unhealthy.
	h.Devices = []sdk.DeviceHealth{{Name: c.cfg.Device, Up: h.OK && !c.lastGood.IsZero(), LastError: c.devErr,
		LastErrorAt: c.devErrAt, LastGood: c.lastGood, ReadErrors: c.failures}}
	return h, nil
}

var (
	_ sdk.StreamingInput = (*Camera)(nil)
	_ sdk.Writer         = (*Camera)(nil)
	_ sdk.HealthReporter = (*Camera)(nil)
)
