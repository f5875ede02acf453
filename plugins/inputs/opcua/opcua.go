// Package opcua is the inputs.opcua plugin: it reads the variables of an
// OPC UA server, by polling them (batched Read requests within the
// server's operation limits) or through a subscription whose monitored
// items the server pushes, and writes them for the server in each node's
// own data type. It is built on github.com/gopcua/opcua.
//
// The plugin is a streaming input in both modes: it owns its connection's
// life (session, subscription, reconnection after a server restart) and
// its schedule, and reads a written node back on its own.
package opcua

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

//go:embed sample.conf
var sampleConf string

func init() {
	sdk.Register(sdk.Registration{
		Kind:         sdk.KindInput,
		Name:         "opcua",
		Description:  "Read (poll or subscribe) and write the variables of an OPC UA server",
		SampleConfig: sampleConf,
		Factory:      func() sdk.Plugin { return &OPCUA{} },
	})
}

// defaultBatch bounds a request when the server announces no limit, so
// that one message stays a reasonable size.
const defaultBatch = 1000

// OPCUA is the plugin instance.
type OPCUA struct {
	set     *settings
	points  []*point // in configuration order; a point's index is its client handle
	byName  map[string]int
	pub     []int // indexes of the points that are reported
	agent   sdk.AgentInfo
	certTag string // file name stem of a generated client certificate

	mu   sync.Mutex
	sess *session

	emitMu sync.Mutex
	emit   func(*sdk.Frame) // set while Stream runs

	statusMu sync.Mutex
	status   []string // last status name per point, to log changes once

	advised bool // adviseTypes ran (Stream's goroutine only)

	stats stats
}

// session is one connected client: a secure channel and a session, the
// resolved NodeIds and the server's operation limits.
type session struct {
	c        *opcua.Client
	state    chan opcua.ConnState
	ids      []*ua.NodeID // per point
	maxRead  int
	maxWrite int
	maxMon   int

	mu    sync.Mutex
	types []ua.TypeID // each node's built-in type as last read (Null: not yet)
}

type stats struct {
	mu                                      sync.Mutex
	reads, readErrors, connects, connErrors uint64
	writes, writeErrors, notifications      uint64
	lost                                    uint64
	connected                               bool
	lastErr                                 string
}

func (s *stats) add(f func(s *stats)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

var (
	_ sdk.StreamingInput = (*OPCUA)(nil)
	_ sdk.Writer         = (*OPCUA)(nil)
	_ sdk.HealthReporter = (*OPCUA)(nil)
)

// Init checks the configuration. It opens nothing, except to learn the
// data types of writable points configured without `type` (learnTypes):
// `edgepipe check` calls Init, and an unreachable server is not a
// configuration error.
func (o *OPCUA) Init(ctx context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	var cfg Config
	src, err := sdk.DecodeConfig(req, &cfg)
	if err != nil {
		return nil, err
	}
	set, pts, errs := cfg.check(src, req.Agent)
	if len(errs) > 0 {
		return nil, errs
	}
	o.set, o.points, o.agent = set, pts, req.Agent
	o.certTag = strings.NewReplacer("#", "-", ".", "-", "/", "-").Replace(req.Alias)
	if o.certTag == "" {
		o.certTag = "opcua-" + set.device
	}
	o.byName = map[string]int{}
	o.status = make([]string, len(pts))
	o.learnTypes(ctx)
	var schemas []sdk.PointSchema
	for i, p := range pts {
		o.byName[p.name] = i
		if p.access.Publishes() {
			o.pub = append(o.pub, i)
		}
		typ := p.typ
		if typ == "" {
			typ = p.wtype
		}
		schemas = append(schemas, sdk.PointSchema{Device: set.device, Name: p.name, Type: typ, Kind: p.kind,
			Access: p.access, Unit: p.unit, Min: p.min, Max: p.max})
	}
	return &sdk.InitResponse{Points: schemas, Interval: set.interval}, nil
}

// Close ends the session, if one is open.
func (o *OPCUA) Close(ctx context.Context) error {
	o.mu.Lock()
	s := o.sess
	o.sess = nil
	o.mu.Unlock()
	if s != nil {
		s.close(ctx)
	}
	return nil
}

func (s *session) close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = s.c.Close(ctx)
}

