package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// telegrafConfig is the Telegraf equivalent of the gateway's configuration
// for a load: every register of every device every interval, no
// processing, JSON batches published at QoS 1. Telegraf's Modbus input is
// one slave on one connection, so each device is its own [[inputs.modbus]]
// (its own connection: for the memory scenario's 4 devices that is 4
// connections where the gateway shares one). A poll of a device is one
// metric of Points fields; it is flushed every interval, or earlier when
// metric_batch_size metrics are waiting.
func telegrafConfig(l load, simURL, brokerURL string) string {
	devices := l.Conns * l.Units
	var b strings.Builder
	fmt.Fprintf(&b, "[agent]\ninterval = %q\nround_interval = false\nflush_interval = %q\nflush_jitter = \"0s\"\n", l.Interval, l.Interval)
	fmt.Fprintf(&b, "metric_batch_size = %d\nmetric_buffer_limit = %d\nomit_hostname = true\nquiet = true\n",
		max(1000, devices), max(10000, 10*devices))
	for c := 0; c < l.Conns; c++ {
		for u := 0; u < l.Units; u++ {
			fmt.Fprintf(&b, "[[inputs.modbus]]\nname = %q\nslave_id = %d\ntimeout = \"1s\"\ncontroller = %q\nconfiguration_type = \"register\"\nholding_registers = [\n",
				l.device(c, u), u+1, simURL)
			for i := 0; i < l.Points; i++ {
				fmt.Fprintf(&b, "  { name = %q, byte_order = \"AB\", data_type = \"UINT16\", scale = 1.0, address = [%d] },\n", l.register(i), i)
			}
			b.WriteString("]\n")
		}
	}
	fmt.Fprintf(&b, "[[outputs.mqtt]]\nservers = [%q]\ntopic = %q\nqos = 1\nlayout = \"batch\"\ndata_format = \"json\"\njson_timestamp_units = \"1ms\"\n", brokerURL, telegrafTopic)
	return b.String()
}

// runTelegraf measures Telegraf at s.Load as runChild measures the
// gateway: warm-up once its first message has arrived, then the CPU of its
// process tree over the window and its memory at the end. Points are the
// fields gathered in the window (metric timestamps, in ms) that reached
// the subscriber: Telegraf flushes on its own ticker, so counting the
// messages that arrived in the window would be off by a flush.
func runTelegraf(bin string, s childSpec, env *modbusEnv) (res result, err error) {
	dir, err := os.MkdirTemp("", "edgepipe-bench-telegraf")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "telegraf.conf")
	if err := os.WriteFile(conf, []byte(telegrafConfig(s.Load, s.SimURL, s.BrokerURL)), 0o600); err != nil {
		return res, err
	}
	logf, err := os.Create(filepath.Join(dir, "telegraf.log"))
	if err != nil {
		return res, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config", conf)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return res, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if err != nil {
			log, _ := os.ReadFile(logf.Name())
			err = fmt.Errorf("%w\n%s", err, log)
		}
	}()

	env.tgMetrics.reset()
	deadline := time.Now().Add(60 * time.Second)
	for env.tgMetrics.last() == 0 {
		select {
		case err := <-exited:
			exited <- err
			return res, fmt.Errorf("telegraf exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("no message from telegraf on %s within a minute", telegrafTopic)
		}
	}
	time.Sleep(s.Warmup)
	// Open the window half an interval after a gather (by the newest
	// timestamp received), as the gateway's: see alignWindow.
	iv := s.Load.Interval
	start := time.UnixMilli(env.tgMetrics.last()).Add(iv / 2)
	for start.Before(time.Now()) {
		start = start.Add(iv)
	}
	time.Sleep(time.Until(start))

	pid := cmd.Process.Pid
	pids := tree(pid)
	var sampler *memSampler
	if s.SampleMem {
		sampler = sampleMem(pid, memSamplePeriod)
	}
	c0, cpu0, t0 := env.telegraf(), cpuSeconds(pids), time.Now()
	time.Sleep(s.Load.window(s.Window))
	if sampler != nil {
		m := sampler.max()
		res.MaxMem = &m
	}
	pids = tree(pid)
	c1, cpu1, t1 := env.telegraf(), cpuSeconds(pids), time.Now()
	d := t1.Sub(t0).Seconds()
	res.Mem = memOfAll(pids)
	res.Procs, res.Libc = len(pids), linksLibc(pid)
	// The points are the fields gathered in the window, by their
	// timestamps, once a later gather has arrived (or a deadline passed).
	var fields int
	for wait := time.Now().Add(2*iv + 10*time.Second); ; {
		var complete bool
		fields, complete = env.tgMetrics.between(t0.UnixMilli(), t1.UnixMilli())
		if complete || time.Now().After(wait) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	n := float64(fields)
	res.Subscribed = true
	res.Rate = n / d
	if n == 0 { // its polls overran the window: the memory figures still stand
		res.Warning += "; WARNING: telegraf gathered nothing in the window"
		n = math.NaN()
	}
	res.RecvPoints = float64(c1.points-c0.points) / d
	res.MsgRate = float64(c1.msgs-c0.msgs) / d
	res.CPUPerPoint, res.CPUCore = (cpu1-cpu0)/n, (cpu1-cpu0)/d
	if out := runningOutside(pid, pids); len(out) > 0 {
		res.Warning += fmt.Sprintf("; WARNING: processes %v outside telegraf's tree run its binary and share its pages", out)
	}
	// One flush per interval while a poll of every device fits in a batch;
	// the flushes are not aligned with the window and now and then one
	// carries two polls.
	if flushes, want := float64(c1.msgs-c0.msgs), float64(s.Load.window(s.Window)/iv); flushes < 0.95*want-1 {
		res.Warning += fmt.Sprintf("; WARNING: %.0f messages from telegraf in %.0f intervals (it flushes once an interval)", flushes, want)
	}
	if want := s.Load.rate(); res.Rate < 0.9*want {
		res.Warning += fmt.Sprintf("; WARNING: telegraf gathered %.0f fields/s, the load asks for %.0f", res.Rate, want)
		if log, _ := os.ReadFile(logf.Name()); len(log) > 0 {
			res.Warning += "; its log ends:\n" + lastLines(string(log), 5)
		}
	}
	return res, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
