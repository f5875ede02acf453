package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDemoPublishesToItsEmbeddedBroker(t *testing.T) {
	var stdout, stderr syncBuffer
	done := make(chan int)
	go func() { done <- dispatch([]string{"demo", "--duration", "15s"}, &stdout, &stderr) }()

	re := regexp.MustCompile(`MQTT broker on (tcp://[0-9.:]+)`)
	var url string
	deadline := time.Now().Add(10 * time.Second)
	for url == "" {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("demo did not announce its broker:\n%s", stderr.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}

	// A client of our own, as a customer's server would be.
	got := make(chan paho.Message, 100)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("demo-test-subscriber"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to the demo broker: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Subscribe("Topic/flexem/fbox/DEMO-GW/#", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	// Data from both simulated devices, and the replies to both writes.
	data, reply := map[string]bool{}, map[string]bool{}
	timeout := time.After(12 * time.Second)
	for len(data) < 2 || len(reply) < 2 {
		select {
		case m := <-got:
			switch {
			case strings.HasSuffix(m.Topic(), "/data"):
				var p struct {
					Device string `json:"device"`
					Points []struct {
						Name string `json:"name"`
						Q    string `json:"q"`
					} `json:"points"`
				}
				if err := json.Unmarshal(m.Payload(), &p); err != nil || p.Device != "plc1" && p.Device != "line1" || len(p.Points) == 0 || p.Points[0].Q != "good" {
					t.Fatalf("data message %s: %v", m.Payload(), err)
				}
				data[p.Device] = true
			case strings.HasSuffix(m.Topic(), "/data/write/reply"):
				switch {
				case strings.Contains(string(m.Payload()), `"plc1.setpoint":{"ok":true}`):
					reply["plc1"] = true
				case strings.Contains(string(m.Payload()), `"line1.setpoint":{"ok":true}`):
					reply["line1"] = true
				default:
					t.Fatalf("write reply %s", m.Payload())
				}
			}
		case <-timeout:
			t.Fatalf("data seen from %v, write replies seen from %v\nstdout:\n%s\nstderr:\n%s", data, reply, stdout.String(), stderr.String())
		}
	}
	if !strings.Contains(stdout.String(), "Topic/flexem/fbox/DEMO-GW/data\t{") {
		t.Fatalf("demo printed no data message:\n%s", stdout.String())
	}

	// The console, at the URL the demo printed: the overview page of the
	// demo's gateway, and its live points.
	m := regexp.MustCompile(`console on (http://127\.0\.0\.1:[0-9]+/)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("demo did not announce its console:\n%s", stderr.String())
	}
	get := func(path string) string {
		t.Helper()
		c := http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(m[1] + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	page := get("")
	for _, want := range []string{"<title>Overview · edgepipe DEMO-GW</title>", `data-output="outputs.mqtt#1"`, "inputs.modbus#1", "inputs.opcua#1"} {
		if !strings.Contains(page, want) {
			t.Errorf("the console's overview lacks %q:\n%s", want, page)
		}
	}
	if points := get("api/v1/points"); !strings.Contains(points, `"name":"plc1.setpoint","device":"plc1"`) ||
		!strings.Contains(points, `"name":"line1.setpoint","device":"line1"`) {
		t.Errorf("the console's points: %s", points)
	}
}
