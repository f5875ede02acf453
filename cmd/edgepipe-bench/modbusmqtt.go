package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// modbusEnv is what the Modbus scenarios run beside the measured tree,
// each outside it: the simulator and mosquitto as their own processes, the
// subscriber in the bench's parent process.
type modbusEnv struct {
	dir       string
	sim       *exec.Cmd
	broker    *exec.Cmd
	sub       paho.Client
	simURL    string
	brokerURL string

	ep, tg    tally // edgepipe's data topic, Telegraf's
	tgMetrics gathered
}

// tally counts what a subscriber received on a topic.
type tally struct{ msgs, points, bad atomic.Uint64 }

type counts struct{ msgs, points, bad uint64 }

func (t *tally) counts() counts { return counts{t.msgs.Load(), t.points.Load(), t.bad.Load()} }

// edgepipe counts the gateway's data messages and points; zero without env.
func (e *modbusEnv) edgepipe() counts {
	if e == nil {
		return counts{}
	}
	return e.ep.counts()
}

// telegraf counts Telegraf's messages and the fields in them.
func (e *modbusEnv) telegraf() counts { return e.tg.counts() }

// telegrafTopic is where Telegraf's outputs.mqtt publishes in the bench.
const telegrafTopic = "telegraf/bench"

// telegrafMetric is one metric of a Telegraf JSON batch: a device's poll.
type telegrafMetric struct {
	ts     int64 // gather time, ms since the epoch (json_timestamp_units = "1ms")
	fields int
}

// parseTelegrafBatch reads a Telegraf JSON batch,
// {"metrics":[{"fields":{"r0000":1,...},"name":..,"tags":{..},"timestamp":N}]}
// (encoding/json writes the keys sorted): per metric the members of its
// "fields" object, whose values are numbers, and the timestamp after it.
// It scans bytes rather than decode, to cost the parent little.
func parseTelegrafBatch(p []byte) []telegrafMetric {
	var out []telegrafMetric
	fieldsKey, tsKey := []byte(`"fields":{`), []byte(`"timestamp":`)
	for {
		i := bytes.Index(p, fieldsKey)
		if i < 0 {
			return out
		}
		p = p[i+len(fieldsKey):]
		end := bytes.IndexByte(p, '}')
		if end < 0 {
			return out
		}
		m := telegrafMetric{fields: bytes.Count(p[:end], []byte(":"))}
		p = p[end:]
		if j := bytes.Index(p, tsKey); j >= 0 {
			q := p[j+len(tsKey):]
			k := 0
			for k < len(q) && q[k] >= '0' && q[k] <= '9' {
				k++
			}
			m.ts, _ = strconv.ParseInt(string(q[:k]), 10, 64)
		}
		out = append(out, m)
	}
}

// gathered keeps the metrics Telegraf delivered, to count the fields it
// gathered within a window by their timestamps.
type gathered struct {
	mu      sync.Mutex
	metrics []telegrafMetric
}

func (g *gathered) add(ms []telegrafMetric) {
	g.mu.Lock()
	g.metrics = append(g.metrics, ms...)
	g.mu.Unlock()
}

// reset forgets what was delivered before (a previous run).
func (g *gathered) reset() {
	g.mu.Lock()
	g.metrics = nil
	g.mu.Unlock()
}

// last is the newest gather time received, 0 for none.
func (g *gathered) last() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var t int64
	for _, m := range g.metrics {
		t = max(t, m.ts)
	}
	return t
}

// between sums the fields gathered in [from, to) (ms), and tells whether a
// metric gathered at or after to has arrived (the window is complete).
func (g *gathered) between(from, to int64) (fields int, complete bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range g.metrics {
		if m.ts >= from && m.ts < to {
			fields += m.fields
		}
		complete = complete || m.ts >= to
	}
	return fields, complete
}

// simConfig gives units 1..l.Units, each with l.Points holding registers
// from address 0, uint16 (at most the first 20,000 of all listed, to keep
// the simulator's start short: the rest of each image reads 0). Every 10th register changes (ramps, randoms, counters),
// the others hold a static value: the values on the wire change, every
// point is reported every poll either way (no deadband).
func simConfig(l load) string {
	var b strings.Builder
	listed := 0
	for u := 1; u <= l.Units; u++ {
		fmt.Fprintf(&b, "[[units]]\nid = %d\n", u)
		n := min(l.Points, 20000-listed)
		listed += n
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "[[units.registers]]\narea = \"holding\"\naddress = %d\ntype = \"uint16\"\n", i)
			switch {
			case i%30 == 0:
				b.WriteString("generator = \"ramp\"\nmin = 0.0\nmax = 1000.0\nperiod = \"10s\"\n")
			case i%30 == 10:
				b.WriteString("generator = \"random\"\nmin = 0.0\nmax = 65535.0\nperiod = \"100ms\"\n")
			case i%30 == 20:
				b.WriteString("generator = \"counter\"\nperiod = \"1s\"\n")
			default:
				fmt.Fprintf(&b, "value = %d\n", i)
			}
		}
	}
	return b.String()
}

