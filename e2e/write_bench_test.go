package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgepipe/edgepipe/internal/testbroker"
)

// BenchmarkWriteRoundTrip: writes per second end to end, MQTT in ->
// the gateway's checks -> a Modbus write to the simulator (and its
// read-back poll) -> the reply out on MQTT. The broker is mosquitto when
// installed, with set_tcp_nodelay (without it Nagle holds every small
// message ~40 ms: 22 writes/s one at a time), mochi otherwise. "serial"
// keeps one write in flight (the latency a server sees), "window16"
// sixteen (the throughput of the command path).
//
//	go test -run '^$' -bench WriteRoundTrip -benchtime 2000x -count 3 ./e2e/
func BenchmarkWriteRoundTrip(b *testing.B) {
	if shortSkip {
		b.Skip("e2e: skipped under -short")
	}
	if buildErr != nil {
		b.Fatalf("e2e: could not build edgepipe: %v", buildErr)
	}
	sim := writeSim(b)
	var url string
	if testbroker.MosquittoPath() != "" && os.Getenv("EDGEPIPE_E2E_BROKER") != "mochi" {
		url = testbroker.StartMosquitto(b, testbroker.MosquittoOptions{TCPNoDelay: true}).URL()
	} else {
		url = testbroker.StartMochi(b, testbroker.MochiOptions{}).URL()
	}
	const id = "GW-WB"
	dir := b.TempDir()
	cfgPath := filepath.Join(dir, "gw.toml")
	if err := os.WriteFile(cfgPath, []byte(writeGateway(id, dir, "", sim.Addr(), url)), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(binPath, "run", "--config", cfgPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if b.Failed() {
			b.Logf("gateway stderr:\n%s", stderr.String())
		}
	})

	var mu sync.Mutex
	waiting := map[string]chan bool{}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("bench-%d", os.Getpid())).
		SetProtocolVersion(4).SetConnectTimeout(5 * time.Second)
	cl := paho.NewClient(o)
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("connect: %v", tok.Error())
	}
	defer cl.Disconnect(100)
	tok := cl.Subscribe(prefix+id+"/data/write/reply", 1, func(_ paho.Client, m paho.Message) {
		var r writeReply
		if json.Unmarshal(m.Payload(), &r) != nil {
			return
		}
		mu.Lock()
		ch := waiting[r.ID]
		delete(waiting, r.ID)
		mu.Unlock()
		if ch != nil {
			ch <- r.Results["plc.sp"].OK
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("subscribe: %v", tok.Error())
	}
	n := 0
	send := func(v int) chan bool {
		n++
		rid := fmt.Sprintf("b-%d", n)
		ch := make(chan bool, 1)
		mu.Lock()
		waiting[rid] = ch
		mu.Unlock()
		cl.Publish(prefix+id+"/data/write", 1, false, fmt.Sprintf(`{"id":%q,"points":{"plc.sp":%d}}`, rid, v))
		return ch
	}
	// Until the gateway is subscribed, writes go unanswered.
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case ok := <-send(1):
			if !ok {
				b.Fatal("warm-up write refused")
			}
		case <-time.After(time.Second):
			if time.Now().After(deadline) {
				b.Fatal("no reply from the gateway")
			}
			continue
		}
		break
	}
	run := func(b *testing.B, window int) {
		inflight := make(chan chan bool, window)
		start := time.Now()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if len(inflight) == window {
				if !waitReply(b, <-inflight) {
					return
				}
			}
			inflight <- send(i % 1000)
		}
		for len(inflight) > 0 {
			if !waitReply(b, <-inflight) {
				return
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
	}
	b.Run("serial", func(b *testing.B) { run(b, 1) })
	b.Run("window16", func(b *testing.B) { run(b, 16) })
}

func waitReply(b *testing.B, ch chan bool) bool {
	select {
	case ok := <-ch:
		if !ok {
			b.Error("write refused")
		}
		return ok
	case <-time.After(20 * time.Second):
		b.Error("a write got no reply in 20 s")
		return false
	}
}