// errLost is a connection that went away under a session.
var errLost = errors.New("connection to the server lost")

// Stream connects, reads (poll) or subscribes, and on any loss of the
// connection reports the points bad, connects again with backoff and
// re-creates the session and the subscription: a restarted server loses
// both.
func (o *OPCUA) Stream(ctx context.Context, emit func(*sdk.Frame)) error {
	o.emitMu.Lock()
	o.emit = emit
	o.emitMu.Unlock()
	defer func() {
		o.emitMu.Lock()
		o.emit = nil
		o.emitMu.Unlock()
	}()
	fails := 0
	for ctx.Err() == nil {
		s, err := o.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fails++
			o.stats.add(func(st *stats) { st.connErrors++; st.connected = false; st.lastErr = err.Error() })
			if fails == 1 {
				slog.Warn("opcua: cannot connect; its points are bad, trying again with backoff", "device", o.set.device,
					"endpoint", o.set.endpoint, "error", err)
			} else {
				slog.Debug("opcua: cannot connect", "device", o.set.device, "endpoint", o.set.endpoint, "error", err)
			}
			o.emitBad("BadNotConnected")
			wait := max(min(o.set.interval<<min(fails-1, 16), o.set.maxBackoff), o.set.interval)
			if sleep(ctx, wait) != nil {
				return nil
			}
			continue
		}
		if fails > 0 {
			slog.Info("opcua: connected again", "device", o.set.device, "endpoint", o.set.endpoint, "after_failures", fails)
		}
		fails = 0
		o.stats.add(func(st *stats) { st.connects++; st.connected = true; st.lastErr = "" })
		o.mu.Lock()
		o.sess = s
		o.mu.Unlock()
		if !o.advised {
			o.advised = true
			o.adviseTypes(ctx, s)
		}
		if o.set.subscribe {
			err = o.subscribe(ctx, s)
		} else {
			err = o.poll(ctx, s)
		}
		o.mu.Lock()
		o.sess = nil
		o.mu.Unlock()
		s.close(ctx)
		if ctx.Err() != nil {
			return nil
		}
		o.stats.add(func(st *stats) { st.lost++; st.connected = false; st.lastErr = err.Error() })
		slog.Warn("opcua: connection lost; its points are bad until the session is re-created", "device", o.set.device,
			"endpoint", o.set.endpoint, "error", err)
		o.emitBad("BadConnectionClosed")
		if sleep(ctx, o.set.interval) != nil {
			return nil
		}
	}
	return nil
}

// emitBad reports every published point bad, on every failed attempt to
// connect, as a failed Modbus poll shows them: the server sees that the
// device is silent rather than a frozen value.
func (o *OPCUA) emitBad(status string) {
	ts := time.Now().UnixMilli()
	b := sdk.Batch{Device: o.set.device, TS: ts, Points: make([]sdk.Point, 0, len(o.pub))}
	for _, i := range o.pub {
		o.noteStatus(i, status)
		b.Points = append(b.Points, sdk.Point{Name: o.points[i].name, Quality: sdk.QualityBad, TS: ts, Status: status})
	}
	o.send(b)
}

// send emits one batch while Stream runs.
func (o *OPCUA) send(b sdk.Batch) {
	if len(b.Points) == 0 {
		return
	}
	o.emitMu.Lock()
	defer o.emitMu.Unlock()
	if o.emit != nil {
		o.emit(&sdk.Frame{Batches: []sdk.Batch{b}})
	}
}

