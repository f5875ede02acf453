package mqtt

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// limitConn hands paho a small PUBLISH in place of a huge one, keeping the
// packet id (so it is acknowledged) and a marked head of the payload, and
// passes the packets around it through unchanged.
func TestLimitConnCutsLargePublish(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	huge := []byte(`{"id":"huge-1","points":{"a":"` + strings.Repeat("x", 1<<20) + `"}}`)
	go func() {
		for _, p := range []struct {
			payload []byte
			qos     byte
		}{{[]byte(`{"id":"small"}`), 1}, {huge, 1}, {huge, 0}, {[]byte("after"), 1}} {
			pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
			pub.TopicName, pub.Qos, pub.MessageID, pub.Payload = "t/x", p.qos, 7, p.payload
			if err := pub.Write(server); err != nil {
				return
			}
		}
		ping := packets.NewControlPacket(packets.Pingresp)
		_ = ping.Write(server)
		server.Close()
	}()
	c := withLimit(client, 64<<10)
	read := func() packets.ControlPacket {
		t.Helper()
		p, err := packets.ReadPacket(c)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := read().(*packets.PublishPacket); string(p.Payload) != `{"id":"small"}` || p.MessageID != 7 {
		t.Fatalf("small publish changed: %+v", p)
	}
	for _, qos := range []byte{1, 0} {
		p := read().(*packets.PublishPacket)
		head, size, cut := cutPayload(p.Payload)
		if !cut || size != len(huge) || !bytes.HasPrefix(huge, head) || len(head) != keptBytes || p.TopicName != "t/x" || p.Qos != qos {
			t.Fatalf("qos %d: cut %v size %d head %q topic %q", qos, cut, size, head, p.TopicName)
		}
		if qos == 1 && p.MessageID != 7 {
			t.Fatalf("packet id lost: %d", p.MessageID)
		}
	}
	if p := read().(*packets.PublishPacket); string(p.Payload) != "after" {
		t.Fatalf("publish after the cut one: %q", p.Payload)
	}
	if _, ok := read().(*packets.PingrespPacket); !ok {
		t.Fatal("pingresp lost")
	}
}

// Whatever a server sends, limitConn neither panics nor hands paho a
// PUBLISH larger than its limit plus the kept head.
func FuzzLimitConn(f *testing.F) {
	var b bytes.Buffer
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.TopicName, pub.Qos, pub.MessageID, pub.Payload = "t", 1, 1, bytes.Repeat([]byte("y"), 300)
	_ = pub.Write(&b)
	f.Add(b.Bytes())
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f, 0, 1, 't'})
	f.Add([]byte{0x32, 0x05, 0xff, 0xff, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		go func() {
			_, _ = server.Write(data)
			server.Close()
		}()
		c := withLimit(client, 64)
		for {
			p, err := packets.ReadPacket(c)
			if err != nil {
				break
			}
			if pp, ok := p.(*packets.PublishPacket); ok && len(pp.Payload) > 64+keptBytes+len(truncatedMarker)+24 {
				t.Fatalf("payload of %d bytes passed", len(pp.Payload))
			}
		}
		client.Close()
	})
}
