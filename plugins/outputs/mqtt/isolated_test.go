package mqtt_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/plugins/outputs/mqtt"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/fbox"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// The output promises to keep no message once Publish returned nil
// (sdk.FrameReleaser): the tests below run it over the plugin connection,
// where its requests are then decoded into the memory of earlier calls.
var _ sdk.FrameReleaser = mqtt.New()

// isoMessage is message j of caller g's call n: its payload (a hundred
// bytes to 64 KB) says who it is and carries a pattern of that, so that
// any payload the broker got can be checked on its own.
func isoMessage(g, n, j int) sdk.Message {
	size := 100 + (g*977+n*373+j*1013)%6000
	if (n+j)%4 == 0 {
		size = 64 << 10
	}
	p := make([]byte, size)
	binary.LittleEndian.PutUint32(p, uint32(g))
	binary.LittleEndian.PutUint32(p[4:], uint32(n))
	binary.LittleEndian.PutUint32(p[8:], uint32(j))
	for k := 12; k < size; k++ {
		p[k] = byte(g*101 + n*31 + j*7 + k)
	}
	return sdk.Message{Topic: fmt.Sprintf("%s/iso/%d", base, j), Payload: p, QoS: uint8(1 - n%5/4)}
}

func isoCall(g, n int) []sdk.Message {
	msgs := make([]sdk.Message, 1+(g+n)%4)
	for j := range msgs {
		msgs[j] = isoMessage(g, n, j)
	}
	return msgs
}

// Over the plugin connection, with two callers so that the output's
// process decodes a call while the one before runs, every message the
// broker gets is byte for byte one that was sent, and each arrives once:
// no payload was overwritten by a later call's while paho still wrote it.
func TestIsolatedBrokerGetsExactlyWhatWasSent(t *testing.T) {
	const callers, calls = 2, 60
	brokers(t, testbroker.MochiOptions{}, testbroker.MosquittoOptions{}, nil, func(t *testing.T, b broker) {
		sub := b.subscribe(base + "/iso/#")
		c := sdktest.Connect(t, mqtt.New())
		sdktest.Init(t, c, fmt.Sprintf("servers = [%q]\nmax_reconnect_interval = \"100ms\"\n", b.url))
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		waitHealth(t, c, 10*time.Second, "connected", connected)
		total := 0
		for g := range callers {
			for n := range calls {
				total += len(isoCall(g, n))
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for g := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range calls {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					err := c.Publish(ctx, isoCall(g, n))
					cancel()
					if err != nil {
						errs <- fmt.Errorf("caller %d call %d: %w", g, n, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got := sub.WaitCount(t, total, 20*time.Second)
		seen := map[[3]uint32]bool{}
		for i, r := range got {
			if len(r.Payload) < 12 {
				t.Fatalf("message %d on %s: %d bytes", i, r.Topic, len(r.Payload))
			}
			id := [3]uint32{binary.LittleEndian.Uint32(r.Payload), binary.LittleEndian.Uint32(r.Payload[4:]), binary.LittleEndian.Uint32(r.Payload[8:])}
			g, n, j := int(id[0]), int(id[1]), int(id[2])
			if g >= callers || n >= calls || j >= len(isoCall(g, n)) {
				t.Fatalf("message %d on %s: not one that was sent (head %x)", i, r.Topic, r.Payload[:12])
			}
			want := isoMessage(g, n, j)
			if r.Topic != want.Topic || !bytes.Equal(r.Payload, want.Payload) {
				k := 0
				for k < min(len(r.Payload), len(want.Payload)) && r.Payload[k] == want.Payload[k] {
					k++
				}
				t.Fatalf("caller %d call %d message %d on %s: %d bytes differing from byte %d on, want %d bytes on %s",
					g, n, j, r.Topic, len(r.Payload), k, len(want.Payload), want.Topic)
			}
			if seen[id] {
				t.Fatalf("caller %d call %d message %d arrived twice", g, n, j)
			}
			seen[id] = true
		}
		if len(got) != total {
			t.Fatalf("got %d messages, want %d", len(got), total)
		}
	})
}

// The core's retained status is the one message the output keeps past
// Publish (every reconnect republishes it): over the plugin connection,
// after calls of the same size whose requests were decoded into its
// memory, a reconnect still republishes it byte for byte.
func TestIsolatedReconnectRepublishesTheCoreStatusIntact(t *testing.T) {
	m := testbroker.StartMochi(t, testbroker.MochiOptions{})
	sub := m.Subscribe(statusTop)
	c := sdktest.Connect(t, mqtt.New())
	sdktest.Init(t, c, fmt.Sprintf("servers = [%q]\nmax_reconnect_interval = \"200ms\"\n", m.URL()))
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	waitHealth(t, c, 10*time.Second, "connected", connected)
	full := `{"status":"online","ts":1,"version":"v","config":"sha256:ab","uptime_s":1,"plugins":{"ok":1,"failed":0},"config_state":"confirmed"}`
	publish(t, c, []sdk.Message{{Topic: statusTop, Payload: []byte(full), QoS: 1, Retain: true}})
	for n := range 30 {
		p := bytes.Repeat([]byte{byte('a' + n%26)}, len(full))
		publish(t, c, []sdk.Message{{Topic: base + "/data", Payload: p, QoS: 1}})
	}
	sub.Wait(t, 10*time.Second, "the core's status", func(got []testbroker.Received) bool {
		return len(got) > 0 && string(got[len(got)-1].Payload) == full
	})
	before := sub.Len()
	m.Stop()
	waitHealth(t, c, 10*time.Second, "disconnected", func(h sdk.Health) bool { return !h.OK })
	m.Restart()
	waitHealth(t, c, 20*time.Second, "reconnected", connected)
	// The broker's stop may hand out the Last Will (offline) first.
	offline := string(fbox.Offline())
	online := func(got []testbroker.Received) []testbroker.Received {
		var out []testbroker.Received
		for _, r := range got[before:] {
			if string(r.Payload) != offline {
				out = append(out, r)
			}
		}
		return out
	}
	got := sub.Wait(t, 20*time.Second, "a status after the reconnect", func(got []testbroker.Received) bool { return len(online(got)) > 0 })
	for _, r := range online(got) {
		if string(r.Payload) != full {
			t.Fatalf("status after the reconnect %q, want %q", r.Payload, full)
		}
	}
}