// connect opens a secure channel and a session as configured, checks the
// server's certificate, resolves the NodeIds and reads the server's
// operation limits.
func (o *OPCUA) connect(ctx context.Context) (*session, error) {
	set := o.set
	cctx, cancel := context.WithTimeout(ctx, 2*set.timeout)
	defer cancel()
	opts := []opcua.Option{
		opcua.AutoReconnect(false), // Stream re-creates everything itself
		opcua.RequestTimeout(set.timeout),
		opcua.DialTimeout(set.timeout),
		opcua.SessionTimeout(max(10*set.interval, time.Minute)),
		opcua.ApplicationName("edgepipe"),
		opcua.ApplicationURI(applicationURI(o.agent.DeviceID)),
		opcua.ProductURI("urn:edgepipe"),
	}
	if set.needsCert() || set.certFile != "" {
		certFile, keyFile := set.certFile, set.keyFile
		if certFile == "" {
			var err error
			if certFile, keyFile, err = ensureClientCert(o.agent.DataDir, o.agent.DeviceID, o.certTag); err != nil {
				return nil, fmt.Errorf("client certificate: %w", err)
			}
		}
		der, key, err := loadKeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		opts = append(opts, opcua.Certificate(der), opcua.PrivateKey(key))
		if set.auth == "certificate" {
			opts = append(opts, opcua.AuthCertificate(der), opcua.AuthPrivateKey(key))
		}
	}
	eps, err := opcua.GetEndpoints(cctx, set.endpoint, opcua.DialTimeout(set.timeout), opcua.RequestTimeout(set.timeout))
	if err != nil {
		return nil, fmt.Errorf("get endpoints: %w", err)
	}
	ep, err := opcua.SelectEndpoint(eps, set.policy, set.mode)
	if err != nil {
		return nil, fmt.Errorf("the server offers no endpoint with security_policy %s and security_mode %s", set.policyName, set.mode)
	}
	if err := set.verifyServer(ep.ServerCertificate); err != nil {
		return nil, err
	}
	tokType := ua.UserTokenTypeAnonymous
	switch set.auth {
	case "username":
		tokType = ua.UserTokenTypeUserName
		opts = append(opts, opcua.AuthUsername(set.username, set.password))
	case "certificate":
		tokType = ua.UserTokenTypeCertificate
	default:
		opts = append(opts, opcua.AuthAnonymous())
	}
	offered := false
	for _, t := range ep.UserIdentityTokens {
		offered = offered || t.TokenType == tokType
	}
	if !offered {
		return nil, fmt.Errorf("the server's endpoint does not accept auth = %q", set.auth)
	}
	opts = append(opts, opcua.SecurityFromEndpoint(ep, tokType))
	state := make(chan opcua.ConnState, 16)
	opts = append(opts, opcua.StateChangedCh(state))
	c, err := opcua.NewClient(set.endpoint, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(cctx); err != nil {
		_ = c.Close(context.WithoutCancel(ctx))
		return nil, redact(err, set.password)
	}
	s := &session{c: c, state: state, ids: make([]*ua.NodeID, len(o.points)), types: make([]ua.TypeID, len(o.points))}
	for i, p := range o.points {
		nid, err := p.node.resolve(c.Namespaces())
		if err != nil {
			s.close(ctx)
			return nil, fmt.Errorf("point %s: %v", p.name, err)
		}
		s.ids[i] = nid
	}
	if err := s.readLimits(cctx); err != nil {
		s.close(ctx)
		return nil, err
	}
	return s, nil
}

// redact keeps a password out of an error text.
func redact(err error, secret string) error {
	if secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "***"))
}

// readLimits reads the server's operation limits; 0 (no limit) is taken
// as defaultBatch.
func (s *session) readLimits(ctx context.Context) error {
	ids := []uint32{id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
		id.Server_ServerCapabilities_OperationLimits_MaxNodesPerWrite,
		id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall}
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither}
	for _, n := range ids {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: ua.NewNumericNodeID(0, n), AttributeID: ua.AttributeIDValue})
	}
	res, err := s.c.Read(ctx, req)
	if err != nil {
		return fmt.Errorf("reading the server's operation limits: %w", err)
	}
	lim := []*int{&s.maxRead, &s.maxWrite, &s.maxMon}
	for i, l := range lim {
		*l = defaultBatch
		if i < len(res.Results) && res.Results[i].Status == ua.StatusOK && res.Results[i].Value != nil {
			if n := res.Results[i].Value.Uint(); n > 0 && n < defaultBatch {
				*l = int(n)
			}
		}
	}
	return nil
}