// simMain is the simulator process: `edgepipe sim modbus` with the bench's
// arguments, until its parent goes away.
func simMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := modbussim.Command(ctx, args, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "edgepipe-bench sim:", err)
		return 1
	}
	return 0
}

var errNoMosquitto = errors.New("mosquitto is not installed (apt-get install mosquitto)")

func startModbusEnv() (_ *modbusEnv, err error) {
	bin := mosquittoPath()
	if bin == "" {
		return nil, errNoMosquitto
	}
	dir, err := os.MkdirTemp("", "edgepipe-bench-env")
	if err != nil {
		return nil, err
	}
	e := &modbusEnv{dir: dir}
	defer func() {
		if err != nil {
			e.close()
		}
	}()

	// mosquitto, stock settings (Nagle on, as installed), no persistence.
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)
	if os.Geteuid() == 0 {
		conf.WriteString("user root\n") // mosquitto would drop root for a user who cannot read dir
	}
	conf.WriteString("log_dest file " + filepath.Join(dir, "mosquitto.log") + "\n")
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o600); err != nil {
		return nil, err
	}
	e.broker = exec.Command(bin, "-c", confPath)
	e.broker.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.broker.Start(); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	e.brokerURL = "tcp://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "mosquitto.log"))
			return nil, fmt.Errorf("mosquitto did not listen on %s: %s", addr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The subscriber counts messages and the points in them: what the
	// server really got, not what the gateway thinks it sent.
	subscribed := make(chan error, 1)
	o := paho.NewClientOptions().AddBroker(e.brokerURL).SetClientID("bench-sub").SetProtocolVersion(4).
		SetCleanSession(true).SetAutoReconnect(true).SetOrderMatters(false)
	o.SetOnConnectHandler(func(c paho.Client) {
		tok := c.SubscribeMultiple(map[string]byte{"Topic/flexem/fbox/BENCH/data": 1, telegrafTopic: 1}, func(_ paho.Client, m paho.Message) {
			p := m.Payload()
			if m.Topic() == telegrafTopic {
				ms := parseTelegrafBatch(p)
				e.tgMetrics.add(ms)
				e.tg.msgs.Add(1)
				for _, m := range ms {
					e.tg.points.Add(uint64(m.fields))
				}
				return
			}
			e.ep.msgs.Add(1)
			e.ep.points.Add(uint64(bytes.Count(p, []byte(`"name":`))))
			e.ep.bad.Add(uint64(bytes.Count(p, []byte(`"q":"bad"`))))
		})
		tok.Wait()
		select {
		case subscribed <- tok.Error():
		default:
		}
	})
	e.sub = paho.NewClient(o)
	if tok := e.sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("subscriber: connect: %v", tok.Error())
	}
	select {
	case err := <-subscribed:
		if err != nil {
			return nil, fmt.Errorf("subscriber: %v", err)
		}
	case <-time.After(10 * time.Second):
		return nil, errors.New("subscriber: no SUBACK")
	}
	return e, nil
}

// startSim starts the simulator for a load: this binary re-executed (the
// original, not the gateway's copy), listening on a free port that all of
// the load's connections use.
func (e *modbusEnv) startSim(l load) error {
	e.stopSim()
	simConf := filepath.Join(e.dir, "sim.toml")
	if err := os.WriteFile(simConf, []byte(simConfig(l)), 0o600); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	e.sim = exec.Command(exe, simArg, "--listen", "tcp://127.0.0.1:0", "--config", simConf)
	e.sim.Stderr = os.Stderr
	e.sim.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := e.sim.StdoutPipe()
	if err != nil {
		return err
	}
	if err := e.sim.Start(); err != nil {
		return err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("simulator: %v", err)
	}
	i := strings.Index(line, " on ")
	if i < 0 {
		return fmt.Errorf("simulator said %q", line)
	}
	e.simURL = strings.TrimSpace(line[i+4:])
	return nil
}

func (e *modbusEnv) stopSim() {
	if e.sim != nil && e.sim.Process != nil {
		_ = e.sim.Process.Kill()
		_ = e.sim.Wait()
	}
	e.sim = nil
}

func (e *modbusEnv) close() {
	if e.sub != nil {
		e.sub.Disconnect(100)
	}
	e.stopSim()
	if e.broker != nil && e.broker.Process != nil {
		_ = e.broker.Process.Kill()
		_ = e.broker.Wait()
	}
	os.RemoveAll(e.dir)
}

func mosquittoPath() string {
	for _, p := range []string{"mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