// stateLost tells a client state that ends the session.
func stateLost(st opcua.ConnState) bool {
	return st == opcua.Disconnected || st == opcua.Closed
}

// poll reads every published point each interval, in as few Read
// requests as the server's MaxNodesPerRead allows, until the connection
// fails.
func (o *OPCUA) poll(ctx context.Context, s *session) error {
	t := time.NewTicker(o.set.interval)
	defer t.Stop()
	for {
		b, err := o.read(ctx, s, o.pub)
		if err != nil {
			return err
		}
		o.send(b)
		select {
		case <-ctx.Done():
			return nil
		case st := <-s.state:
			if stateLost(st) {
				return fmt.Errorf("%w (%s)", errLost, st)
			}
		case <-t.C:
		}
	}
}

// read reads the points with the given indexes into one batch. An error
// means the request failed as a whole (the connection is suspect).
func (o *OPCUA) read(ctx context.Context, s *session, idx []int) (sdk.Batch, error) {
	ts := time.Now().UnixMilli()
	b := sdk.Batch{Device: o.set.device, TS: ts, Points: make([]sdk.Point, 0, len(idx))}
	for start := 0; start < len(idx); start += s.maxRead {
		part := idx[start:min(start+s.maxRead, len(idx))]
		req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither, NodesToRead: make([]*ua.ReadValueID, len(part))}
		for k, i := range part {
			req.NodesToRead[k] = &ua.ReadValueID{NodeID: s.ids[i], AttributeID: ua.AttributeIDValue}
		}
		rctx, cancel := context.WithTimeout(ctx, o.set.timeout)
		res, err := s.c.Read(rctx, req)
		cancel()
		o.stats.add(func(st *stats) {
			st.reads++
			if err != nil {
				st.readErrors++
			}
		})
		if err == nil && res.ResponseHeader != nil && quality(res.ResponseHeader.ServiceResult) == sdk.QualityBad {
			err = res.ResponseHeader.ServiceResult
		}
		if err == nil && len(res.Results) != len(part) {
			err = fmt.Errorf("the server answered %d results for %d nodes", len(res.Results), len(part))
		}
		if err != nil {
			return b, fmt.Errorf("read: %w", err)
		}
		for k, i := range part {
			b.Points = append(b.Points, o.decode(s, i, res.Results[k], ts))
		}
	}
	return b, nil
}

// decode turns one DataValue of point i into a Point: the StatusCode
// gives the quality, the Variant the value.
func (o *OPCUA) decode(s *session, i int, dv *ua.DataValue, ts int64) sdk.Point {
	p := o.points[i]
	pt := sdk.Point{Name: p.name, TS: ts, Quality: quality(dv.Status)}
	status := statusName(dv.Status)
	if dv.Value != nil && dv.Value.Type() != ua.TypeIDNull {
		s.mu.Lock()
		s.types[i] = dv.Value.Type()
		s.mu.Unlock()
	}
	if pt.Quality != sdk.QualityBad {
		v, err := valueOf(dv.Value)
		switch {
		case err != nil:
			pt.Quality, status = sdk.QualityBad, err.Error()
		default:
			fv, ok := force(v, p.typ)
			if !ok {
				pt.Quality, status = sdk.QualityBad, fmt.Sprintf("BadTypeMismatch (%s does not fit type %s)", clip(v.String()), p.typ)
			} else {
				pt.Value = fv
			}
		}
	}
	if pt.Quality != sdk.QualityGood {
		pt.Status = status
	}
	o.noteStatus(i, status)
	return pt
}

// noteStatus logs a point's status when it changes (SPEC: the status
// name goes with a quality that is not good).
func (o *OPCUA) noteStatus(i int, status string) {
	o.statusMu.Lock()
	prev := o.status[i]
	o.status[i] = status
	o.statusMu.Unlock()
	if prev == status || prev == "" && status == "Good" {
		return
	}
	slog.Info("opcua: point status changed", "device", o.set.device, "point", o.points[i].name,
		"node", o.points[i].node.text, "status", status, "was", prev)
}

// Status is the last status name of a point ("Good",
// "UncertainLastUsableValue", "BadNodeIdUnknown"), "" before its first
// reading.
func (o *OPCUA) Status(point string) string {
	i, ok := o.byName[point]
	if !ok {
		return ""
	}
	o.statusMu.Lock()
	defer o.statusMu.Unlock()
	return o.status[i]
}

// subscribe creates one subscription with a monitored item per published
// point (in calls of at most the server's MaxMonitoredItemsPerCall), with
// the point's deadband handed to the server as an absolute data-change
// filter, and emits each notification, until the connection fails.
func (o *OPCUA) subscribe(ctx context.Context, s *session) error {
	notifs := make(chan *opcua.PublishNotificationData, 64)
	// The server sends a keep-alive after MaxKeepAliveCount empty
	// publishing intervals; about ten seconds.
	keep := uint32(max(3, int(10*time.Second/o.set.interval)))
	sub, err := s.c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: o.set.interval, MaxKeepAliveCount: keep,
		LifetimeCount: 3 * keep}, notifs)
	if err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = sub.Cancel(cctx)
		cancel()
	}()
	ts := time.Now().UnixMilli()
	refused := sdk.Batch{Device: o.set.device, TS: ts}
	for start := 0; start < len(o.pub); start += s.maxMon {
		part := o.pub[start:min(start+s.maxMon, len(o.pub))]
		reqs := make([]*ua.MonitoredItemCreateRequest, len(part))
		for k, i := range part {
			r := opcua.NewMonitoredItemCreateRequestWithDefaults(s.ids[i], ua.AttributeIDValue, uint32(i))
			r.RequestedParameters.SamplingInterval = float64(o.set.interval) / float64(time.Millisecond)
			r.RequestedParameters.QueueSize = 1
			if d := o.points[i].deadband; d > 0 {
				r.RequestedParameters.Filter = ua.NewExtensionObject(&ua.DataChangeFilter{
					Trigger: ua.DataChangeTriggerStatusValue, DeadbandType: uint32(ua.DeadbandTypeAbsolute), DeadbandValue: d})
			}
			reqs[k] = r
		}
		res, err := sub.Monitor(ctx, ua.TimestampsToReturnSource, reqs...)
		if err == nil && res.ResponseHeader != nil && quality(res.ResponseHeader.ServiceResult) == sdk.QualityBad {
			err = res.ResponseHeader.ServiceResult
		}
		if err != nil {
			return fmt.Errorf("create monitored items: %w", err)
		}
		for k, i := range part {
			if k < len(res.Results) && quality(res.Results[k].StatusCode) != sdk.QualityBad {
				continue
			}
			status := "BadUnexpectedError"
			if k < len(res.Results) {
				status = statusName(res.Results[k].StatusCode)
			}
			slog.Warn("opcua: the server refused to monitor a node", "device", o.set.device, "point", o.points[i].name,
				"node", o.points[i].node.text, "status", status)
			o.noteStatus(i, status)
			refused.Points = append(refused.Points, sdk.Point{Name: o.points[i].name, Quality: sdk.QualityBad, TS: ts, Status: status})
		}
	}
	o.send(refused)
	// The subscription's own traffic says nothing when the link dies
	// without a FIN; a cheap read of the server's clock does. And gopcua
	// stops its publish loop for good after some publish errors when it
	// does not reconnect by itself (it is told not to): a subscription
	// silent for longer than its lifetime is asked after, and one the
	// server has dropped (nobody was publishing) ends the session.
	params := opcua.SubscriptionParameters{Interval: o.set.interval, MaxKeepAliveCount: keep, LifetimeCount: 3 * keep}
	lifetime := time.Duration(params.LifetimeCount) * max(sub.RevisedPublishingInterval, o.set.interval)
	lastNotif := time.Now()
	probe := time.NewTicker(max(o.set.interval, 5*time.Second))
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case st := <-s.state:
			if stateLost(st) {
				return fmt.Errorf("%w (%s)", errLost, st)
			}
		case <-probe.C:
			pctx, cancel := context.WithTimeout(ctx, o.set.timeout)
			_, err := s.c.Read(pctx, &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither, NodesToRead: []*ua.ReadValueID{
				{NodeID: ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime), AttributeID: ua.AttributeIDValue}}})
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("%w: %v", errLost, err)
			}
			if time.Since(lastNotif) > lifetime+o.set.timeout {
				mctx, cancel := context.WithTimeout(ctx, o.set.timeout)
				res, err := sub.ModifySubscription(mctx, params)
				cancel()
				if err == nil && res.ResponseHeader != nil && quality(res.ResponseHeader.ServiceResult) == sdk.QualityBad {
					err = res.ResponseHeader.ServiceResult
				}
				// A server that cannot modify subscriptions (gopcua's own)
				// cannot tell; only one that lost it ends the session.
				if err != nil && ctx.Err() == nil && !errors.Is(err, ua.StatusBadServiceUnsupported) {
					return fmt.Errorf("subscription silent for %s and no longer answered: %w", time.Since(lastNotif).Round(time.Second), err)
				}
				lastNotif = time.Now()
			}
		case n := <-notifs:
			lastNotif = time.Now()
			if n.Error != nil {
				return fmt.Errorf("subscription: %w", n.Error)
			}
			dc, ok := n.Value.(*ua.DataChangeNotification)
			if !ok {
				continue
			}
			now := time.Now().UnixMilli()
			b := sdk.Batch{Device: o.set.device, TS: now, Points: make([]sdk.Point, 0, len(dc.MonitoredItems))}
			for _, it := range dc.MonitoredItems {
				i := int(it.ClientHandle)
				if i >= len(o.points) || it.Value == nil {
					continue
				}
				pts := now
				if st := it.Value.SourceTimestamp; !st.IsZero() && it.Value.Has(ua.DataValueSourceTimestamp) {
					pts = st.UnixMilli()
				}
				b.Points = append(b.Points, o.decode(s, i, it.Value, pts))
			}
			o.stats.add(func(st *stats) { st.notifications++ })
			o.send(b)
		}
	}
}

// Write sets points in their nodes' own data types, in Write requests of
// at most the server's MaxNodesPerWrite, and then reads the written nodes
// back and reports them marked ReadBack (a streaming input reads back on
// its own).
func (o *OPCUA) Write(ctx context.Context, reqs []sdk.WriteRequest) ([]sdk.WriteResult, error) {
	res := make([]sdk.WriteResult, len(reqs))
	o.mu.Lock()
	s := o.sess
	o.mu.Unlock()
	type job struct {
		req int
		pt  int
		wv  *ua.WriteValue
	}
	var jobs []job
	for k, r := range reqs {
		full := r.Device + "." + r.Name
		i, ok := o.byName[r.Name]
		if !ok || r.Device != o.set.device {
			res[k].Error = fmt.Sprintf("point %s: no such point on this opcua input", full)
			continue
		}
		p := o.points[i]
		if !p.access.Subscribes() {
			res[k].Error = fmt.Sprintf("point %s is read-only (access=%s)", full, p.access)
			continue
		}
		if s == nil {
			res[k].Error = fmt.Sprintf("point %s: not connected to %s", full, o.set.endpoint)
			continue
		}
		t, err := o.nodeType(ctx, s, i)
		if err != nil {
			res[k].Error = fmt.Sprintf("point %s: %v", full, err)
			continue
		}
		v, err := variantFor(r.Value, t)
		if err != nil {
			res[k].Error = fmt.Sprintf("point %s: %v", full, err)
			continue
		}
		jobs = append(jobs, job{req: k, pt: i, wv: &ua.WriteValue{NodeID: s.ids[i], AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: v}}})
	}
	var written []int
	for start := 0; s != nil && start < len(jobs); start += s.maxWrite {
		part := jobs[start:min(start+s.maxWrite, len(jobs))]
		wr := &ua.WriteRequest{NodesToWrite: make([]*ua.WriteValue, len(part))}
		for k, j := range part {
			wr.NodesToWrite[k] = j.wv
		}
		wctx, cancel := context.WithTimeout(ctx, o.set.timeout)
		out, err := s.c.Write(wctx, wr)
		cancel()
		for k, j := range part {
			full := o.set.device + "." + o.points[j.pt].name
			var e error
			switch {
			case err != nil:
				e = err
			case k >= len(out.Results):
				e = errors.New("the server gave no result")
			case quality(out.Results[k]) != sdk.QualityGood:
				e = fmt.Errorf("the server refused the write: %s", statusName(out.Results[k]))
			}
			o.stats.add(func(st *stats) {
				st.writes++
				if e != nil {
					st.writeErrors++
				}
			})
			if e != nil {
				res[j.req].Error = fmt.Sprintf("point %s: %v", full, e)
				continue
			}
			written = append(written, j.pt)
		}
	}
	var back []int
	for _, i := range written {
		if o.points[i].access.Publishes() {
			back = append(back, i)
		}
	}
	if len(back) > 0 {
		if b, err := o.read(ctx, s, back); err == nil {
			b.ReadBack = true
			o.send(b)
		} else {
			slog.Debug("opcua: read-back after a write failed", "device", o.set.device, "error", err)
		}
	}
	return res, nil
}

// nodeType is the built-in type of a node's value, as last read or read
// now (with its DataType, for a node whose value is still empty): writes
// go in the node's own type.
func (o *OPCUA) nodeType(ctx context.Context, s *session, i int) (ua.TypeID, error) {
	s.mu.Lock()
	t := s.types[i]
	s.mu.Unlock()
	if t != ua.TypeIDNull {
		return t, nil
	}
	rctx, cancel := context.WithTimeout(ctx, o.set.timeout)
	defer cancel()
	res, err := s.c.Read(rctx, &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither,
		NodesToRead: []*ua.ReadValueID{{NodeID: s.ids[i], AttributeID: ua.AttributeIDValue},
			{NodeID: s.ids[i], AttributeID: ua.AttributeIDDataType}}})
	if err != nil {
		return 0, fmt.Errorf("reading the node's data type: %w", err)
	}
	if len(res.Results) != 2 {
		return 0, fmt.Errorf("reading the node's data type: the server answered %d results for 2 attributes", len(res.Results))
	}
	t, why := writeType(res.Results[0], res.Results[1])
	if why != "" {
		return 0, errors.New(why)
	}
	s.mu.Lock()
	s.types[i] = t
	s.mu.Unlock()
	return t, nil
}

// Health says whether the session is up, and counts for /metrics.
func (o *OPCUA) Health(context.Context) (sdk.Health, error) {
	o.stats.mu.Lock()
	defer o.stats.mu.Unlock()
	h := sdk.Health{OK: true, Counters: map[string]uint64{
		"reads": o.stats.reads, "read_errors": o.stats.readErrors, "connects": o.stats.connects,
		"connect_errors": o.stats.connErrors, "sessions_lost": o.stats.lost, "writes": o.stats.writes,
		"write_errors": o.stats.writeErrors, "notifications": o.stats.notifications,
	}}
	if !o.stats.connected && o.stats.lastErr != "" {
		h.OK, h.Reason = false, fmt.Sprintf("not connected to %s: %s", endpointHost(o.set.endpoint), o.stats.lastErr)
	}
	return h, nil
}

// endpointHost drops anything but scheme, host and path from an endpoint
// (a URL may carry credentials).
func endpointHost(e string) string {
	u, err := url.Parse(e)
	if err != nil {
		return "the endpoint"
	}
	u.User = nil
	return u.String()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
